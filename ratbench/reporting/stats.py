"""Statistics over seeds: per-task IQMs with small-sample intervals, exact tests, rliable aggregates.

Per task a method's seeds are summarised by their interquartile mean (IQM: the 25% trimmed mean, as
rliable's ``aggregate_iqm``; below 4 seeds it trims nothing and is the mean) with the Tukey-McLaughlin
95% t-interval for a trimmed mean (Yuen 1974), which covers 93-95% of the time on normal seeds at 2-10
seeds, where the percentile bootstrap does not (with 3 seeds its interval is [min, max] and covers about
76%; tests/ratbench/reporting/test_stats.py measures both by simulation). One seed gets no interval.
P(X > Y) (ties count half) comes with its exact one-sided permutation p-value (the Mann-Whitney test).
Across tasks, rliable (Agarwal et al. 2021): IQM of fixed-normalised scores with stratified-bootstrap
95% intervals, performance profiles, and P(X > Y) averaged over tasks with a stratified permutation
p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ratbench.reporting.normalisation import Anchors, family
from ratbench.reporting.runs import Run
from ratbench.reporting.windows import points

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2_000
BOOTSTRAP_SEED = 0
BOOTSTRAP_MIN_RUNS = 5  # runs per task below which aggregate bootstrap intervals are not shown
MILESTONE_SLACK = 0.05  # a milestone value is the last logged point within 5% below the milestone


def value_at(run: Run, metric: str, step: float, slack: float | None = MILESTONE_SLACK) -> float:
    """The metric at the last logged point at or before ``step`` (evaluations at their marks) and, unless
    ``slack`` is None, within ``slack * step`` of it (NaN when the run logged none there: it stopped
    earlier, or logs that metric more sparsely)."""
    steps, values = points(run, metric)
    ok = steps <= step
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
    """IQM over runs and tasks with stratified-bootstrap CIs; ``scores[method]``: (runs, tasks). Each
    method is bootstrapped from the same fixed seed on its own, so its interval does not depend on which
    other methods are passed."""
    from rliable import library as rly

    out = {}
    for method, matrix in scores.items():
        np.random.seed(BOOTSTRAP_SEED)  # rliable draws from numpy's global generator: fixed, so a report is reproducible
        point, ci = rly.get_interval_estimates({method: matrix}, lambda x: np.array([iqm_over_runs(x.ravel())]),
                                               reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
        out[method] = Interval(float(point[method][0]), float(ci[method][0, 0]), float(ci[method][1, 0]))
    return out


TRIM = 0.25  # each side; scipy's trim_mean (rliable's aggregate_iqm) trims int(TRIM * n) values per side


def trims_nothing(n: int) -> bool:
    """True when the IQM of ``n`` values is their plain mean (fewer than 4 values)."""
    return int(TRIM * n) == 0


def _iqm_half_width(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IQM and 95% half-width of :func:`iqm_interval` for each row of ``samples`` (rows, n >= 2)."""
    from scipy import stats

    x = np.sort(samples, axis=1)
    n = x.shape[1]
    g = int(TRIM * n)
    h = n - 2 * g
    point = x[:, g:n - g].mean(axis=1)
    winsorised = np.clip(x, x[:, [g]], x[:, [n - g - 1]])
    se = np.sqrt((n - 1) * winsorised.var(axis=1, ddof=1) / (h * (h - 1)))
    return point, stats.t.ppf(0.5 + CONFIDENCE / 2, h - 1) * se


def iqm_interval(values: Sequence[float]) -> Interval | None:
    """The IQM of ``values`` (one per seed) with the Tukey-McLaughlin 95% t-interval (Yuen 1974): with
    ``g = int(n / 4)`` values trimmed per side and ``h = n - 2g`` kept, the standard error is
    ``sqrt((n - 1) s_w^2 / (h (h - 1)))`` from the winsorised variance ``s_w^2``, on ``h - 1`` degrees of
    freedom; with nothing trimmed it is Student's t-interval for the mean. None below 2 values.

    Written here because scipy.stats.mstats.trimmed_mean_ci fails for a truncated trim count (its
    ``inclusive=(False, False)`` path indexes with floats in SciPy 1.17) and rounds it otherwise."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    point, half = _iqm_half_width(x[None, :])
    return Interval(float(point[0]), float(point[0] - half[0]), float(point[0] + half[0]))


def iqm_interval_coverage(n: int, reps: int = 4_000, seed: int = 0) -> float:
    """The share of :func:`iqm_interval`'s intervals that cover the true centre, over ``reps`` samples of
    ``n`` standard-normal seeds (fixed ``seed``): the coverage a page can state for its seed counts."""
    point, half = _iqm_half_width(np.random.default_rng(seed).standard_normal((reps, n)))
    return float(np.mean(np.abs(point) <= half))


@dataclass(frozen=True)
class Improvement:
    """P(X > Y) over pairs of runs (ties count half) and the one-sided p-value of "X is not better"."""

    probability: float
    p_value: float
    test: str  # how the p-value was computed


def improvement(x: Sequence[float], y: Sequence[float]) -> Improvement:
    """P(X > Y) for one task's runs ``x`` and ``y`` (1-D) with its exact one-sided permutation p-value:
    every split of the pooled runs into groups of ``len(x)`` and ``len(y)`` is enumerated (the exact
    Mann-Whitney test, ties included); three runs against three fully separated runs give p = 1/20."""
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    result = stats.permutation_test((x, y), _p_better, permutation_type="independent", alternative="greater",
                                    n_resamples=np.inf, vectorized=True)
    return Improvement(float(_p_better(x, y)), float(result.pvalue), "exact permutation (Mann-Whitney)")


def _p_better(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X > Y) over ``axis`` (ties half): the Mann-Whitney U over ``len(x) * len(y)``; other axes are batches."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    diff = x[..., :, None] - y[..., None, :]
    return ((diff > 0).sum(axis=(-2, -1)) + 0.5 * (diff == 0).sum(axis=(-2, -1))) / (x.shape[-1] * y.shape[-1])


PERMUTATIONS = 20_000  # random within-task permutations for an aggregate P's p-value
PERMUTATION_SEED = 0


def stratified_improvement(x: np.ndarray | Sequence[np.ndarray], y: np.ndarray | Sequence[np.ndarray]) -> Improvement:
    """P(X > Y) averaged over tasks with a stratified permutation p-value: runs are permuted between X and Y within
    each task, :data:`PERMUTATIONS` times from a fixed seed. ``x``, ``y``: (runs, tasks) arrays, or one 1-D array of
    runs per task, where the counts may differ from task to task (each task's P uses all of its runs)."""
    xs, ys = _per_task(x), _per_task(y)
    if not xs or len(xs) != len(ys) or min(v.size for v in (*xs, *ys)) == 0:
        raise ValueError("stratified_improvement needs the same tasks on both sides, each with runs on both")
    observed = float(np.array([_p_better(a, b) for a, b in zip(xs, ys, strict=True)]).mean())
    sizes = [a.size + b.size for a, b in zip(xs, ys, strict=True)]
    rng = np.random.default_rng(PERMUTATION_SEED)
    keys = rng.random((PERMUTATIONS, sum(sizes)))  # the stream of a (perms, tasks, runs) draw when counts are equal
    null = np.empty((PERMUTATIONS, len(xs)))
    start = 0
    for task, (a, b, size) in enumerate(zip(xs, ys, sizes, strict=True)):
        shuffled = np.concatenate([a, b])[np.argsort(keys[:, start:start + size], axis=-1)]  # (perms, runs)
        null[:, task] = _p_better(shuffled[:, :a.size], shuffled[:, a.size:])
        start += size
    p_value = (1 + int((null.mean(axis=-1) >= observed - 1e-12).sum())) / (PERMUTATIONS + 1)
    return Improvement(observed, p_value, f"stratified permutation, {PERMUTATIONS:,} draws")


def _per_task(scores: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One 1-D float array of runs per task, from a (runs, tasks) array or a sequence of 1-D per-task arrays."""
    if isinstance(scores, np.ndarray):
        if scores.ndim != 2:
            raise ValueError(f"scores as one array must be (runs, tasks), not of shape {scores.shape}")
        return [scores[:, task].astype(float) for task in range(scores.shape[1])]
    per_task = [np.asarray(runs, dtype=float) for runs in scores]
    if any(runs.ndim != 1 for runs in per_task):
        raise ValueError("scores as a sequence must hold one 1-D array of runs per task")
    return per_task


def mean_p_better(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's ``metrics.probability_of_improvement`` (x, y: (runs, tasks)): per task SciPy's Mann-Whitney U over
    ``len(x) * len(y)``, averaged over tasks. The same numbers by counting pairs (:func:`_p_better`: the U of two
    samples is the count of pairs with x > y plus half the ties, an exact float here, as is its rank sum in
    SciPy; tasks with equal columns are 0.5 both ways), without SciPy's per-call argument handling, which the
    bootstrap pays for every task of its 2,000 resamples."""
    return float(np.mean(_p_better(np.asarray(x).T, np.asarray(y).T)))


def iqm_over_runs(scores: np.ndarray) -> np.ndarray:
    """rliable's IQM (``aggregate_iqm``: ``scipy.stats.trim_mean(scores, 0.25, axis=0)``) over the first axis of
    ``scores`` ((runs, ...) -> (...)), by SciPy's own steps (partition at the cuts, keep the middle, mean) without
    its per-call argument handling (about 1 ms a call, paid for each of the bootstrap's 2,000 resamples)."""
    n = scores.shape[0]
    cut = int(TRIM * n)
    return np.mean(np.partition(scores, (cut, n - cut - 1), axis=0)[cut:n - cut], axis=0)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> Interval:
    """P(X > Y) over runs (ties count half), averaged over tasks; x, y: (runs, tasks)."""
    from rliable import library as rly

    np.random.seed(BOOTSTRAP_SEED)
    point, ci = rly.get_interval_estimates(
        {"pair": (x, y)}, lambda a, b: np.array([mean_p_better(a, b)]),
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
    """IQM over seeds of the metric at each grid step (last value logged at or before it, evaluations at
    their marks), with CIs:
    (iqm, low, high), each (len(grid),). Grid points some seed has not reached are NaN."""
    table = np.full((len(runs), len(grid)), np.nan)
    for i, run in enumerate(runs):
        steps, values = points(run, metric)
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

    scores = table[:, done][:, None, :]  # (runs, 1 task, points): rliable's sample-efficiency layout
    np.random.seed(BOOTSTRAP_SEED)
    point, ci = rly.get_interval_estimates(  # rliable's aggregate_iqm (trim_mean 0.25 over runs) at every point at once
        {"m": scores}, lambda x: iqm_over_runs(x[:, 0, :]),
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


@dataclass(frozen=True)
class Block:
    """One family's aggregate: the tasks and methods kept and each method's (runs, tasks) normalised scores."""

    family: str
    tasks: list[str]
    scores: dict[str, np.ndarray]
    unanchored: list[str]  # the family's tasks left out for want of a normalisation anchor
    cut: dict[str, int] = field(default_factory=dict)  # method -> its runs left out to equal counts over the tasks

    @property
    def runs_per_task(self) -> int:
        return min(m.shape[0] for m in self.scores.values())

    @property
    def rough(self) -> bool:
        """Too few runs per task for a stratified-bootstrap interval to hold its stated coverage."""
        return self.runs_per_task < BOOTSTRAP_MIN_RUNS


def normalised_blocks(finals: Sequence[dict], metric: str, anchors: Mapping[str, Anchors]) -> list[Block]:
    """Per benchmark family (:func:`~ratbench.reporting.normalisation.family`), the fixed-normalised
    scores (:class:`~ratbench.reporting.normalisation.Anchors`) of the largest block of tasks and methods in
    which every method ran every task at the full budget (:func:`largest_complete_block`, at least 2
    methods), each method's runs trimmed to its smallest count over those tasks (rliable needs rectangular
    matrices). A method's scores depend on its own runs and the task's fixed anchors only."""
    rows = [r for r in finals if r["metric"] == metric and r.get("full_length", True)]
    blocks = []
    for name in sorted({family(r["env"]) for r in rows}):
        mine = [r for r in rows if family(r["env"]) == name]
        unanchored = sorted({r["env"] for r in mine if r["env"] not in anchors})
        tasks, methods = largest_complete_block({(r["env"], r["method"]) for r in mine if r["env"] in anchors})
        if not methods:
            continue
        cell = {(r["env"], r["method"]): r for r in mine}
        scores, cut = {}, {}
        for method in methods:
            per_task = [anchors[env].normalise(cell[env, method]["values"]) for env in tasks]
            n = min(len(v) for v in per_task)
            scores[method] = np.stack([v[:n] for v in per_task], axis=1)
            left_out = sum(len(v) for v in per_task) - n * len(tasks)
            if left_out:
                cut[method] = left_out
        blocks.append(Block(name, tasks, scores, unanchored, cut))
    return blocks


def aggregate_over_tasks(scores: dict[str, np.ndarray]) -> list[dict]:
    """Across tasks, from normalised scores (``scores[method]``: (runs, tasks)): each method's IQM over all
    its (run, task) scores with a stratified-bootstrap CI, and P(leader > method) averaged over tasks with
    its stratified-bootstrap CI and stratified permutation p-value (:func:`stratified_improvement`);
    leader first."""
    intervals = iqm(scores)
    order = sorted(scores, key=lambda m: -intervals[m].value)
    rows = []
    for method in order:
        row = {"method": method, "iqm": intervals[method].value, "iqm_low": intervals[method].low,
               "iqm_high": intervals[method].high, "runs": int(scores[method].shape[0]),
               "p_leader_better": None, "p_low": None, "p_high": None, "p_value": None}
        if method != order[0]:
            p = probability_of_improvement(scores[order[0]], scores[method])
            test = stratified_improvement(scores[order[0]], scores[method])
            row.update(p_leader_better=p.value, p_low=p.low, p_high=p.high, p_value=test.p_value)
        rows.append(row)
    return rows


def performance_profiles(scores: dict[str, np.ndarray], taus: np.ndarray) -> tuple[dict, dict]:
    """rliable's performance profiles (fraction of runs above each tau) with stratified-bootstrap CIs."""
    from rliable import library as rly

    np.random.seed(BOOTSTRAP_SEED)
    return rly.create_performance_profile(scores, taus, reps=BOOTSTRAP_REPS, confidence_interval_size=CONFIDENCE)
