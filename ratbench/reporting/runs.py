"""Run directories written by ``ratbench train``: finding and loading them.

A run directory holds ``config.yaml`` (the resolved config: ``env``, ``algo``, ``solver``, ``seed``,
...) and ``progress.csv`` (one row per iteration; empty cells where a value does not apply).
TensorBoard files and checkpoints are ignored. A folder below a searched one that holds ``comparisons.yaml``
is a page of its own (``ratbench report <folder>``, with its own questions): a search from above does not
descend into it, so an ablation's runs can sit under results/ without crowding the main page, which links it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from envs.names import ENV_IDS
from ratbench.errors import RatbenchError
from ratbench.io import read_yaml
from ratbench.values import is_int

MISSING = object()  # what lookup returns for a key the config does not hold


def lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """``config[dotted]``, walking nested mappings for a dotted key (``model.hidden``); ``MISSING`` when absent."""
    if dotted in config:
        return config[dotted]
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


PROGRESS_FILE = "progress.csv"
CONFIG_FILE = "config.yaml"
COMPARISONS_FILE = "comparisons.yaml"  # a page's declared questions (reporting.comparisons); marks a page's folder
X_AXES = ("env_steps", "wall_time", "iteration")


@dataclass(frozen=True)
class Run:
    """One run directory: its config and its progress columns (float arrays, NaN for empty cells)."""

    path: Path
    config: Mapping[str, Any]
    columns: Mapping[str, np.ndarray]

    @property
    def env(self) -> str:
        """The task's gymnasium id (``Hopper-v5`` for a run configured as ``hopper``), so that runs
        named either way are one task and pages show the version."""
        name = str(self.config["env"])
        return ENV_IDS.get(name.lower(), name)


def find_run_dirs(paths: Sequence[str | os.PathLike], pages: list[Path] | None = None) -> tuple[list[Path], list[str], list[str]]:
    """Run directories under ``paths`` (run dirs themselves, or parents searched recursively).

    Returns the run directories (sorted, deduplicated), one rejection per candidate directory that holds only
    one of ``progress.csv`` / ``config.yaml``, and the other warnings. A folder below a searched path that holds
    ``comparisons.yaml`` is a page of its own and is not searched: it is appended to ``pages`` when the caller
    passes a list (to link it), else named in a warning. Raises when a path does not exist or holds no run
    directory outside such pages.
    """
    found: dict[Path, Path] = {}
    rejected: list[str] = []
    warnings: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise RatbenchError(f"{path} does not exist; give a run directory or a directory that contains run directories")
        if path.is_file():
            if path.name not in (PROGRESS_FILE, CONFIG_FILE):
                raise RatbenchError(f"{path} is a file; give a run directory (one holding {PROGRESS_FILE} and {CONFIG_FILE}) or a parent of run directories")
            path = path.parent
        candidates, skipped = [], []
        for directory, subdirectories, files in os.walk(path):
            if Path(directory) != path and COMPARISONS_FILE in files:
                skipped.append(Path(directory))
                subdirectories.clear()  # a page of its own: not descended into
                continue
            subdirectories.sort()
            if PROGRESS_FILE in files or CONFIG_FILE in files:
                candidates.append(Path(directory))
        if pages is None:
            warnings += [f"not searching {page}: a page of its own (it holds {COMPARISONS_FILE}; `ratbench report {page}`)"
                         for page in skipped]
        else:
            pages += skipped
        complete = []
        for directory in candidates:
            missing = [name for name in (PROGRESS_FILE, CONFIG_FILE) if not (directory / name).is_file()]
            if missing:
                reason = f"skipping {directory}: it has no {missing[0]}"
                if reason not in rejected:  # a folder reached through two searched paths is one candidate
                    rejected.append(reason)
            else:
                complete.append(directory)
        if not candidates:
            beside = (f" outside its pages of their own ({', '.join(map(str, skipped))}: report each with `ratbench "
                      "report <page>`)") if skipped else ""
            raise RatbenchError(f"no run directories under {path}{beside}: none holds both {PROGRESS_FILE} and "
                                f"{CONFIG_FILE}; run `ratbench train` first or check the path")
        for directory in complete:
            found.setdefault(directory.resolve(), directory)
    return sorted(found.values()), rejected, warnings


def load_progress(path: Path) -> dict[str, np.ndarray]:
    """Columns of a ``progress.csv`` as float64 arrays, NaN for empty cells. Shapes (rows,)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise RatbenchError(f"{path} is not a CSV text file ({err.__class__.__name__}); the run's log is damaged") from None
    if not rows:
        raise RatbenchError(f"{path} is empty; the run has not logged anything yet")
    header, body = rows[0], [row for row in rows[1:] if row]
    if not body:
        raise RatbenchError(f"{path} has a header but no rows yet; wait for the first iteration to finish")
    missing = [name for name in X_AXES if name not in header]
    if missing:
        raise RatbenchError(f"{path} has no {missing[0]!r} column; it is not a ratbench progress file")
    cut = next((i for i, row in enumerate(body) if len(row) != len(header)), None)
    if cut is not None:
        raise RatbenchError(f"{path} line {cut + 2} has {len(body[cut])} cells where the header has {len(header)}; "
                            "the run's log is damaged")
    columns = {name: np.full(len(body), np.nan) for name in header}
    for i, row in enumerate(body):
        for name, cell in zip(header, row):
            if cell.strip():
                try:
                    columns[name][i] = float(cell)
                except ValueError:
                    raise RatbenchError(f"{path} line {i + 2}: column {name!r} holds {cell!r}, not a number") from None
    steps = columns["env_steps"]
    if not np.isfinite(steps).all() or (np.diff(steps) < 0).any():
        raise RatbenchError(f"{path}: env_steps must be a finite count on every row that never decreases; "
                            "a progress file holds one run, in order")
    return columns


CONFIG_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {  # key: (its value's test where given, what it must be)
    "env": (lambda v: isinstance(v, str) and bool(v), "a task name"),
    "steps": (lambda v: is_int(v) and v >= 1, "a positive whole number of steps"),
    "seed": (lambda v: v is None or (is_int(v) and v >= 0), "a non-negative whole number or null (a hand-made run)"),
    **{key: (lambda v: v is None or isinstance(v, str), "a name or null")
       for key in ("algo", "solver", "arch", "label", "preset", "steps_unit")},
    **{key: (lambda v: isinstance(v, dict), "a section (a mapping of keys)") for key in ("npg", "model", "eval")},
}
"""What a report reads of a run's config, checked when the run is loaded: a value of the wrong type skips the run
with a warning instead of labelling, grouping or scoring it wrongly (a budget of 0 would count it finished)."""


def load_config(path: Path) -> dict[str, Any]:
    """A run's ``config.yaml``: a mapping with an ``env`` key whose :data:`CONFIG_CHECKS` keys hold their types."""
    config = read_yaml(path, "run config")
    if not isinstance(config, dict) or "env" not in config:
        raise RatbenchError(f"{path} is not a ratbench run config: it needs a mapping with an 'env' key")
    for key, (ok, kind) in CONFIG_CHECKS.items():
        if key in config and not ok(config[key]):
            raise RatbenchError(f"{path} is not a ratbench run config: {key} must be {kind}, got {config[key]!r}")
    return config


def load_runs(paths: Sequence[str | os.PathLike], pages: list[Path] | None = None) -> tuple[list[Run], list[str]]:
    """Load every run under ``paths``; unreadable runs are skipped with a warning; ``pages`` as for
    :func:`find_run_dirs`.

    Returns the runs and the warnings (skipped directories first). Raises when no run is left, with the first
    directory's reason (the caller prints warnings only when this returns).
    """
    directories, rejected, warnings = find_run_dirs(paths, pages)
    n_candidates = len(directories) + len(rejected)
    runs = []
    for directory in directories:
        try:
            runs.append(Run(directory, load_config(directory / CONFIG_FILE), load_progress(directory / PROGRESS_FILE)))
        except RatbenchError as err:
            rejected.append(f"skipping {directory}: {err}")
    if not runs:
        first = f": {rejected[0]}" if rejected else ""
        more = f" (and {len(rejected) - 1} more skipped)" if len(rejected) > 1 else ""
        raise RatbenchError(f"no usable runs among {n_candidates} candidate director{'y' if n_candidates == 1 else 'ies'} "
                            f"under {', '.join(map(str, paths)) or 'no path'}{first}{more}")
    return runs, rejected + warnings


def numeric_columns(runs: Iterable[Run]) -> list[str]:
    """Columns any run logged, in first-seen order."""
    return list(dict.fromkeys(name for run in runs for name in run.columns))
