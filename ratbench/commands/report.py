"""``ratbench report``: the verdict from run directories (tables, figures, a page), with rliable statistics."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ratbench.errors import RatbenchError
from ratbench.io import check_file_targets, check_writable

METRICS = ("train_return", "eval_return")


def _milestones(spec: str | None, top: float) -> list[int]:
    if spec:
        try:
            values = sorted({int(float(x)) for x in spec.split(",") if x.strip()})
        except (ValueError, OverflowError):  # OverflowError: inf
            raise RatbenchError(f"--milestones takes comma-separated step counts like 1e6,2e6,3e6, got {spec!r}") from None
        if not values or values[0] <= 0:
            raise RatbenchError(f"--milestones must be positive step counts, got {spec!r}")
        return values
    step = 10 ** max(3, int(len(str(int(max(top, 1)))) - 1))  # the run length's leading power of ten
    return [k * step for k in range(1, int(top // step) + 1)][-10:] or [int(top)]


def _read_analysis(path: Path) -> str | None:
    """The page's analysis.md (None when absent); one that is not UTF-8 text is a one-sentence error."""
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RatbenchError(f"{path} is not UTF-8 text (a binary file?); the page's analysis is written in Markdown") from None


def _reported_itself(page: Path, roots: list[Path]) -> bool:
    """Whether a report of ``roots`` (resolved) covers the page of its own ``page`` (resolved) as its own page: a
    root is the page or lies inside it, so the search does not skip it."""
    return any(r == page or page in r.parents for r in roots)


def _refuse_subpage_out(out: Path | None, searched: tuple[Path, ...]) -> None:
    """Refuse an ``--out`` that is a page of its own (it holds comparisons.yaml) inside a searched folder and not
    itself searched: the search skips it, so its page would lose its own runs. Checked before anything is written
    (``--collect`` copies included); ``searched`` are the folders the report will read."""
    from ratbench.reporting.comparisons import COMPARISONS_FILE

    if out is None or not (out / COMPARISONS_FILE).is_file():
        return
    target, roots = out.resolve(), [Path(p).resolve() for p in searched]
    if any(r in target.parents for r in roots) and not _reported_itself(target, roots):
        raise RatbenchError(f"--out {out} is a page of its own (it holds comparisons.yaml): report it with "
                            f"`ratbench report {out}`, or write this report elsewhere")


def _subpages(skipped: list[Path], paths: tuple[Path, ...]) -> list[tuple[Path, list[str]]]:
    """(page, what it holds) for the pages of their own that the search skipped, each once, less those that a given
    path reports itself (it is one of them or inside one): its comparisons' titles, or for a page that declares no
    questions the count of its runs."""
    from ratbench.reporting.comparisons import COMPARISONS_FILE, load_comparisons

    searched = [Path(p).resolve() for p in paths]
    kept: dict[Path, Path] = {}
    for page in skipped:
        resolved = page.resolve()
        if not _reported_itself(resolved, searched):
            kept.setdefault(resolved, page)
    described = []
    for page in sorted(kept.values()):
        titles = [c.title for c in load_comparisons(page / COMPARISONS_FILE)]
        if not titles:
            runs = _run_count(page)
            titles = [f"no declared questions ({runs} run{'' if runs == 1 else 's'})"]
        described.append((page, titles))
    return described


def _run_count(page: Path) -> int:
    """How many run directories a page of its own holds, finished or not (those of pages below it left out)."""
    from ratbench.reporting.runs import find_run_dirs

    try:
        return len(find_run_dirs([page], pages=[])[0])
    except RatbenchError:  # no run directory outside its own pages
        return 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="output directory (default: the single directory given, else ./report): README.md, report.html, curves.png, milestones.csv, final.csv, summary.json.")
@click.option("--metric", "metrics", multiple=True, type=click.Choice(METRICS),
              help="train_return (last 100 stochastic training episodes, the reference's metric) and/or eval_return (deterministic evaluation); default both.")
@click.option("--milestones", default=None, help="env steps for the milestone table, comma-separated (default: every power-of-ten multiple up to the longest run).")
@click.option("--keep-latest", is_flag=True, help="when a method has two runs with one seed, use the most recent instead of stopping.")
@click.option("--include-unfinished", is_flag=True, help="count unfinished runs in the statistics (they are always listed).")
@click.option("--collect", "collect_into", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="first copy every run's compact outputs (config.yaml, progress.csv, provenance.json, summary.json; no checkpoints) into this folder, then report from the copies there.")
def report(paths: tuple[Path, ...], out: Path | None, metrics: tuple[str, ...], milestones: str | None, keep_latest: bool,
           include_unfinished: bool, collect_into: Path | None) -> None:
    """Tables, curves and a verdict per task from `ratbench train` run directories.

    \b
    ratbench report runs/suites/mujoco                     # report into runs/suites/mujoco/
    ratbench report runs/suites/humanoid --collect results/humanoid   # commit-ready copies + report there"""
    import numpy as np

    from ratbench.reporting import figures, pages, stats, tables
    from ratbench.reporting.comparisons import COMPARISONS_FILE, compare, comparison_summary, load_comparisons
    from ratbench.reporting.methods import group_by_method, last_step
    from ratbench.reporting.normalisation import load_anchors
    from ratbench.reporting.published import load_published
    from ratbench.reporting.runs import load_runs

    def progress(message: str) -> None:
        click.echo(f"report: {message}", err=True)

    metrics = metrics or METRICS
    for target, what in ((collect_into, "the collected runs"), (out, "the report")):
        if target is not None:
            check_writable(target, what)
    _refuse_subpage_out(out, (collect_into,) if collect_into is not None else paths)
    if collect_into is not None:
        from ratbench.reporting.collect import collect

        runs, warnings = load_runs(paths)
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        collect(runs, collect_into)
        progress(f"collected {len(runs)} runs into {collect_into}")
        paths = (collect_into,)
    out = out or (paths[0] if len(paths) == 1 and paths[0].is_dir() else Path("report"))
    check_file_targets([out / name for name in pages.REPORT_FILES], "the report")
    skipped: list[Path] = []
    runs, warnings = load_runs(paths, skipped)
    subpages = _subpages(skipped, paths)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    groups = group_by_method(runs, keep_latest=keep_latest, include_unfinished=include_unfinished)
    if not any(g.runs for g in groups):
        raise RatbenchError("every run found is unfinished; wait for one to finish or pass --include-unfinished")
    progress(f"{len(runs)} runs, {len(groups)} task-method groups; window scores and exact tests ...")
    steps = _milestones(milestones, max(last_step(r) for g in groups for r in g.runs))
    published = load_published()
    anchors = load_anchors()
    milestone_rows = tables.milestone_rows(groups, metrics, steps, published)
    final_rows = tables.final_rows(groups, metrics, anchors)
    progress("learning curves (bootstrap bands) ...")
    png = figures.curves_png(groups, metrics, published)
    profile_metric = "eval_return" if "eval_return" in metrics else metrics[0]
    blocks = stats.normalised_blocks(final_rows, profile_metric, anchors)
    aggregates, panels = [], []
    for block in blocks:
        progress(f"{block.family} aggregate over {len(block.tasks)} tasks, {len(block.scores)} methods ...")
        rows = stats.aggregate_over_tasks(block.scores)
        aggregates.append((block, rows))
        values = np.concatenate([v.ravel() for v in block.scores.values()])
        taus = np.linspace(min(-0.1, float(values.min())), max(1.1, float(values.max())), 81)
        profiles, cis = stats.performance_profiles(block.scores, taus)
        panels.append((block.family, profiles, cis, taus))
    profile = figures.profile_png(panels, profile_metric) if panels else None
    seed_counts = sorted({r["seeds"] for r in final_rows if r["seeds"] >= 2})
    coverage = {n: stats.iqm_interval_coverage(n) for n in seed_counts}
    inside = all(out.resolve() in r.path.resolve().parents for g in groups for r in (*g.runs, *g.unfinished))
    command = ("ratbench report " + shlex.quote(str(out)) if inside  # the page regenerates from its own folder
               else "ratbench report " + " ".join(shlex.quote(str(p)) for p in paths) + f" --out {shlex.quote(str(out))}")
    if metrics != METRICS:
        command += "".join(f" --metric {m}" for m in metrics)
    if milestones:
        command += f" --milestones {milestones}"
    analysis = out / pages.ANALYSIS_FILE
    analysis_text = _read_analysis(analysis)
    if analysis_text is not None:
        progress(f"analysis from {analysis}")
    else:
        progress(f"no {analysis}: the page has no Analysis section (it is read from the --out folder)")
    declared = load_comparisons(out / COMPARISONS_FILE)
    if declared:
        progress(f"{len(declared)} comparison(s) from {out / COMPARISONS_FILE} ...")
    compared = [(c, *compare(c, final_rows, profile_metric, anchors)) for c in declared]
    md = pages.markdown(groups, milestone_rows, final_rows, metrics, "curves.png", command, list(warnings), base=out,
                        analysis=analysis_text,
                        blocks=aggregates, profile_metric=profile_metric, anchors=anchors, coverage=coverage,
                        comparisons=compared, subpages=subpages)
    summary = [{"family": block.family, "tasks": block.tasks, "metric": profile_metric, "rows": rows}
               for block, rows in aggregates]
    written = pages.write_report(out, md, png, milestone_rows, final_rows, profile, summary,
                                 [comparison_summary(c, results, missing, profile_metric)
                                  for c, results, missing in compared])
    progress(f"wrote {', '.join(str(p) for p in written)}")
    if sys.stdout.isatty():
        click.echo(md)
