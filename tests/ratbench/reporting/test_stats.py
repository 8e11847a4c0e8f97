"""Milestone values, IQM and probability of improvement against hand computations."""

import math

import numpy as np
import pytest

from ratbench.reporting.runs import load_runs
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ratbench.reporting.stats import iqm, iqm_over_runs, mean_p_better, probability_of_improvement, spread, value_at
from tests.strategies import property_settings
from tests.ratbench.reporting.helpers import write_run


def test_value_at_takes_the_last_point_at_or_before_within_the_slack(tmp_path):
    write_run(tmp_path, "r", [1000, 2000, 2900, 4000], [1.0, 2.0, 3.0, 4.0], evals={2000: 20.0})
    (run,) = load_runs([tmp_path])[0]
    assert value_at(run, "train_return", 3000) == 3.0   # 2,900 is within 5% of 3,000
    assert math.isnan(value_at(run, "train_return", 3500))  # nothing logged in [3,325, 3,500]
    assert value_at(run, "train_return", 3500, slack=None) == 3.0
    assert value_at(run, "eval_return", 4000, slack=None) == 20.0  # empty cells skipped
    assert math.isnan(value_at(run, "train_return", 500))


def test_iqm_is_the_mean_of_the_middle_half():
    scores = np.arange(1.0, 9.0)[:, None]  # 8 runs, 1 task: the middle half is 3, 4, 5, 6
    est = iqm({"m": scores})["m"]
    assert est.value == pytest.approx(4.5)
    assert 1.0 <= est.low <= est.value <= est.high <= 8.0


def test_probability_of_improvement_of_separated_sets():
    high, low = np.array([[10.0], [11.0], [12.0]]), np.array([[1.0], [2.0], [3.0]])
    assert probability_of_improvement(high, low).value == 1.0
    assert probability_of_improvement(low, high).value == 0.0
    tied = probability_of_improvement(high, high)
    assert tied.value == pytest.approx(0.5)


def test_spread_ignores_missing_values():
    s = spread([3.0, float("nan"), 1.0, 2.0])
    assert (s.low, s.median, s.high, s.n) == (1.0, 2.0, 3.0, 3)
    assert spread([float("nan")]).n == 0


def test_iqm_curve_follows_the_seeds_and_stops_where_one_stops(tmp_path):
    from ratbench.reporting.stats import iqm_curve

    write_run(tmp_path, "a", [100, 200, 300], [1.0, 2.0, 3.0], seed=0)
    write_run(tmp_path, "b", [100, 200], [3.0, 4.0], seed=1)
    runs = load_runs([tmp_path])[0]
    mid, low, high = iqm_curve(runs, "train_return", np.array([100.0, 200.0, 300.0]))
    np.testing.assert_allclose(mid[:2], [2.0, 3.0])  # two seeds: the IQM is their mean
    assert math.isnan(mid[2])  # seed b never reached 300
    assert (low[:2] <= mid[:2]).all() and (mid[:2] <= high[:2]).all()


def _anchors(**tasks):
    """Fixed anchors per task: {env: (random, reference)}."""
    from ratbench.reporting.normalisation import Anchors
    from ratbench.reporting.published import ReferenceScore

    return {env: Anchors(env, low, "measured", ReferenceScore(env, high, "expert", "a paper"))
            for env, (low, high) in tasks.items()}


def test_the_aggregate_block_is_the_largest_set_of_methods_sharing_tasks():
    from ratbench.reporting.stats import largest_complete_block, normalised_blocks

    # five methods on four EnvPool tasks, and two other methods on one gymnasium task: no method ran every
    # task, and the profile keeps the 4 x 5 block
    envpool = {(t, m) for t in ("Hopper-v5", "Ant-v5", "Walker2d-v5", "HalfCheetah-v5") for m in "PQRST"}
    cells = envpool | {("Humanoid-v4", "U"), ("Humanoid-v4", "V")}
    tasks = sorted({t for t, _ in envpool})
    assert largest_complete_block(cells) == (tasks, list("PQRST"))
    # a method that ran one task more joins; a task only one method ran never counts
    assert largest_complete_block(envpool | {("Swimmer-v5", "P")}) == (tasks, list("PQRST"))
    # equal sizes (a, b x X, Y against c x U, V, W, Z: 4 cells each) go to more tasks
    assert largest_complete_block({("a", "X"), ("a", "Y"), ("b", "X"), ("b", "Y"), ("c", "U"), ("c", "V"),
                                   ("c", "W"), ("c", "Z")}) == (["a", "b"], ["X", "Y"])
    assert largest_complete_block({("a", "X"), ("b", "Y")}) == ([], [])  # no task two methods share
    finals = [{"env": t, "method": m, "metric": "eval_return", "values": [2.0, 2.0]} for t, m in envpool]
    finals.append({"env": "Ant-v5", "method": "Z", "metric": "eval_return", "values": [99.0]})  # one task only
    finals += [{"env": "MinAtar/Breakout-v1", "method": m, "metric": "eval_return", "values": [3.0]} for m in "PQ"]
    anchors = _anchors(**{t: (0.0, 4.0) for t in tasks}, **{"MinAtar/Breakout-v1": (1.0, 5.0)})
    minatar, mujoco = normalised_blocks(finals, "eval_return", anchors)  # families in name order
    assert (mujoco.family, mujoco.tasks, sorted(mujoco.scores)) == ("MuJoCo", tasks, list("PQRST"))
    np.testing.assert_allclose(mujoco.scores["P"], np.full((2, 4), 0.5))  # (2 - 0) / (4 - 0): fixed anchors
    assert (minatar.family, sorted(minatar.scores)) == ("MinAtar", ["P", "Q"]) and minatar.rough
    np.testing.assert_allclose(minatar.scores["Q"], [[0.5]])
    assert mujoco.cut == {} and minatar.cut == {}
    finals[0] = {**finals[0], "values": [2.0, 2.0, 4.0]}  # a third seed on one task: cut, and said so
    (_, mujoco) = normalised_blocks(finals, "eval_return", anchors)
    assert mujoco.cut == {finals[0]["method"]: 1} and mujoco.scores[finals[0]["method"]].shape == (2, 4)
    from ratbench.reporting.pages import _aggregate_section
    from ratbench.reporting.stats import aggregate_over_tasks

    page = "\n".join(_aggregate_section([(mujoco, aggregate_over_tasks(mujoco.scores))], "eval_return"))
    assert f"each keeping its lowest seeds: {finals[0]['method']} (1 run left out)." in page


def test_normalised_scores_do_not_move_when_a_method_leaves_the_page():
    from ratbench.reporting.stats import aggregate_over_tasks, normalised_blocks

    rng = np.random.default_rng(1)
    finals = [{"env": env, "method": m, "metric": "eval_return", "values": list(rng.normal(loc, 300.0, 5))}
              for env in ("Hopper-v5", "Walker2d-v5") for m, loc in (("A", 2000.0), ("B", 1500.0), ("C", 500.0))]
    anchors = _anchors(**{"Hopper-v5": (15.0, 3234.3), "Walker2d-v5": (1.0, 4592.3)})
    (full,) = normalised_blocks(finals, "eval_return", anchors)
    (fewer,) = normalised_blocks([f for f in finals if f["method"] != "C"], "eval_return", anchors)
    for method in ("A", "B"):
        np.testing.assert_array_equal(full.scores[method], fewer.scores[method])
    rows_full = {r["method"]: r for r in aggregate_over_tasks(full.scores)}
    rows_fewer = {r["method"]: r for r in aggregate_over_tasks(fewer.scores)}
    for method in ("A", "B"):  # each method's IQM and interval: its own bootstrap, whoever else is there
        assert [rows_full[method][k] for k in ("iqm", "iqm_low", "iqm_high")] == \
               [rows_fewer[method][k] for k in ("iqm", "iqm_low", "iqm_high")]
    # whereas scaling between the methods' own best and worst IQMs would move B when C leaves
    np.testing.assert_allclose(full.scores["A"][:, 0], (np.array(finals[0]["values"]) - 15.0) / (3234.3 - 15.0))


def test_profiles_count_runs_above_each_threshold():
    from ratbench.reporting.stats import performance_profiles

    scores = {"X": np.array([[0.8, 0.0], [1.0, 0.0]]), "Y": np.array([[0.0, 1.0], [0.0, 1.0]])}
    profiles, cis = performance_profiles(scores, np.array([-0.1, 0.5, 1.0]))
    np.testing.assert_allclose(profiles["Y"], [1.0, 0.5, 0.0])  # fraction of (run, task) scores above tau


def test_aggregate_over_tasks_ranks_by_iqm_and_gives_p_of_improvement():
    from ratbench.reporting.stats import aggregate_over_tasks

    scores = {"A": np.array([[1.0, 0.9], [1.1, 1.0], [0.9, 1.1]]),  # (runs, tasks)
              "B": np.array([[0.0, 0.1], [0.1, 0.0], [0.2, -0.1]])}
    rows = aggregate_over_tasks(scores)
    assert [r["method"] for r in rows] == ["A", "B"] and rows[0]["p_leader_better"] is None
    assert rows[0]["iqm_low"] <= rows[0]["iqm"] <= rows[0]["iqm_high"]
    np.testing.assert_allclose(rows[0]["iqm"], 1.0)  # trimmed mean of the middle (run, task) scores
    assert rows[1]["p_leader_better"] == 1.0 and rows[1]["runs"] == 3  # every A run beats every B run on each task
    # exact: each task's 3-against-3 split is the best of C(6, 3) = 20, so P = 1 has probability 1/400
    assert rows[1]["p_value"] == pytest.approx(1 / 400, abs=0.002)


def test_iqm_interval_is_student_t_below_four_seeds_and_trims_from_four():
    from scipy import stats as sps

    from ratbench.reporting.stats import iqm_interval, trims_nothing

    assert iqm_interval([3.0]) is None and trims_nothing(3) and not trims_nothing(4)
    x = [1.0, 2.0, 6.0]
    got = iqm_interval(x)
    assert (got.value, got.low, got.high) == pytest.approx((3.0, *sps.t.interval(0.95, 2, loc=3.0, scale=sps.sem(x))))
    x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]  # g = 2 per side: the IQM is the mean of 2, 3, 4, 5
    got = iqm_interval(x)
    winsorised = [2.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0]
    se = math.sqrt(7 * np.var(winsorised, ddof=1) / (4 * 3))  # Yuen: (n - 1) s_w^2 / (h (h - 1)), h = 4
    assert got.value == 3.5 and got.high - got.value == pytest.approx(sps.t.ppf(0.975, 3) * se)


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_iqm_interval_covers_about_95_percent_on_normal_seeds(n):
    from ratbench.reporting.stats import iqm_interval, iqm_interval_coverage

    coverage = iqm_interval_coverage(n, reps=4000)
    assert 0.925 <= coverage <= 0.975  # 4,000 draws: standard error 0.35 points; Yuen's interval is approximate
    # the vectorised coverage is the scalar interval's
    rng = np.random.default_rng(0)
    hits = [iqm_interval(s).low <= 0.0 <= iqm_interval(s).high for s in rng.standard_normal((300, n))]
    assert np.mean(hits) == iqm_interval_coverage(n, reps=300)


def test_the_percentile_bootstrap_undercovers_with_three_seeds():
    """Why per-task intervals are not bootstrapped: with 3 seeds the percentile interval covers ~76%."""
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((2000, 3))
    resampled = samples[np.arange(2000)[:, None, None], rng.integers(0, 3, (2000, 1000, 3))].mean(axis=2)
    low, high = np.percentile(resampled, [2.5, 97.5], axis=1)
    assert 0.70 <= np.mean((low <= 0) & (0 <= high)) <= 0.82


def test_improvement_p_value_is_the_exact_mann_whitney_test():
    from scipy import stats as sps

    from ratbench.reporting.stats import improvement

    separated = improvement([10.0, 11.0, 12.0], [1.0, 2.0, 3.0])
    assert separated.probability == 1.0 and separated.p_value == pytest.approx(0.05)  # 1 / C(6, 3)
    rng = np.random.default_rng(3)
    x, y = rng.normal(1.0, 1.0, 5), rng.normal(0.0, 1.0, 4)  # no ties: scipy's exact Mann-Whitney applies
    exact = sps.mannwhitneyu(x, y, alternative="greater", method="exact")
    result = improvement(x, y)
    assert result.probability == pytest.approx(exact.statistic / 20) and result.p_value == pytest.approx(exact.pvalue)
    tied = improvement([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert tied.probability == 0.5 and tied.p_value == 1.0


# Scores with ties (values drawn from a few levels, as equal returns and a bootstrap's repeated runs give).
_scores = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5)).flatmap(
    lambda shape: st.tuples(*(hnp.arrays(np.float64, (n, shape[2]), elements=st.sampled_from([-3.5, 0.0, 0.1, 2.0, 1e3]))
                              for n in shape[:2])))


@property_settings(60)
@given(_scores)
def test_the_bootstrap_statistics_are_rliables_and_scipys_to_the_bit(pair):
    """The page's statistics are rliable's (aggregate_iqm: SciPy's trim_mean; probability_of_improvement: SciPy's
    Mann-Whitney U per task, averaged), computed without SciPy's per-call overhead: equal to the bit."""
    from rliable import metrics
    from scipy.stats import trim_mean

    x, y = pair
    assert mean_p_better(x, y) == metrics.probability_of_improvement(x, y)
    assert mean_p_better(x, x) == 0.5
    assert np.array_equal(iqm_over_runs(x), trim_mean(x, 0.25, axis=0))
    assert iqm_over_runs(x.ravel()) == metrics.aggregate_iqm(x)


def test_the_stratified_test_gives_the_same_numbers_for_a_matrix_and_per_task_runs():
    """Pinned to what the (runs, tasks)-only implementation gave before per-task runs of any count were accepted
    (one random stream for all tasks, so equal counts draw exactly the permutations they drew)."""
    from ratbench.reporting.stats import stratified_improvement

    x = np.array([[0.31, 0.52, 0.2], [0.44, 0.61, 0.35], [0.29, 0.48, 0.33], [0.5, 0.7, 0.1], [0.38, 0.55, 0.3]])
    y = np.array([[0.30, 0.40, 0.2], [0.25, 0.45, 0.31], [0.33, 0.50, 0.12], [0.28, 0.47, 0.22], [0.27, 0.39, 0.3]])
    matrix = stratified_improvement(x, y)
    assert (matrix.probability, matrix.p_value) == (0.8133333333333334, 37 / 20_001)
    columns = stratified_improvement(list(x.T), list(y.T))
    assert (columns.probability, columns.p_value) == (matrix.probability, matrix.p_value)
    for bad in ((list(x.T), list(y.T)[:2]), ([], []), (list(x.T), [*list(y.T)[:2], np.array([])]), (x[:, 0], y[:, 0])):
        with pytest.raises(ValueError):
            stratified_improvement(*bad)
