"""Milestone values, IQM and probability of improvement against hand computations."""

import math

import numpy as np
import pytest

from ratbench.reporting.runs import load_runs
from ratbench.reporting.stats import iqm, probability_of_improvement, spread, value_at
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


def test_the_profile_block_is_the_largest_set_of_methods_sharing_tasks():
    from ratbench.reporting.stats import largest_complete_block, normalized_score_matrix

    # five methods on four EnvPool tasks, and two other methods on one gymnasium task: no method ran every
    # task, and the profile keeps the 4 x 5 block
    envpool = {(t, m) for t in "ABCD" for m in "PQRST"}
    cells = envpool | {("H", "U"), ("H", "V")}
    assert largest_complete_block(cells) == (list("ABCD"), list("PQRST"))
    # a method that ran one task more joins; a task only one method ran never counts
    assert largest_complete_block(envpool | {("E", "P")}) == (list("ABCD"), list("PQRST"))
    # equal sizes (a, b x X, Y against c x U, V, W, Z: 4 cells each) go to more tasks
    assert largest_complete_block({("a", "X"), ("a", "Y"), ("b", "X"), ("b", "Y"), ("c", "U"), ("c", "V"),
                                   ("c", "W"), ("c", "Z")}) == (["a", "b"], ["X", "Y"])
    assert largest_complete_block({("a", "X"), ("b", "Y")}) == ([], [])  # no task two methods share
    finals = [{"env": t, "method": m, "metric": "eval_return", "iqm": 2.0, "values": [2.0, 2.0]} for t, m in envpool]
    finals.append({"env": "A", "method": "Z", "metric": "eval_return", "iqm": 99.0, "values": [99.0]})  # A only
    scores, tasks = normalized_score_matrix(finals, "eval_return")
    assert tasks == list("ABCD") and sorted(scores) == list("PQRST")
    np.testing.assert_allclose(scores["P"], np.ones((2, 4)))  # over the best IQM among the kept methods, not Z's


def test_normalized_scores_and_profiles():
    from ratbench.reporting.stats import normalized_score_matrix, performance_profiles

    finals = [
        {"env": "a", "method": "X", "metric": "eval_return", "iqm": 10.0, "values": [9.0, 10.0, 11.0]},
        {"env": "a", "method": "Y", "metric": "eval_return", "iqm": 5.0, "values": [5.0, 5.0]},
        {"env": "b", "method": "X", "metric": "eval_return", "iqm": 2.0, "values": [2.0, 2.0]},
        {"env": "b", "method": "Y", "metric": "eval_return", "iqm": 4.0, "values": [4.0, 4.0]},
        {"env": "c", "method": "X", "metric": "eval_return", "iqm": 1.0, "values": [1.0]},  # Y never ran c: left out
    ]
    scores, tasks = normalized_score_matrix(finals, "eval_return")
    assert tasks == ["a", "b"]
    # trimmed to 2 runs; per task (x - trailing IQM) / (leading IQM - trailing IQM): a: (x - 5) / 5, b: (x - 2) / 2
    np.testing.assert_allclose(scores["X"], [[0.8, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(scores["Y"], [[0.0, 1.0], [0.0, 1.0]])
    profiles, cis = performance_profiles(scores, np.array([-0.1, 0.5, 1.0]))
    np.testing.assert_allclose(profiles["Y"], [1.0, 0.5, 0.0])  # fraction of (run, task) scores above tau


def test_normalisation_keeps_the_order_of_negative_returns():
    from ratbench.reporting.stats import normalized_score_matrix

    finals = [{"env": "Reacher-v5", "method": "X", "metric": "eval_return", "iqm": -100.0, "values": [-50.0, -100.0]},
              {"env": "Reacher-v5", "method": "Y", "metric": "eval_return", "iqm": -300.0, "values": [-300.0, -500.0]}]
    scores, _ = normalized_score_matrix(finals, "eval_return")
    np.testing.assert_allclose(scores["X"][:, 0], [1.25, 1.0])  # better than the leading IQM scores above 1
    np.testing.assert_allclose(scores["Y"][:, 0], [0.0, -1.0])
    level = [{**f, "iqm": -100.0} for f in finals]  # equal IQMs: the scale is |best|, the IQMs sit at 1
    scores, _ = normalized_score_matrix(level, "eval_return")
    np.testing.assert_allclose(scores["X"][:, 0], [1.5, 1.0])


def test_aggregate_over_tasks_ranks_by_iqm_and_gives_p_of_improvement():
    from ratbench.reporting.stats import aggregate_over_tasks

    scores = {"A": np.array([[1.0, 0.9], [1.1, 1.0], [0.9, 1.1]]),  # (runs, tasks)
              "B": np.array([[0.0, 0.1], [0.1, 0.0], [0.2, -0.1]])}
    rows = aggregate_over_tasks(scores)
    assert [r["method"] for r in rows] == ["A", "B"] and rows[0]["p_leader_better"] is None
    assert rows[0]["iqm_low"] <= rows[0]["iqm"] <= rows[0]["iqm_high"]
    np.testing.assert_allclose(rows[0]["iqm"], 1.0)  # trimmed mean of the middle (run, task) scores
    assert rows[1]["p_leader_better"] == 1.0 and rows[1]["runs"] == 3  # every A run beats every B run on each task
