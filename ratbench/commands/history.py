"""``ratbench history``: benchmark past commits with asv and publish the pages to open offline (ratbench.history)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ratbench.errors import RatbenchError
from ratbench.history import HISTORY_BENCH, publish, run_commits


def _repo() -> Path:
    """The checkout holding asv.conf.json: the current folder (the history belongs to a clone, not a wheel)."""
    here = Path.cwd()
    if not (here / "asv.conf.json").is_file():
        raise RatbenchError("run ratbench history from the root of a ratbench clone (where asv.conf.json is)")
    return here


def _html_dir(repo: Path) -> Path:
    return repo / json.loads((repo / "asv.conf.json").read_text())["html_dir"]


@click.group("history")
def history() -> None:
    """Speed and accuracy per commit (asv): run past commits, publish pages that open with no network."""


@history.command("run")
@click.argument("commits", nargs=-1, required=True)
@click.option("--machine", required=True, help="asv machine name the results are filed under (see `asv machine`).")
@click.option("--bench", default=HISTORY_BENCH, show_default=True, help="asv --bench regex.")
def run(commits: tuple[str, ...], machine: str, bench: str) -> None:
    """Benchmark each COMMIT (any git revision) with today's history benchmarks on that commit's code."""
    run_commits(_repo(), commits, machine, bench, echo=click.echo)


@history.command("publish")
@click.option("--npm-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="keep the npm tarballs here between publishes.")
def publish_pages(npm_cache: Path | None) -> None:
    """asv publish, then the pages' CDN scripts and styles vendored from the npm registry."""
    repo = _repo()
    html = _html_dir(repo)
    pages = publish(repo, html, npm_cache, echo=click.echo)
    click.echo(f"published {html} ({pages} pages point at vendored assets); open it with "
               f"`python -m http.server -d {html.relative_to(repo)}` and http://localhost:8000")
