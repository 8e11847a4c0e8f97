"""An independent review of the committed pages' comparison tables (``| P(first > second) | ... |``).

Every per-task cell of every comparisons table on a committed results page (results/**/README.md) is recomputed
here from the committed run files alone (summary.json for a run's task, label and seed; config.yaml for its budget;
progress.csv for its evaluations), without importing ratbench: the reporting code was read to learn the rules, and
they are re-implemented in a different way:

- **Runs of a page**: every directory below the page's folder holding progress.csv and summary.json, except
  those under a sub-folder holding its own comparisons.yaml (a page of its own, listed under "Pages of their
  own"). They must be exactly the finished runs the page's "## Runs" list names, under the same labels.
- **Finished**: the last logged env_steps reaches the config's ``steps``. **Full length**: a method's budget (the
  least over its finished runs) is at least 98% of the task's largest; the common budget is the least of the
  full-length ones, and must equal the window the page prints for the task ("scored over steps A-B").
- **Window score**: the mean of the run's metric over rows whose step lies in (A, B], an evaluation's step being
  its eval_step mark where the row logged one and its env_steps otherwise; a run with no point there has no score.
- **P(first > second)**: the Mann-Whitney U of the first side's scores over n*m (ties half) and the exact
  one-sided p: ``scipy.stats.mannwhitneyu(..., alternative="greater", method="exact")`` (by enumeration of all
  splits where scores tie). Compared with the page at its printed precision, and the seed counts exactly.
- "–" cells must be the tasks that one side did not run; "– (one seed; n vs m)" those where a side has one run.
- **Across tasks**: the mean of the per-task P over the pair's common tasks that have a normalisation anchor (the
  page's anchor table), per benchmark family; the task count too. The random stratified permutation p and the
  bootstrap interval are not recomputed; a printed interval must hold its P. A rule cell "not judged yet: T has n
  and m finished seeds" is checked against the counts.

The reading of pages and run files is shared with test_published_scores.py (anchors, window scores, aggregates):
tests/results/review.py.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.results.review import (DASHES, RESULTS, TABLE_HEAD, PageRuns, Review, _Loader, cells, committed_runs,
                                  assert_recomputes, copy_ablation_page, interval_holds, p_agrees, page_id, printed_agrees,
                                  comparison_pages, family, load_page_runs, load_run, p_and_pvalue, placed_steps, set_window_evaluations, window_points,
                                  page_anchored, page_run_dirs, page_windows, sections, window_score)


# ---------------------------------------------------------------------------------------------------------- page


CELL = re.compile(r"^(\d\.\d\d) \(p (= [0-9.e+-]+|≤ [0-9.e+-]+); (\d+) vs (\d+)\)$")
ONE_SEED = re.compile(r"^[–-] \(one seed; (\d+) vs (\d+)\)$")
ACROSS = re.compile(r"(\S+) (\d\.\d\d)(?: \[([0-9.]+), ([0-9.]+)\])? \(p (= [0-9.e+-]+|≤ [0-9.e+-]+); (\d+) tasks?\)")
NOT_YET = re.compile(r"not judged yet: (.+?) has (\d+) and (\d+) finished seeds")


def review_page(page: Path, runs: PageRuns | None = None) -> Review:
    """Recompute every comparisons table of ``page`` from the runs below its folder (``runs``, read from there when
    not given); the review lists mismatches. ``cells`` counts the per-task cells holding a P."""
    folder = page.parent
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    parts = sections(text)

    runs = load_page_runs(page) if runs is None else runs
    finished = runs.finished
    listed = {l for l in parts.get("Runs", []) if l.startswith("- ")}
    mine = {f"- {r.env} {r.method} seed {r.seed}: `{r.rel}`" for r in finished}
    review.expect(mine == listed, "## Runs", f"the finished runs below the folder are not the page's run list: only on "
                  f"disk {sorted(mine - listed)[:5]}, only on the page {sorted(listed - mine)[:5]}")
    keys = [(r.env, r.method, r.seed) for r in finished]
    review.expect(len(set(keys)) == len(keys), "runs", "two finished runs share a task, label and seed")
    groups, full, common = runs.groups, runs.full, runs.common

    comparisons = yaml.load((folder / "comparisons.yaml").read_text(encoding="utf-8"), Loader=_Loader) or []
    anchored = page_anchored(text)
    for entry in comparisons:
        title = str(entry["title"])
        if title not in parts:
            review.expect(False, f"## {title}", "comparisons.yaml declares it but the page has no such section")
            continue
        body = parts[title]
        metric_line = next((l for l in body if l.startswith("Window ") and "Each cell" in l), None)
        metric = metric_line.split()[1].rstrip(".") if metric_line else "eval_return"
        windows = page_windows(parts.get(f"Verdict by window {metric}", []))
        rule_tasks = set((entry.get("rule") or {}).get("tasks") or [])

        scores: dict[tuple[str, str], list[float]] = {}
        marks: dict[tuple[str, str], set[tuple[float, ...]]] = {}  # the window's evaluation steps of each run
        for (env, method), members in groups.items():
            if (env, method) not in full or (rule_tasks and env not in rule_tasks):
                continue
            if env not in windows:
                review.expect(False, f"{title} / {env}", "the page prints no window for this task")
                continue
            low, high = windows[env]
            review.expect(common[env] == high and math.isclose(low, 0.9 * high), f"{title} / {env}",
                          f"page window {low:,.0f}-{high:,.0f}, recomputed common budget {common[env]:,.0f}")
            values = [s for s in (window_score(r, metric, low, high) for r in members)
                      if s is not None]
            if values:
                scores[(env, method)] = values
                marks[(env, method)] = {tuple(placed_steps(r, metric)[window_points(r, metric, low, high).index])
                                        for r in members}
        have = {method for _, method in scores}
        named = list(dict.fromkeys(m for pair in entry["pairs"] for m in pair))
        missing = [m for m in named if m not in have]
        missing_line = next((l for l in body if l.startswith("No finished runs yet of: ")), None)
        shown_missing = missing_line[len("No finished runs yet of: "):].removesuffix(".") if missing_line else ""
        review.expect(shown_missing == ", ".join(missing), title, f"page says no finished runs of {shown_missing!r}, "
                      f"recomputed {', '.join(missing)!r}")  # labels hold commas: compared as the joined line
        pairs = [(a, b) for a, b in entry["pairs"] if a in have and b in have]

        table = [l for l in body if l.startswith("|")]
        if not pairs:
            review.expect(not table, title, "a comparisons table where no pair has runs on both sides")
            continue
        if not table or not table[0].startswith(TABLE_HEAD):
            review.expect(False, title, "no comparisons table where pairs have runs on both sides")
            continue
        head = cells(table[0])
        tasks = head[1:head.index("across tasks")]
        common_tasks = {pair: sorted(env for env, m in scores if m == pair[0] and (env, pair[1]) in scores)
                        for pair in pairs}
        review.expect(tasks == sorted({env for envs in common_tasks.values() for env in envs}), title,
                      f"task columns {tasks}, recomputed {sorted({e for v in common_tasks.values() for e in v})}")
        rows = [cells(l) for l in table[2:]]
        review.expect([r[0] for r in rows] == [f"{a} > {b}" for a, b in pairs], title,
                      f"rows {[r[0] for r in rows]}, expected the declared pairs with runs {pairs}")
        for row in rows:
            first, _, second = row[0].partition(" > ")
            probabilities = {}
            for env, cell in zip(tasks, row[1:]):
                where = f"{title} / {first} > {second} / {env}"
                x, y = scores.get((env, first), []), scores.get((env, second), [])
                if cell in DASHES:
                    review.expect(not x or not y, where, f"'–' but both sides have scored runs ({len(x)} vs {len(y)})")
                    continue
                if not x or not y:
                    review.expect(False, where, f"cell {cell!r} but a side has no scored run ({len(x)} vs {len(y)})")
                    continue
                probability, p_value = p_and_pvalue(x, y)
                probabilities[env] = probability
                one = ONE_SEED.match(cell)
                if one:
                    review.expect(min(len(x), len(y)) < 2 and (int(one[1]), int(one[2])) == (len(x), len(y)), where,
                                  f"{cell!r}, recomputed {len(x)} vs {len(y)} runs")
                    continue
                m = CELL.match(cell)
                if not m:
                    review.expect(False, where, f"cannot read the cell {cell!r}")
                    continue
                review.cells += 1
                review.expect((int(m[3]), int(m[4])) == (len(x), len(y)), where,
                              f"page {m[3]} vs {m[4]} seeds, recomputed {len(x)} vs {len(y)}")
                review.expect(printed_agrees(m[1], probability, "2f"), where,
                              f"page P = {m[1]}, recomputed {probability:.4f}")
                review.expect(p_agrees(m[2], p_value), where, f"page p {m[2]}, recomputed p = {p_value:.5g}")
            where = f"{title} / {first} > {second} / across tasks"
            across = row[len(tasks) + 1]
            printed = {fam: (float(pr), int(n)) for fam, pr, _, _, _, n in ACROSS.findall(across)}
            printed_p = {fam: p for fam, _, _, _, p, _ in ACROSS.findall(across)}
            for fam, pr, low, high, _, _ in ACROSS.findall(across):
                if low:  # the bootstrap interval is not recomputed; it must hold its point
                    review.expect(interval_holds(pr, low, high), where, f"{fam}: P {pr} outside [{low}, {high}]")
            mine: dict[str, list[float]] = {}
            for env in common_tasks.get((first, second), []):
                if env in anchored:
                    probability = probabilities.get(env)
                    if probability is None:  # a task the table has no column for (reported above)
                        probability = p_and_pvalue(scores[env, first], scores[env, second])[0]
                    mine.setdefault(family(env) or f"unknown family of {env}", []).append(probability)
            review.expect(set(printed) == set(mine), where, f"families {sorted(printed)}, recomputed {sorted(mine)}")
            for fam in set(printed) & set(mine):
                review.expect(printed[fam][1] == len(mine[fam]), where,
                              f"{fam}: page {printed[fam][1]} tasks, recomputed {len(mine[fam])}")
                mean = float(np.mean(mine[fam]))
                review.expect(printed_agrees(f"{printed[fam][0]:.2f}", mean, "2f"), where,
                              f"{fam}: page P = {printed[fam][0]:.2f}, recomputed mean over tasks {mean:.4f}")
            if "rule" in head:
                verdict = row[head.index("rule")]
                for env, n_first, n_second in NOT_YET.findall(verdict):
                    counts = (len(scores.get((env, first), [])), len(scores.get((env, second), [])))
                    review.expect((int(n_first), int(n_second)) == counts, f"{title} / {first} > {second} / rule",
                                  f"page: {env} has {n_first} and {n_second} finished seeds, recomputed {counts}")
                expected = rule_verdict(entry.get("rule") or {}, first, second, scores, marks,
                                        {fam: (np.mean(ps), printed_p.get(fam)) for fam, ps in mine.items()})
                review.expect(verdict.startswith(expected), f"{title} / {first} > {second} / rule",
                              f"page {verdict!r}, recomputed {expected!r}")
    declared = {str(entry["title"]) for entry in comparisons}
    for title, body in parts.items():  # a table nobody declared would otherwise go unreviewed
        if any(line.startswith(TABLE_HEAD) for line in body):
            review.expect(title in declared, f"## {title}", "a comparisons table that comparisons.yaml does not declare")
    return review


def rule_verdict(rule: dict, first: str, second: str, scores: dict[tuple[str, str], list[float]],
                 marks: dict[tuple[str, str], set[tuple[float, ...]]],
                 across: dict[str, tuple[float, str | None]]) -> str:
    """How a rule cell must begin, from comparisons.yaml's ``rule`` (docs/defaults.md's words): "not judged yet"
    until both sides have the seeds it names on each of its tasks; "not judged" where a task's runs were evaluated
    at different window steps or a side has one run; else "supported" when every family's across-task P (recomputed)
    reaches ``across_at_least`` with its printed p (a random permutation p, not recomputed) at most
    ``across_p_at_most`` and no task has P <= ``harm_at_most`` with the reverse exact p <= ``harm_p_at_most``, and
    "not supported" otherwise."""
    wanted = rule.get("seeds") or (1, 1)
    tasks = rule.get("tasks") or sorted({env for env, _ in scores})
    counts = {env: (len(scores.get((env, first), [])), len(scores.get((env, second), []))) for env in tasks}
    if any(min(n) == 0 or n[0] < wanted[0] or n[1] < wanted[1] for n in counts.values()):
        return "not judged yet"
    if any(len(marks[env, first] | marks[env, second]) > 1 for env in tasks) or any(min(n) < 2 for n in counts.values()):
        return "not judged"
    slack = 1e-9  # the page's own rounding allowance for a threshold met exactly
    for probability, printed in across.values():
        if (probability < rule["across_at_least"] - slack or printed is None
                or float(printed.lstrip("=≤ ")) > rule["across_p_at_most"] + slack):
            return "not supported"
    for env in tasks:
        x, y = scores[env, first], scores[env, second]
        if (p_and_pvalue(x, y)[0] <= rule["harm_at_most"] + slack
                and p_and_pvalue(y, x)[1] <= rule["harm_p_at_most"] + slack):
            return "not supported"
    return "supported" if across else "not supported"


# ---------------------------------------------------------------------------------------------------------- tests

PAGES = comparison_pages(RESULTS)


def test_the_pages_with_comparisons_are_found():
    names = {p.relative_to(RESULTS).as_posix() for p in PAGES}
    assert {"README.md", "defaults-ablation/README.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[page_id(p) for p in PAGES])
def test_every_comparison_cell_recomputes_from_the_runs(page):
    assert_recomputes(review_page(page, committed_runs(page)), page, "per-task cell")


def _runs(folder: Path, env: str, method: str) -> list[Path]:
    return sorted(d for d in page_run_dirs(folder)
                  if (s := json.loads((d / "summary.json").read_text()))["env"] == env and s["method"] == method)


PAIR, ENV = ("RAT (envpool)", "RAT (ratbench settings, envpool)"), "HalfCheetah-v5"  # page: 0.68 (p = 0.21; 5 vs 5)


def test_the_review_catches_a_changed_evaluation(tmp_path):
    page = copy_ablation_page(tmp_path)
    assert not review_page(page).problems  # the copy reviews clean
    # the first side's weakest run on the task wins every pairing once its window evaluations are raised
    weakest = min((load_run(d, page.parent) for d in _runs(page.parent, ENV, PAIR[0])),
                  key=lambda run: window_score(run, "eval_return", 900_000, 1_000_000))
    set_window_evaluations(page.parent, weakest, 900_000, 1_000_000, 1e6)
    problems = review_page(page).problems
    assert any(f"{PAIR[0]} > {PAIR[1]} / {ENV}" in p and "page P = 0.68" in p for p in problems), problems


def test_the_review_catches_a_swapped_label(tmp_path):
    page = copy_ablation_page(tmp_path)
    run = _runs(page.parent, ENV, PAIR[1])[0]
    summary = json.loads((run / "summary.json").read_text())
    summary["method"] = PAIR[0]  # one defaults run relabelled as the preset (its seed 0 is then shared)
    (run / "summary.json").write_text(json.dumps(summary))
    problems = review_page(page).problems
    assert any(f"{PAIR[0]} > {PAIR[1]} / {ENV}" in p for p in problems), problems
    assert any("## Runs" in p for p in problems), problems


def _supported_row(text: str) -> str:
    """The first comparisons-table row whose rule cell says "supported"."""
    return next(line for line in text.splitlines() if line.startswith("| ") and line.endswith("| supported |"))


@pytest.mark.parametrize("edit", [
    lambda row: row.replace("| supported |", "| not supported: edited |"),  # the verdict itself
    lambda row: re.sub(r"\(p [=≤] [0-9.e-]+; (\d+) tasks\)", r"(p = 0.99; \1 tasks)", row),  # an across p above the rule's
], ids=["verdict", "across-p"])
def test_the_review_catches_a_rule_verdict_that_does_not_follow(tmp_path, edit):
    page = copy_ablation_page(tmp_path)
    text = page.read_text(encoding="utf-8")
    row = _supported_row(text)
    assert not review_page(page).problems and edit(row) != row
    page.write_text(text.replace(row, edit(row)), encoding="utf-8")
    assert any("/ rule" in problem for problem in review_page(page).problems)
