"""Declared comparisons: named pairs of methods, per task and across tasks (``comparisons.yaml``).

The per-task verdicts rank every method on a task and the aggregate compares everyone with the leader; a
comparison answers a question the page is asked, such as the paper's "RAT matches or exceeds NAC and TRPO"
under equal settings: the reference preset's RAT against the reference's own baselines. Nothing else on the page
changes its numbers: per task, P(first > second) over the two methods' window scores with the exact one-sided
permutation p-value (:func:`~ratbench.reporting.stats.improvement`); across the tasks of one benchmark family
(:func:`~ratbench.reporting.normalisation.family`: MuJoCo, DMC, ...) that both ran at their full budget and that
have a normalisation anchor, P averaged over tasks (rliable's probability of improvement, with
a stratified-bootstrap interval only from :data:`~ratbench.reporting.stats.BOOTSTRAP_MIN_RUNS` runs per task,
the same count on every task) and its stratified permutation p-value, each task's P over all of its runs.

``comparisons.yaml`` (beside the page, like ``analysis.md``) is a list of entries::

    - title: "The paper's comparison: equal settings"
      pairs:                                       # [first, second]: P(first > second); labels as the page prints them
        - ["RAT (reference preset, envpool)", "NPG-CG (reference preset, envpool)"]   # quoted: labels hold commas
        - ["RAT (reference preset, envpool)", "K-FAC (reference preset, envpool)"]
      note: one paragraph the page prints under the title (optional)
      rule:                                        # optional: a decision rule fixed before the runs (the four numbers)
        across_at_least: 0.6                       # supported when across tasks P >= 0.6 in every family
        across_p_at_most: 0.1                      #   with its permutation p <= 0.1,
        harm_at_most: 0.2                          # and on no task P <= 0.2
        harm_p_at_most: 0.1                        #   with P(second > first)'s p <= 0.1
        tasks: [Hopper-v5, Walker2d-v5]            # optional: judged (and shown) on these tasks only, once both sides finished them,
        seeds: [3, 5]                              #   with at least this many seeds each (first, second)

A method with no finished runs is listed as such, so a comparison can be declared before its runs exist. With a
rule, the page says of each pair whether it is supported and, if not, which condition failed first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ratbench.errors import RatbenchError
from ratbench.io import read_yaml
from ratbench.reporting.normalisation import Anchors, family
from ratbench.reporting.runs import COMPARISONS_FILE
from ratbench.reporting.stats import (BOOTSTRAP_MIN_RUNS, Improvement, Interval, improvement,
                                      probability_of_improvement, stratified_improvement)

ENTRY_KEYS = {"title", "pairs", "note", "rule"}
ROUNDING = 1e-9
"""Slack at a rule's thresholds: an across-task P is a float mean of per-task fractions (17/30, 18/30, 20/30 and
17/30 average to 0.6 as 0.5999999999999999), and float rounding must not decide a pre-registered threshold."""


@dataclass(frozen=True)
class Rule:
    """A pre-registered support rule: across tasks P >= ``across_at_least`` with p <= ``across_p_at_most`` in
    every family, and on no task P <= ``harm_at_most`` with the reverse test's p <= ``harm_p_at_most``; judged
    only once both sides have finished runs on every one of ``tasks`` with at least ``seeds`` (first, second)
    each, where the rule names them (a design still running is not judged on its first tasks)."""

    across_at_least: float
    across_p_at_most: float
    harm_at_most: float
    harm_p_at_most: float
    tasks: tuple[str, ...] = ()
    seeds: tuple[int, int] | None = None

    def describe(self) -> str:
        design = ""
        if self.tasks:
            design = (f"; judged once both sides have finished runs on {', '.join(self.tasks)}"
                      + (f" ({self.seeds[0]} and {self.seeds[1]} seeds at least)" if self.seeds else ""))
        return (f"supported when, in every benchmark family, across tasks P >= {self.across_at_least:g} with p <= "
                f"{self.across_p_at_most:g}, and on no task P <= {self.harm_at_most:g} with the reverse one-sided p "
                f"(of P(second > first)) <= {self.harm_p_at_most:g}; a task that only one side ran, or ran with one "
                f"seed, or whose runs were evaluated at different steps in the window, leaves the pair unjudged{design}")

    def judge(self, result: PairResult) -> tuple[bool | None, str]:
        """(supported, the first failed condition or ""); (None, why) while the design it names is incomplete, or
        where a task cannot be tested alike on both sides (runs of one side only, one seed on a side, runs evaluated
        at different steps in the window)."""
        for env in self.tasks:
            have = result.seeds.get(env, (0, 0))
            if min(have) == 0 or (self.seeds and (have[0] < self.seeds[0] or have[1] < self.seeds[1])):
                wanted = f" of {self.seeds[0]} and {self.seeds[1]}" if self.seeds else ""
                return None, f"not judged yet: {env} has {have[0]} and {have[1]} finished seeds{wanted}"
        if result.uneven_marks:
            return None, f"not judged: runs evaluated at different steps in the window on {', '.join(result.uneven_marks)}"
        if result.unmatched:
            return None, f"not judged: no test on {', '.join(result.unmatched)} (runs of one side only)"
        single = [env for env, test in result.per_task.items() if test is None]
        if single:
            return None, f"not judged: no test on {', '.join(single)} (one seed on a side)"
        if not result.aggregates:
            return False, "no across-task P (no common task with an anchor)"
        for a in result.aggregates:
            if a.test.probability < self.across_at_least - ROUNDING:
                return False, f"{a.family} across-task P {a.test.probability:.3f} < {self.across_at_least:g}"
            if a.test.p_value > self.across_p_at_most + ROUNDING:
                return False, f"{a.family} across-task p {a.test.p_value:.3g} > {self.across_p_at_most:g}"
        for env, test in result.per_task.items():
            reverse = result.reverse[env]
            if test.probability <= self.harm_at_most + ROUNDING and reverse.p_value <= self.harm_p_at_most + ROUNDING:
                return False, f"hurts on {env}: P {test.probability:.3f}, reverse p {reverse.p_value:.3g}"
        return True, ""


@dataclass(frozen=True)
class Comparison:
    title: str
    pairs: tuple[tuple[str, str], ...]  # (first, second): the page gives P(first > second)
    note: str = ""
    rule: Rule | None = None


def load_comparisons(path: Path) -> list[Comparison]:
    """The comparisons declared in ``path`` (none when it does not exist); a one-line error for a bad file."""
    if not path.is_file():
        return []
    entries = read_yaml(path, "comparisons file") or []
    if not isinstance(entries, list):
        raise RatbenchError(f"{path} must hold a list of comparisons (title, pairs, note, rule)")
    out = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not {"title", "pairs"} <= set(entry) or set(entry) - ENTRY_KEYS:
            raise RatbenchError(f"{path}: comparison {i} needs the keys title and pairs, and may have note and rule; it has "
                                f"{sorted(entry) if isinstance(entry, dict) else entry!r}")
        pairs = entry["pairs"]
        if not isinstance(pairs, list) or not pairs or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(m, str) for m in p) for p in pairs):
            raise RatbenchError(f"{path}: comparison {i}'s pairs must be a non-empty list of [first, second] method "
                                "labels (quote a label that holds a comma: [\"RAT (reference preset, envpool)\", ...])")
        out.append(Comparison(str(entry["title"]), tuple((a, b) for a, b in pairs), str(entry.get("note", "")),
                              _rule(entry["rule"], f"{path}: comparison {i}'s rule") if "rule" in entry else None))
    return out


RULE_DESIGN_KEYS = ("tasks", "seeds")  # optional: the design the rule waits for


def _rule(raw: Any, where: str) -> Rule:
    keys = [f.name for f in fields(Rule) if f.name not in RULE_DESIGN_KEYS]
    if not isinstance(raw, dict) or not set(keys) <= set(raw) <= set(keys) | set(RULE_DESIGN_KEYS) or not all(
            isinstance(raw[k], (int, float)) and not isinstance(raw[k], bool) and 0 <= raw[k] <= 1 for k in keys):
        raise RatbenchError(f"{where} needs the keys {', '.join(keys)}, each a number in [0, 1], and may have "
                            f"{' and '.join(RULE_DESIGN_KEYS)}")
    tasks, seeds = raw.get("tasks", []), raw.get("seeds")
    if not isinstance(tasks, list) or not all(isinstance(env, str) for env in tasks):
        raise RatbenchError(f"{where}: tasks must be a list of task ids such as Hopper-v5")
    if seeds is not None and not (isinstance(seeds, list) and len(seeds) == 2 and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in seeds) and tasks):
        raise RatbenchError(f"{where}: seeds must be [first, second], the least finished seeds per task of each side, "
                            "given with tasks")
    return Rule(*(float(raw[k]) for k in keys), tasks=tuple(tasks), seeds=None if seeds is None else (seeds[0], seeds[1]))


@dataclass(frozen=True)
class Aggregate:
    """P(first > second) averaged over one family's common anchored ``tasks``, its stratified permutation test,
    and its stratified-bootstrap interval (None below BOOTSTRAP_MIN_RUNS runs per task, or where a side's counts
    differ between tasks)."""

    family: str
    tasks: list[str]
    test: Improvement
    interval: Interval | None


@dataclass(frozen=True)
class PairResult:
    """``first`` against ``second``: per task (task -> P, or None where one side has one seed) and per family
    of their common anchored tasks (none when there are none)."""

    first: str
    second: str
    per_task: dict[str, Improvement | None]
    seeds: dict[str, tuple[int, int]]  # task either ran -> (first's finished seeds, second's), 0 for a side that did not
    aggregates: list[Aggregate]
    reverse: dict[str, Improvement | None] = field(default_factory=dict)  # P(second > first), with a rule only
    unmatched: list[str] = field(default_factory=list)  # tasks that only one of the two ran
    uneven_marks: list[str] = field(default_factory=list)  # tasks whose runs (either side) differ in their window's marks
    verdict: tuple[bool | None, str] | None = None  # the rule applied: (supported or None if not judged yet, why not)


RULE_METRIC = "eval_return"
"""What a rule judges: the deterministic evaluation's window score (docs/defaults.md); training return decides nothing."""


def compare(comparison: Comparison, finals: Sequence[dict[str, Any]], metric: str,
            anchors: Mapping[str, Anchors]) -> tuple[list[PairResult], list[str]]:
    """(one result per pair whose two methods have finished runs, the declared methods that have none). A rule that
    names its tasks is judged on those tasks alone."""
    rule = comparison.rule
    if rule is not None and metric != RULE_METRIC:
        raise RatbenchError(f"comparison {comparison.title!r} declares a decision rule, which judges {RULE_METRIC}; "
                            f"report {RULE_METRIC} (--metric {RULE_METRIC})")
    rows = {(r["env"], r["method"]): r for r in finals if r["metric"] == metric and r.get("full_length", True)
            and (rule is None or not rule.tasks or r["env"] in rule.tasks)}
    have = {method for _, method in rows}
    named = dict.fromkeys(m for pair in comparison.pairs for m in pair)  # first-seen order, no repeats
    missing = [m for m in named if m not in have]
    results = []
    for first, second in comparison.pairs:
        if first not in have or second not in have:
            continue
        tasks = sorted(env for env, method in rows if method == first and (env, second) in rows)
        per_task, seeds, reverse = {}, {}, {}
        for env in tasks:
            x, y = rows[env, first]["values"], rows[env, second]["values"]
            tested = len(x) >= 2 and len(y) >= 2
            per_task[env] = improvement(x, y) if tested else None
            if rule is not None:  # only a rule reads the reverse test
                reverse[env] = improvement(y, x) if tested else None
            seeds[env] = (len(x), len(y))
        aggregates = []
        for name in sorted({family(env) for env in tasks if env in anchors}):
            mine = [env for env in tasks if env in anchors and family(env) == name]
            x, y = (_normalised(rows, method, mine, anchors) for method in (first, second))
            aggregates.append(Aggregate(name, mine, stratified_improvement(x, y), _interval(x, y)))
        unmatched = sorted({env for env, method in rows if method in (first, second)} - set(tasks))
        for env in unmatched:  # the side that ran, for a design still waiting on the other
            seeds[env] = tuple(len(rows[env, m]["values"]) if (env, m) in rows else 0 for m in (first, second))
        uneven = [env for env in tasks if len({tuple(marks) for m in (first, second)
                                               for marks in rows[env, m]["seed_marks"].values()}) > 1]
        result = PairResult(first, second, per_task, seeds, aggregates, reverse, unmatched, uneven)
        results.append(result if rule is None else replace(result, verdict=rule.judge(result)))
    return results, missing


def comparison_summary(comparison: Comparison, results: Sequence[PairResult], missing: Sequence[str],
                       metric: str) -> dict[str, Any]:
    """The numbers of one comparison as plain data (summary.json), to be recomputed from final.csv's runs."""
    def test(t: Improvement | None) -> dict[str, float] | None:
        return None if t is None else {"probability": t.probability, "p_value": t.p_value}

    def judged(r: PairResult) -> dict[str, Any]:
        return {} if r.verdict is None else {"supported": r.verdict[0], "because": r.verdict[1]}

    return {"title": comparison.title, "metric": metric, "missing": list(missing),
            **({} if comparison.rule is None else {"rule": asdict(comparison.rule)}),
            "pairs": [{"first": r.first, "second": r.second, "per_task": {env: test(t) for env, t in r.per_task.items()},
                       "seeds": {env: list(n) for env, n in r.seeds.items()},
                       "across_tasks": [{"family": a.family, "tasks": a.tasks, **test(a.test),
                                         "interval": None if a.interval is None else [a.interval.low, a.interval.high]}
                                        for a in r.aggregates], **judged(r)}
                      for r in results]}


def _normalised(rows: Mapping[tuple[str, str], dict], method: str, tasks: Sequence[str],
                anchors: Mapping[str, Anchors]) -> list[np.ndarray]:
    """Per task of ``tasks``, the method's fixed-normalised window scores (all its runs: counts may differ)."""
    return [np.asarray(anchors[env].normalise(rows[env, method]["values"]), dtype=float) for env in tasks]


def _interval(x: Sequence[np.ndarray], y: Sequence[np.ndarray]) -> Interval | None:
    """rliable's stratified-bootstrap interval of P(X > Y) averaged over tasks, given per-task runs; None unless each
    side has the same count on every task (rliable's (runs, tasks) matrices) and at least BOOTSTRAP_MIN_RUNS."""
    counts = ({v.size for v in x}, {v.size for v in y})
    if len(counts[0]) != 1 or len(counts[1]) != 1 or min(*counts[0], *counts[1]) < BOOTSTRAP_MIN_RUNS:
        return None
    return probability_of_improvement(np.stack(x, axis=1), np.stack(y, axis=1))


__all__ = ["COMPARISONS_FILE", "Aggregate", "Comparison", "PairResult", "Rule", "compare", "comparison_summary", "load_comparisons"]
