"""The report page: tables in words and numbers, written as markdown, HTML, CSV and JSON."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Mapping, Sequence

from ratbench.io import atomic_write_bytes, atomic_write_text, write_csv, write_json
from ratbench.reporting.comparisons import Comparison, PairResult
from ratbench.reporting.methods import Group, last_step
from ratbench.reporting.normalisation import Anchors
from ratbench.reporting.stats import BOOTSTRAP_MIN_RUNS, PERMUTATIONS, Block
from ratbench.reporting.tables import mark_differences, number_text, verdict_lines
from ratbench.reporting.windows import WINDOW_SHARE


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def _shown(path: Path, base: Path) -> str:
    """``path`` relative to the page's folder (so a committed page's links hold anywhere)."""
    return os.path.relpath(path, base)


ANALYSIS_FILE = "analysis.md"  # written by people, kept beside the runs, included in the page as it is


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None else f"[{number_text(low)}, {number_text(high)}]"


def _ratio_interval(low: float | None, high: float | None) -> str:
    return "–" if low is None else f"[{low:.3g}, {high:.3g}]"


def _scoring_section(coverage: Mapping[int, float]) -> list[str]:
    seeds = ", ".join(f"{coverage[n]:.1%} at {n} seeds" for n in sorted(coverage))
    return ["## How runs are scored", "",
             f"- **Window.** A run's score is the mean of its points over the last {WINDOW_SHARE:.0%} of the common "
             "budget (the smallest budget among the methods that ran a task in full): its deterministic evaluations, "
             "each placed at the step mark it stands for, for eval_return; its logged training returns (each the "
             "mean of the last 100 training episodes) for train_return. The final table gives the window and how "
             "many points each run has in it; runs evaluated at different steps are listed below.",
             "- **Per task.** The IQM over seeds of those scores (the 25% trimmed mean, rliable's estimator; below "
             "4 seeds it trims nothing and the table says *mean*), with the Tukey-McLaughlin 95% t-interval of a "
             "trimmed mean (Yuen 1974), which assumes roughly normal seed scores; simulated coverage on normal "
             f"seeds: {seeds} (the percentile bootstrap covers about 76% at 3 seeds). One seed: no interval, no P.",
             "- **Comparisons.** P(X > Y) is the share of run pairs in which X's score is higher (ties half), "
             "with the exact one-sided permutation p-value of the Mann-Whitney test beside it (3 runs against 3 "
             "fully separated runs: p = 0.05, the smallest possible). P is on raw scores.",
             "- **Across tasks.** Scores normalised per task by fixed anchors, (x - random) / (reference - random): "
             "random is the uniform-random score measured by `ratbench random-score`, reference a published score "
             "(table below), so a method's normalised score never depends on which other methods are on the page. "
             "Aggregates per benchmark family use rliable (IQM with stratified-bootstrap 95% intervals, shown from "
             f"{BOOTSTRAP_MIN_RUNS} runs per task; P(X > Y) averaged over tasks with a stratified permutation "
             f"p-value, {PERMUTATIONS:,} draws).", ""]


def _anchor_table(anchors: Mapping[str, Anchors], finals: Sequence[dict]) -> list[str]:
    shown = sorted({r["env"] for r in finals} & set(anchors))
    missing = sorted({r["env"] for r in finals} - set(anchors))
    if not shown:
        return []
    rows = [[env, number_text(anchors[env].random), f"`{anchors[env].random_command}`", number_text(anchors[env].reference.score),
             f"{anchors[env].reference.method}: {anchors[env].reference.source}"] for env in shown]
    parts = ["### Normalisation anchors", "", _md_table(["task", "random", "measured by", "reference", "reference source"], rows), ""]
    if missing:
        parts += [f"No anchors (no normalised score, left out of aggregates): {', '.join(missing)}.", ""]
    return parts


def _p_shown(p: float | None) -> str:
    """A stratified permutation p-value; at the draws' resolution, 1 / (draws + 1), it is an upper bound."""
    if p is None:
        return ""
    return f"≤ {p:.2g}" if p <= 1 / (PERMUTATIONS + 1) else f"{p:.2g}"


def _p_equation(p: float) -> str:
    """``p = 0.16``, or ``p ≤ 5e-05`` at a permutation test's resolution (:func:`_p_shown`)."""
    shown = _p_shown(p)
    return f"p {shown}" if shown.startswith("≤") else f"p = {shown}"


def _aggregate_section(blocks: Sequence[tuple[Block, Sequence[dict]]], metric: str) -> list[str]:
    if not blocks:
        return []
    parts = ["## Across tasks", "", f"![performance profiles]({PROFILE_FIGURE})", ""]
    for block, rows in blocks:
        leader = rows[0]["method"]
        rough = block.rough
        parts += [f"**{block.family}**: {', '.join(block.scores)} on {', '.join(block.tasks)} (the largest set of "
                  f"{block.family} tasks that every one of these methods ran; {block.runs_per_task} runs per task"
                  + (": too few for a bootstrap interval, so none is shown" if rough else "") + "). Fixed-normalised window "
                  f"{metric}; the profile (left out: other methods and tasks) gives the share of runs above each τ.", ""]
        if block.unanchored:
            parts += [f"Left out for want of a normalisation anchor: {', '.join(block.unanchored)}.", ""]
        if block.cut:
            parts += ["Cut to the same count on every task (rliable's matrices), each keeping its lowest seeds: "
                      + ", ".join(f"{method} ({n} run{'s' if n > 1 else ''} left out)" for method, n in block.cut.items())
                      + ".", ""]
        def shown(low: float | None, high: float | None) -> str:  # no interval from too few runs, or of zero width
            return "" if rough or low is None or not high > low else f" [{low:.2f}, {high:.2f}]"

        table = [[r["method"], f"{r['iqm']:.2f}{shown(r['iqm_low'], r['iqm_high'])}", str(r["runs"]),
                  "leader" if r["p_leader_better"] is None else f"{r['p_leader_better']:.2f}{shown(r['p_low'], r['p_high'])}",
                  _p_shown(r["p_value"])] for r in rows]
        parts += [_md_table(["method", f"IQM of normalised {metric}" + ("" if rough else " [95% CI]"), "runs per task",
                             f"P({leader} > method)" + ("" if rough else " [95% CI]"), "one-sided p"], table), ""]
    return parts


def _comparison_section(comparison: Comparison, results: Sequence[PairResult], missing: Sequence[str],
                        metric: str) -> list[str]:
    """One declared comparison: P(first > second) per task with its exact p, and across the common anchored tasks."""
    parts = [f"## {comparison.title}", ""] + ([comparison.note.strip(), ""] if comparison.note.strip() else [])
    if missing:
        parts += [f"No finished runs yet of: {', '.join(missing)}.", ""]
    if not results:
        return parts
    tasks = sorted({env for r in results for env in r.per_task})
    table = []
    for r in results:
        cells = []
        for env in tasks:
            if env not in r.per_task:
                cells.append("–")
            elif r.per_task[env] is None:
                cells.append(f"– (one seed; {r.seeds[env][0]} vs {r.seeds[env][1]})")
            else:
                test = r.per_task[env]
                cells.append(f"{test.probability:.2f} ({_p_equation(test.p_value)}; {r.seeds[env][0]} vs {r.seeds[env][1]})")
        across = "; ".join(
            f"{a.family} {a.test.probability:.2f}"
            + ("" if a.interval is None else f" [{a.interval.low:.2f}, {a.interval.high:.2f}]")
            + f" ({_p_equation(a.test.p_value)}; {len(a.tasks)} task{'s' if len(a.tasks) > 1 else ''})"
            for a in r.aggregates) or "– (no common task with an anchor)"
        verdict = [] if r.verdict is None else [
            "supported" if r.verdict[0] else r.verdict[1] if r.verdict[0] is None else f"not supported: {r.verdict[1]}"]
        table.append([f"{r.first} > {r.second}", *cells, across, *verdict])
    rule = [] if comparison.rule is None else [
        f"The rule declared in comparisons.yaml: a pair is {comparison.rule.describe()}.", ""]
    parts += [f"Window {metric}. Each cell: P(first > second) over seed pairings (ties half), the exact one-sided "
              "permutation p-value and the seeds on each side; across tasks, per benchmark family: P averaged over the "
              f"common tasks with a normalisation anchor, its 95% stratified-bootstrap interval (from {BOOTSTRAP_MIN_RUNS} "
              f"runs per task, the same count on every task) and its stratified permutation p ({PERMUTATIONS:,} draws).", "", *rule,
              _md_table(["P(first > second)", *tasks, "across tasks", *(["rule"] if comparison.rule else [])], table), ""]
    return parts


def markdown(groups: Sequence[Group], milestones: Sequence[dict], finals: Sequence[dict], metrics: Sequence[str],
             figure_name: str, command: str, notes: Sequence[str], base: Path, analysis: str | None = None,
             blocks: Sequence[tuple[Block, Sequence[dict]]] = (), profile_metric: str = "eval_return",
             anchors: Mapping[str, Anchors] | None = None, coverage: Mapping[int, float] | None = None,
             comparisons: Sequence[tuple[Comparison, Sequence[PairResult], Sequence[str]]] = (),
             subpages: Sequence[tuple[Path, Sequence[str]]] = ()) -> str:
    """The page as markdown; ``subpages`` are (folder, what it holds: its comparisons' titles, or for a page that
    declares none its run count) of the pages of their own below it (:func:`~ratbench.reporting.runs.find_run_dirs`
    skips them), linked and not folded in."""
    anchors = {} if anchors is None else anchors
    parts = ["# ratbench report", "", f"Generated by `{command}` from the run directories listed at the end.", ""]
    if analysis:
        parts += ["## Analysis", "", f"(from `{ANALYSIS_FILE}`, written by the people who ran the suite)", "",
                  analysis.strip(), ""]
    parts += _scoring_section(coverage or {})
    parts += _anchor_table(anchors, finals)
    for metric in metrics:
        lines = verdict_lines(finals, metric, groups)
        if lines:
            parts += [f"## Verdict by window {metric}", "", *lines, ""]
    differ = mark_differences(finals)
    if differ:
        parts += ["## Runs evaluated at different steps", "",
                  "Evaluations inside each task's scoring window, where not every run was evaluated at the same "
                  "steps (runs made before evaluation marks existed evaluated every N iterations, so at steps that "
                  "depend on their batch):", "", *differ, ""]
    parts += _aggregate_section(blocks, profile_metric)
    for comparison, results, missing in comparisons:
        parts += _comparison_section(comparison, results, missing, profile_metric)
    if subpages:
        parts += ["## Pages of their own", "",
                  "Folders below this one that hold their own `comparisons.yaml`: their runs are on their page, not here.",
                  ""]
        parts += [f"- [{_shown(page, base)}]({_shown(page, base)}/README.md)" + (": " + "; ".join(titles) if titles else "")
                  for page, titles in subpages] + [""]
    parts += ["## Curves", "", f"![learning curves]({figure_name})", "",
              "IQM over seeds with 95% percentile-bootstrap bands (rliable; rough below 5 seeds); evaluations are "
              "placed at their marks; published numbers from other harnesses are hollow black markers, labelled "
              "with their task version.", ""]
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
                                     f"{number_text(r['min'])} / {number_text(r['median'])} / {number_text(r['max'])} ({r['seeds']})")
                else:
                    cells = [", ".join(f"{number_text(x['median'])} at {x['step'] / 1e6:.2f}M" for x in mine)] + [""] * (len(steps) - 1)
                table.append([env, method, *cells])
        parts += [_md_table(["task", "method", *[f"{s / 1e6:g}M steps (seeds)" for s in steps]], table), ""]
        parts += ["Each value is the last one logged at or before the milestone (within 5%); published rows list "
                  "their own logged points (their steps differ from the milestones).", ""]
    parts += ["## Window scores", "", _md_table(
        ["task", "method", "metric", "estimator", "score [95% interval]", "normalised [95% interval]", "seeds",
         "window (env steps)", "points per run"],
        [[r["env"], r["method"], r["metric"], r["estimator"], f"{number_text(r['iqm'])} {_interval(r['ci_low'], r['ci_high'])}",
          "–" if r["normalised"] is None else f"{r['normalised']:.3g} {_ratio_interval(r['normalised_low'], r['normalised_high'])}",
          str(r["seeds"]), f"{r['window_from']:,}-{r['steps']:,}",
          str(r["points_min"]) if r["points_min"] == r["points_max"] else f"{r['points_min']}-{r['points_max']}"]
         for r in finals]), "",
              "Window: the last 10% of the common budget (the smallest budget among the methods that ran the task in "
              "full), or of a shorter-budget method's own budget. Interval: Tukey-McLaughlin 95% t-interval of the "
              "IQM (– for one seed). Normalised: (x - random) / (reference - random) with the task's fixed anchors.", ""]
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
REPORT_FILES = ("README.md", "report.html", "curves.png", PROFILE_FIGURE, "milestones.csv", "final.csv", "summary.json")
"""What :func:`write_report` may write in its folder."""


def write_report(out: Path, md: str, png: bytes, milestones: Sequence[dict], finals: Sequence[dict],
                 profile_png: bytes | None = None, aggregates: Sequence[dict] = (),
                 comparisons: Sequence[dict] = ()) -> list[Path]:
    """README.md, report.html, the figures, milestones.csv, final.csv (one row per task, method and metric;
    per-seed values and marks only in summary.json) and summary.json (``aggregates``: one entry per family;
    ``comparisons``, when the page declares any: one entry per comparison)."""
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
    per_seed = ("values", "seed_marks")
    write_csv(out / "milestones.csv", milestones, list(milestones[0]) if milestones else ["env"])
    write_csv(out / "final.csv", [{k: v for k, v in r.items() if k not in per_seed} for r in finals],
              [k for k in (finals[0] if finals else {"env": 0}) if k not in per_seed])
    write_json(out / "summary.json", {"milestones": list(milestones), "final": list(finals),
                                      "aggregates": list(aggregates), **({"comparisons": list(comparisons)} if comparisons else {})})
    return written + [out / "curves.png", out / "milestones.csv", out / "final.csv", out / "summary.json"]
