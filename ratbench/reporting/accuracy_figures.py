"""Convergence plots of ``ratbench accuracy`` (matplotlib, no display needed).

One row per problem. Left: relative error ``||d - d*|| / ||d*||`` of the
iterative solvers (kaczmarz, cg) against passes over the batch (the capture
pass included). Right: relative error against the solver's own wall time
for every solver: curves for iterative solvers, one marker per direct
solver. Grey dotted lines mark the contract tolerances, labelled with the
solvers they bind.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_bytes
from solvers import solver_names

ERROR_FLOOR = 1e-17
"""Errors below this (exact zeros included) are drawn at the floor so a log axis can show them."""

FORMATS = ("png", "svg", "pdf")


def check_plot_path(path: str | Path) -> None:
    """Refuse a plot file name whose suffix matplotlib should not guess."""
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in FORMATS:
        raise RatbenchError(f"plot file {str(path)!r} must end in one of: {', '.join('.' + f for f in FORMATS)}")


def _floor(values: Sequence[float]) -> list[float]:
    return [max(v, ERROR_FLOOR) for v in values]


def _solver_colors(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One fixed color per solver (registry order), so a solver looks the same in every plot."""
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    order = solver_names() + [r["solver"] for r in records]
    index = {name: i for i, name in enumerate(dict.fromkeys(order))}
    return {s: palette[index[s] % len(palette)] for s in dict.fromkeys(r["solver"] for r in records)}


def _draw_tolerances(ax: Any, records: Sequence[dict[str, Any]]) -> None:
    """One grey dotted line per distinct checked forward-error bound (the one a solver's backward-error
    contract implies, where it is checked), labelled with the solvers it binds."""
    by_tolerance: dict[float, list[str]] = {}
    for record in records:
        if record.get("forward_tolerance") is not None:
            by_tolerance.setdefault(record["forward_tolerance"], []).append(record["solver"])
    for rank, tolerance in enumerate(sorted(by_tolerance, reverse=True)):
        above = rank == 0  # the largest label sits above its line, the others below, so close lines stay legible
        ax.axhline(tolerance, color="grey", linestyle=":", linewidth=1.0)
        # left-aligned: convergence curves reach the tolerance level on the right
        ax.annotate(f"bound: {', '.join(by_tolerance[tolerance])}", (0.0, tolerance), xycoords=("axes fraction", "data"),
                    xytext=(4, 2 if above else -2), textcoords="offset points", ha="left",
                    va="bottom" if above else "top", fontsize=7, color="grey")


def _label_log_x(ax: Any) -> None:
    """Short '%g' labels on a log x axis; minor ticks labelled (at 2 and 5 only) when it spans under two decades."""
    low, high = sorted(ax.get_xlim())
    axis = ax.xaxis
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    if low > 0 and high / low < 100:
        axis.set_minor_formatter(FuncFormatter(lambda x, _: f"{x:g}" if f"{x:.0e}"[0] in "25" else ""))
    else:
        axis.set_minor_formatter(NullFormatter())


def plot_convergence(records: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Draw the records of ``ratbench accuracy`` to ``path`` (PNG, SVG or PDF by suffix), atomically."""
    check_plot_path(path)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    problems = list(dict.fromkeys(r["problem"] for r in records))
    colors = _solver_colors(records)
    fig = Figure(figsize=(12, 3.4 * len(problems) + 1.0), layout="constrained")
    axes = fig.subplots(len(problems), 2, squeeze=False)
    for row, problem in enumerate(problems):
        by_passes, by_time = axes[row]
        row_records = [r for r in records if r["problem"] == problem]
        iterative = False
        for record in row_records:
            color = colors[record["solver"]]
            curve = record.get("curve") or []
            if curve:
                iterative = True
                errors = _floor([p["relative_error"] for p in curve])
                by_passes.plot([p["passes"] for p in curve], errors, color=color, linewidth=1.4)
                by_time.plot([p["seconds"] for p in curve], errors, color=color, linewidth=1.4)
            error = record.get("relative_error")
            if error is not None and error == error and record.get("seconds") == record.get("seconds"):
                marker = "o" if curve else "D"
                by_time.plot([record["seconds"]], _floor([error]), marker=marker, color=color, markersize=6,
                             markeredgecolor="black", markeredgewidth=0.5, linestyle="none")
                if curve:
                    by_passes.plot([record["passes"]], _floor([error]), marker="o", color=color, markersize=6,
                                   markeredgecolor="black", markeredgewidth=0.5, linestyle="none")
        _draw_tolerances(by_passes, [r for r in row_records if r.get("curve")])
        _draw_tolerances(by_time, row_records)
        first = next(r for r in records if r["problem"] == problem)
        label = f"{problem}  (N={first['n']}, P={first['num_params']:,}, {first['reference_mode']}-space reference)"
        by_passes.set_title(label, loc="left", fontsize=10)
        if not iterative:
            by_passes.text(0.5, 0.5, "no iterative solver in this run", ha="center", va="center",
                           transform=by_passes.transAxes, color="grey")
        by_passes.set_xlabel("passes over the batch (capture included)")
        by_time.set_xlabel("solver wall time [s] (capture included)")
        by_time.set_xscale("log")
        _label_log_x(by_time)
        for ax in (by_passes, by_time):
            ax.set_yscale("log")
            ax.set_ylabel("‖d − d*‖ / ‖d*‖")
            ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], color=c, linewidth=2, label=s) for s, c in colors.items()]
    if any(r.get("forward_tolerance") is not None for r in records):
        handles.append(Line2D([], [], color="grey", linestyle=":", label="forward bound of the contract"))
    if any(r.get("curve") for r in records):
        handles.append(Line2D([], [], color="grey", marker="o", markeredgecolor="black", linestyle="none", label="final (iterative)"))
    if any(not r.get("curve") for r in records):
        handles.append(Line2D([], [], color="grey", marker="D", markeredgecolor="black", linestyle="none", label="direct solver"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), frameon=False)
    if title:
        fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=110)
    return atomic_write_bytes(path, buffer.getvalue())
