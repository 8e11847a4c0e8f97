"""Learning curves from ``ratbench train`` run directories.

A run directory holds ``config.yaml`` (resolved config: ``env``, ``algo``,
``solver``, ``seed``, ...) and ``progress.csv`` (one row per iteration;
empty cells where a value does not apply). This module finds run
directories, loads them, groups runs (one group per method, say
``npg-kaczmarz`` or ``ppo``), aggregates each group's seeds into a mean
curve with a confidence band, draws the figure and builds the summary table.

Aggregation conventions (also in the README):

* A seed's curve is its logged ``(x, metric)`` points with empty cells
  dropped; ``smooth = w`` replaces each value by the mean of the last ``w``
  kept points (a trailing window, so a point never sees the future).
* Seeds are linearly interpolated onto a common grid that spans only the
  range every seed covers, from the latest first point to the earliest last
  point: nothing is extrapolated and every grid point averages all seeds.
  The grid is the union of the seeds' own x values there (exact when seeds
  log at the same env steps), or ``MAX_GRID_POINTS`` evenly spaced points
  when that union is larger.
* The band is a 95% percentile bootstrap CI of the mean over seeds (rliable,
  :data:`ratbench.reporting.stats.BOOTSTRAP_REPS` resamples, fixed seed, so a figure
  is reproducible), or mean ± one standard error (``band="sem"``). One seed
  gives no band.
* The final value of a group is its curve's last point: the mean (and band)
  over seeds at the end of the common range.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from ratbench.errors import RatbenchError, unknown_name
from ratbench.reporting.methods import method_label, one_run_per_seed, value_or_default
from ratbench.reporting.stats import CONFIDENCE, mean_curve_band
from ratbench.reporting.runs import MISSING, PROGRESS_FILE, X_AXES, Run, lookup, numeric_columns

DEFAULT_X_AXES = ("env_steps", "wall_time")
DEFAULT_METRIC = "return_mean"
EVAL_METRIC = "eval_return"
METHOD_KEY = "method"  # pseudo config key: ratbench.reporting.methods.method_label (RAT, RAT (ratbench settings), PPO, ...)
PLAIN_KEYS = {METHOD_KEY, "algo", "solver", "env"}  # group labels show these keys' values bare
RUN_ONLY_KEYS = {"seed", "steps", "device", "threads", "vector", "checkpoint.every"}  # may differ between the seeds of one method
BANDS = ("bootstrap", "sem")
MAX_GRID_POINTS = 500

_MISSING = MISSING


# ----------------------------------------------------------------------------- grouping


def config_value(config: Mapping[str, Any], key: str) -> Any:
    """``config[key]``; a dotted key (``model.hidden``) walks nested mappings; missing -> ``_MISSING``."""
    if key == METHOD_KEY:
        if "algo" not in config:
            return _MISSING
        return method_label(config)  # one label per method: algo, solver, preset, variant, arch, ...
    return lookup(config, key)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every key of a nested config in dotted form (``model.hidden``), mappings included, with its value."""
    flat = {}
    for key, value in config.items():
        flat[prefix + str(key)] = value
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, prefix + str(key) + "."))
    return flat


def parse_group_by(spec: str, runs: Sequence[Run]) -> list[str]:
    """Comma-separated group keys, each checked to exist in at least one run's config."""
    keys = [key.strip() for key in spec.split(",") if key.strip()]
    if not keys:
        raise RatbenchError("--group-by is empty; give a config key such as 'method', 'solver', 'algo' or 'env'")
    for key in keys:
        if all(config_value(run.config, key) is _MISSING for run in runs):
            valid = {METHOD_KEY} | {k for run in runs for k in flatten_config(run.config)}
            raise unknown_name("group-by key", key, valid)
    return keys


def _format_value(value: Any) -> str:
    if value is _MISSING:
        return "n/a"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (Mapping, list, tuple)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return str(value)


def group_label(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The group a run belongs to, e.g. ``npg-kaczmarz`` or ``npg-cg, lr=0.05``."""
    parts = []
    for key in keys:
        value = _format_value(config_value(config, key))
        parts.append(value if key in PLAIN_KEYS else f"{key}={value}")
    return ", ".join(parts)


def group_runs(runs: Sequence[Run], group_by: Sequence[str]) -> dict[tuple[str, str], list[Run]]:
    """Runs keyed by (env, group label), sorted by key."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.env, group_label(run.config, group_by)), []).append(run)
    return dict(sorted(groups.items()))


def check_one_run_per_seed(groups: Mapping[tuple[str, str], Sequence[Run]]) -> None:
    """Two runs of one group with the same seed would count as two seeds: refuse, naming them."""
    for (env, group), members in groups.items():
        one_run_per_seed(env, group, members, keep_latest=False, fix="remove one, or split them with --group-by")


def mixed_config_note(env: str, group: str, members: Sequence[Run], group_by: Sequence[str]) -> str | None:
    """A note when one group's runs differ in config keys other than per-run ones (seed, steps, ...); a key
    a run's config predates counts as today's default.

    Such a group averages different methods (say RAT's corrected and original
    residual rule), which is rarely what the user wants.
    """
    flats = [flatten_config(run.config) for run in members]
    keys = dict.fromkeys(k for flat in flats for k in flat)
    differing = [
        k for k in keys
        if k not in RUN_ONLY_KEYS and k not in group_by and not isinstance(flats[0].get(k), Mapping)
        and len({_format_value(value_or_default(run.config, k)) for run in members}) > 1
    ]
    if not differing:
        return None
    return (
        f"{group} on {env} averages runs whose configs differ in {', '.join(differing)}; "
        f"to split them use --group-by {','.join([*group_by, *differing[:1]])}"
    )


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class SeedCurve:
    """One run's logged ``(x, y)`` points, empty cells dropped and smoothing applied. Shapes (n,)."""

    run: Run
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Curve:
    """One group's aggregate on one (env, metric, x axis): shapes (G,) on the common grid."""

    env: str
    metric: str
    x_axis: str
    group: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray  # NaN when there is no band (one seed)
    high: np.ndarray
    seeds: tuple[SeedCurve, ...] = field(repr=False)

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start). Shape (n,) -> (n,)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def seed_curve(run: Run, x_axis: str, metric: str, smooth: int = 1) -> SeedCurve | None:
    """A run's ``metric`` against ``x_axis``; None when it logged no value of the metric."""
    x = run.columns[x_axis]
    y = run.columns.get(metric, np.full_like(x, np.nan))
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return None
    x, y = x[keep], y[keep]
    if np.any(np.diff(x) < 0):
        raise RatbenchError(f"{run.path / PROGRESS_FILE}: {x_axis} decreases between rows; a progress file must hold one run, in order")
    return SeedCurve(run, x, trailing_mean(y, smooth) if smooth > 1 else y)


def common_grid(seeds: Sequence[SeedCurve], max_points: int = MAX_GRID_POINTS) -> np.ndarray | None:
    """The x grid every seed covers (see module doc); None when the seeds' ranges do not overlap."""
    start = max(s.x[0] for s in seeds)
    end = min(s.x[-1] for s in seeds)
    if start > end:
        return None
    union = np.unique(np.concatenate([s.x[(s.x >= start) & (s.x <= end)] for s in seeds]))
    return union if len(union) <= max_points else np.linspace(start, end, max_points)


def interpolate(seeds: Sequence[SeedCurve], grid: np.ndarray) -> np.ndarray:
    """Each seed linearly interpolated onto ``grid``. Shape (S, G)."""
    return np.stack([np.interp(grid, s.x, s.y) for s in seeds])


def mean_and_band(values: np.ndarray, band: str = "bootstrap") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and the band around it, for ``values`` of shape (S, G).

    ``bootstrap``: 95% percentile bootstrap CI of the mean, resampling seeds with replacement
    (:func:`ratbench.reporting.stats.mean_curve_band`, on rliable, fixed seed).
    ``sem``: mean ± standard error (sample std with ddof=1 over sqrt(S)).
    With S = 1 the band is NaN.
    """
    if band not in BANDS:
        raise unknown_name("band", band, BANDS)
    n_seeds = values.shape[0]
    mean = values.mean(axis=0)
    if n_seeds < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    if band == "sem":
        half = values.std(axis=0, ddof=1) / math.sqrt(n_seeds)
        return mean, mean - half, mean + half
    low, high = mean_curve_band(values)
    return mean, low, high


def aggregate(
    runs: Sequence[Run],
    metrics: Sequence[str],
    x_axes: Sequence[str] = DEFAULT_X_AXES,
    group_by: Sequence[str] = (METHOD_KEY,),
    smooth: int = 1,
    band: str = "bootstrap",
) -> tuple[list[Curve], list[str]]:
    """One :class:`Curve` per (env, metric, x axis, group) with data, and notes for the user.

    Notes say where a group mixes different configs (see
    :func:`mixed_config_note`), where its curve was cut short by its shortest
    seed (on the first x axis: seeds' wall times differ anyway) and where
    its seeds' ranges do not overlap at all.
    """
    for x_axis in x_axes:
        if x_axis not in X_AXES:
            raise unknown_name("x axis", x_axis, X_AXES)
    curves, notes = [], []
    for (env, group), members in group_runs(runs, group_by).items():
        mixed = mixed_config_note(env, group, members, group_by)
        if mixed:
            notes.append(mixed)
        for metric in metrics:
            for x_axis in x_axes:
                seeds = [c for c in (seed_curve(run, x_axis, metric, smooth) for run in members) if c is not None]
                if not seeds:
                    continue
                grid = common_grid(seeds)
                if grid is None:
                    notes.append(f"{group} on {env}: the seeds' {metric} values share no {x_axis} range, so this curve is left out")
                    continue
                mean, low, high = mean_and_band(interpolate(seeds, grid), band)
                curves.append(Curve(env, metric, x_axis, group, grid, mean, low, high, tuple(seeds)))
                truncated = truncation_note(curves[-1]) if (metric, x_axis) == (metrics[0], x_axes[0]) else None
                if truncated:
                    notes.append(truncated)
    return curves, notes


def truncation_note(curve: Curve) -> str | None:
    """A note when the curve stops more than 1% of the x range before its longest seed ends."""
    longest = max(curve.seeds, key=lambda s: s.x[-1])
    shortest = min(curve.seeds, key=lambda s: s.x[-1])
    if longest.x[-1] <= curve.x[-1] + 0.01 * (longest.x[-1] - longest.x[0]):
        return None
    return (
        f"{curve.group} on {curve.env}: curves stop at {curve.x_axis} = {_format_number(curve.x[-1])}, where its shortest "
        f"seed ({shortest.run.path}) ends; the longest reaches {_format_number(longest.x[-1])}"
    )


def default_metrics(runs: Sequence[Run]) -> list[str]:
    """``return_mean``, plus ``eval_return`` when any run logged an evaluation."""
    has_eval = any(np.isfinite(run.columns.get(EVAL_METRIC, np.array([]))).any() for run in runs)
    return [DEFAULT_METRIC, EVAL_METRIC] if has_eval else [DEFAULT_METRIC]


def check_metrics(runs: Sequence[Run], metrics: Sequence[str]) -> None:
    """Every metric must be a logged column holding at least one value."""
    columns = numeric_columns(runs)
    for metric in metrics:
        if metric not in columns or metric in X_AXES:
            raise unknown_name("metric", metric, [c for c in columns if c not in X_AXES])
        if not any(np.isfinite(run.columns.get(metric, np.array([]))).any() for run in runs):
            raise RatbenchError(f"metric {metric!r} is empty in every run; pick a column that was logged")


# ----------------------------------------------------------------------------- tables


def final_rows(curves: Sequence[Curve]) -> list[dict[str, Any]]:
    """Final value per (env, metric, group), in that order: each curve's last point, on the first x axis drawn."""
    if not curves:
        return []
    first_axis = curves[0].x_axis
    metric_order = {m: i for i, m in enumerate(dict.fromkeys(c.metric for c in curves))}
    ordered = sorted(curves, key=lambda c: (c.env, metric_order[c.metric], c.group))
    return [
        {
            "env": c.env,
            "metric": c.metric,
            "group": c.group,
            "seeds": c.n_seeds,
            first_axis: float(c.x[-1]),
            "mean": float(c.mean[-1]),
            "ci_low": float(c.low[-1]),
            "ci_high": float(c.high[-1]),
        }
        for c in ordered
        if c.x_axis == first_axis
    ]


def curve_rows(curves: Sequence[Curve]) -> list[dict[str, Any]]:
    """The aggregated curves in long form, one row per grid point (for the summary CSV)."""
    return [
        {
            "env": c.env,
            "metric": c.metric,
            "x_axis": c.x_axis,
            "group": c.group,
            "seeds": c.n_seeds,
            "x": repr(float(x)),
            "mean": repr(float(m)),
            "band_low": "" if math.isnan(lo) else repr(float(lo)),
            "band_high": "" if math.isnan(hi) else repr(float(hi)),
        }
        for c in curves
        for x, m, lo, hi in zip(c.x, c.mean, c.low, c.high)
    ]


# ----------------------------------------------------------------------------- drawing

METRIC_LABELS = {
    "return_mean": "episode return",
    "return_median": "episode return (median)",
    "eval_return": "evaluation return",
    "length_mean": "episode length",
    "fps": "env steps / s",
}
BAND_CAPTIONS = {
    "bootstrap": f"shaded: {CONFIDENCE:.0%} bootstrap CI of the mean",
    "sem": "shaded: mean ± standard error",
}


def _format_number(value: float) -> str:
    """Compact axis/notes number: 2048 -> 2k, 1500000 -> 1.5M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.4g}"


def _time_unit(seconds: float) -> tuple[str, float]:
    if seconds >= 2 * 3600:
        return "h", 3600.0
    if seconds >= 120:
        return "min", 60.0
    return "s", 1.0


def caption(band: str, smooth: int, n_seeds_note: str = "") -> str:
    """One sentence stating what the lines and bands are."""
    smoothing = f"; each seed smoothed over its last {smooth} logged points" if smooth > 1 else ""
    return f"Lines: mean over seeds; {BAND_CAPTIONS[band]}{smoothing}{n_seeds_note}."


def _seed_counts(curves: Sequence[Curve]) -> dict[str, str]:
    counts: dict[str, set[int]] = {}
    for c in curves:
        counts.setdefault(c.group, set()).add(c.n_seeds)
    return {g: (f"{min(n)}" if len(n) == 1 else f"{min(n)}-{max(n)}") + (" seed" if n == {1} else " seeds") for g, n in counts.items()}


def draw_png(curves: Sequence[Curve], band: str, smooth: int, dpi: int = 150) -> bytes:
    """The figure as PNG bytes: one row per (env, metric), one column per x axis.

    Colours are fixed per group across panels; rows share their y axis.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    if not curves:
        raise RatbenchError("nothing to plot: no run has a value of the chosen metrics")
    rows = list(dict.fromkeys((c.env, c.metric) for c in curves))
    x_axes = list(dict.fromkeys(c.x_axis for c in curves))
    groups = sorted({c.group for c in curves})
    palette = _palette(len(groups))
    colours = dict(zip(groups, palette))
    seed_counts = _seed_counts(curves)

    fig = Figure(figsize=(4.6 * len(x_axes) + 0.4, 3.1 * len(rows) + 0.9), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(rows), len(x_axes), squeeze=False, sharey="row")
    time_unit, time_scale = _time_unit(max((c.x[-1] for c in curves if c.x_axis == "wall_time"), default=0.0))
    for (env, metric), row_axes in zip(rows, axes):
        for x_axis, ax in zip(x_axes, row_axes):
            scale = time_scale if x_axis == "wall_time" else 1.0
            for c in (c for c in curves if (c.env, c.metric, c.x_axis) == (env, metric, x_axis)):
                x = c.x / scale
                colour = colours[c.group]
                ax.plot(x, c.mean, color=colour, lw=1.8, marker="o" if len(x) == 1 else None)
                if np.isfinite(c.low).any():
                    ax.fill_between(x, c.low, c.high, color=colour, alpha=0.2, lw=0)
            ax.set_title(env, fontsize=11)
            ax.set_xlabel({"env_steps": "environment steps", "wall_time": f"wall-clock time ({time_unit})", "iteration": "iteration"}[x_axis])
            if x_axis == "env_steps":
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _format_number(v) if v else "0"))
            ax.set_xlim(left=0)
            ax.grid(True, alpha=0.3, lw=0.6)
            ax.spines[["top", "right"]].set_visible(False)
            ax.tick_params(labelsize=9)
        row_axes[0].set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=10)
    handles = [Line2D([], [], color=colours[g], lw=2.5) for g in groups]
    fig.legend(handles, [f"{g} ({seed_counts[g]})" for g in groups], loc="outside upper center", ncols=min(len(groups), 4), frameon=False, fontsize=10)
    fig.supxlabel(caption(band, smooth), fontsize=8.5, color="0.3")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ----------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; }
caption { caption-side: bottom; text-align: left; color: #555; padding-top: 0.4em; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _cell(value: Any, numeric: bool = False) -> str:
    if isinstance(value, float):
        text = "–" if math.isnan(value) else f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
        return f'<td class="num">{text}</td>'
    return f'<td class="num">{html.escape(str(value))}</td>' if numeric else f"<td>{html.escape(str(value))}</td>"


def render_html(png: bytes, curves: Sequence[Curve], band: str, smooth: int, group_by: Sequence[str]) -> str:
    """A self-contained page (no network): the figure as base64 PNG, final values and the runs used."""
    finals = final_rows(curves)
    first_axis = curves[0].x_axis
    band_head = f"{CONFIDENCE:.0%} bootstrap CI" if band == "bootstrap" else "mean ± SE"
    final_body = "".join(
        "<tr>"
        + _cell(r["env"]) + _cell(r["metric"]) + _cell(r["group"]) + _cell(r["seeds"], numeric=True)
        + _cell(r[first_axis]) + _cell(r["mean"])
        + (f'<td class="num">[{r["ci_low"]:.4g}, {r["ci_high"]:.4g}]</td>' if not math.isnan(r["ci_low"]) else '<td class="num">– (one seed)</td>')
        + "</tr>"
        for r in finals
    )
    run_rows = sorted({(c.env, c.group, s.run.config.get("seed", ""), str(s.run.path)) for c in curves for s in c.seeds}, key=str)
    runs_body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in run_rows)
    image = base64.b64encode(png).decode("ascii")
    grid_note = (
        "Seeds are interpolated linearly onto the range every seed covers (no extrapolation), "
        "so each curve ends where its shortest seed ends."
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ratbench learning curves</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Learning curves</h1>
<p>{html.escape(caption(band, smooth))} {html.escape(grid_note)} Runs grouped by <code>{html.escape(", ".join(group_by))}</code>.</p>
<img alt="learning curves: mean over seeds with confidence band" src="data:image/png;base64,{image}">
<h2>Final values</h2>
<table id="final-values">
<caption>Value at the end of the common {html.escape(first_axis)} range, mean over seeds and {html.escape(band_head)}.</caption>
<tr><th>env</th><th>metric</th><th>group</th><th>seeds</th><th>{html.escape(first_axis)}</th><th>mean</th><th>{html.escape(band_head)}</th></tr>
{final_body}
</table>
<h2>Runs</h2>
<table id="runs">
<tr><th>env</th><th>group</th><th>seed</th><th>run directory</th></tr>
{runs_body}
</table>
</body>
</html>
"""
