"""Final values and verdicts compare methods at one length; a shorter-budget method is compared at its own."""

from ratbench.reporting.methods import group_by_method
from ratbench.reporting.pages import comparison_lengths, final_rows, verdict_lines
from ratbench.reporting.runs import load_runs
from ratbench.reporting.stats import normalized_score_matrix
from tests.ratbench.reporting.helpers import write_run

STEPS = [1000, 2000, 3000]


def _groups(tmp_path):
    for seed in range(3):
        write_run(tmp_path, f"long-a-s{seed}", STEPS, [10 + seed, 20 + seed, 30 + seed], seed=seed)
        # PPO's iterations end a little short of the NPG runs' 3,000: still the full budget
        write_run(tmp_path, f"long-b-s{seed}", [990, 1980, 2970], [5 + seed, 6 + seed, 7 + seed], seed=seed, algo="ppo",
                  solver=None)
    write_run(tmp_path, "short-s0", STEPS[:2], [1.0, 2.0], seed=0, arch="shared")
    write_run(tmp_path, "running-s0", STEPS[:1], [1.0], seed=0, budget=3000, algo="ppo", solver=None, arch="shared")
    runs, _ = load_runs([tmp_path])
    return group_by_method(runs)


def test_full_budget_methods_share_one_length_and_a_short_one_keeps_its_own(tmp_path):
    lengths = comparison_lengths(_groups(tmp_path))
    assert lengths[("Hopper-v5", "RAT")] == (2970, True) and lengths[("Hopper-v5", "PPO")] == (2970, True)
    assert lengths[("Hopper-v5", "RAT (shared)")] == (2000, False)
    assert ("Hopper-v5", "PPO (shared)") not in lengths  # its only run is unfinished: no length, no final value


def test_the_verdict_compares_the_short_method_at_its_length(tmp_path):
    groups = _groups(tmp_path)
    finals = final_rows(groups, ["train_return"])
    (line,) = verdict_lines(finals, "train_return", groups)
    assert "compared at 2,970 steps" in line and "RAT leads (IQM 21" in line
    # at 2,000 steps RAT's seeds are 20, 21, 22 (IQM 21) against the shared run's 2.0
    assert "RAT (shared) ran 2,000 steps only; there, RAT (shared) (2, 1 seed): RAT (IQM 21) ahead by 19" in line
    scores, tasks = normalized_score_matrix(finals, "train_return")
    assert set(scores) == {"RAT", "PPO"} and tasks == ["Hopper-v5"]  # the profile leaves the short method out


def test_a_metric_only_shorter_methods_logged_gets_no_verdict_and_no_crash(tmp_path):
    for seed in range(2):
        write_run(tmp_path, f"long-s{seed}", STEPS, [1.0, 2.0, 3.0], seed=seed)  # no evaluations
        write_run(tmp_path, f"short-s{seed}", STEPS[:2], [1.0, 2.0], seed=seed, arch="shared", evals={2000: 5.0})
        write_run(tmp_path, f"shorter-s{seed}", STEPS[:1], [1.0], seed=seed, algo="ppo", solver=None, budget=1000,
                  evals={1000: 4.0})
    groups = group_by_method(load_runs([tmp_path])[0])
    finals = final_rows(groups, ["eval_return"])
    assert {r["method"] for r in finals} == {"RAT (shared)", "PPO"} and not any(r["full_length"] for r in finals)
    assert verdict_lines(finals, "eval_return", groups) == []
