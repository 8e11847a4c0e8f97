"""Window scores: a run's score is the mean of what it logged over the last part of the common budget.

One evaluation (10 episodes) is a noisy reading of a policy, and successive evaluations of one seed
differ by hundreds on MuJoCo; scoring a run by its single last evaluation lets that noise, and the step
at which each method happens to evaluate, decide a verdict. So a run's score for a metric is the mean
of its points whose step lies in the window ``(budget - WINDOW_SHARE * budget, budget]``: evaluations
(``eval_return``), placed at the mark they stand for (``eval_step``, ratbench/training/schedule.py;
``env_steps`` for runs made before marks), and logged training returns (``train_return``, one per
iteration, itself the mean of the last 100 training episodes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ratbench.reporting.runs import Run

WINDOW_SHARE = 0.10  # the last 10% of the common budget
EVAL_COLUMNS = ("eval_return", "eval_return_std", "eval_cut")  # logged at an evaluation, placed at its mark


def points(run: Run, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of every finite value of ``metric`` in ``run``, in logged order. Evaluation columns
    are placed at the mark each evaluation stands for (``eval_step``) where the run logged one."""
    steps, values = run.columns["env_steps"], run.columns.get(metric)
    if values is None:
        return np.empty(0), np.empty(0)
    marks = run.columns.get("eval_step")
    if metric in EVAL_COLUMNS and marks is not None:
        steps = np.where(np.isfinite(marks), marks, steps)
    ok = np.isfinite(values) & np.isfinite(steps)
    return steps[ok], values[ok]


def window(budget: float) -> tuple[float, float]:
    """The scoring window ``(low, high]`` of a common budget."""
    return budget * (1 - WINDOW_SHARE), budget


@dataclass(frozen=True)
class WindowScore:
    value: float  # mean over the window's points; NaN when none fell in it
    steps: tuple[int, ...]  # the steps of those points


def window_score(run: Run, metric: str, budget: float) -> WindowScore:
    """The mean of ``run``'s ``metric`` over :func:`window` of ``budget``."""
    low, high = window(budget)
    steps, values = points(run, metric)
    inside = (steps > low) & (steps <= high)
    value = float(values[inside].mean()) if inside.any() else math.nan
    return WindowScore(value, tuple(int(s) for s in steps[inside]))


def describe_marks(steps: tuple[int, ...]) -> str:
    """``"6 at 2,750,000-3,000,000 every 50,000"``, ``"2 at 983,040 and 1,001,472"``, ``"none"``."""
    if not steps:
        return "none"
    if len(steps) == 1:
        return f"1 at {steps[0]:,}"
    gaps = set(np.diff(steps).tolist())
    if len(gaps) == 1 and len(steps) > 2:
        return f"{len(steps)} at {steps[0]:,}-{steps[-1]:,} every {gaps.pop():,}"
    return f"{len(steps)} at " + ", ".join(f"{s:,}" for s in steps[:-1]) + f" and {steps[-1]:,}"


__all__ = ["EVAL_COLUMNS", "WINDOW_SHARE", "WindowScore", "describe_marks", "points", "window", "window_score"]
