"""The independent reviewer's reading of the committed results, shared by tests/results/test_published_*.py.

Nothing here imports ratbench: the committed pages (results/**/README.md) and run files (summary.json, config.yaml,
progress.csv) are read as files, and the rules the reporting code follows (read once to learn them) are
re-implemented in other ways. test_published_comparisons.py states the rules for runs, budgets and windows.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

RESULTS = Path(__file__).resolve().parents[2] / "results"
TABLE_HEAD = "| P(first > second) |"
FULL_LENGTH_SHARE = 0.98
EVAL_COLUMNS = ("eval_return", "eval_return_std", "eval_cut")  # columns placed at the evaluation's mark
MUJOCO_NAMES = {"Ant", "HalfCheetah", "Hopper", "Walker2d", "Humanoid", "HumanoidStandup", "Swimmer", "Reacher",
                "Pusher", "InvertedPendulum", "InvertedDoublePendulum"}
DASHES = ("–", "-")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def comparison_pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("README.md") if TABLE_HEAD in p.read_text(encoding="utf-8"))


def report_pages(root: Path) -> list[Path]:
    """The pages `ratbench report` wrote: those with a window-scores table."""
    return sorted(p for p in root.rglob("README.md") if "\n## Window scores\n" in p.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------- runs


@dataclass
class RunFiles:
    rel: str  # path relative to the page's folder, as the page's run list prints it
    env: str
    method: str
    seed: int
    budget: float
    last_step: float
    table: pd.DataFrame

    @property
    def finished(self) -> bool:
        return self.last_step >= self.budget


def page_run_dirs(folder: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(folder):
        here = Path(directory)
        if here != folder and "comparisons.yaml" in files:
            subdirs.clear()  # a page of its own
            continue
        subdirs.sort()
        if "progress.csv" in files and "summary.json" in files:
            found.append(here)
    return found


def load_run(directory: Path, folder: Path) -> RunFiles:
    summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    config = yaml.load((directory / "config.yaml").read_text(encoding="utf-8"), Loader=_Loader)
    table = pd.read_csv(directory / "progress.csv", usecols=lambda c: c in ("env_steps", "eval_step") or c.endswith("return"))
    return RunFiles(directory.relative_to(folder).as_posix(), str(summary["env"]), str(summary["method"]),
                    int(summary["seed"]), float(config["steps"]), float(table["env_steps"].max()), table)


def window_points(run: RunFiles, metric: str, low: float, high: float) -> pd.Series:
    """The run's finite values of ``metric`` whose step lies in (low, high] (evaluations at their marks)."""
    table = run.table
    if metric not in table:
        return pd.Series(dtype=float)
    step = table["env_steps"].astype(float)
    if metric in EVAL_COLUMNS and "eval_step" in table:
        step = table["eval_step"].astype(float).where(table["eval_step"].notna(), step)
    value = table[metric].astype(float)
    return value[np.isfinite(value) & np.isfinite(step) & (step > low) & (step <= high)]


def window_score(run: RunFiles, metric: str, low: float, high: float) -> float | None:
    chosen = window_points(run, metric, low, high)
    return float(chosen.mean()) if len(chosen) else None


@dataclass
class Scored:
    """One (task, method, metric) over its window: the runs with a point there, by seed, and their scores."""

    env: str
    method: str
    metric: str
    low: float
    high: float
    full_length: bool
    values: list[float]
    points: list[int]  # each scored run's count of points in the window


@dataclass
class PageRuns:
    """The runs below a page's folder, grouped as the page groups them, with each group's scoring window."""

    folder: Path
    runs: list[RunFiles]
    _scored: dict[str, list[Scored]] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def finished(self) -> list[RunFiles]:
        return [r for r in self.runs if r.finished]

    @functools.cached_property
    def groups(self) -> dict[tuple[str, str], list[RunFiles]]:
        """(task, method) -> its finished runs by seed."""
        out: dict[tuple[str, str], list[RunFiles]] = {}
        for r in self.finished:
            out.setdefault((r.env, r.method), []).append(r)
        return {key: sorted(members, key=lambda r: r.seed) for key, members in sorted(out.items())}

    @functools.cached_property
    def own(self) -> dict[tuple[str, str], float]:
        """A group's budget: the least over its finished runs."""
        return {key: min(r.budget for r in members) for key, members in self.groups.items()}

    @functools.cached_property
    def full(self) -> set[tuple[str, str]]:
        """The groups whose budget is at least 98% of their task's largest."""
        longest: dict[str, float] = {}
        for (env, _), steps in self.own.items():
            longest[env] = max(longest.get(env, 0.0), steps)
        return {key for key, steps in self.own.items() if steps >= FULL_LENGTH_SHARE * longest[key[0]]}

    @functools.cached_property
    def common(self) -> dict[str, float]:
        """Per task, the common budget: the least of the full-length groups' budgets."""
        out: dict[str, float] = {}
        for env, method in self.full:
            out[env] = min(out.get(env, math.inf), self.own[env, method])
        return out

    def window(self, key: tuple[str, str]) -> tuple[float, float]:
        """A group's window: the last 10% of the common budget, or of its own when it ran a shorter one."""
        high = self.common[key[0]] if key in self.full else self.own[key]
        return 0.9 * high, high

    def scored(self, metric: str) -> list[Scored]:
        """Every group with a run that has a point of ``metric`` in the group's window, by (task, method)."""
        if metric not in self._scored:
            rows = []
            for key, members in self.groups.items():
                low, high = self.window(key)
                chosen = [window_points(r, metric, low, high) for r in members]
                chosen = [c for c in chosen if len(c)]
                if chosen:
                    rows.append(Scored(*key, metric, low, high, key in self.full, [float(c.mean()) for c in chosen],
                                       [len(c) for c in chosen]))
            self._scored[metric] = rows
        return self._scored[metric]


def load_page_runs(page: Path) -> PageRuns:
    folder = page.parent
    return PageRuns(folder, [load_run(d, folder) for d in page_run_dirs(folder)])


@functools.cache
def committed_runs(page: Path) -> PageRuns:
    """:func:`load_page_runs` of a committed page, read once per session (never for a copy that a test changes)."""
    return load_page_runs(page)


# ---------------------------------------------------------------------------------------------------------- stats


def p_and_pvalue(x: list[float], y: list[float]) -> tuple[float, float]:
    """P(X > Y) (ties half) from the Mann-Whitney U, and the exact one-sided p of U."""
    result = stats.mannwhitneyu(x, y, alternative="greater", method="exact")
    probability = float(result.statistic) / (len(x) * len(y))
    pooled = np.asarray(x + y, dtype=float)
    if len(np.unique(pooled)) == pooled.size:
        return probability, float(result.pvalue)
    ranks = stats.rankdata(pooled)  # ties: scipy's exact null ignores them, so enumerate every split
    observed = ranks[:len(x)].sum()
    splits = [ranks[list(c)].sum() for c in itertools.combinations(range(pooled.size), len(x))]
    return probability, float(sum(s >= observed - 1e-9 for s in splits) / len(splits))


def family(env: str) -> str | None:
    if env.startswith("MinAtar/"):
        return "MinAtar"
    if env.startswith("DMC/"):
        return "DMC"
    if env.split("-v")[0] in MUJOCO_NAMES:
        return "MuJoCo"
    return None


# ---------------------------------------------------------------------------------------------------------- page


def number(text: str) -> float:
    return float(text.replace(",", ""))


def printed_agrees(printed: str, mine: float, style: str) -> bool:
    """``mine`` rounds to ``printed`` at the page's precision: ``"2f"`` two decimals, ``"3g"`` three significant
    digits, ``"number"`` the page's table numbers (whole numbers from 100 up, three significant digits below)."""
    value = number(printed)
    if style == "2f":
        unit = 0.01
    elif style == "number" and abs(value) >= 100:
        unit = 1.0
    elif style in ("3g", "number"):
        unit = 10 ** (math.floor(math.log10(abs(value))) - 2) if value else 1e-12
    else:
        raise ValueError(style)
    return abs(mine - value) <= 0.5 * unit * (1 + 1e-9) + 1e-12


def sections(text: str) -> dict[str, list[str]]:
    out, title = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = []
        elif title is not None:
            out[title].append(line)
    return out


def page_windows(lines: list[str]) -> dict[str, tuple[float, float]]:
    found = {}
    for line in lines:
        m = re.match(r"- \*\*(.+?)\*\*, scored over steps ([\d,]+)-([\d,]+) ", line)
        if m:
            found[m.group(1)] = (number(m.group(2)), number(m.group(3)))
    return found


def anchor_table(text: str) -> list[list[str]]:
    """The rows of the page's "### Normalisation anchors" table (cells), header and rule left out."""
    lines = text.split("### Normalisation anchors", 1)[1].splitlines() if "### Normalisation anchors" in text else []
    rows = [l for l in itertools.takewhile(lambda l: not l.startswith("#"), lines[1:]) if l.startswith("| ")]
    return [cells(l) for l in rows[1:] if not set(cells(l)[0]) <= set("-")]


def page_anchored(text: str) -> set[str]:
    return {row[0] for row in anchor_table(text)}


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@dataclass
class Review:
    page: str
    checked: int = 0  # numbers and labels compared
    cells: int = 0  # table cells (or rows) recomputed
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, where: str, message: str) -> None:
        self.checked += 1
        if not ok:
            self.problems.append(f"{self.page}: {where}: {message}")
