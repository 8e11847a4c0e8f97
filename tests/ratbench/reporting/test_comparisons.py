"""Declared comparisons (comparisons.yaml): per-task P with the exact p, across-task P on fixed-normalised scores,
methods without runs listed, bad files refused in one sentence; the page's numbers recomputed with SciPy's
Mann-Whitney U, a different implementation."""

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from ratbench.cli import cli
from ratbench.errors import RatbenchError
from ratbench.reporting.comparisons import Aggregate, Comparison, PairResult, Rule, compare, load_comparisons
from ratbench.reporting.stats import Improvement
from ratbench.reporting.methods import group_by_method
from ratbench.reporting.normalisation import load_anchors
from ratbench.reporting.runs import load_runs
from ratbench.reporting.tables import final_rows
from tests.ratbench.reporting.helpers import write_run

STEPS = list(range(250, 3001, 250))
LEAD = [30.0, 31.0, 29.0, 33.0, 28.0]  # per seed, on both tasks (Hopper shifted up by 1,000)
OTHER = [29.5, 27.0, 26.0, 32.0, 25.0]


def _write(root, name, value, **config):
    """A run whose training return and evaluations are ``value`` at every step."""
    return write_run(root, name, STEPS, [value] * len(STEPS), evals=dict.fromkeys(STEPS, value), **config)


def _runs(root, seeds=5):
    for env, shift in (("hopper", 1000.0), ("walker2d", 0.0)):
        for seed in range(seeds):
            _write(root, f"{env}-lead-s{seed}", LEAD[seed] + shift, seed=seed, env=env,
                      budget=3000, preset="reference")
            _write(root, f"{env}-cg-s{seed}", OTHER[seed] + shift, seed=seed, env=env,
                      budget=3000, solver="cg")
    _write(root, "hopper-kfac-s0", 1.0, seed=0, budget=3000, solver="kfac")  # one seed
    return root


def _finals(root):
    runs, _ = load_runs([root])
    return final_rows(group_by_method(runs), ["eval_return"], load_anchors())


def test_per_task_and_across_task_probabilities_match_scipy(tmp_path):
    finals = _finals(_runs(tmp_path))
    lead = "RAT"
    comparison = Comparison("equal settings", ((lead, "NPG-CG"), (lead, "K-FAC"), (lead, "PPO")))
    (cg, kfac), missing = compare(comparison, finals, "eval_return", load_anchors())
    assert missing == ["PPO"]
    u = stats.mannwhitneyu(LEAD, OTHER, alternative="greater", method="exact")
    for env in ("Hopper-v5", "Walker2d-v5"):
        assert cg.per_task[env].probability == pytest.approx(u.statistic / 25)
        assert cg.per_task[env].p_value == pytest.approx(u.pvalue)
        assert cg.seeds[env] == (5, 5)
    # across tasks: the mean of the per-task P (both tasks are anchored), a bootstrap interval from 5 runs per task
    (mujoco,) = cg.aggregates
    assert mujoco.family == "MuJoCo" and mujoco.tasks == ["Hopper-v5", "Walker2d-v5"]
    assert mujoco.test.probability == pytest.approx(u.statistic / 25)
    assert mujoco.interval is not None and mujoco.interval.low <= mujoco.test.probability <= mujoco.interval.high
    assert kfac.per_task == {"Hopper-v5": None} and kfac.seeds["Hopper-v5"] == (5, 1)  # one seed: no P


def test_too_few_runs_for_an_interval_and_no_lead_at_all(tmp_path):
    finals = _finals(_runs(tmp_path, seeds=3))
    (cg,), _ = compare(Comparison("t", (("RAT", "NPG-CG"),)), finals, "eval_return", load_anchors())
    assert cg.aggregates[0].interval is None  # 3 runs per task: no bootstrap interval
    results, missing = compare(Comparison("t", (("TRPO", "NPG-CG"),)), finals, "eval_return", load_anchors())
    assert results == [] and missing == ["TRPO"]


@pytest.mark.parametrize("text,message", [
    ("title: x", "must hold a list"),
    ("- {title: x}", "needs the keys title and pairs"),
    ("- {title: x, pairs: [RAT, NPG-CG]}", "pairs must be a non-empty list of \\[first, second\\]"),
    ("- {title: x, pairs: [[RAT, NPG-CG, PPO]]}", "pairs must be"),
    ("- {title: x, pairs: [[RAT, NPG-CG]], colour: red}", "needs the keys"),
    ("- [unclosed", "is not valid YAML"),
    (b"\xff\xfe- [x]", "is not UTF-8 text"),
    ("- {title: x, pairs: [[RAT, NPG-CG]], rule: {across_at_least: 0.6}}", "rule needs the keys"),
    ("- {title: x, pairs: [[RAT, NPG-CG]], rule: {across_at_least: 1.5, across_p_at_most: 0.1, harm_at_most: 0.2, "
     "harm_p_at_most: 0.1}}", "each a number in \\[0, 1\\]"),
    ("- {title: x, pairs: [[RAT, NPG-CG]], rule: {across_at_least: true, across_p_at_most: 0.1, harm_at_most: 0.2, "
     "harm_p_at_most: 0.1}}", "each a number"),
])
def test_a_bad_file_is_refused_in_one_sentence(tmp_path, text, message):
    path = tmp_path / "comparisons.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(RatbenchError, match=message):
        load_comparisons(path)
    assert load_comparisons(tmp_path / "absent.yaml") == []


def test_a_declared_rule_judges_each_pair_by_its_first_failed_condition(tmp_path):
    """Supported only when across-task P and p and the per-task harm test all pass; the harm test is the reverse
    one-sided test, P(second > first), as SciPy's Mann-Whitney U computes it."""
    finals = _finals(_runs(tmp_path))
    lead = "RAT"
    u = stats.mannwhitneyu(LEAD, OTHER, alternative="greater", method="exact")
    p_lead = u.statistic / 25

    def judge(pair: tuple[str, str], **rule: float) -> tuple[bool, str]:
        limits = {"across_at_least": 0.0, "across_p_at_most": 1.0, "harm_at_most": 0.0, "harm_p_at_most": 0.0, **rule}
        comparison = Comparison("t", (pair,), rule=Rule(**limits))
        (result,), _ = compare(comparison, finals, "eval_return", load_anchors())
        return comparison.rule.judge(result)

    assert judge((lead, "NPG-CG"), across_at_least=p_lead) == (True, "")
    assert judge((lead, "NPG-CG"), across_at_least=p_lead + 0.01) == (
        False, f"MuJoCo across-task P {p_lead:.3f} < {p_lead + 0.01:g}")
    supported, because = judge((lead, "NPG-CG"), across_p_at_most=0.0)
    assert not supported and because.startswith("MuJoCo across-task p ")
    # reversed: P(NPG-CG > lead) = 1 - p_lead on each task, and its harm test is lead > NPG-CG's p
    assert judge(("NPG-CG", lead), harm_at_most=1 - p_lead, harm_p_at_most=u.pvalue) == (
        False, f"hurts on Hopper-v5: P {1 - p_lead:.3f}, reverse p {u.pvalue:.3g}")
    assert judge(("NPG-CG", lead), harm_at_most=1 - p_lead, harm_p_at_most=u.pvalue * 0.99) == (True, "")
    assert judge(("NPG-CG", lead), harm_at_most=1 - p_lead - 0.01, harm_p_at_most=1.0) == (True, "")
    # a task only one side ran, or ran with one seed, leaves the pair unjudged (K-FAC: Hopper, one seed)
    assert judge((lead, "K-FAC")) == (None, "not judged: no test on Walker2d-v5 (runs of one side only)")
    _write(tmp_path, "walker2d-kfac-s0", 1.0, seed=0, env="walker2d", budget=3000, solver="kfac")
    finals[:] = _finals(tmp_path)
    assert judge((lead, "K-FAC")) == (None, "not judged: no test on Hopper-v5, Walker2d-v5 (one seed on a side)")


def test_a_rule_with_a_design_waits_for_every_task_and_seed_it_names(tmp_path):
    """A design still running is not judged on its first tasks: every named task on both sides, with the named
    seeds at least, before any threshold is read."""
    finals = _finals(_runs(tmp_path))
    pair = ("RAT", "NPG-CG")
    open_rule = {"across_at_least": 0.0, "across_p_at_most": 1.0, "harm_at_most": 0.0, "harm_p_at_most": 0.0}

    def judge(**design) -> tuple[bool, str]:
        comparison = Comparison("t", (pair,), rule=Rule(**open_rule, **design))
        (result,), _ = compare(comparison, finals, "eval_return", load_anchors())
        return comparison.rule.judge(result)

    assert judge(tasks=("Hopper-v5", "Walker2d-v5")) == (True, "")
    assert judge(tasks=("Hopper-v5", "Walker2d-v5"), seeds=(5, 5)) == (True, "")
    assert judge(tasks=("Hopper-v5", "Ant-v5")) == (None, "not judged yet: Ant-v5 has 0 and 0 finished seeds")
    assert judge(tasks=("Hopper-v5",), seeds=(6, 5)) == (None, "not judged yet: Hopper-v5 has 5 and 5 finished seeds of 6 and 5")
    _write(tmp_path, "ant-cg-s0", 1.0, seed=0, env="ant", budget=3000, solver="cg")
    finals[:] = _finals(tmp_path)  # a task that only the second side has begun: its seeds are counted
    assert judge(tasks=("Hopper-v5", "Ant-v5")) == (None, "not judged yet: Ant-v5 has 0 and 1 finished seeds")


def test_a_rule_judges_only_the_tasks_it_names_and_only_evaluation(tmp_path):
    """Runs on a task outside the design (a Humanoid run beside the -v5 ablation) change neither the verdict nor the
    across-task P; and a rule never judges training return."""
    pair = ("RAT", "NPG-CG")
    rule = Rule(0.6, 0.5, 0.2, 0.5, tasks=("Hopper-v5", "Walker2d-v5"), seeds=(5, 5))
    comparison = Comparison("t", (pair,), rule=rule)
    (before,), _ = compare(comparison, _finals(_runs(tmp_path)), "eval_return", load_anchors())
    for seed in range(5):  # the reverse order on a task the rule does not name: it would hurt there
        _write(tmp_path, f"ant-lead-s{seed}", OTHER[seed], seed=seed, env="ant", budget=3000, preset="reference")
        _write(tmp_path, f"ant-cg-s{seed}", LEAD[seed], seed=seed, env="ant", budget=3000, solver="cg")
    _write(tmp_path, "swimmer-cg-s0", 1.0, seed=0, env="Swimmer-v5", budget=3000, solver="cg")  # one side only
    (after,), _ = compare(comparison, _finals(tmp_path), "eval_return", load_anchors())
    assert after.verdict == before.verdict == (True, "") and after.per_task.keys() == {"Hopper-v5", "Walker2d-v5"}
    assert after.aggregates[0].test == before.aggregates[0].test and after.aggregates[0].tasks == ["Hopper-v5", "Walker2d-v5"]
    unruled = Comparison("t", (pair,))
    (everything,), _ = compare(unruled, _finals(tmp_path), "eval_return", load_anchors())  # without a rule: every task
    assert "Ant-v5" in everything.per_task and everything.aggregates[0].test.probability < before.aggregates[0].test.probability
    with pytest.raises(RatbenchError, match="declares a decision rule, which judges eval_return"):
        compare(comparison, _finals(tmp_path), "train_return", load_anchors())


def test_a_rule_does_not_judge_runs_evaluated_at_different_steps(tmp_path):
    """A run whose last evaluation in the window is missing would be scored on the others alone: the rule waits."""
    _runs(tmp_path)
    comparison = Comparison("t", (("RAT", "NPG-CG"),), rule=Rule(0.6, 0.5, 0.2, 0.5))
    (pair,), _ = compare(comparison, _finals(tmp_path), "eval_return", load_anchors())
    assert pair.verdict == (True, "")
    shutil.rmtree(tmp_path / "walker2d-cg-s3")
    evals = dict.fromkeys(STEPS[:-1], OTHER[3])  # no evaluation at 3,000
    write_run(tmp_path, "walker2d-cg-s3b", STEPS, [OTHER[3]] * len(STEPS), evals=evals, seed=3, env="walker2d",
              budget=3000, solver="cg")
    (pair,), _ = compare(comparison, _finals(tmp_path), "eval_return", load_anchors())
    assert pair.seeds["Walker2d-v5"] == (5, 5)
    assert pair.verdict == (None, "not judged: runs evaluated at different steps in the window on Walker2d-v5")


def test_across_tasks_uses_every_run_when_seed_counts_differ_between_tasks(tmp_path):
    """A sixth seed on one task enters that task's P; the across-task P stays the mean of the per-task P (no
    trimming to the smallest count), and the bootstrap interval, which needs equal counts, is left out."""
    _runs(tmp_path)
    _write(tmp_path, "hopper-cg-s5", 1031.5, seed=5, budget=3000, solver="cg")  # beats every lead seed on Hopper
    (pair,), _ = compare(Comparison("t", (("RAT", "NPG-CG"),)), _finals(tmp_path), "eval_return",
                         load_anchors())
    assert pair.seeds["Hopper-v5"] == (5, 6) and pair.seeds["Walker2d-v5"] == (5, 5)
    (mujoco,) = pair.aggregates
    assert mujoco.test.probability == pytest.approx(np.mean([t.probability for t in pair.per_task.values()]))
    assert pair.per_task["Hopper-v5"].probability != pair.per_task["Walker2d-v5"].probability
    assert mujoco.interval is None


@pytest.mark.parametrize("design,message", [
    ("tasks: Hopper-v5", "tasks must be a list"),
    ("seeds: [3, 5]", "given with tasks"),
    ("{tasks: [Hopper-v5], seeds: [3]}", "seeds must be [first, second]"),
    ("{tasks: [Hopper-v5], seeds: [0, 5]}", "seeds must be [first, second]"),
    ("{tasks: [Hopper-v5], runs: 3}", "may have tasks and seeds"),
])
def test_a_bad_rule_design_is_one_sentence(tmp_path, design, message):
    numbers = "across_at_least: 0.6, across_p_at_most: 0.1, harm_at_most: 0.2, harm_p_at_most: 0.1"
    extra = design.strip("{}")
    (tmp_path / "c.yaml").write_text(f"- title: t\n  pairs: [[a, b]]\n  rule: {{{numbers}, {extra}}}\n")
    with pytest.raises(RatbenchError, match=re.escape(message)):
        load_comparisons(tmp_path / "c.yaml")


def test_a_threshold_met_exactly_is_met_whatever_the_float_rounding():
    """17/30, 18/30, 20/30 and 17/30 average to 0.6, which floats give as 0.5999999999999999."""
    across = float(np.mean([17 / 30, 18 / 30, 20 / 30, 17 / 30]))
    assert across < 0.6  # the rounding the rule must not see
    tasks = ["Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"]
    per_task = {env: Improvement(0.6, 0.2, "exact") for env in tasks}
    result = PairResult("a", "b", per_task, {env: (3, 5) for env in tasks},
                        [Aggregate("MuJoCo", tasks, Improvement(across, 0.1, "stratified"), None)],
                        {env: Improvement(0.4, 0.8, "exact") for env in tasks})
    rule = Rule(across_at_least=0.6, across_p_at_most=0.1, harm_at_most=0.2, harm_p_at_most=0.1)
    assert rule.judge(result) == (True, "")


def _reported(tmp_path, declared: str, title: str) -> tuple[str, dict]:
    """The page section titled ``title`` and its summary.json entry, with ``declared`` as comparisons.yaml."""
    root = _runs(tmp_path / "runs")
    (root / "comparisons.yaml").write_text(declared)
    result = CliRunner().invoke(cli, ["report", str(root), "--metric", "eval_return"])
    assert result.exit_code == 0, result.output
    page = (root / "README.md").read_text()
    (entry,) = json.loads((root / "summary.json").read_text())["comparisons"]
    return page[page.index(f"## {title}"):], entry


def test_the_page_states_a_rule_and_its_verdicts(tmp_path):
    section, entry = _reported(
        tmp_path, "- title: Switches\n  pairs: [[RAT, NPG-CG], [NPG-CG, RAT]]\n"
        "  rule: {across_at_least: 0.6, across_p_at_most: 0.5, harm_at_most: 0.2, harm_p_at_most: 0.5}\n", "Switches")
    assert "a pair is supported when, in every benchmark family, across tasks P >= 0.6 with p <= 0.5, and on no task P <= 0.2" in section
    u = stats.mannwhitneyu(LEAD, OTHER, alternative="greater", method="exact")
    assert u.statistic / 25 >= 0.6 and u.pvalue <= 0.5  # the lead meets the rule; its reverse hurts on each task
    lines = [line for line in section.splitlines() if line.startswith("| RAT > NPG-CG |")
             or line.startswith("| NPG-CG > RAT |")]
    assert lines[0].endswith("| supported |") and "| not supported: MuJoCo across-task P" in lines[1]
    assert entry["rule"] == {"across_at_least": 0.6, "across_p_at_most": 0.5, "harm_at_most": 0.2, "harm_p_at_most": 0.5,
                             "tasks": [], "seeds": None}
    assert [(pair["supported"], pair["because"][:20]) for pair in entry["pairs"]] == [
        (True, ""), (False, "MuJoCo across-task P")]


def test_the_page_says_a_rule_waits_for_its_design(tmp_path):
    section, entry = _reported(
        tmp_path, "- title: Switches\n  pairs: [[RAT, NPG-CG]]\n"
        "  rule: {across_at_least: 0.6, across_p_at_most: 0.5, harm_at_most: 0.2, harm_p_at_most: 0.5,\n"
        "         tasks: [Hopper-v5, Walker2d-v5, Ant-v5], seeds: [3, 5]}\n", "Switches")
    (line,) = [line for line in section.splitlines() if line.startswith("| RAT > NPG-CG |")]
    assert line.endswith("| not judged yet: Ant-v5 has 0 and 0 finished seeds of 3 and 5 |")
    assert (entry["pairs"][0]["supported"], entry["rule"]["tasks"]) == (None, ["Hopper-v5", "Walker2d-v5", "Ant-v5"])


def test_the_page_states_a_declared_comparison_and_summary_json_holds_its_numbers(tmp_path):
    section, entry = _reported(
        tmp_path, "- title: The paper's comparison, equal settings\n  pairs:\n    - [RAT, NPG-CG]\n"
        "    - [RAT, TRPO]\n  note: Solver against solver, everything else equal.\n",
        "The paper's comparison, equal settings")
    assert "Solver against solver, everything else equal." in section and "No finished runs yet of: TRPO." in section
    u = stats.mannwhitneyu(LEAD, OTHER, alternative="greater", method="exact")
    assert f"| RAT > NPG-CG | {u.statistic / 25:.2f} (p = {u.pvalue:.2g}; 5 vs 5) |" in section
    pair = entry["pairs"][0]
    assert entry["missing"] == ["TRPO"] and (pair["first"], pair["second"]) == ("RAT", "NPG-CG")
    assert pair["per_task"]["Walker2d-v5"]["p_value"] == pytest.approx(u.pvalue)
    assert np.isclose(pair["across_tasks"][0]["probability"], u.statistic / 25)


def test_a_page_of_its_own_is_linked_from_the_page_above_and_not_folded_in(tmp_path):
    root = _runs(tmp_path / "results")
    ablation = tmp_path / "results" / "ablation"
    _write(ablation, "relu-s0", 1.0, seed=0, budget=3000, label="relu")
    (ablation / "comparisons.yaml").write_text("- title: One switch at a time\n  pairs: [[RAT (relu), RAT]]\n")
    result = CliRunner().invoke(cli, ["report", str(root), "--metric", "eval_return"])
    assert result.exit_code == 0, result.output
    page = (root / "README.md").read_text()
    assert "- [ablation](ablation/README.md): One switch at a time" in page
    assert "relu" not in page.replace("ablation/README.md): One switch", "")  # none of its runs on this page
    earlier = tmp_path / "results" / "earlier"  # a page of its own that asks nothing: described by its runs
    for seed in (0, 1):
        _write(earlier, f"old-s{seed}", 1.0, seed=seed, budget=3000, label="old")
    (earlier / "comparisons.yaml").write_text("[]\n")
    result = CliRunner().invoke(cli, ["report", str(root), "--metric", "eval_return"])
    assert result.exit_code == 0, result.output
    assert "- [earlier](earlier/README.md): no declared questions (2 runs)" in (root / "README.md").read_text()
    shutil.rmtree(earlier)  # the rest of this test as before
    result = CliRunner().invoke(cli, ["report", str(root), str(ablation), "--out", str(root), "--metric", "eval_return"])
    assert result.exit_code == 0, result.output  # given as a path of its own, its runs are on the page, unlinked
    page = (root / "README.md").read_text()
    assert "RAT (relu)" in page and "Pages of their own" not in page
    result = CliRunner().invoke(cli, ["report", str(root), "--out", str(ablation)])
    assert result.exit_code == 1 and "is a page of its own" in result.output and "Traceback" not in result.output
    fresh = tmp_path / "fresh"
    _write(fresh, "rat-s9", 1.0, seed=9, budget=3000)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "results").rglob("*"))
    result = CliRunner().invoke(cli, ["report", str(fresh), "--collect", str(root), "--out", str(ablation)])
    assert result.exit_code == 1 and "is a page of its own" in result.output and "Traceback" not in result.output
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "results").rglob("*")) == before  # nothing copied


def test_across_tasks_stays_within_a_benchmark_family(tmp_path):
    """A pair that ran a MuJoCo task and a MinAtar game gets one aggregate per family, never one mixing them."""
    for seed in range(3):
        for env, base in (("hopper", 1000.0), ("minatar-breakout", 5.0)):
            _write(tmp_path, f"{env}-a-s{seed}", base + LEAD[seed], seed=seed, env=env,
                      budget=3000, preset="reference")
            _write(tmp_path, f"{env}-b-s{seed}", base + OTHER[seed], seed=seed, env=env,
                      budget=3000, solver="cg")
    (pair,), _ = compare(Comparison("t", (("RAT", "NPG-CG"),)), _finals(tmp_path), "eval_return",
                         load_anchors())
    assert [(a.family, a.tasks) for a in pair.aggregates] == [("MinAtar", ["MinAtar/Breakout-v1"]),
                                                              ("MuJoCo", ["Hopper-v5"])]
