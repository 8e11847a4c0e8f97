"""The report: tables in words and numbers, written as markdown, HTML, CSV and JSON.

Tables (each per task, method and metric, with the number of seeds behind every entry):
- milestones: min / median / max over seeds at given env steps, published numbers beside them;
- final: IQM of the final value over seeds with its 95% stratified-bootstrap CI;
- verdict: per task, the methods ranked by that IQM, and P(leader > each other method).
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ratbench.io import atomic_write_bytes, atomic_write_text, write_csv, write_json
from ratbench.reporting.methods import Group, last_step
from ratbench.reporting.published import Published
from ratbench.reporting.stats import iqm, probability_of_improvement, spread, value_at


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _num(x: float) -> str:
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
            rows.append({"env": env, "method": f"{entry.method} [published, {entry.env}]", "metric": entry.metric,
                         "step": step, "min": value, "median": value, "max": value, "seeds": 1, "source": entry.source})
    return rows


FULL_LENGTH_SHARE = 0.98  # groups that reached this share of a task's longest group run its full budget


def comparison_lengths(groups: Sequence[Group]) -> dict[tuple[str, str], tuple[float, bool]]:
    """Per (task, method): the env steps its final values are taken at, and whether it ran the task's
    full budget. Groups within :data:`FULL_LENGTH_SHARE` of the task's longest are compared at the
    length every one of their runs reached; a group run to a shorter budget keeps its own length and
    is compared with the leader there (never two methods at different lengths)."""
    own = {(g.env, g.method): min(last_step(r) for r in g.runs) for g in groups if g.runs}  # counted runs only
    longest: dict[str, float] = {}
    for (env, _), steps in own.items():
        longest[env] = max(longest.get(env, 0.0), steps)
    full = {key: steps >= FULL_LENGTH_SHARE * longest[key[0]] for key, steps in own.items()}
    common: dict[str, float] = {}
    for key, steps in own.items():
        if full[key]:
            common[key[0]] = min(common.get(key[0], math.inf), steps)
    return {key: (common[key[0]] if full[key] else steps, full[key]) for key, steps in own.items()}


def _values(group: Group, metric: str, steps: float) -> np.ndarray:
    values = np.array([value_at(r, metric, steps, slack=None) for r in group.runs])
    return values[np.isfinite(values)]


def final_rows(groups: Sequence[Group], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per task, method and metric: IQM over seeds of the last value logged at or before the method's
    comparison length (:func:`comparison_lengths`), with its 95% CI."""
    lengths = comparison_lengths(groups)
    rows = []
    for metric in metrics:
        for group in groups:
            if (group.env, group.method) not in lengths:  # every run of it unfinished: listed apart
                continue
            steps, full = lengths[(group.env, group.method)]
            values = _values(group, metric, steps)
            if not values.size:
                continue
            est = iqm({"m": values[:, None]})["m"]
            rows.append({"env": group.env, "method": group.method, "metric": metric, "iqm": est.value,
                         "ci_low": est.low, "ci_high": est.high, "seeds": int(values.size),
                         "steps": int(steps), "full_length": full, "values": values.tolist()})
    return rows


def _comparison(lead_values: np.ndarray, other: dict[str, Any], lead: str = "") -> str:
    """"<other> (<IQM>, <seeds>): [<lead>] ahead by <d>, P(lead > it) = p [lo, hi]"."""
    p = probability_of_improvement(lead_values[:, None], np.array(other["values"])[:, None])
    lead_iqm = iqm({"m": lead_values[:, None]})["m"].value
    who = f"{lead} (IQM {_num(lead_iqm)}) " if lead else ""
    return (f"{other['method']} ({_num(other['iqm'])}, {_seeds(other['seeds'])}): {who}ahead by "
            f"{_num(lead_iqm - other['iqm'])}, P(lead > it) = {p.value:.2f} [{p.low:.2f}, {p.high:.2f}]")


def verdict_lines(finals: Sequence[dict[str, Any]], metric: str, groups: Sequence[Group] = ()) -> list[str]:
    """Per task: the ranking by IQM of the final value among the methods that ran the full budget, and
    P(leader > other) with its CI; methods run to a shorter budget are compared with the leader at
    their own length (the leader's values read there from ``groups``)."""
    lines = []
    by_key = {(g.env, g.method): g for g in groups}
    for env in sorted({r["env"] for r in finals if r["metric"] == metric}):
        rows = [r for r in finals if r["env"] == env and r["metric"] == metric]
        ranked = sorted((r for r in rows if r.get("full_length", True)), key=lambda r: -r["iqm"])
        shorter = [r for r in rows if not r.get("full_length", True)]
        if len(rows) < 2:
            only = rows[0]
            lines.append(f"- **{env}**: only {only['method']} ran ({_seeds(only['seeds'])}, IQM {_num(only['iqm'])} "
                         f"at {only['steps']:,} steps); nothing to compare.")
            continue
        if not ranked:  # the full-budget methods never logged this metric
            continue
        lead = ranked[0]
        parts = [_comparison(np.array(lead["values"]), other) for other in ranked[1:]]
        few = " With fewer than 5 seeds a side these intervals are rough." if min(r["seeds"] for r in rows) < 5 else ""
        line = (f"- **{env}**, compared at {lead['steps']:,} steps (the length every run of these methods reached): "
                f"{lead['method']} leads (IQM {_num(lead['iqm'])}, {_seeds(lead['seeds'])})")
        line += (" over " + "; ".join(parts) + ".") if parts else "."
        for other in shorter:
            lead_group = by_key.get((env, lead["method"]))
            if lead_group is None:
                continue
            at_length = _values(lead_group, metric, other["steps"])
            if not at_length.size:  # the leader logged nothing by then (a sparse evaluation cadence)
                continue
            line += (f" {other['method']} ran {other['steps']:,} steps only; there, "
                     + _comparison(at_length, other, lead["method"]) + ".")
        lines.append(line + few)
    return lines


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def _shown(path: Path, base: Path) -> str:
    """``path`` relative to the page's folder (so a committed page's links hold anywhere)."""
    return os.path.relpath(path, base)


ANALYSIS_FILE = "analysis.md"  # written by people, kept beside the runs, included in the page as it is


def markdown(groups: Sequence[Group], milestones: Sequence[dict], finals: Sequence[dict], metrics: Sequence[str],
             figure_name: str, command: str, notes: Sequence[str], base: Path, analysis: str | None = None,
             profile: tuple[str, Sequence[str], Sequence[str]] | None = None,
             aggregate: Sequence[dict] = ()) -> str:
    parts = ["# ratbench report", "", f"Generated by `{command}` from the run directories listed at the end.", ""]
    if analysis:
        parts += ["## Analysis", "", f"(from `{ANALYSIS_FILE}`, written by the people who ran the suite)", "",
                  analysis.strip(), ""]
    for metric in metrics:
        lines = verdict_lines(finals, metric, groups)
        if lines:
            parts += [f"## Verdict by final {metric}", "", *lines, ""]
    parts += ["## Curves", "", f"![learning curves]({figure_name})", "",
              "IQM over seeds with 95% stratified-bootstrap bands (rliable); published numbers from other "
              "harnesses are hollow black markers, labelled with their task version.", ""]
    if profile is not None:
        metric, tasks, methods = profile
        parts += ["## Performance profile", "", f"![performance profile]({PROFILE_FIGURE})", "",
                  f"{', '.join(methods)} across {', '.join(tasks)} (the largest set of methods that all ran the same "
                  f"tasks; other methods and tasks are left out): each run's final {metric} normalised per task by "
                  "these methods' IQMs, (x - trailing IQM) / (leading IQM - trailing IQM), so 1.0 is the leading "
                  "method's IQM and 0.0 the trailing one's, and the fraction of a method's "
                  "runs above each threshold τ, with 95% stratified-bootstrap bands (rliable). A method's "
                  "runs are trimmed to its smallest seed count over the tasks.", ""]
        if aggregate:
            leader = aggregate[0]["method"]
            rows = [[r["method"], f"{r['iqm']:.2f} [{r['iqm_low']:.2f}, {r['iqm_high']:.2f}]", str(r["runs"]),
                     "leader" if r["p_leader_better"] is None
                     else f"{r['p_leader_better']:.2f} [{r['p_low']:.2f}, {r['p_high']:.2f}]"] for r in aggregate]
            parts += [f"Aggregate over these tasks (rliable): the IQM of every (run, task) normalised {metric} with its "
                      f"95% stratified-bootstrap CI, and the probability that {leader} beats each method on a task "
                      "drawn at random, P(X > Y) averaged over the tasks.", "",
                      _md_table(["method", f"IQM of normalised {metric} [95% CI]", "runs per task",
                                 f"P({leader} > method) [95% CI]"], rows), ""]
    for metric in metrics:
        rows = [r for r in milestones if r["metric"] == metric]
        if not rows:
            continue
        steps = sorted({r["step"] for r in rows if r["source"] == "ratbench"})
        parts += [f"## {metric} at milestones (min / median / max over seeds)", ""]
        table = []
        for env in sorted({r["env"] for r in rows}):
            for method in sorted({r["method"] for r in rows if r["env"] == env}):
                mine = [r for r in rows if r["env"] == env and r["method"] == method]
                if mine[0]["source"] == "ratbench":
                    cells = []
                    for step in steps:
                        r = next((x for x in mine if x["step"] == step), None)
                        cells.append("–" if r is None or r["seeds"] == 0 else
                                     f"{_num(r['min'])} / {_num(r['median'])} / {_num(r['max'])} ({r['seeds']})")
                else:
                    cells = [", ".join(f"{_num(x['median'])} at {x['step'] / 1e6:.2f}M" for x in mine)] + [""] * (len(steps) - 1)
                table.append([env, method, *cells])
        parts += [_md_table(["task", "method", *[f"{s / 1e6:g}M steps (seeds)" for s in steps]], table), ""]
        parts += ["Published rows list their own logged points (their steps differ from the milestones).", ""]
    parts += ["## Final values", "", _md_table(
        ["task", "method", "metric", "IQM [95% CI]", "seeds", "at env steps"],
        [[r["env"], r["method"], r["metric"], f"{_num(r['iqm'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]",
          str(r["seeds"]), f"{r['steps']:,}"] for r in finals]), "",
              "Each value is the last one logged at or before its comparison length: the length every run of the "
              "methods that ran the task's full budget reached, or a shorter-budget method's own length.", ""]
    unfinished = [(g, r) for g in groups for r in g.unfinished]
    if unfinished:
        parts += ["## Unfinished runs (not in the statistics)", ""]
        parts += [f"- {g.env} {g.method} seed {r.config['seed']}: {last_step(r):,.0f} of {int(r.config['steps']):,} steps (`{_shown(r.path, base)}`)"
                  for g, r in unfinished] + [""]
    if notes:
        parts += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    parts += ["## Runs", ""]
    parts += [f"- {g.env} {g.method} seed {r.config['seed']}: `{_shown(r.path, base)}`" for g in groups for r in g.runs]
    return "\n".join(parts) + "\n"


def render_html(md: str, images: dict[str, bytes]) -> str:
    """A self-contained page (figures embedded by file name, no scripts): the markdown's text, tables as tables."""
    body, table = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-"):
                table.append(cells)
            continue
        if table:
            rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>"
                                           for c in row) + "</tr>" for i, row in enumerate(table))
            body.append(f"<table>{rows}</table>")
            table = []
        if line.startswith("!["):
            alt, name = line[2:].split("](", 1)
            data = base64.b64encode(images[name.rstrip(")")]).decode()
            body.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    style = "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}"
    return f"<!doctype html><meta charset='utf-8'><title>ratbench report</title><style>{style}</style>" + "\n".join(body)


PROFILE_FIGURE = "profile.png"


def write_report(out: Path, md: str, png: bytes, milestones: Sequence[dict], finals: Sequence[dict],
                 profile_png: bytes | None = None, aggregate: Sequence[dict] = ()) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    images = {"curves.png": png, **({PROFILE_FIGURE: profile_png} if profile_png is not None else {})}
    files = {"README.md": md, "report.html": render_html(md, images)}
    written = []
    for name, text in files.items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    atomic_write_bytes(out / "curves.png", png)
    if profile_png is not None:
        atomic_write_bytes(out / PROFILE_FIGURE, profile_png)
        written.append(out / PROFILE_FIGURE)
    elif (out / PROFILE_FIGURE).is_file():  # a profile from an earlier report of other runs would mislead
        (out / PROFILE_FIGURE).unlink()
    write_csv(out / "milestones.csv", milestones, list(milestones[0]) if milestones else ["env"])
    write_csv(out / "final.csv", [{k: v for k, v in r.items() if k != "values"} for r in finals],
              [k for k in (finals[0] if finals else {"env": 0}) if k != "values"])
    write_json(out / "summary.json", {"milestones": list(milestones), "final": list(finals),
                                      "aggregate": list(aggregate)})
    return written + [out / "curves.png", out / "milestones.csv", out / "final.csv", out / "summary.json"]
