"""``ratbench history``: benchmark past commits with asv and publish the pages to open offline (ratbench.history)."""

from __future__ import annotations

from pathlib import Path

import click

from ratbench.errors import RatbenchError
from ratbench.history import CONFIG, HISTORY_BENCH, publish, run_commits


def _repo() -> Path:
    """The checkout holding the history's asv configuration: the current folder (a clone, not a wheel)."""
    here = Path.cwd()
    if not (here / CONFIG).is_file():
        raise RatbenchError(f"run ratbench history from the root of a ratbench clone (where {CONFIG} is)")
    return here


def _asv_dir(repo: Path, key: str) -> Path:
    """results_dir or html_dir of the history's asv configuration."""
    from asv.util import UserError, load_json  # asv's configurations may hold // comments, which json cannot read

    try:
        config = load_json(str(repo / CONFIG), js_comments=True)
    except (UserError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise RatbenchError(f"{repo / CONFIG} is not readable JSON ({err.__class__.__name__}); restore it from git") from None
    if not isinstance(config, dict) or not isinstance(config.get(key), str):
        raise RatbenchError(f"{repo / CONFIG} has no {key} folder name; restore it from git")
    return repo / config[key]


@click.group("history")
def history() -> None:
    """Speed and accuracy per commit (asv): run past commits, publish pages that open with no network."""


@history.command("run")
@click.argument("commits", nargs=-1, required=True)
@click.option("--machine", required=True, help="asv machine name the results are filed under (see `asv machine`).")
@click.option("--bench", default=HISTORY_BENCH, show_default=True, help="asv --bench regex.")
def run(commits: tuple[str, ...], machine: str, bench: str) -> None:
    """Benchmark each COMMIT (any git revision) with today's history benchmarks on that commit's code."""
    repo = _repo()
    run_commits(repo, _asv_dir(repo, "results_dir"), commits, machine, bench, echo=click.echo)


@history.command("publish")
@click.option("--npm-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="keep the npm tarballs here between publishes.")
def publish_pages(npm_cache: Path | None) -> None:
    """asv publish, then the pages' CDN scripts and styles vendored from the npm registry."""
    repo = _repo()
    html = _asv_dir(repo, "html_dir")
    pages = publish(repo, _asv_dir(repo, "results_dir"), html, npm_cache, echo=click.echo)
    click.echo(f"published {html} ({pages} pages point at vendored assets); open it with "
               f"`python -m http.server -d {html.relative_to(repo)}` and http://localhost:8000")
