"""Run logging: progress.csv (rewritten atomically each iteration), TensorBoard, tqdm.

progress.csv starts with exactly :data:`COLUMNS` (``ratbench plot`` relies
on them); a value that does not apply is an empty cell. Rows live in memory
and the whole file is rewritten through :func:`ratbench.io.write_csv`, so it
is never half-written and, on resume, holds exactly the rows up to the
checkpoint.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from tqdm import tqdm

from ratbench.errors import RatbenchError
from ratbench.io import write_csv

COLUMNS = (
    "iteration", "env_steps", "episodes", "return_mean", "return_median", "length_mean", "train_return", "eval_return", "fps",
    "time_env", "time_update", "wall_time", "kl", "entropy", "policy_loss", "value_loss", "step_norm", "lr",
    "solver_iterations", "solver_residual",
)
EXTRA_COLUMNS = ("eval_return_std", "solver_passes", "kl_last_minibatch", "eval_cut", "eval_step")

# TensorBoard tag of each logged column (step = env_steps).
TB_TAGS = {
    "return_mean": "train/return_mean", "return_median": "train/return_median", "length_mean": "train/length_mean",
    "train_return": "train/return_last100",
    "eval_return": "eval/return", "eval_return_std": "eval/return_std", "eval_cut": "eval/episodes_cut", "fps": "perf/fps", "time_env": "perf/time_env",
    "time_update": "perf/time_update", "kl": "policy/kl", "entropy": "policy/entropy",
    "policy_loss": "policy/loss", "value_loss": "critic/loss", "step_norm": "policy/step_norm", "lr": "policy/lr",
    "solver_iterations": "solver/iterations", "solver_residual": "solver/residual",
}


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value


def read_progress(path: Path, up_to_iteration: int) -> list[dict[str, str]]:
    """The rows of iterations 1 to ``up_to_iteration`` (a checkpoint's) of a run's progress.csv, which may hold later
    ones (logged before a checkpoint the resume does not reach). A resume rewrites the file from these rows, so one
    missing, cut or unreadable is a one-sentence RatbenchError instead of a row silently lost or kept half."""
    if up_to_iteration == 0:
        return []

    def damaged(why: str) -> RatbenchError:
        return RatbenchError(f"{path} is damaged ({why}) and the checkpoint reached iteration {up_to_iteration}: "
                             "restore the file (results/ holds a collected run's copy) or train the run again in a new directory")

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise damaged("it is missing") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise damaged(f"unreadable: {err.__class__.__name__}") from None
    kept = []
    for line, row in enumerate(rows, 2):
        if None in row or None in row.values():
            raise damaged(f"line {line} has {'more' if None in row else 'fewer'} cells than the header")
        try:
            iteration = int(row.get("iteration") or "")
        except ValueError:
            raise damaged(f"line {line}'s iteration is {row.get('iteration')!r}") from None
        if iteration <= up_to_iteration:
            kept.append(row)
    found = [int(row["iteration"]) for row in kept]
    if found != list(range(1, up_to_iteration + 1)):
        missing = sorted(set(range(1, up_to_iteration + 1)) - set(found))
        raise damaged(f"{'iteration' if len(missing) == 1 else 'iterations'} {_span(missing)} "
                      f"{'is' if len(missing) == 1 else 'are'} missing" if missing else "its iterations are out of order")
    return kept


def _span(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (a sorted list of ints)."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


STATUS_SECONDS = 60.0  # how often a status line is printed when stderr is not a terminal


class RunLogger:
    """progress.csv, TensorBoard and progress on stderr: a tqdm bar on a terminal, else (a log file, a batch
    job) one status line every :data:`STATUS_SECONDS` and at the end. ``total_steps``: the budget rounded up
    to whole iterations, what the run will actually reach."""

    def __init__(self, run_dir: Path, rows: list[dict[str, Any]], purge_step: int | None, total_steps: int,
                 start_steps: int, progress_bar: bool = True):
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / "progress.csv"
        self.rows = rows
        self.rewrite()  # first: a file that cannot be written fails before a TensorBoard file is made
        self.total_steps = total_steps
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)
        self.bar = tqdm(total=total_steps, initial=start_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                        file=sys.stderr, disable=None if progress_bar else True, mininterval=1.0)  # None: off when not a terminal
        self.status_lines = progress_bar and self.bar.disable  # asked for progress, but stderr is no terminal
        self.last_status = time.monotonic()

    def rewrite(self) -> None:
        """Write progress.csv from the rows in memory (atomically)."""
        write_csv(self.path, self.rows, COLUMNS + EXTRA_COLUMNS)

    def log(self, row: Mapping[str, Any], recent_return: float | None) -> None:
        row = {k: _cell(row.get(k)) for k in COLUMNS + EXTRA_COLUMNS}
        self.rows.append(row)
        self.rewrite()
        step = int(row["env_steps"])
        eval_step = int(row["eval_step"]) if row["eval_step"] != "" else step  # the mark an evaluation stands for
        for key, tag in TB_TAGS.items():
            if row[key] != "":
                self.writer.add_scalar(tag, float(row[key]), eval_step if tag.startswith("eval/") else step)
        self.writer.flush()
        postfix = {"it": row["iteration"]}
        if recent_return is not None:
            postfix["return"] = f"{recent_return:.1f}"
        if row["eval_return"] != "":
            postfix["eval"] = f"{float(row['eval_return']):.1f}"
        if row["eval_cut"] not in ("", 0):
            postfix["eval cut"] = row["eval_cut"]  # episodes still running at eval.max_episode_steps
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(step - self.bar.n)
        now = time.monotonic()
        if self.status_lines and (now - self.last_status >= STATUS_SECONDS or step >= self.total_steps):
            self.last_status = now
            details = ", ".join(f"{k} {v}" for k, v in postfix.items())
            print(f"step {step:,} of {self.total_steps:,} ({100 * step / self.total_steps:.0f}%): {details}",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
