"""Declared comparisons: named pairs of methods, per task and across tasks (``comparisons.yaml``).

The per-task verdicts rank every method on a task and the aggregate compares everyone with the leader; a
comparison answers a question the page is asked, such as the paper's "RAT matches or exceeds NAC and TRPO"
under equal settings: the reference preset's RAT against the reference's own baselines. Nothing else on the page
changes its numbers: per task, P(first > second) over the two methods' window scores with the exact one-sided
permutation p-value (:func:`~ratbench.reporting.stats.improvement`); across the tasks of one benchmark family
(:func:`~ratbench.reporting.normalisation.family`: MuJoCo, DMC, ...) that both ran at their full budget and that
have a normalisation anchor, P averaged over tasks (rliable's probability of improvement, with
a stratified-bootstrap interval only from :data:`~ratbench.reporting.stats.BOOTSTRAP_MIN_RUNS` runs per task)
and its stratified permutation p-value.

``comparisons.yaml`` (beside the page, like ``analysis.md``) is a list of entries::

    - title: "The paper's comparison: equal settings"
      pairs:                                       # [first, second]: P(first > second); labels as the page prints them
        - ["RAT (reference preset, envpool)", "NPG-CG (reference preset, envpool)"]   # quoted: labels hold commas
        - ["RAT (reference preset, envpool)", "K-FAC (reference preset, envpool)"]
      note: one paragraph the page prints under the title (optional)

A method with no finished runs is listed as such, so a comparison can be declared before its runs exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from ratbench.errors import RatbenchError
from ratbench.reporting.normalisation import Anchors, family
from ratbench.reporting.runs import COMPARISONS_FILE
from ratbench.reporting.stats import (BOOTSTRAP_MIN_RUNS, Improvement, Interval, improvement,
                                      probability_of_improvement, stratified_improvement)

ENTRY_KEYS = {"title", "pairs", "note"}


@dataclass(frozen=True)
class Comparison:
    title: str
    pairs: tuple[tuple[str, str], ...]  # (first, second): the page gives P(first > second)
    note: str = ""


def load_comparisons(path: Path) -> list[Comparison]:
    """The comparisons declared in ``path`` (none when it does not exist); a one-line error for a bad file."""
    if not path.is_file():
        return []
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as error:
        raise RatbenchError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(entries, list):
        raise RatbenchError(f"{path} must hold a list of comparisons (title, pairs, note)")
    out = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not {"title", "pairs"} <= set(entry) or set(entry) - ENTRY_KEYS:
            raise RatbenchError(f"{path}: comparison {i} needs the keys title and pairs, and may have note; it has "
                                f"{sorted(entry) if isinstance(entry, dict) else entry!r}")
        pairs = entry["pairs"]
        if not isinstance(pairs, list) or not pairs or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(m, str) for m in p) for p in pairs):
            raise RatbenchError(f"{path}: comparison {i}'s pairs must be a non-empty list of [first, second] method "
                                "labels (quote a label that holds a comma: [\"RAT (reference preset, envpool)\", ...])")
        out.append(Comparison(str(entry["title"]), tuple((a, b) for a, b in pairs), str(entry.get("note", ""))))
    return out


@dataclass(frozen=True)
class Aggregate:
    """P(first > second) averaged over one family's common anchored ``tasks``, its stratified permutation test,
    and its stratified-bootstrap interval (None below BOOTSTRAP_MIN_RUNS runs per task)."""

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
    seeds: dict[str, tuple[int, int]]  # task -> (first's seeds, second's seeds)
    aggregates: list[Aggregate]


def compare(comparison: Comparison, finals: Sequence[dict[str, Any]], metric: str,
            anchors: Mapping[str, Anchors]) -> tuple[list[PairResult], list[str]]:
    """(one result per pair whose two methods have finished runs, the declared methods that have none)."""
    rows = {(r["env"], r["method"]): r for r in finals if r["metric"] == metric and r.get("full_length", True)}
    have = {method for _, method in rows}
    named = dict.fromkeys(m for pair in comparison.pairs for m in pair)  # first-seen order, no repeats
    missing = [m for m in named if m not in have]
    results = []
    for first, second in comparison.pairs:
        if first not in have or second not in have:
            continue
        tasks = sorted(env for env, method in rows if method == first and (env, second) in rows)
        per_task, seeds = {}, {}
        for env in tasks:
            x, y = rows[env, first]["values"], rows[env, second]["values"]
            per_task[env] = improvement(x, y) if len(x) >= 2 and len(y) >= 2 else None
            seeds[env] = (len(x), len(y))
        aggregates = []
        for name in sorted({family(env) for env in tasks if env in anchors}):
            mine = [env for env in tasks if env in anchors and family(env) == name]
            x, y = (_normalised(rows, method, mine, anchors) for method in (first, second))
            interval = probability_of_improvement(x, y) if min(x.shape[0], y.shape[0]) >= BOOTSTRAP_MIN_RUNS else None
            aggregates.append(Aggregate(name, mine, stratified_improvement(x, y), interval))
        results.append(PairResult(first, second, per_task, seeds, aggregates))
    return results, missing


def comparison_summary(comparison: Comparison, results: Sequence[PairResult], missing: Sequence[str],
                       metric: str) -> dict[str, Any]:
    """The numbers of one comparison as plain data (summary.json), to be recomputed from final.csv's runs."""
    def test(t: Improvement | None) -> dict[str, float] | None:
        return None if t is None else {"probability": t.probability, "p_value": t.p_value}

    return {"title": comparison.title, "metric": metric, "missing": list(missing),
            "pairs": [{"first": r.first, "second": r.second, "per_task": {env: test(t) for env, t in r.per_task.items()},
                       "seeds": {env: list(n) for env, n in r.seeds.items()},
                       "across_tasks": [{"family": a.family, "tasks": a.tasks, **test(a.test),
                                         "interval": None if a.interval is None else [a.interval.low, a.interval.high]}
                                        for a in r.aggregates]}
                      for r in results]}


def _normalised(rows: Mapping[tuple[str, str], dict], method: str, tasks: Sequence[str],
                anchors: Mapping[str, Anchors]) -> np.ndarray:
    """(runs, tasks) fixed-normalised window scores, trimmed to the method's smallest run count over ``tasks``."""
    per_task = [np.asarray(anchors[env].normalise(rows[env, method]["values"]), dtype=float) for env in tasks]
    n = min(v.size for v in per_task)
    return np.stack([v[:n] for v in per_task], axis=1)


__all__ = ["COMPARISONS_FILE", "Aggregate", "Comparison", "PairResult", "compare", "comparison_summary", "load_comparisons"]
