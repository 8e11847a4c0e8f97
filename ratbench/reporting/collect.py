"""Copy the compact outputs of run directories into a results folder that is committed.

Per run: ``config.yaml``, ``progress.csv``, ``provenance.json`` where the run has one (code commit,
package versions, machine of each start) and ``summary.json`` (steps reached and budget, whether
finished, last training and evaluation returns, wall time, the commits that ran it). Never checkpoints or
TensorBoard files. Each run keeps its directory name; files are written atomically, so an
interrupted collect leaves whole files only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_bytes, write_json
from ratbench.reporting.methods import is_finished, last_step, method_label
from ratbench.reporting.runs import CONFIG_FILE, PROGRESS_FILE, Run
from ratbench.reporting.stats import value_at
from ratbench.training.provenance import PROVENANCE_FILE


def summary(run: Run) -> dict:
    steps = last_step(run)
    return {
        "env": run.env, "method": method_label(run.config), "seed": run.config.get("seed"),
        "env_steps": int(steps), "steps_budget": int(run.config.get("steps", 0)), "finished": is_finished(run),
        "train_return": value_at(run, "train_return", steps, slack=None),
        "eval_return": value_at(run, "eval_return", steps, slack=None),
        "wall_time_s": value_at(run, "wall_time", steps, slack=None),
        "commits": _commits(run.path),
    }


def _commits(run_dir: Path) -> list[str]:
    """The code commits of the run's starts, in order, once each ("<sha>+dirty" for uncommitted changes)."""
    try:
        starts = json.loads((run_dir / PROVENANCE_FILE).read_text())["starts"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    commits = [f"{s['code']['commit']}{'+dirty' if s['code'].get('dirty') else ''}" for s in starts if s.get("code", {}).get("commit")]
    return list(dict.fromkeys(commits))


def collect(runs: Sequence[Run], into: Path) -> list[Path]:
    """Write each run's compact outputs to ``into/<run directory name>/``; returns those directories."""
    names = [run.path.name for run in runs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise RatbenchError(f"two runs share the directory name {clashes[0]!r}; collect them into separate folders")
    written = []
    for run in runs:
        dest = into / run.path.name
        if dest.resolve() == run.path.resolve():
            raise RatbenchError(f"{run.path} is already inside {into}; collect from the training run directories")
        for name in (CONFIG_FILE, PROGRESS_FILE, PROVENANCE_FILE):
            if name != PROVENANCE_FILE or (run.path / name).is_file():
                atomic_write_bytes(dest / name, (run.path / name).read_bytes())
        write_json(dest / "summary.json", summary(run))
        written.append(dest)
    return written
