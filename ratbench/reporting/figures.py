"""Figures: sample-efficiency curves (IQM over seeds against env steps, 95% bootstrap bands) per task
and metric, with published numbers from other harnesses as labelled markers."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from ratbench.reporting.methods import Group
from ratbench.reporting.published import Published
from ratbench.reporting.stats import iqm_curve

METRIC_LABELS = {"train_return": "training return (last 100 stochastic episodes)",
                 "eval_return": "evaluation return (deterministic)"}
GRID_POINTS = 40


def curves_png(groups: Sequence[Group], metrics: Sequence[str], published: Sequence[Published], dpi: int = 120) -> bytes:
    """One row per task, one column per metric; returns PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({g.env for g in groups})
    methods = sorted({g.method for g in groups})
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(len(envs), len(metrics), figsize=(6.5 * len(metrics), 3.8 * len(envs)), squeeze=False)
    for row, env in enumerate(envs):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            top_env = max((float(np.nanmax(r.columns["env_steps"])) for g in groups if g.env == env for r in g.runs), default=0.0)
            for group in (g for g in groups if g.env == env and g.runs):
                top = max(float(np.nanmax(r.columns["env_steps"])) for r in group.runs)
                grid = np.linspace(top / GRID_POINTS, top, GRID_POINTS)
                mid, low, high = iqm_curve(group.runs, metric, grid)
                if np.isfinite(mid).any():
                    n = len(group.runs)
                    ax.plot(grid, mid, color=colours[group.method], label=f"{group.method} ({n} seed{'s' if n != 1 else ''})")
                    ax.fill_between(grid, low, high, color=colours[group.method], alpha=0.2, linewidth=0)
            for k, entry in enumerate(p for p in published if p.same_task(env) and p.metric == metric):
                shown = sorted((k, v) for k, v in entry.points.items() if k <= 1.1 * top_env)  # none past the runs' range
                if not shown:
                    continue
                steps, values = zip(*shown)
                ax.plot(steps, values, linestyle="none", marker="os^vD"[k % 5], color="black", fillstyle="none",
                        label=f"published: {entry.method}, {entry.env}")
            ax.set_title(f"{env}: {METRIC_LABELS.get(metric, metric)}", fontsize=10)
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
            if ax.has_data():
                ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def profile_png(panels: Sequence[tuple[str, dict, dict, np.ndarray]], metric: str, dpi: int = 120) -> bytes:
    """One panel per benchmark family, ``(family, profiles, cis, taus)`` as
    :func:`ratbench.reporting.stats.performance_profiles` returns them, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.2), squeeze=False)
    for ax, (name, profiles, cis, taus) in zip(axes[0], panels):
        colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(sorted(profiles))}
        plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, colors=colours, ax=ax,
                                             xlabel=f"normalised window {metric} (τ; 0: random, 1: reference)",
                                             ylabel="fraction of runs with score > τ")
        ax.set_title(name, fontsize=11)
        ax.legend(handles=[matplotlib.lines.Line2D([], [], color=c, label=m) for m, c in colours.items()], fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()
