"""Statistics over seeds: values at milestones, final scores, IQM with stratified-bootstrap CIs.

Aggregate scores and their confidence intervals come from rliable (Agarwal et al. 2021), the field's
library for few-seed RL statistics: the interquartile mean (IQM) over runs, with 95% percentile
intervals from stratified bootstrap resampling of runs within each task, and the probability of
improvement P(X > Y). With fewer than about 5 seeds any interval is rough; the tables say how many
seeds stand behind every number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ratbench.reporting.runs import Run

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2_000
BOOTSTRAP_SEED = 0
MILESTONE_SLACK = 0.05  # a milestone value is the last logged point within 5% below the milestone


def value_at(run: Run, metric: str, step: float, slack: float | None = MILESTONE_SLACK) -> float:
    """The metric at the last logged point with env_steps <= ``step`` and, unless ``slack`` is None,
    within ``slack * step`` of it (NaN when the run logged none there: it stopped earlier, or logs that
    metric more sparsely)."""
    steps, values = run.columns["env_steps"], run.columns.get(metric)
    if values is None:
        return math.nan
    ok = (steps <= step) & np.isfinite(values)
    if slack is not None:
        ok &= steps >= step * (1 - slack)
    return float(values[ok][-1]) if ok.any() else math.nan


@dataclass(frozen=True)
class Spread:
    """min, median, max over seeds and how many seeds had a value."""

    low: float
    median: float
    high: float
    n: int


def spread(values: Sequence[float]) -> Spread:
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if not finite.size:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(float(finite.min()), float(np.median(finite)), float(finite.max()), int(finite.size))


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% bootstrap confidence interval."""

    value: float
    low: float
    high: float


def iqm(scores: dict[str, np.ndarray]) -> dict[str, Interval]:
    """IQM over runs and tasks with stratified-bootstrap CIs; ``scores[method]``: (runs, tasks)."""
    from rliable import library as rly
    from rliable import metrics

    np.random.seed(BOOTSTRAP_SEED)  # rliable draws from numpy's global generator: fixed, so a report is reproducible
    point, ci = rly.get_interval_estimates(
        scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
    return {k: Interval(float(point[k][0]), float(ci[k][0, 0]), float(ci[k][1, 0])) for k in scores}


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> Interval:
    """P(X > Y) over runs (ties count half), averaged over tasks; x, y: (runs, tasks)."""
    from rliable import library as rly
    from rliable import metrics

    np.random.seed(BOOTSTRAP_SEED)
    point, ci = rly.get_interval_estimates(
        {"pair": (x, y)}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
        reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
    return Interval(float(point["pair"][0]), float(ci["pair"][0, 0]), float(ci["pair"][1, 0]))


def mean_curve_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% stratified-bootstrap CI (rliable, percentile) of the mean over seeds at each point, for
    ``values`` (seeds, points) with at least 2 seeds: (low, high), each (points,)."""
    from rliable import library as rly

    np.random.seed(BOOTSTRAP_SEED)
    _, ci = rly.get_interval_estimates({"m": values[:, None, :]}, lambda x: x[:, 0, :].mean(axis=0),
                                       reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
    return ci["m"][0], ci["m"][1]


def iqm_curve(runs: Sequence[Run], metric: str, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over seeds of the metric at each grid step (last logged value at or before it), with CIs:
    (iqm, low, high), each (len(grid),). Grid points some seed has not reached are NaN."""
    table = np.full((len(runs), len(grid)), np.nan)
    for i, run in enumerate(runs):
        steps, values = run.columns["env_steps"], run.columns.get(metric, np.full_like(run.columns["env_steps"], np.nan))
        ok = np.isfinite(values)
        steps, values = steps[ok], values[ok]
        if not steps.size:
            continue
        idx = np.searchsorted(steps, grid, side="right") - 1
        reached = (idx >= 0) & (grid <= steps[-1])
        table[i, reached] = values[idx[reached]]
    done = np.isfinite(table).all(axis=0)
    mid, low, high = (np.full(len(grid), np.nan) for _ in range(3))
    if not done.any():
        return mid, low, high
    if len(runs) == 1:
        mid[done] = low[done] = high[done] = table[0, done]
        return mid, low, high
    from rliable import library as rly
    from scipy.stats import trim_mean

    scores = table[:, done][:, None, :]  # (runs, 1 task, points): rliable's sample-efficiency layout
    np.random.seed(BOOTSTRAP_SEED)
    point, ci = rly.get_interval_estimates(  # rliable's aggregate_iqm (trim_mean 0.25 over runs) at every point at once
        {"m": scores}, lambda x: trim_mean(x[:, 0, :], proportiontocut=0.25, axis=0),
        reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
    mid[done], low[done], high[done] = point["m"], ci["m"][0], ci["m"][1]
    return mid, low, high


def largest_complete_block(cells: set[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The (tasks, methods) of the largest block of (task, method) cells in which every method ran every
    task, with at least 2 methods; size is tasks x methods, ties go to more tasks, then to the
    lexicographically last task list (any fixed rule; this one is deterministic). ([], []) if none.

    The best block's task set is the intersection of its methods' task sets, so it suffices to try the
    intersections of every subset of the methods' task sets (closed under intersection here)."""
    ran: dict[str, frozenset[str]] = {}
    for env, method in cells:
        ran[method] = ran.get(method, frozenset()) | {env}
    candidates = set(ran.values())
    frontier = set(candidates)
    while frontier:
        frontier = {a & b for a in frontier for b in ran.values()} - candidates - {frozenset()}
        candidates |= frontier
    best: tuple[tuple, list[str], list[str]] = ((0, 0, ()), [], [])
    for tasks in candidates:
        methods = sorted(m for m, have in ran.items() if tasks <= have)
        key = (len(methods) * len(tasks), len(tasks), tuple(sorted(tasks)))
        if len(methods) >= 2 and key > best[0]:
            best = (key, sorted(tasks), methods)
    return best[1], best[2]


def normalized_score_matrix(finals: Sequence[dict], metric: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per method, a (runs, tasks) matrix of final values normalised per task by the IQMs of the methods
    kept, ``(x - worst) / (best - worst)``: 1.0 is the leading method's IQM there and 0.0 the trailing
    one's, whatever the sign of the returns (a task where every kept IQM is equal uses ``|best|``, or 1,
    as the scale, so that its IQMs sit at 1.0). Kept: the largest block of tasks and methods in which every
    method ran every task (:func:`largest_complete_block`), each method's run count trimmed to its
    smallest count over those tasks (rliable needs rectangular matrices).
    Returns the matrices (keyed by the methods kept) and the tasks used."""
    rows = [r for r in finals if r["metric"] == metric and r.get("full_length", True)]  # one length per task
    tasks, methods = largest_complete_block({(r["env"], r["method"]) for r in rows})
    cell = {(r["env"], r["method"]): r for r in rows}
    scales = []
    for env in tasks:
        iqms = [cell[env, m]["iqm"] for m in methods]
        best, span = max(iqms), max(iqms) - min(iqms)
        scales.append((best, span if span > 0 else (abs(best) or 1.0)))
    scores: dict[str, np.ndarray] = {}
    for method in methods:
        per_task = [np.asarray(cell[env, method]["values"], dtype=float) for env in tasks]
        n = min(len(v) for v in per_task)
        scores[method] = np.stack([1.0 + (v[:n] - best) / span for v, (best, span) in zip(per_task, scales)], axis=1)
    return scores, tasks


def aggregate_over_tasks(scores: dict[str, np.ndarray]) -> list[dict]:
    """Across tasks, from normalised scores (``scores[method]``: (runs, tasks), as
    :func:`normalized_score_matrix` returns them): each method's IQM over all its (run, task) scores with
    a stratified-bootstrap CI, and P(leader > method) averaged over tasks with its CI; leader first."""
    intervals = iqm(scores)
    order = sorted(scores, key=lambda m: -intervals[m].value)
    rows = []
    for method in order:
        p = None if method == order[0] else probability_of_improvement(scores[order[0]], scores[method])
        rows.append({"method": method, "iqm": intervals[method].value, "iqm_low": intervals[method].low,
                     "iqm_high": intervals[method].high, "runs": int(scores[method].shape[0]),
                     "p_leader_better": None if p is None else p.value,
                     "p_low": None if p is None else p.low, "p_high": None if p is None else p.high})
    return rows


def performance_profiles(scores: dict[str, np.ndarray], taus: np.ndarray) -> tuple[dict, dict]:
    """rliable's performance profiles (fraction of runs above each tau) with stratified-bootstrap CIs."""
    from rliable import library as rly

    np.random.seed(BOOTSTRAP_SEED)
    return rly.create_performance_profile(scores, taus, reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
