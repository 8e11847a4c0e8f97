"""Suite runs whose compact outputs are already collected (``ratbench report --collect``) as finished runs.

A suite resumes from its run directories' checkpoints; when those are gone (a wiped scratch disk, a machine
reset between sessions) but the finished runs were collected into a committed results folder, the suite's
``--collected`` folders say which runs need no training. A collected run counts only when it is the same run:
the same directory name, a summary that says it finished, and the same config as the suite would give it
(``device`` and ``threads`` aside, which a resume may change too), read as a resume reads it: a key the
collected run predates has the value such a run had. A same-named run collected from another config is refused,
not skipped and not overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ratbench.errors import RatbenchError
from ratbench.training.config import load_run_config, resolve_config
from ratbench.training.suite_run import SuiteRun

MACHINE_KEYS = ("device", "threads")  # top-level settings of where a run trains, not of what it trains


def _differing_keys(expected: Mapping[str, Any], saved: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ (sections compared key by key), ``MACHINE_KEYS`` aside."""
    differ = []
    for key in sorted(set(expected) | set(saved)):
        mine, theirs = expected.get(key), saved.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            differ += _differing_keys(mine, theirs, f"{prefix}{key}.")
        elif prefix + key not in MACHINE_KEYS and mine != theirs:
            differ.append(prefix + key)
    return differ


def is_collected(run: SuiteRun, folders: Sequence[Path]) -> bool:
    """Whether a finished copy of ``run`` is collected in one of ``folders`` (<folder>/<run directory name>/).

    Raises when a same-named collected run was trained from another config."""
    for folder in folders:
        copy = folder / run.logdir.name
        if not (copy / "summary.json").is_file():
            continue
        try:
            finished = json.loads((copy / "summary.json").read_text()).get("finished") is True
        except (OSError, ValueError, AttributeError) as err:
            raise RatbenchError(f"cannot read {copy / 'summary.json'} ({err}); re-collect that run") from None
        if not (copy / "config.yaml").is_file():
            raise RatbenchError(f"{copy} has a summary.json but no config.yaml; re-collect that run")
        expected = resolve_config({"env": run.env, "algo": run.algo, "solver": run.solver, "arch": run.arch,
                                   "seed": run.seed, "steps": run.steps}, sets=run.set_args())
        saved = load_run_config(copy / "config.yaml")
        differ = _differing_keys(expected, saved)
        if differ:
            raise RatbenchError(f"{copy} was collected from another config than the suite's run {run.logdir.name} "
                                f"(it differs in {', '.join(differ)}); give --collected a folder of this suite's runs")
        if finished:
            return True
    return False


def by_task(runs: list[SuiteRun]) -> list[SuiteRun]:
    """The queue task by task: every run on the first task named, then the next (stable within a task)."""
    order: dict[str, int] = {}
    for run in runs:
        order.setdefault(run.env, len(order))
    return sorted(runs, key=lambda run: order[run.env])
