"""An independent review of the committed pages' verdicts, evaluation steps and milestones, and of the data files
beside them (final.csv, milestones.csv, summary.json).

Like test_published_comparisons.py and test_published_scores.py (whose reading of pages, runs and windows this
shares: tests/results/review.py), without importing ratbench: every number is recomputed from the committed run files
(and, for published curves and anchors, ratbench/reporting/published.yaml and random_scores.yaml read as data) and
compared with the page at the precision it prints, with the data files to 1e-9 relative (they hold full floats; the
sums run in other orders here).

- **Verdict by window** ("## Verdict by window M", for each of the page's metrics that some run has a window score
  of): one line per task (sorted). The methods that ran the task's full budget (at least 98% of its longest) are
  ranked by the 25%-trimmed mean of their runs' window scores (``scipy.stats.trim_mean(x, 0.25)``: the IQM, the mean
  below 4 seeds; the score each line prints), highest first, equal scores in method order; the first *leads* and
  its window (the common budget's last 10%) is the line's. Each other one follows in that order with its score, seed
  count, "ahead by" (the leader's score less its own) and P(lead > it) with the exact one-sided p (as the comparisons
  review: ``scipy.stats.mannwhitneyu(..., method="exact")``, by enumeration where scores tie), or "– (one seed)"
  where a side has a single run. A method run to a shorter budget follows in method order as "M ran S steps only;
  over its window, ...": its score over its own window, the leader's runs scored over that same window (their
  trimmed mean printed beside the leader's name), "ahead by" and P between those; left out where no run of the
  leader has a point there. A task with a single scored method reads "only M ran (...)".
- **Runs evaluated at different steps**: per task (sorted) whose scored runs' eval_return window points do not all
  stand at the same steps: the runs grouped by those steps, a group's runs written "method seeds a, b" (methods in
  order, seeds ascending), the groups ordered by that list of texts, each group's steps as "N at a-b every g"
  (evenly spaced, 3 or more), "N at a, b and c" or "1 at a". The page's lines are read back into steps per (method,
  seed) and compared exactly; the section must be absent where no task has such runs.
- **Milestones** ("## M at milestones (min / median / max over seeds)"): the milestones are the page command's
  ``--milestones``, else the multiples up to the longest finished run of its leading power of ten (at least 1,000),
  the last 10. Per finished (task, method) group and milestone: each run's last logged value (evaluations at their
  marks) at a step in [0.95 m, m], the min / median / max over the runs with one and their count ("–" for none).
  Published curves (published.yaml ``curves``) of a page metric whose task, version aside, is a task of the page:
  one row per label "method [published, env(, +-spread)]", its points as "value at X.XXM"; rows by task, then label.
- **final.csv, summary.json, milestones.csv**: final.csv one row per scored (metric, task, method), metrics in the
  page's order, then task and method sorted: the trimmed mean and its Tukey-McLaughlin interval, seeds, estimator,
  budget and window start, full length, points per run, the normalised values (test_published_scores.py's rules);
  summary.json's "final" the same rows with each scored run's window score ("values", by seed) and window steps
  ("seed_marks"); milestones.csv and summary.json's "milestones" every (group, metric, milestone) row in group order
  (NaN where no run has a value), then the published points.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from tests.results.review import (DATA, RESULTS, TRIM, PageRuns, Review, RunFiles, Scored, _Loader, anchor_files,
                                  load_page_runs, committed_runs, normalise, number, p_and_pvalue, page_metrics,
                                  placed_steps, printed_agrees, report_pages, sections, table_rows, trimmed_interval,
                                  window_score, assert_recomputes, copy_ablation_page, page_id, set_window_evaluations)

MILESTONE_SLACK = 0.05
FLOAT_TOLERANCE = 1e-9  # relative, for the data files' full floats


def trimmed(values: list[float]) -> float:
    return float(stats.trim_mean(np.asarray(values, dtype=float), TRIM))


def line_numbers(text: str) -> dict[str, int]:
    """Each line of the page and its number (the first, where a line repeats)."""
    out: dict[str, int] = {}
    for i, line in enumerate(text.splitlines(), 1):
        out.setdefault(line, i)
    return out


# ---------------------------------------------------------------------------------------------------------- verdicts

NUM = r"-?[\d,]*\.?\d+(?:e[+-]?\d+)?"
HEAD = re.compile(rf"- \*\*(?P<env>.+?)\*\*, scored over steps (?P<low>[\d,]+)-(?P<high>[\d,]+) \(the last 10% of the "
                  rf"common budget\): (?P<method>[^;]+?) leads \((?P<score>{NUM}), (?P<n>\d+) (?P<word>seeds?)\)")
ONLY = re.compile(rf"- \*\*(?P<env>.+?)\*\*: only (?P<method>.+?) ran \((?P<n>\d+) (?P<word>seeds?), (?P<score>{NUM}) "
                  rf"over (?P<low>[\d,]+)-(?P<high>[\d,]+) steps\); nothing to compare\.")
_TEST = r"P\(lead > it\) = (?:– \(one seed\)|(?P<P>\d\.\d\d) \(one-sided p = (?P<p>[0-9.e+-]+)\))"
PART = re.compile(rf"(?P<method>[^;]+?) \((?P<score>{NUM}), (?P<n>\d+) (?P<word>seeds?)\): ahead by (?P<ahead>{NUM}), "
                  + _TEST)
SHORT = re.compile(rf" (?P<method>[^;]+?) ran (?P<steps>[\d,]+) steps only; over its window, (?P=method) "
                   rf"\((?P<score>{NUM}), (?P<n>\d+) (?P<word>seeds?)\): (?P<lead>[^;]+?) \((?P<lead_score>{NUM})\) "
                   rf"ahead by (?P<ahead>{NUM}), " + _TEST + r"\.")


def read_verdict(line: str) -> dict | None:
    """A verdict line as {kind, head, parts, shorter} (None when it cannot be read)."""
    only = ONLY.fullmatch(line)
    if only:
        return {"kind": "only", "head": only, "parts": [], "shorter": []}
    head = HEAD.match(line)
    if not head:
        return None
    pos, parts, shorter = head.end(), [], []
    if line.startswith(" over ", pos):
        pos += len(" over ")
        while True:
            part = PART.match(line, pos)
            if not part:
                return None
            parts.append(part)
            pos = part.end()
            if not line.startswith("; ", pos):
                break
            pos += 2
    if not line.startswith(".", pos):
        return None
    pos += 1
    while pos < len(line):
        short = SHORT.match(line, pos)
        if not short:
            return None
        shorter.append(short)
        pos = short.end()
    return {"kind": "lead", "head": head, "parts": parts, "shorter": shorter}


def expected_verdicts(runs: PageRuns, metric: str) -> dict[str, dict]:
    """Per task: the leader, the other full-length methods in rank order and the shorter-budget comparisons."""
    by_task: dict[str, list[Scored]] = {}
    for s in runs.scored(metric):
        by_task.setdefault(s.env, []).append(s)
    out = {}
    for env in sorted(by_task):
        rows = by_task[env]
        if len(rows) < 2:
            out[env] = {"kind": "only", "lead": rows[0]}
            continue
        ranked = sorted((s for s in rows if s.full_length), key=lambda s: (-trimmed(s.values), s.method))
        if not ranked:
            continue
        lead = ranked[0]
        shorter = []
        for s in sorted((s for s in rows if not s.full_length), key=lambda s: s.method):
            at = [v for v in (window_score(r, metric, s.low, s.high) for r in runs.groups[env, lead.method])
                  if v is not None]
            if at:
                shorter.append((s, at))
        out[env] = {"kind": "lead", "lead": lead, "others": ranked[1:], "shorter": shorter}
    return out


def _seeds_word(review: Review, where: str, m: re.Match, n: int) -> None:
    review.expect(int(m["n"]) == n and m["word"] == ("seed" if n == 1 else "seeds"), where,
                  f"page {m['n']} {m['word']}, recomputed {n} seed(s)")


def _test(review: Review, where: str, m: re.Match, x: list[float], y: list[float]) -> None:
    """P(lead > it) and its exact one-sided p, or the one-seed dash."""
    if min(len(x), len(y)) < 2:
        review.expect(m["P"] is None, where, f"P(lead > it) = {m['P']} where a side has one seed ({len(x)} vs {len(y)})")
        return
    if m["P"] is None:
        review.expect(False, where, f"'– (one seed)' where the sides have {len(x)} and {len(y)} seeds")
        return
    probability, p_value = p_and_pvalue(list(x), list(y))
    review.expect(printed_agrees(m["P"], probability, "2f"), where, f"page P = {m['P']}, recomputed {probability:.4f}")
    review.expect(printed_agrees(m["p"], p_value, "3g"), where, f"page one-sided p = {m['p']}, recomputed {p_value:.5g}")


def review_verdicts(page: Path, runs: PageRuns) -> Review:
    """Every "## Verdict by window" line from the runs; ``cells`` counts the method entries recomputed."""
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    parts, at_line = sections(text), line_numbers(text)
    metrics = page_metrics(text)
    shown = [title.removeprefix("Verdict by window ") for title in parts if title.startswith("Verdict by window ")]
    mine = {metric: expected_verdicts(runs, metric) for metric in metrics}
    review.expect(shown == [m for m in metrics if mine[m]], "Verdict by window",
                  f"sections for {shown}, recomputed {[m for m in metrics if mine[m]]}")
    for metric in shown:
        expected = mine.get(metric, {})
        lines = [l for l in parts[f"Verdict by window {metric}"] if l.startswith("- ")]
        read = [(l, read_verdict(l)) for l in lines]
        tasks = [r["head"]["env"] if r else l[:50] for l, r in read]
        review.expect(tasks == list(expected), f"Verdict by window {metric}", f"tasks {tasks}, recomputed {list(expected)}")
        for line, verdict in read:
            where = f"line {at_line[line]}: Verdict by window {metric}"
            if verdict is None:
                review.expect(False, where, f"cannot read the line {line[:120]!r}")
                continue
            env = verdict["head"]["env"]
            where = f"{where} / {env}"
            mine_env = expected.get(env)
            if mine_env is None:
                continue  # reported with the task list
            head, lead = verdict["head"], mine_env["lead"]
            review.expect(verdict["kind"] == mine_env["kind"], where,
                          f"a line of kind {verdict['kind']!r}, recomputed {mine_env['kind']!r}")
            if verdict["kind"] != mine_env["kind"]:
                continue
            review.cells += 1
            review.expect(head["method"] == lead.method, where,
                          f"leader {head['method']!r}, recomputed {lead.method!r} "
                          f"(trimmed mean {trimmed(lead.values):.6g})")
            review.expect(number(head["high"]) == lead.high and abs(number(head["low"]) - lead.low) < 1, where,
                          f"window {head['low']}-{head['high']}, recomputed {lead.low:,.0f}-{lead.high:,.0f}")
            if head["method"] != lead.method:
                continue  # its numbers are another method's: the leader is reported
            review.expect(printed_agrees(head["score"], trimmed(lead.values), "number"), where,
                          f"{lead.method}: page score {head['score']}, recomputed {trimmed(lead.values):.6g}")
            _seeds_word(review, f"{where} / {lead.method}", head, len(lead.values))
            if verdict["kind"] == "only":
                continue
            others = mine_env["others"]
            review.expect([p["method"] for p in verdict["parts"]] == [s.method for s in others], where,
                          f"methods after the leader {[p['method'] for p in verdict['parts']]}, recomputed by score "
                          f"{[(s.method, round(trimmed(s.values), 4)) for s in others]}")
            by_method = {s.method: s for s in others}
            for part in verdict["parts"]:
                other = by_method.get(part["method"])
                at = f"{where} / {part['method']}"
                if other is None:
                    continue
                review.cells += 1
                score = trimmed(other.values)
                review.expect(printed_agrees(part["score"], score, "number"), at,
                              f"page score {part['score']}, recomputed {score:.6g}")
                _seeds_word(review, at, part, len(other.values))
                ahead = trimmed(lead.values) - score
                review.expect(printed_agrees(part["ahead"], ahead, "number"), at,
                              f"page ahead by {part['ahead']}, recomputed {ahead:.6g}")
                _test(review, at, part, lead.values, other.values)
            review.expect([s["method"] for s in verdict["shorter"]] == [s.method for s, _ in mine_env["shorter"]], where,
                          f"shorter-budget methods {[s['method'] for s in verdict['shorter']]}, recomputed "
                          f"{[s.method for s, _ in mine_env['shorter']]}")
            by_method = {s.method: (s, at) for s, at in mine_env["shorter"]}
            for short in verdict["shorter"]:
                if short["method"] not in by_method:
                    continue
                other, at_length = by_method[short["method"]]
                at = f"{where} / {short['method']} (shorter budget)"
                review.cells += 1
                review.expect(number(short["steps"]) == other.high, at, f"page {short['steps']} steps, recomputed "
                              f"its budget {other.high:,.0f}")
                score, lead_score = trimmed(other.values), trimmed(at_length)
                review.expect(printed_agrees(short["score"], score, "number"), at,
                              f"page score {short['score']}, recomputed {score:.6g}")
                _seeds_word(review, at, short, len(other.values))
                review.expect(short["lead"] == lead.method, at,
                              f"compared with {short['lead']!r}, the leader is {lead.method!r}")
                review.expect(printed_agrees(short["lead_score"], lead_score, "number"), at,
                              f"the leader over this window: page {short['lead_score']}, recomputed {lead_score:.6g} "
                              f"({len(at_length)} runs)")
                review.expect(printed_agrees(short["ahead"], lead_score - score, "number"), at,
                              f"page ahead by {short['ahead']}, recomputed {lead_score - score:.6g}")
                _test(review, at, short, at_length, other.values)
    return review


# ---------------------------------------------------------------------------------------------------------- marks

MARKS_TITLE = "Runs evaluated at different steps"
WHO = re.compile(r"(?:^|, )(?P<method>[^;:]+?) (?P<word>seeds?) (?P<seeds>(?:\d+, )*\d+)(?=, |$)")


def read_steps(text: str) -> list[int] | None:
    """The steps a mark description stands for: "5 at 901,120-983,040 every 20,480", "2 at a and b", "1 at a"."""
    every = re.fullmatch(r"(\d+) at ([\d,]+)-([\d,]+) every ([\d,]+)", text)
    if every:
        first, last, gap = (int(number(x)) for x in every.groups()[1:])
        steps = list(range(first, last + 1, gap))
        return steps if len(steps) == int(every[1]) and steps[-1] == last else None
    listed = re.fullmatch(r"(\d+) at (.+) and ([\d,]+)", text)
    if listed:
        steps = [int(number(x)) for x in listed[2].split(", ")] + [int(number(listed[3]))]
        return steps if len(steps) == int(listed[1]) else None
    one = re.fullmatch(r"1 at ([\d,]+)", text)
    return [int(number(one[1]))] if one else None


def evenly_spaced(steps: list[int]) -> bool:
    return len(steps) > 2 and len({b - a for a, b in zip(steps, steps[1:])}) == 1


def expected_marks(runs: PageRuns, metrics: tuple[str, ...]) -> dict[str, list[list[tuple[str, list[int], tuple]]]]:
    """Per task whose runs' eval_return window steps differ: the groups of runs by steps, each [(method, seeds,
    steps)] in method order, the groups in the page's order."""
    per_task: dict[str, dict[tuple, dict[str, list[int]]]] = {}
    for s in runs.scored("eval_return") if "eval_return" in metrics else []:
        for seed, marks in zip(s.seeds, s.marks):
            per_task.setdefault(s.env, {}).setdefault(marks, {}).setdefault(s.method, []).append(seed)
    out = {}
    for env, by_marks in sorted(per_task.items()):
        if len(by_marks) < 2:
            continue
        groups = [[(method, sorted(seeds), marks) for method, seeds in sorted(who.items())]
                  for marks, who in by_marks.items()]
        out[env] = sorted(groups, key=lambda g: [who_text(m, seeds) for m, seeds, _ in g])
    return out


def who_text(method: str, seeds: list[int]) -> str:
    return f"{method} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def review_marks(page: Path, runs: PageRuns) -> Review:
    """The "## Runs evaluated at different steps" list from the runs; ``cells`` counts the (run, steps) read back."""
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    parts, at_line = sections(text), line_numbers(text)
    mine = expected_marks(runs, page_metrics(text))
    lines = [l for l in parts.get(MARKS_TITLE, []) if l.startswith("- ")]
    review.expect((MARKS_TITLE in parts) == bool(mine), MARKS_TITLE,
                  f"section {'present' if MARKS_TITLE in parts else 'absent'}, recomputed tasks with runs evaluated at "
                  f"different steps: {list(mine)}")
    read = [re.fullmatch(r"- \*\*(.+?)\*\*: (.+)", l) for l in lines]
    review.expect([m[1] if m else l[:40] for m, l in zip(read, lines)] == list(mine), MARKS_TITLE,
                  f"tasks {[m[1] if m else l[:40] for m, l in zip(read, lines)]}, recomputed {list(mine)}")
    for line, m in zip(lines, read):
        if m is None or m[1] not in mine:
            continue
        env, where = m[1], f"line {at_line[line]}: {MARKS_TITLE} / {m[1]}"
        page_groups = []
        for segment in m[2].split("; "):
            who, _, description = segment.rpartition(": ")
            found = list(WHO.finditer(who))
            steps = read_steps(description)
            if (steps is None or not found or ", ".join(x[0].removeprefix(", ") for x in found) != who
                    or any((x["word"] == "seeds") != ("," in x["seeds"]) for x in found)):
                review.expect(False, where, f"cannot read {segment[:120]!r} (or its count, ends and spacing disagree)")
                continue
            review.expect(description.split(" at ")[1].count(" every ") == evenly_spaced(steps), where,
                          f"{description!r}: steps {'evenly' if evenly_spaced(steps) else 'not evenly'} spaced")
            page_groups.append([(x["method"], [int(s) for s in x["seeds"].split(", ")], tuple(steps)) for x in found])
        by_run = {(method, seed): steps for group in page_groups for method, seeds, steps in group for seed in seeds}
        mine_by_run = {(method, seed): steps for group in mine[env] for method, seeds, steps in group for seed in seeds}
        review.cells += len(by_run)
        review.expect(sum(len(seeds) for g in page_groups for _, seeds, _ in g) == len(by_run), where,
                      "a run is listed twice")
        review.expect(set(by_run) == set(mine_by_run), where, f"runs only on the page "
                      f"{sorted(set(by_run) - set(mine_by_run))}, only recomputed {sorted(set(mine_by_run) - set(by_run))}")
        for run in sorted(set(by_run) & set(mine_by_run)):
            review.expect(by_run[run] == mine_by_run[run], where, f"{run[0]} seed {run[1]}: page steps "
                          f"{list(by_run[run])}, recomputed {list(mine_by_run[run])}")
        review.expect([[(mt, sd) for mt, sd, _ in g] for g in page_groups]
                      == [[(mt, sd) for mt, sd, _ in g] for g in mine[env]], where,
                      "the groups of runs (one per set of steps) or their order differ: page "
                      f"{[[who_text(mt, sd) for mt, sd, _ in g] for g in page_groups]}, recomputed "
                      f"{[[who_text(mt, sd) for mt, sd, _ in g] for g in mine[env]]}")
    return review


# ---------------------------------------------------------------------------------------------------------- milestones


def milestone_steps(text: str, runs: PageRuns) -> list[int]:
    named = re.search(r"Generated by `ratbench report [^`]*--milestones (\S+)", text)
    if named:
        return sorted({int(float(x)) for x in named[1].strip("`").split(",") if x.strip()})
    top = max(r.last_step for r in runs.finished)
    unit = 10 ** max(3, math.floor(math.log10(max(int(top), 1))))
    return [unit * k for k in range(1, int(top // unit) + 1)][-10:] or [int(top)]


def logged(run: RunFiles, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the run's finite values of ``metric`` in logged order, evaluations at their marks."""
    if metric not in run.table:
        return np.empty(0), np.empty(0)
    at, value = placed_steps(run, metric).to_numpy(dtype=float), run.table[metric].to_numpy(dtype=float)
    ok = np.isfinite(value) & np.isfinite(at)
    return at[ok], value[ok]


def value_at(at: np.ndarray, value: np.ndarray, step: int) -> float:
    """The last logged value (of :func:`logged`'s) at a step in [0.95 step, step]; NaN for none."""
    chosen = value[(at <= step) & (at >= step * (1 - MILESTONE_SLACK))]
    return float(chosen[-1]) if chosen.size else math.nan


def published_curves(folder: Path = DATA) -> list[dict]:
    return (yaml.load((folder / "published.yaml").read_text(encoding="utf-8"), Loader=_Loader) or {}).get("curves") or []


def same_task(a: str, b: str) -> bool:
    return a.split("-v")[0].lower() == b.split("-v")[0].lower()


def expected_milestones(runs: PageRuns, metrics: tuple[str, ...], steps: list[int]) -> list[dict]:
    """milestones.csv's rows: per group, metric and milestone, then each matching published point."""
    rows = []
    for (env, method), members in runs.groups.items():
        for metric in metrics:
            series = [logged(r, metric) for r in members]
            for step in steps:
                values = [v for v in (value_at(at, value, step) for at, value in series) if math.isfinite(v)]
                low, mid, high = (min(values), float(np.median(values)), max(values)) if values else (math.nan,) * 3
                rows.append({"env": env, "method": method, "metric": metric, "step": step, "min": low, "median": mid,
                             "max": high, "seeds": len(values), "source": "ratbench"})
    envs = sorted({env for env, _ in runs.groups})
    for entry in published_curves():
        env = next((e for e in envs if same_task(e, str(entry["env"]))), None)
        if entry["metric"] not in metrics or env is None:
            continue
        spreads = {int(k): float(v) for k, v in (entry.get("spread") or {}).items()}
        for step, value in sorted((int(k), float(v)) for k, v in entry["points"].items()):
            spread = f", +-{spreads[step]:g}" if step in spreads else ""
            label = f"{entry['method']} [published, {entry['env']}{spread}]"
            rows.append({"env": env, "method": label, "metric": entry["metric"], "step": step, "min": value,
                         "median": value, "max": value, "seeds": entry.get("seeds") or 1, "source": entry["source"]})
    return rows


SPREAD = re.compile(rf"^({NUM}) / ({NUM}) / ({NUM}) \((\d+)\)$")
POINT = re.compile(rf"^({NUM}) at (\d+\.\d\d)M$")


def review_milestones(page: Path, runs: PageRuns) -> Review:
    """Every milestone table from the runs and published.yaml; ``cells`` counts the cells recomputed."""
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    parts, at_line = sections(text), line_numbers(text)
    metrics = page_metrics(text)
    steps = milestone_steps(text, runs)
    rows = expected_milestones(runs, metrics, steps)
    titles = [t for t in parts if t.endswith(" at milestones (min / median / max over seeds)")]
    review.expect(titles == [f"{m} at milestones (min / median / max over seeds)" for m in metrics], "milestones",
                  f"sections {titles}, recomputed one per metric {list(metrics)}")
    for metric in metrics:
        title = f"{metric} at milestones (min / median / max over seeds)"
        where = title.split(" (")[0]
        table = table_rows(parts.get(title, []))
        if not table:
            review.expect(title not in parts, where, "cannot read the section's table")
            continue
        head = table[0]
        shown = [re.fullmatch(r"([\d.]+)M steps \(seeds\)", c) for c in head[2:]]
        review.expect(head[:2] == ["task", "method"] and len(shown) == len(steps)
                      and all(m and math.isclose(float(m[1]) * 1e6, s, rel_tol=1e-5) for m, s in zip(shown, steps)),
                      where, f"columns {head}, recomputed milestones {steps}")
        mine: dict[tuple[str, str], list[dict]] = {}
        for r in rows:
            if r["metric"] == metric:
                mine.setdefault((r["env"], r["method"]), []).append(r)
        order = sorted(mine)
        review.expect([(r[0], r[1]) for r in table[1:]] == order, where,
                      f"rows only on the page {sorted({(r[0], r[1]) for r in table[1:]} - set(order))[:5]}, only "
                      f"recomputed {sorted(set(order) - {(r[0], r[1]) for r in table[1:]})[:5]}, or not sorted")
        lines = [l for l in parts[title] if l.startswith("|")][2:]
        for line, row in zip(lines, table[1:]):
            key = (row[0], row[1])
            at = f"line {at_line[line]}: {where} / {row[0]} / {row[1]}"
            if key not in mine:
                continue  # reported by the row comparison above
            if len(row) != 2 + len(steps):
                review.expect(False, at, f"cannot read the row: {len(row)} cells for {len(steps)} milestones")
                continue
            points = mine[key]
            if points[0]["source"] != "ratbench":
                review.cells += 1
                items = [POINT.match(x) for x in row[2].split(", ")]
                review.expect(all(items) and len(items) == len(points) and row[3:] == [""] * (len(steps) - 1)
                              and all(printed_agrees(m[1], p["median"], "number")
                                      and float(m[2]) == round(p["step"] / 1e6, 2) for m, p in zip(items, points)), at,
                              f"page {row[2]!r}, published.yaml {[(p['median'], p['step']) for p in points]}")
                continue
            by_step = {p["step"]: p for p in points}
            for step, cell in zip(steps, row[2:]):
                review.cells += 1
                p = by_step[step]
                if p["seeds"] == 0:
                    review.expect(cell == "–", f"{at} / {step:,}", f"page {cell!r}, recomputed no run with a value")
                    continue
                m = SPREAD.match(cell)
                review.expect(m is not None and int(m[4]) == p["seeds"]
                              and all(printed_agrees(m[i], p[k], "number")
                                      for i, k in ((1, "min"), (2, "median"), (3, "max"))),
                              f"{at} / {step:,}", f"page {cell!r}, recomputed {p['min']:.6g} / {p['median']:.6g} / "
                              f"{p['max']:.6g} ({p['seeds']})")
    return review


# ---------------------------------------------------------------------------------------------------------- files

FINAL_COLUMNS = ["env", "method", "metric", "iqm", "ci_low", "ci_high", "seeds", "estimator", "steps", "window_from",
                 "full_length", "points_min", "points_max", "normalised", "normalised_low", "normalised_high"]
MILESTONE_COLUMNS = ["env", "method", "metric", "step", "min", "median", "max", "seeds", "source"]


def expected_final(runs: PageRuns, metrics: tuple[str, ...], anchors: dict[str, dict]) -> list[dict]:
    rows = []
    for metric in metrics:
        for s in runs.scored(metric):
            point, low, high = trimmed_interval(s.values)
            anchor = anchors.get(s.env)
            scaled = [None if v is None or anchor is None else normalise(v, anchor) for v in (point, low, high)]
            rows.append({"env": s.env, "method": s.method, "metric": metric, "iqm": point, "ci_low": low,
                         "ci_high": high, "seeds": len(s.values),
                         "estimator": "mean" if int(TRIM * len(s.values)) == 0 else "IQM", "steps": int(s.high),
                         "window_from": int(s.low), "full_length": s.full_length, "points_min": min(s.points),
                         "points_max": max(s.points), "normalised": scaled[0], "normalised_low": scaled[1],
                         "normalised_high": scaled[2], "values": s.values,
                         "seed_marks": {str(seed): list(marks) for seed, marks in zip(s.seeds, s.marks)}})
    return rows


def agrees(held, mine, from_csv: bool) -> bool:
    """A data file's value against the recomputed one: None is an empty CSV cell or JSON null, NaN "nan" or null,
    floats to :data:`FLOAT_TOLERANCE` relative, the rest exactly."""
    if mine is None:
        return held == ("" if from_csv else None)
    if isinstance(mine, float) and math.isnan(mine):
        return held == ("nan" if from_csv else None)
    if isinstance(mine, bool):
        return held == str(mine) if from_csv else held is mine
    if isinstance(mine, int):
        return held == str(mine) if from_csv else (type(held) is int and held == mine)
    if isinstance(mine, float):
        try:
            value = float(held)
        except (TypeError, ValueError):
            return False
        return not isinstance(held, bool) and math.isclose(value, mine, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-12)
    if isinstance(mine, list):
        return isinstance(held, list) and len(held) == len(mine) and all(agrees(h, m, from_csv) for h, m in zip(held, mine))
    if isinstance(mine, dict):
        return isinstance(held, dict) and list(held) == list(mine) and all(agrees(held[k], mine[k], from_csv) for k in mine)
    return held == mine


def _compare_rows(review: Review, name: str, held: list[dict], mine: list[dict], columns: list[str],
                  from_csv: bool) -> None:
    """Rows of a data file (``held``) against the recomputed ones, in order and column by column."""
    keys = [(r.get("env"), r.get("method"), r.get("metric"), r.get("step")) for r in held]
    ours = [(r["env"], r["method"], r["metric"], r.get("step")) for r in mine]
    if from_csv and "step" in columns:
        ours = [(e, m, mt, str(s)) for e, m, mt, s in ours]
    review.expect(keys == ours, name, f"rows only in the file {[k for k in keys if k not in ours][:5]}, only "
                  f"recomputed {[k for k in ours if k not in keys][:5]}, or in another order")
    for i, (row, expected) in enumerate(zip(held, mine)):
        if (row.get("env"), row.get("method")) != (expected["env"], expected["method"]):
            continue
        review.expect(list(row) == columns, f"{name} row {i + 1}", f"columns {list(row)}, expected {columns}")
        review.cells += 1
        for column in columns:
            if column in row:
                review.expect(agrees(row[column], expected[column], from_csv),
                              f"{name} row {i + 1} ({expected['env']} / {expected['method']} / {expected['metric']})",
                              f"{column}: file {row[column]!r}, recomputed {expected[column]!r}")


def review_data_files(page: Path, runs: PageRuns, anchors: dict[str, dict] | None = None) -> Review:
    """final.csv, milestones.csv and summary.json's "final" and "milestones" beside the page from the runs; ``cells``
    counts the rows recomputed."""
    anchors = anchor_files() if anchors is None else anchors
    review = Review(str(page))
    text = page.read_text(encoding="utf-8")
    metrics = page_metrics(text)
    final = expected_final(runs, metrics, anchors)
    milestones = expected_milestones(runs, metrics, milestone_steps(text, runs))
    folder = page.parent
    with open(folder / "final.csv", newline="", encoding="utf-8") as f:
        _compare_rows(review, "final.csv", list(csv.DictReader(f)), final, FINAL_COLUMNS, True)
    with open(folder / "milestones.csv", newline="", encoding="utf-8") as f:
        _compare_rows(review, "milestones.csv", list(csv.DictReader(f)), milestones, MILESTONE_COLUMNS, True)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    _compare_rows(review, "summary.json final", summary.get("final", []), final,
                  FINAL_COLUMNS + ["values", "seed_marks"], False)
    _compare_rows(review, "summary.json milestones", summary.get("milestones", []), milestones, MILESTONE_COLUMNS, False)
    return review


# ---------------------------------------------------------------------------------------------------------- tests

PAGES = report_pages(RESULTS)
IDS = [page_id(p) for p in PAGES]  # found: test_published_scores.py


PARTS = {"verdicts": review_verdicts, "evaluation steps": review_marks, "milestones": review_milestones,
         "data files": review_data_files}


@pytest.mark.parametrize("page", PAGES, ids=IDS)
@pytest.mark.parametrize("part", list(PARTS))
def test_every_verdict_and_table_recomputes_from_the_runs(part, page):
    assert_recomputes(PARTS[part](page, committed_runs(page)), page, part, cells_expected=part != "evaluation steps")


METHOD, ENV = "RAT (ratbench settings, original rule, envpool, original-rule)", "Walker2d-v5"  # page: 2,918, second to 3,427 (P 0.67)


def test_the_review_catches_a_changed_evaluation_in_a_verdict(tmp_path):
    page = copy_ablation_page(tmp_path)
    copy = page.parent
    runs = load_page_runs(page)
    assert not review_verdicts(page, runs).problems and not review_data_files(page, runs).problems
    # one run's window evaluations raised far enough that its method's mean over 3 seeds leads the task
    run = runs.groups[ENV, METHOD][0]
    low, high = runs.window((ENV, METHOD))
    set_window_evaluations(copy, run, low, high, 1e5)
    runs = load_page_runs(page)
    problems = review_verdicts(page, runs).problems
    where = f"Verdict by window eval_return / {ENV}"
    assert any(where in p and f"leader 'RAT (ratbench settings, envpool, obs-per-iteration)', recomputed {METHOD!r}" in p
               for p in problems), problems
    problems = review_data_files(page, runs).problems
    row = f"{ENV} / {METHOD} / eval_return"
    assert any("final.csv row" in p and row in p and "iqm: file" in p for p in problems), problems
    assert any("summary.json final" in p and row in p and "values: file" in p for p in problems), problems


def _bump_first_number(line: str, after: str) -> str:
    """``line`` with the last digit of its first number after ``after`` moved by one (9 -> 8, else +1)."""
    head, sep, tail = line.partition(after)
    m = re.search(r"\d(?:[\d,.]*\d)?", tail)
    assert sep and m, f"no number after {after!r} in {line!r}"
    end = m.end() - 1
    digit = "8" if tail[end] == "9" else str(int(tail[end]) + 1)
    return head + sep + tail[:end] + digit + tail[end + 1:]


@pytest.mark.parametrize("part,header,after", [
    ("evaluation steps", "## Runs evaluated at different steps", " at "),  # an evaluation step of the first task
    ("milestones", "## train_return at milestones", "| "),  # a task's first milestone cell
])
def test_the_review_catches_an_edited_marks_list_or_milestone(tmp_path, part, header, after):
    committed = RESULTS / "README.md"
    lines = committed.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    at = next(i for i in range(start, len(lines))
              if lines[i].startswith(("- **", "| ")) and not lines[i].startswith(("| task", "|---")))
    if part == "milestones":  # past the task and method cells
        after = " | ".join(lines[at].split(" | ")[:2]) + " | "
    lines[at] = _bump_first_number(lines[at], after)
    page = tmp_path / "README.md"
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert PARTS[part](page, committed_runs(committed)).problems
