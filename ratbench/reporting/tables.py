"""The tables behind a report: milestone values, window scores per task and method, verdicts.

- milestones: min / median / max over seeds at given env steps, published numbers beside them;
- final: per task, method and metric, the IQM over seeds of each run's window score
  (:mod:`ratbench.reporting.windows`) with its Tukey-McLaughlin 95% interval and, where the task has
  fixed anchors, its normalised value;
- verdict: per task, the methods ranked by that IQM, and P(leader > each other method) with its exact
  one-sided permutation p-value.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ratbench.reporting.methods import Group, last_step
from ratbench.reporting.normalisation import Anchors
from ratbench.reporting.published import Published
from ratbench.reporting.runs import Run
from ratbench.reporting.stats import improvement, iqm_interval, spread, trims_nothing, value_at
from ratbench.reporting.windows import WINDOW_SHARE, WindowScore, describe_marks, window, window_score


def seeds_text(n: int) -> str:
    """``1 seed``, ``3 seeds``."""
    return f"{n} seed{'s' if n != 1 else ''}"


def number_text(x: float | None) -> str:
    """A table number: thousands separated from 100 up, 3 significant digits below, a dash for none."""
    return "–" if x is None or not math.isfinite(x) else f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def milestone_rows(groups: Sequence[Group], metrics: Sequence[str], milestones: Sequence[int],
                   published: Sequence[Published]) -> list[dict[str, Any]]:
    rows = []
    for group in groups:
        for metric in metrics:
            for step in milestones:
                s = spread([value_at(r, metric, step) for r in group.runs])
                rows.append({"env": group.env, "method": group.method, "metric": metric, "step": step,
                             "min": s.low, "median": s.median, "max": s.high, "seeds": s.n, "source": "ratbench"})
    for entry in published:
        if entry.metric not in metrics or not any(entry.same_task(g.env) for g in groups):
            continue
        for step, value in sorted(entry.points.items()):
            env = next(g.env for g in groups if entry.same_task(g.env))
            printed = f", +-{entry.spread[step]:g}" if step in entry.spread else ""
            rows.append({"env": env, "method": f"{entry.method} [published, {entry.env}{printed}]",
                         "metric": entry.metric, "step": step, "min": value, "median": value, "max": value,
                         "seeds": entry.seeds or 1, "source": entry.source})
    return rows


FULL_LENGTH_SHARE = 0.98  # groups whose budget is this share of a task's largest budget ran its full budget


def budget(run: Run) -> float:
    """The step budget a run was asked for (a finished run reached it)."""
    return float(run.config.get("steps", last_step(run)))


def comparison_lengths(groups: Sequence[Group]) -> dict[tuple[str, str], tuple[float, bool]]:
    """Per (task, method): the common budget its scores are taken over, and whether it ran the task's
    full budget. Groups whose budget is within :data:`FULL_LENGTH_SHARE` of the task's largest share the
    smallest of their budgets; a group run to a shorter budget keeps its own and is compared with the
    leader there (never two methods over different windows)."""
    own = {(g.env, g.method): min(budget(r) for r in g.runs) for g in groups if g.runs}  # counted runs only
    longest: dict[str, float] = {}
    for (env, _), steps in own.items():
        longest[env] = max(longest.get(env, 0.0), steps)
    full = {key: steps >= FULL_LENGTH_SHARE * longest[key[0]] for key, steps in own.items()}
    common: dict[str, float] = {}
    for key, steps in own.items():
        if full[key]:
            common[key[0]] = min(common.get(key[0], math.inf), steps)
    return {key: (common[key[0]] if full[key] else steps, full[key]) for key, steps in own.items()}


def _window_scores(group: Group, metric: str, steps: float) -> list[tuple[Run, WindowScore]]:
    """The runs of ``group`` with a score in the window of ``steps``, and those scores."""
    scored = [(run, window_score(run, metric, steps)) for run in group.runs]
    return [(run, score) for run, score in scored if math.isfinite(score.value)]


def final_rows(groups: Sequence[Group], metrics: Sequence[str],
               anchors: Mapping[str, Anchors] | None = None) -> list[dict[str, Any]]:
    """Per task, method and metric: the IQM over seeds of each run's window score
    (:func:`~ratbench.reporting.windows.window_score` over the method's comparison length,
    :func:`comparison_lengths`) with its Tukey-McLaughlin 95% interval (none for one seed), how many
    points each run has in the window, and the IQM normalised by the task's fixed anchors where it has them."""
    lengths = comparison_lengths(groups)
    anchors = {} if anchors is None else anchors
    rows = []
    for metric in metrics:
        for group in groups:
            if (group.env, group.method) not in lengths:  # every run of it unfinished: listed apart
                continue
            steps, full = lengths[(group.env, group.method)]
            scored = _window_scores(group, metric, steps)
            if not scored:
                continue
            values = np.array([score.value for _, score in scored])
            interval = iqm_interval(values)
            point = interval.value if interval is not None else float(values[0])
            counts = [len(score.steps) for _, score in scored]
            row = {"env": group.env, "method": group.method, "metric": metric, "iqm": point,
                   "ci_low": None if interval is None else interval.low,
                   "ci_high": None if interval is None else interval.high, "seeds": int(values.size),
                   "estimator": "mean" if trims_nothing(values.size) else "IQM",
                   "steps": int(steps), "window_from": int(window(steps)[0]), "full_length": full,
                   "points_min": min(counts), "points_max": max(counts), "normalised": None,
                   "normalised_low": None, "normalised_high": None, "values": values.tolist(),
                   "seed_marks": {int(run.config.get("seed", -1)): list(score.steps) for run, score in scored}}
            if group.env in anchors:
                scale = anchors[group.env].normalise
                row.update(normalised=float(scale(point)),
                           normalised_low=None if interval is None else float(scale(interval.low)),
                           normalised_high=None if interval is None else float(scale(interval.high)))
            rows.append(row)
    return rows


def _p_text(x: Sequence[float], y: Sequence[float]) -> str:
    """``P(lead > it) = 0.92 (p = 0.036)``; a dash for a side with one seed."""
    if len(x) < 2 or len(y) < 2:
        return "P(lead > it) = – (one seed)"
    result = improvement(x, y)
    return f"P(lead > it) = {result.probability:.2f} (one-sided p = {result.p_value:.3g})"


def _comparison(lead_values: np.ndarray, other: dict[str, Any], lead: str = "") -> str:
    """"<other> (<score>, <seeds>): [<lead>] ahead by <d>, P(lead > it) = p (one-sided p = ...)"."""
    lead_interval = iqm_interval(lead_values)
    lead_score = lead_interval.value if lead_interval is not None else float(lead_values[0])
    who = f"{lead} ({number_text(lead_score)}) " if lead else ""
    return (f"{other['method']} ({number_text(other['iqm'])}, {seeds_text(other['seeds'])}): {who}ahead by "
            f"{number_text(lead_score - other['iqm'])}, {_p_text(lead_values, other['values'])}")


def verdict_lines(finals: Sequence[dict[str, Any]], metric: str, groups: Sequence[Group] = ()) -> list[str]:
    """Per task: the ranking by IQM of window scores among the methods that ran the full budget, and
    P(leader > other) with its exact one-sided p-value; methods run to a shorter budget are compared with
    the leader over their own window (the leader's scores read there from ``groups``)."""
    lines = []
    by_key = {(g.env, g.method): g for g in groups}
    for env in sorted({r["env"] for r in finals if r["metric"] == metric}):
        rows = [r for r in finals if r["env"] == env and r["metric"] == metric]
        ranked = sorted((r for r in rows if r.get("full_length", True)), key=lambda r: -r["iqm"])
        shorter = [r for r in rows if not r.get("full_length", True)]
        if len(rows) < 2:
            only = rows[0]
            lines.append(f"- **{env}**: only {only['method']} ran ({seeds_text(only['seeds'])}, {number_text(only['iqm'])} "
                         f"over {only['window_from']:,}-{only['steps']:,} steps); nothing to compare.")
            continue
        if not ranked:  # the full-budget methods never logged this metric
            continue
        lead = ranked[0]
        parts = [_comparison(np.array(lead["values"]), other) for other in ranked[1:]]
        line = (f"- **{env}**, scored over steps {lead['window_from']:,}-{lead['steps']:,} (the last "
                f"{WINDOW_SHARE:.0%} of the common budget): {lead['method']} leads ({number_text(lead['iqm'])}, "
                f"{seeds_text(lead['seeds'])})")
        line += (" over " + "; ".join(parts) + ".") if parts else "."
        for other in shorter:
            lead_group = by_key.get((env, lead["method"]))
            if lead_group is None:
                continue
            at_length = np.array([score.value for _, score in _window_scores(lead_group, metric, other["steps"])])
            if not at_length.size:  # the leader logged nothing in that window (a sparse evaluation cadence)
                continue
            line += (f" {other['method']} ran {other['steps']:,} steps only; over its window, "
                     + _comparison(at_length, other, lead["method"]) + ".")
        lines.append(line)
    return lines


def mark_differences(finals: Sequence[dict[str, Any]], metric: str = "eval_return") -> list[str]:
    """Per task, when its runs were not all evaluated at the same steps within the window: which runs
    (method and seeds) were evaluated where."""
    lines = []
    for env in sorted({r["env"] for r in finals if r["metric"] == metric}):
        sets: dict[tuple[int, ...], list[str]] = {}
        for row in (r for r in finals if r["env"] == env and r["metric"] == metric):
            by_marks: dict[tuple[int, ...], list[int]] = {}
            for seed, marks in sorted(row["seed_marks"].items()):
                by_marks.setdefault(tuple(marks), []).append(seed)
            for marks, seeds in by_marks.items():
                sets.setdefault(marks, []).append(f"{row['method']} seed{'s' if len(seeds) > 1 else ''} "
                                                  f"{', '.join(map(str, seeds))}")
        if len(sets) > 1:
            lines.append(f"- **{env}**: " + "; ".join(f"{', '.join(who)}: {describe_marks(marks)}"
                                                      for marks, who in sorted(sets.items(), key=lambda kv: kv[1])))
    return lines
