"""Convergence plots of ``ratbench accuracy`` (matplotlib, no display needed).

One row per problem. Left: relative error ``||d - d*|| / ||d*||`` of the
iterative solvers (kaczmarz, cg) against passes over the batch (the capture
pass included). Right: relative error against the solver's own wall time
for every solver: curves for iterative solvers, one marker per direct
solver. Grey dotted lines mark the forward bounds the contracts imply where
they are checked, labelled with the solvers they bind. :func:`plot_conditioning`
draws the conditioning sweep.
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


def plot_conditioning(records: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """The conditioning sweep (``ratbench accuracy --sweep``) to ``path``, atomically: one row per solver;
    left the forward error, right the backward error of its route, against kappa(F + lambda I), one color per
    dtype, one marker per problem (hollow where the solver is report-only). The backward bound of each dtype (8 sqrt(N) eps at the largest N, plus the
    suite's stopping tolerance for the iterative solvers) is a dashed horizontal line, the forward bound it
    implies, 2 kappa eta / (1 - kappa eta), a dashed curve up to kappa eta = 1/2."""
    check_plot_path(path)
    path = Path(path)
    solvers = list(dict.fromkeys(r["solver"] for r in records))
    problems = list(dict.fromkeys(r["problem"] for r in records))
    markers = dict(zip(problems, "osD^v<>px*h"))
    colors = {"float64": "#1f77b4", "float32": "#d62728"}
    fig = Figure(figsize=(12, 3.2 * len(solvers) + 1.2), layout="constrained")
    axes = fig.subplots(len(solvers), 2, squeeze=False)
    for row, solver in enumerate(solvers):
        forward_ax, backward_ax = axes[row]
        mine = [r for r in records if r["solver"] == solver]
        for r in mine:
            if r["relative_error"] is None or r["relative_error"] != r["relative_error"]:
                continue
            color = colors.get(r["dtype"], "grey")
            style = dict(color=color, marker=markers[r["problem"]], linestyle="none", markersize=5, alpha=0.8,
                         markerfacecolor=color if r["contract"] != "none" else "none")  # hollow: report-only
            forward_ax.plot([r["condition_number"]], _floor([r["relative_error"]]), **style)
            backward_ax.plot([r["condition_number"]], _floor([r["backward_error"]]), **style)
        for dtype, color in colors.items():
            bounds = [r["backward_tolerance"] for r in mine if r["dtype"] == dtype and r["backward_tolerance"] is not None]
            if not bounds:
                continue
            eta = max(bounds)
            backward_ax.axhline(eta, color=color, linestyle="--", linewidth=1.0)
            kappas = [k for k in (10.0**(j / 4) for j in range(0, 4 * 12)) if k * eta <= 0.5]
            forward_ax.plot(kappas, [2 * k * eta / (1 - k * eta) for k in kappas], color=color, linestyle="--", linewidth=1.0)
        forward_ax.set_title(f"{solver}: forward error", loc="left", fontsize=10)
        backward_ax.set_title(f"{solver}: backward error ({mine[0]['backward_space']} space)", loc="left", fontsize=10)
        forward_ax.set_ylabel("‖d − d*‖ / ‖d*‖")
        backward_ax.set_ylabel("η")
        for ax in (forward_ax, backward_ax):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("κ(F + λI)")
            ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], color=c, marker="o", linestyle="none", label=d) for d, c in colors.items()
               if any(r["dtype"] == d for r in records)]
    handles += [Line2D([], [], color="grey", marker=markers[p], linestyle="none", label=p) for p in problems]
    handles.append(Line2D([], [], color="grey", marker="o", markerfacecolor="none", linestyle="none", label="report-only"))
    handles.append(Line2D([], [], color="grey", linestyle="--", label="contract bound (forward: the one it implies)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), frameon=False)
    if title:
        fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower(), dpi=110)
    return atomic_write_bytes(path, buffer.getvalue())
