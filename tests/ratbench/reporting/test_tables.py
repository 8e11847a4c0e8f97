"""Window scores, common budgets, verdicts with exact p-values, and the runs evaluated at different steps."""

import math

import numpy as np
import pytest
from scipy import stats

from ratbench.reporting.methods import group_by_method
from ratbench.reporting.runs import load_runs
from ratbench.reporting.tables import comparison_lengths, final_rows, mark_differences, verdict_lines
from tests.ratbench.reporting.helpers import write_run

STEPS = list(range(250, 3001, 250))  # NPG-like: 12 rows up to the 3,000-step budget
PPO_STEPS = list(range(255, 3061, 255))  # PPO-like: its batches end a little past the budget


def _groups(tmp_path):
    for seed in range(3):
        write_run(tmp_path, f"long-a-s{seed}", STEPS, [s / 100 + seed for s in STEPS], seed=seed, budget=3000)
        write_run(tmp_path, f"long-b-s{seed}", PPO_STEPS, [1.0 + seed] * len(PPO_STEPS), seed=seed, budget=3000,
                  algo="ppo", solver=None)
    write_run(tmp_path, "short-s0", STEPS[:8], [1.0] * 8, seed=0, arch="shared")  # budget 2,000
    write_run(tmp_path, "running-s0", STEPS[:4], [1.0] * 4, seed=0, budget=3000, algo="ppo", solver=None, arch="shared")
    runs, _ = load_runs([tmp_path])
    return group_by_method(runs)


def test_full_budget_methods_share_one_budget_and_a_short_one_keeps_its_own(tmp_path):
    lengths = comparison_lengths(_groups(tmp_path))
    assert lengths[("Hopper-v5", "RAT")] == (3000, True) and lengths[("Hopper-v5", "PPO")] == (3000, True)
    assert lengths[("Hopper-v5", "RAT (shared)")] == (2000, False)
    assert ("Hopper-v5", "PPO (shared)") not in lengths  # its only run is unfinished: no budget, no score


def test_a_run_is_scored_by_the_mean_over_the_last_tenth_of_the_budget(tmp_path):
    finals = {r["method"]: r for r in final_rows(_groups(tmp_path), ["train_return"])}
    rat = finals["RAT"]
    # window (2,700, 3,000]: steps 2,750 and 3,000, so seed s scores (27.5 + 30) / 2 + s
    np.testing.assert_allclose(sorted(rat["values"]), [28.75, 29.75, 30.75])
    assert (rat["window_from"], rat["steps"], rat["points_min"], rat["points_max"]) == (2700, 3000, 2, 2)
    assert rat["estimator"] == "mean" and rat["iqm"] == pytest.approx(29.75)
    # 3 seeds trim nothing: Student's t-interval of the mean (sd 1, 2 degrees of freedom)
    assert (rat["ci_low"], rat["ci_high"]) == pytest.approx(stats.t.interval(0.95, 2, loc=29.75, scale=1 / math.sqrt(3)))
    ppo = finals["PPO"]  # 2,805 only: 3,060 is past the budget, so no method gains from its last batch
    assert ppo["points_min"] == ppo["points_max"] == 1 and sorted(ppo["values"]) == [1.0, 2.0, 3.0]
    shared = finals["RAT (shared)"]  # its own budget: window (1,800, 2,000], one seed, no interval
    assert shared["values"] == [1.0] and shared["ci_low"] is None and shared["window_from"] == 1800


def test_verdicts_give_p_with_its_exact_p_value_and_none_for_one_seed(tmp_path):
    groups = _groups(tmp_path)
    finals = final_rows(groups, ["train_return"])
    (line,) = verdict_lines(finals, "train_return", groups)
    assert "scored over steps 2,700-3,000" in line and "RAT leads (29.8, 3 seeds)" in line
    assert "P(lead > it) = 1.00 (one-sided p = 0.05)" in line  # 3 against 3, fully separated: 1 / C(6, 3)
    assert "RAT (shared) ran 2,000 steps only" in line and "P(lead > it) = – (one seed)" in line


def test_evaluations_are_scored_at_their_marks_and_differing_marks_are_listed(tmp_path):
    """Two runs evaluated at the same policy steps score the same, whatever their rows' env_steps."""
    for seed in range(2):
        write_run(tmp_path, f"npg-s{seed}", [2048, 3072], [0.0, 0.0], seed=seed, budget=3000,
                  evals={2048: 5.0 + seed, 3072: 100.0}, marks={2048: 3000})
        write_run(tmp_path, f"ppo-s{seed}", [2900, 3100], [0.0, 0.0], seed=seed, budget=3000, algo="ppo", solver=None,
                  evals={2900: 7.0 + seed, 3100: 100.0}, marks={2900: 3000})
    write_run(tmp_path, "old-s0", [2800, 3100], [0.0, 0.0], seed=0, budget=3000, arch="shared",
              evals={2800: 1.0, 3100: 100.0})  # made before marks: its evaluation sits at its row's step
    finals = {r["method"]: r for r in final_rows(group_by_method(load_runs([tmp_path])[0]), ["eval_return"])}
    assert sorted(finals["RAT"]["values"]) == [5.0, 6.0] and sorted(finals["PPO"]["values"]) == [7.0, 8.0]
    assert finals["RAT"]["seed_marks"] == {0: [3000], 1: [3000]}
    (line,) = mark_differences(list(finals.values()))
    assert "PPO seeds 0, 1, RAT seeds 0, 1: 1 at 3,000" in line and "RAT (shared) seed 0: 1 at 2,800" in line
    del finals["RAT (shared)"]
    assert mark_differences(list(finals.values())) == []


def test_a_metric_only_shorter_methods_logged_gets_no_verdict_and_no_crash(tmp_path):
    for seed in range(2):
        write_run(tmp_path, f"long-s{seed}", STEPS, [1.0] * len(STEPS), seed=seed)  # no evaluations
        write_run(tmp_path, f"short-s{seed}", STEPS[:8], [1.0] * 8, seed=seed, arch="shared", evals={2000: 5.0})
        write_run(tmp_path, f"shorter-s{seed}", STEPS[:4], [1.0] * 4, seed=seed, algo="ppo", solver=None,
                  evals={1000: 4.0})
    groups = group_by_method(load_runs([tmp_path])[0])
    finals = final_rows(groups, ["eval_return"])
    assert {r["method"] for r in finals} == {"RAT (shared)", "PPO"} and not any(r["full_length"] for r in finals)
    assert verdict_lines(finals, "eval_return", groups) == []
    assert all(math.isfinite(r["iqm"]) for r in finals)
