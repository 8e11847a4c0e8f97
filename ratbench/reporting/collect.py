"""Copy the compact outputs of run directories into a results folder that is committed.

Per run: ``config.yaml``, ``progress.csv``, ``provenance.json`` where the run has one (code commit,
package versions, machine of each start) and ``summary.json`` (steps reached and budget, whether
finished, last training and evaluation returns, wall time, the commits that ran it). Never checkpoints or
TensorBoard files. Each run keeps its directory name; files are written atomically, so an
interrupted collect leaves whole files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_bytes, write_json
from ratbench.reporting.methods import is_finished, last_step, method_label
from ratbench.reporting.runs import CONFIG_FILE, PROGRESS_FILE, Run
from ratbench.reporting.stats import value_at
from ratbench.training.provenance import PROVENANCE_FILE, read_starts


def summary(run: Run) -> dict:
    """The run's summary.json; a config or progress.csv it cannot be computed from is a one-sentence error."""
    try:
        steps = last_step(run)
        return {
            "env": run.env, "method": method_label(run.config), "seed": run.config.get("seed"),
            "env_steps": int(steps), "steps_budget": int(run.config.get("steps", 0)), "finished": is_finished(run),
            "train_return": value_at(run, "train_return", steps, slack=None),
            "eval_return": value_at(run, "eval_return", steps, slack=None),
            "wall_time_s": value_at(run, "wall_time", steps, slack=None),
            "commits": _commits(run.path),
        }
    except (ValueError, TypeError, OverflowError) as err:
        raise RatbenchError(f"cannot collect {run.path}: its config.yaml or progress.csv holds a value it cannot be "
                            f"summarised from ({err}); fix or leave out that run") from None


def _commits(run_dir: Path) -> list[str]:
    """The code commits of the run's starts, in order, once each ("<sha>+dirty" for uncommitted changes); a damaged
    provenance.json is a one-sentence error."""
    starts = read_starts(run_dir)
    if starts is None:
        raise RatbenchError(f"{run_dir / PROVENANCE_FILE} is damaged (not a JSON object with a list of starts); "
                            "restore it or move it out of the run directory before collecting")
    codes = [s.get("code") for s in starts]
    return list(dict.fromkeys(f"{c['commit']}{'+dirty' if c.get('dirty') else ''}" for c in codes
                              if isinstance(c, dict) and c.get("commit")))


def collect(runs: Sequence[Run], into: Path) -> list[Path]:
    """Write each run's compact outputs to ``into/<run directory name>/``; returns those directories. Every
    summary is computed first, so a run that cannot be collected fails the command before anything is written."""
    names = [run.path.name for run in runs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise RatbenchError(f"two runs share the directory name {clashes[0]!r}; collect them into separate folders")
    for run in runs:
        if (into / run.path.name).resolve() == run.path.resolve():
            raise RatbenchError(f"{run.path} is already inside {into}; collect from the training run directories")
    summaries = [summary(run) for run in runs]
    written = []
    for run, run_summary in zip(runs, summaries):
        dest = into / run.path.name
        for name in (CONFIG_FILE, PROGRESS_FILE, PROVENANCE_FILE):
            if name != PROVENANCE_FILE or (run.path / name).is_file():
                atomic_write_bytes(dest / name, (run.path / name).read_bytes())
        write_json(dest / "summary.json", run_summary)
        written.append(dest)
    return written
