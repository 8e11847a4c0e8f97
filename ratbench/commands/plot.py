"""``ratbench plot``: learning curves from run directories, to PNG, HTML and CSV."""

from __future__ import annotations

from pathlib import Path

import click

from ratbench.reporting import plot as lc
from ratbench.reporting.runs import load_runs
from ratbench.io import atomic_write_bytes, atomic_write_text, check_file_targets, write_csv

DEFAULT_NAME = "learning_curves"
OUTPUT_SUFFIXES = (".png", ".html", ".csv")


def output_prefix(out: Path | None, paths: tuple[Path, ...]) -> Path:
    """Where the three files go, without suffix.

    No ``--out``: ``learning_curves`` inside the single directory given, else
    in the current directory. ``--out`` naming an existing directory puts
    ``learning_curves.*`` there; a trailing .png/.html/.csv is dropped.
    """
    if out is None:
        base = paths[0] if len(paths) == 1 and paths[0].is_dir() else Path(".")
        return base / DEFAULT_NAME
    if out.is_dir():
        return out / DEFAULT_NAME
    return out.with_suffix("") if out.suffix.lower() in OUTPUT_SUFFIXES else out


@click.command("plot")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--metric", "metrics", multiple=True, metavar="COLUMN",
    help="progress.csv column to plot; repeat for several. Default: return_mean, plus eval_return when any run evaluated.",
)
@click.option(
    "--x", "x_axes", multiple=True, type=click.Choice(lc.X_AXES), default=lc.DEFAULT_X_AXES, show_default=True,
    help="x axis; repeat for several (one panel column each).",
)
@click.option(
    "--group-by", default=lc.METHOD_KEY, show_default=True, metavar="KEYS",
    help="config key(s) defining a group, comma-separated: method (the method label: RAT, RAT (ratbench settings), PPO, ...), solver, algo, env, or any key such as npg.lr or model.hidden.",
)
@click.option("--smooth", type=click.IntRange(1, 10**6), default=1, show_default=True, help="trailing moving average over this many logged points, per seed, before averaging.")
@click.option(
    "--band", type=click.Choice(lc.BANDS), default="bootstrap", show_default=True,
    help="bootstrap: 95% bootstrap CI of the mean over seeds; sem: mean ± standard error.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None,
    help="output prefix: writes PREFIX.png, PREFIX.html and PREFIX.csv. Default: learning_curves.* in the single directory given, else in the current directory.",
)
def plot(paths: tuple[Path, ...], metrics: tuple[str, ...], x_axes: tuple[str, ...], group_by: str, smooth: int, band: str, out: Path | None) -> None:
    """Draw learning curves from run directories (or directories holding them).

    Runs are grouped (default: by method label, e.g. RAT, PPO); each group's
    seeds are interpolated onto the x range all of them cover and drawn as the
    mean with a confidence band, one row of panels per environment and metric.
    """
    prefix = output_prefix(out, paths)
    check_file_targets([prefix.with_name(prefix.name + suffix) for suffix in (".png", ".html", ".csv")], "the plot")
    runs, warnings = load_runs(paths)
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    keys = lc.parse_group_by(group_by, runs)
    lc.check_one_run_per_seed(lc.group_runs(runs, keys))
    metrics = list(dict.fromkeys(metrics)) or lc.default_metrics(runs)
    lc.check_metrics(runs, metrics)
    curves, notes = lc.aggregate(runs, metrics, list(dict.fromkeys(x_axes)), keys, smooth, band)
    png = lc.draw_png(curves, band, smooth)
    page = lc.render_html(png, curves, band, smooth, keys)
    for note in notes:
        click.echo(f"Note: {note}", err=True)

    written = [
        atomic_write_bytes(prefix.with_name(prefix.name + ".png"), png),
        atomic_write_text(prefix.with_name(prefix.name + ".html"), page),
        write_csv(prefix.with_name(prefix.name + ".csv"), lc.curve_rows(curves)),
    ]
    groups = sorted({c.group for c in curves})
    click.echo(f"Plotted {len(runs)} run{'s' if len(runs) != 1 else ''} in {len(groups)} "
               f"group{'s' if len(groups) != 1 else ''} ({', '.join(groups)}).")
    for path in written:
        click.echo(f"wrote {path}")
