"""An independent review of the committed pages' other recomputable numbers: anchors, window scores, aggregates.

Like test_published_comparisons.py (whose reading of pages, runs and windows this shares: tests/results/review.py),
without importing ratbench: every number below is recomputed from the committed run files and the two data files the
reporting code reads its anchors from, and compared with the page at the precision it prints.

- **Normalisation anchors** ("### Normalisation anchors"): the tasks are those of the page that have both anchors, the
  rest named on the "No anchors" line. ``random`` and its command are ratbench/reporting/random_scores.yaml's entry
  (``score``, ``command``, the command naming the entry's ``episodes`` and ``seed``); ``reference`` and its source
  are ratbench/reporting/published.yaml's ``reference_scores`` entry (``score``; ``method: source``).
- **Window scores** ("## Window scores"): one row per metric (the page's, train_return then eval_return unless its
  command names ``--metric``), task and method (sorted), for each method with a finished run scored in its window:
  the common budget's last 10% (its own budget's, for a method run shorter than 98% of the task's longest). The
  estimator is the 25%-trimmed mean (``scipy.stats.trim_mean(x, 0.25)``: ``int(n / 4)`` seeds cut a side, so below
  4 seeds the *mean*) with the Tukey-McLaughlin 95% t-interval: ``scipy.stats.mstats.winsorize`` at the same cut,
  ``se = sqrt((n - 1) s_w^2 / (h (h - 1)))`` with ``h`` seeds kept, ``scipy.stats.t.interval`` on ``h - 1``
  degrees of freedom; one seed: no interval. Normalised: ``(x - random) / (reference - random)`` with the files'
  anchors, point and interval ends alike. Also the seed count, the window and the points each run has in it.
- **Across tasks** ("## Across tasks"): per benchmark family (sorted), over the full-length methods' scores of the
  page's profile metric (eval_return where the page has it): the largest block of anchored tasks that at least 2
  methods all ran (most tasks x methods, then most tasks, then the last task list in sorted order; found here by
  trying every subset of the family's tasks), the unanchored tasks named, each method cut to its smallest run
  count over the block's tasks keeping its lowest seeds (the cut named on the page). Per method: the IQM of all its
  normalised (run, task) scores as rliable's ``metrics.aggregate_iqm`` (``scipy.stats.trim_mean(scores, 0.25,
  axis=None)``: the flattened scores sorted, ``int(N / 4)`` cut from each end, the rest averaged; checked
  against rliable itself in a scratch session, not imported here), the rows ordered by it, the leader, the runs
  per task (each method's, and in the block's heading the least over its methods: below the page's bootstrap
  minimum no interval is printed), and P(leader > method): per task the Mann-Whitney U over n*m (ties half) of the cut runs, averaged over the
  block's tasks. Random bootstrap intervals and permutation p-values are not recomputed: a printed interval must
  hold its point, a p must be a probability above the draws' resolution or "≤" it.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tests.results.review import (DASHES, RESULTS, TRIM, PageRuns, Review, Scored, anchor_files, anchor_table,
                                  committed_runs, family, load_page_runs, normalise, number, p_and_pvalue, page_metrics,
                                  printed_agrees, report_pages, sections, table_rows, trimmed_interval, window_points,
                                  assert_recomputes, copy_ablation_page, interval_holds, page_id, set_window_evaluations)

# ---------------------------------------------------------------------------------------------------------- stats


def pooled_iqm(matrix: np.ndarray) -> float:
    """rliable's aggregate_iqm: scipy.stats.trim_mean(matrix, 0.25, axis=None), by sorting and slicing."""
    flat = np.sort(np.asarray(matrix, dtype=float).ravel())
    cut = int(TRIM * flat.size)
    return float(flat[cut:flat.size - cut].mean())


def largest_block(ran: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """(tasks, methods): the task set, over every subset of the tasks, that the most method x task cells cover with
    every method running every task and at least 2 methods; ties to more tasks, then the last sorted task list."""
    every = sorted(set().union(*ran.values())) if ran else []
    best: tuple[tuple, list[str], list[str]] = ((0, 0, ()), [], [])
    for size in range(1, len(every) + 1):
        for tasks in itertools.combinations(every, size):
            methods = sorted(m for m, have in ran.items() if set(tasks) <= have)
            key = (len(methods) * size, size, tasks)
            if len(methods) >= 2 and key > best[0]:
                best = (key, list(tasks), methods)
    return best[1], best[2]


# ---------------------------------------------------------------------------------------------------------- page


def review_anchors(page: Path, runs: PageRuns, anchors: dict[str, dict] | None = None) -> Review:
    """The anchor table against random_scores.yaml and published.yaml; ``cells`` counts the anchor values checked."""
    anchors = anchor_files() if anchors is None else anchors
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    tasks = {s.env for metric in page_metrics(text) for s in runs.scored(metric)}
    rows = anchor_table(text)
    shown, missing = sorted(tasks & set(anchors)), sorted(tasks - set(anchors))
    review.expect([r[0] for r in rows] == shown, "Normalisation anchors",
                  f"tasks {[r[0] for r in rows]}, recomputed (the page's tasks with both anchors) {shown}")
    line = next((l for l in text.splitlines() if l.startswith("No anchors (no normalised score")), None)
    review.expect(line == (f"No anchors (no normalised score, left out of aggregates): {', '.join(missing)}."
                           if missing else None), "Normalisation anchors", f"line {line!r}, recomputed unanchored {missing}")
    for row in rows:
        where = f"Normalisation anchors / {row[0]}"
        if len(row) != 5 or row[0] not in anchors:
            review.expect(False, where, f"cannot read the row {row} or the task has no anchors in the files")
            continue
        env, random, command, reference, source = row
        mine = anchors[env]
        review.cells += 2
        review.expect(printed_agrees(random, mine["random"], "number"), where,
                      f"random: page {random}, random_scores.yaml {mine['random']}")
        review.expect(command == f"`{mine['command']}`", where,
                      f"measured by: page {command}, random_scores.yaml {mine['command']!r}")
        review.expect(mine["command"] == f"ratbench random-score {env} --episodes {mine['episodes']} --seed {mine['seed']}",
                      where, f"random_scores.yaml's command {mine['command']!r} is not its entry's task, "
                      f"episodes ({mine['episodes']}) and seed ({mine['seed']})")
        review.expect(printed_agrees(reference, mine["reference"], "number"), where,
                      f"reference: page {reference}, published.yaml {mine['reference']}")
        review.expect(source == f"{mine['method']}: {mine['source']}", where,
                      f"reference source: page {source!r}, published.yaml {mine['method']}: {mine['source']!r}")
    return review


WINDOW_HEAD = ["task", "method", "metric", "estimator", "score [95% interval]", "normalised [95% interval]", "seeds",
               "window (env steps)", "points per run"]
SCORE = re.compile(r"^(-?[\d,]+(?:\.\d+)?(?:e[+-]\d+)?) (?:[–-]|\[(-?[\d,.e+-]+), (-?[\d,.e+-]+)\])$")


def review_window_scores(page: Path, runs: PageRuns, anchors: dict[str, dict] | None = None) -> Review:
    """Every row of the window-scores table from the runs; ``cells`` counts the rows recomputed."""
    anchors = anchor_files() if anchors is None else anchors
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    table = table_rows(sections(text).get("Window scores", []))
    if not table or table[0] != WINDOW_HEAD:
        review.expect(False, "Window scores", f"no table headed {WINDOW_HEAD}")
        return review
    mine = {(s.metric, s.env, s.method): s for metric in page_metrics(text) for s in runs.scored(metric)}
    printed = [(r[2], r[0], r[1]) for r in table[1:]]
    review.expect(printed == list(mine), "Window scores", f"rows (metric, task, method) only on the page "
                  f"{sorted(set(printed) - set(mine))[:5]}, only recomputed {sorted(set(mine) - set(printed))[:5]}, "
                  "or not in the page's order (metric, then task and method sorted)")
    for row in table[1:]:
        key = (row[2], row[0], row[1])
        where = f"Window scores / {row[0]} / {row[1]} / {row[2]}"
        if key not in mine:
            continue  # reported by the row comparison above
        if len(row) != len(WINDOW_HEAD):
            review.expect(False, where, f"cannot read the row: {len(row)} cells, the table has {len(WINDOW_HEAD)}")
            continue
        scored = mine[key]
        review.cells += 1
        _, _, _, estimator, score, normalised, seeds, window, points = row
        n = len(scored.values)
        review.expect(seeds == str(n), where, f"seeds: page {seeds}, recomputed {n}")
        review.expect(estimator == ("mean" if int(TRIM * n) == 0 else "IQM"), where, f"estimator {estimator} at {n} seeds")
        low_high = window.split("-")
        review.expect(len(low_high) == 2 and abs(number(low_high[0]) - scored.low) < 1
                      and number(low_high[1]) == scored.high, where,
                      f"window: page {window}, recomputed {scored.low:,.0f}-{scored.high:,.0f}")
        shown = f"{min(scored.points)}" + (f"-{max(scored.points)}" if min(scored.points) != max(scored.points) else "")
        review.expect(points == shown, where, f"points per run: page {points}, recomputed {shown}")
        point, low, high = trimmed_interval(scored.values)
        m = SCORE.match(score)
        if not m:
            review.expect(False, where, f"cannot read the score {score!r}")
            continue
        review.expect(printed_agrees(m[1], point, "number"), where, f"score: page {m[1]}, recomputed {point:.6g}")
        review.expect((m[2] is None) == (low is None), where, f"score {score!r}: an interval where {n} seeds "
                      + ("give none" if low is None else "give one"))
        if m[2] is not None and low is not None:
            review.expect(printed_agrees(m[2], low, "number") and printed_agrees(m[3], high, "number"), where,
                          f"score interval: page [{m[2]}, {m[3]}], recomputed [{low:.6g}, {high:.6g}]")
        anchor = anchors.get(scored.env)
        if anchor is None:
            review.expect(normalised in DASHES, where, f"normalised {normalised!r} for a task without both anchors")
            continue
        m = SCORE.match(normalised)
        if not m:
            review.expect(False, where, f"cannot read the normalised score {normalised!r}")
            continue
        review.expect(printed_agrees(m[1], normalise(point, anchor), "3g"), where,
                      f"normalised: page {m[1]}, recomputed {normalise(point, anchor):.6g}")
        review.expect((m[2] is None) == (low is None), where, f"normalised {normalised!r}: interval at {n} seeds")
        if m[2] is not None and low is not None:
            lo, hi = normalise(low, anchor), normalise(high, anchor)
            review.expect(printed_agrees(m[2], lo, "3g") and printed_agrees(m[3], hi, "3g"), where,
                          f"normalised interval: page [{m[2]}, {m[3]}], recomputed [{lo:.6g}, {hi:.6g}]")
    return review


BLOCK = re.compile(r"^\*\*(.+?)\*\*: (.+) on (.+?) \(the largest set of (.+?) tasks that every one of these methods "
                   r"ran; (\d+) runs per task(: too few for a bootstrap interval, so none is shown)?\)\. "
                   r"Fixed-normalised window (\S+);")
TWO = r"-?\d+\.\d\d"
ESTIMATE = re.compile(rf"^({TWO})(?: \[({TWO}), ({TWO})\])?$")


def family_blocks(runs: PageRuns, metric: str, anchors: dict[str, dict]) -> list[dict]:
    """Per family with a block: its tasks, methods, unanchored tasks, cuts and each method's (runs, tasks) matrix."""
    rows = [s for s in runs.scored(metric) if s.full_length]
    blocks = []
    for name in sorted({family(s.env) or "other" for s in rows}):
        mine = [s for s in rows if (family(s.env) or "other") == name]
        ran: dict[str, set[str]] = {}
        for s in mine:
            if s.env in anchors:
                ran.setdefault(s.method, set()).add(s.env)
        tasks, methods = largest_block(ran)
        if not methods:
            continue
        cell: dict[tuple[str, str], Scored] = {(s.env, s.method): s for s in mine}
        matrices, cut = {}, {}
        for method in methods:
            per_task = [cell[env, method].values for env in tasks]  # by seed
            n = min(len(v) for v in per_task)
            matrices[method] = np.array([[normalise(v[i], anchors[env]) for env, v in zip(tasks, per_task)]
                                         for i in range(n)])
            if sum(len(v) for v in per_task) > n * len(tasks):
                cut[method] = sum(len(v) for v in per_task) - n * len(tasks)
        blocks.append({"family": name, "tasks": tasks, "methods": methods, "matrices": matrices, "cut": cut,
                       "unanchored": sorted({s.env for s in mine if s.env not in anchors})})
    return blocks


def review_aggregates(page: Path, runs: PageRuns, anchors: dict[str, dict] | None = None) -> Review:
    """Every "## Across tasks" block from the runs; ``cells`` counts the IQM, runs-per-task and P cells recomputed."""
    anchors = anchor_files() if anchors is None else anchors
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    metrics = page_metrics(text)
    metric = "eval_return" if "eval_return" in metrics else metrics[0]
    minimum = re.search(r"shown from (\d+) runs per task", text)
    draws = re.search(r"stratified permutation p-value, ([\d,]+) draws", text)
    mine = family_blocks(runs, metric, anchors)
    lines = sections(text).get("Across tasks")
    if lines is None:  # a page with one task per family: nothing to aggregate
        review.expect(not mine, "Across tasks", f"no section, recomputed blocks for {[b['family'] for b in mine]}")
        review.cells += 1  # the section's absence, recomputed
        return review
    if minimum is None or draws is None:
        review.expect(False, "How runs are scored", "the page states no bootstrap minimum or permutation draws")
        return review
    resolution = 1 / (number(draws[1]) + 1)
    chunks: list[list[str]] = []
    for line in lines:
        if line.startswith("**"):
            chunks.append([line])
        elif chunks:
            chunks[-1].append(line)
    heads = [BLOCK.match(c[0]) for c in chunks]
    review.expect([h[1] if h else c[0][:40] for h, c in zip(heads, chunks)] == [b["family"] for b in mine],
                  "Across tasks", f"blocks {[h[1] if h else c[0][:40] for h, c in zip(heads, chunks)]}, "
                  f"recomputed {[b['family'] for b in mine]}")
    for head, chunk, block in zip(heads, chunks, mine):
        fam = block["family"]
        where = f"Across tasks / {fam}"
        if head is None or head[1] != fam:
            continue
        counts = {m: block["matrices"][m].shape[0] for m in block["methods"]}
        per_task = min(counts.values())
        rough = per_task < int(minimum[1])
        review.expect(head[2] == ", ".join(block["methods"]), where,
                      f"methods {head[2]!r}, recomputed {', '.join(block['methods'])!r}")
        review.expect(head[3].split(", ") == block["tasks"], where, f"tasks {head[3]!r}, recomputed {block['tasks']}")
        review.expect(head[4] == fam and head[7] == metric, where, f"family {head[4]} and metric {head[7]}")
        review.expect(int(head[5]) == per_task and bool(head[6]) == rough, where,
                      f"{head[5]} runs per task{head[6] or ''}, recomputed {per_task} (bootstrap from {minimum[1]})")
        left_out = next((l for l in chunk if l.startswith("Left out for want of a normalisation anchor: ")), None)
        review.expect(left_out == (f"Left out for want of a normalisation anchor: {', '.join(block['unanchored'])}."
                                   if block["unanchored"] else None), where,
                      f"{left_out!r}, recomputed unanchored {block['unanchored']}")
        cut_line = next((l for l in chunk if l.startswith("Cut to the same count on every task")), None)
        cut_text = ", ".join(f"{m} ({n} run{'s' if n > 1 else ''} left out)" for m, n in block["cut"].items())
        review.expect((cut_line or "").endswith(f"its lowest seeds: {cut_text}.") if block["cut"] else cut_line is None,
                      where, f"{cut_line!r}, recomputed cut {block['cut']}")

        iqms = {m: pooled_iqm(block["matrices"][m]) for m in block["methods"]}
        table = table_rows(chunk)
        rows = table[1:]
        order = [r[0] for r in rows]
        review.expect(sorted(order) == block["methods"], where, f"rows {order}, recomputed methods {block['methods']}")
        review.expect(all(iqms.get(a, 0) >= iqms.get(b, 0) - 1e-9 for a, b in zip(order, order[1:])), where,
                      f"rows not ordered by the recomputed IQM: {[(m, round(iqms.get(m, math.nan), 4)) for m in order]}")
        if not rows or rows[0][0] not in iqms:
            continue
        leader = rows[0][0]
        ci = "" if rough else " [95% CI]"
        review.expect(table[0] == ["method", f"IQM of normalised {metric}{ci}", "runs per task",
                                   f"P({leader} > method){ci}", "one-sided p"], where, f"table head {table[0]}")
        for i, row in enumerate(rows):
            method = row[0]
            at = f"{where} / {method}"
            if method not in iqms or len(row) != 5:
                review.expect(False, at, f"cannot read the row {row}")
                continue
            review.cells += 1
            m = ESTIMATE.match(row[1])
            review.expect(m is not None and printed_agrees(m[1], iqms[method], "2f"), at,
                          f"IQM: page {row[1]}, recomputed {iqms[method]:.4f}")
            if m and m[2]:
                review.expect(not rough and interval_holds(m[1], m[2], m[3]), at,
                              f"IQM {row[1]}: an interval below {minimum[1]} runs per task, or not holding its point")
            review.cells += 1
            review.expect(row[2] == str(counts[method]), at, f"runs per task: page {row[2]}, recomputed {counts[method]}")
            if i == 0:
                review.expect(row[3] == "leader" and row[4] == "", at, f"the leader's row reads {row[3]!r}, {row[4]!r}")
                continue
            x, y = block["matrices"][leader], block["matrices"][method]
            probability = float(np.mean([p_and_pvalue(list(x[:, t]), list(y[:, t]))[0] for t in range(x.shape[1])]))
            review.cells += 1
            m = ESTIMATE.match(row[3])
            review.expect(m is not None and printed_agrees(m[1], probability, "2f"), at,
                          f"P({leader} > method): page {row[3]}, recomputed {probability:.4f}")
            if m and m[2]:
                review.expect(not rough and interval_holds(m[1], m[2], m[3]), at,
                              f"P {row[3]}: an interval below {minimum[1]} runs per task, or not holding its point")
            p = re.fullmatch(r"(≤ )?([0-9.]+(?:e-?\d+)?)", row[4])
            review.expect(p is not None and (p[2] == f"{resolution:.2g}" if p[1] else
                                              resolution < float(p[2]) <= 1), at,
                          f"one-sided p {row[4]!r}: not a p from {draws[1]} draws (resolution {resolution:.2g})")
    return review


# ---------------------------------------------------------------------------------------------------------- tests

PAGES = report_pages(RESULTS)
IDS = [page_id(p) for p in PAGES]


def test_the_report_pages_are_found():
    assert {"README.md", "defaults-ablation/README.md"} <= set(IDS)


PARTS = {"anchors": review_anchors, "window scores": review_window_scores, "aggregates": review_aggregates}


@pytest.mark.parametrize("page", PAGES, ids=IDS)
@pytest.mark.parametrize("part", list(PARTS))
def test_every_score_recomputes_from_the_runs(part, page):
    assert_recomputes(PARTS[part](page, committed_runs(page)), page, part)


ENV = "Hopper-v5"


def test_the_review_catches_a_changed_evaluation_in_the_aggregate(tmp_path):
    page = copy_ablation_page(tmp_path)
    runs = load_page_runs(page)
    assert not review_aggregates(page, runs).problems and not review_window_scores(page, runs).problems
    # the across-tasks table's last method (the lowest IQM): its weakest run on the task raised to the reference score
    lines = page.read_text(encoding="utf-8").splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| method | IQM of normalised eval_return |"))
    table = table_rows(list(itertools.takewhile(lambda line: line.startswith("|"), lines[head:])))
    method = table[-1][0]
    members = runs.groups[ENV, method]
    low, high = runs.window((ENV, method))
    weakest = min(members, key=lambda r: window_points(r, "eval_return", low, high).mean())
    set_window_evaluations(page.parent, weakest, low, high, anchor_files()[ENV]["reference"])
    runs = load_page_runs(page)
    problems = review_aggregates(page, runs).problems
    assert any(f"Across tasks / MuJoCo / {method}" in p and "IQM: page" in p for p in problems), problems
    problems = review_window_scores(page, runs).problems
    assert any(f"Window scores / {ENV} / {method} / eval_return" in p and "score: page" in p
               for p in problems), problems


def test_the_review_catches_a_changed_anchor(tmp_path):
    page = copy_ablation_page(tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "| Ant-v5 | -43.7 |" in text and "| 3,880 | D4RL expert" in text
    page.write_text(text.replace("| Ant-v5 | -43.7 |", "| Ant-v5 | -45.7 |").replace("| 3,880 | D4RL", "| 3,900 | D4RL"),
                    encoding="utf-8")
    problems = review_anchors(page, load_page_runs(page)).problems
    assert any("Ant-v5" in p and "random: page -45.7" in p for p in problems), problems
    assert any("Ant-v5" in p and "reference: page 3,900" in p for p in problems), problems
