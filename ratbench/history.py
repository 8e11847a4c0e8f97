"""The speed and accuracy history: asv results per commit and the pages, published to open with no network.

``run_commits`` benchmarks past commits with asv's existing-environment mode: each commit is checked out into a
temporary git worktree and put first on the benchmarks' ``sys.path`` (asv's ``ASV_PYTHONPATH``; asv drops
``PYTHONPATH``), and ``asv run --python=same --set-commit-hash`` records
the results under that commit (results/asv/results, the machine file beside them). The benchmarks are today's
(suites/history/bench_history.py, written against what every commit offers), the code measured is the commit's.

``publish`` runs ``asv publish`` (results/asv/html), then replaces the scripts and styles its pages load from
public CDNs (jQuery, flot, bootstrap, ...) with the same libraries' files from the npm registry (``npm pack``,
the versions asv names; stupid-table-plugin 1.1.3, the only release npm has of the plugin asv takes at 1.0.1),
copied into the published folder. The pages then render from a local web server without any request leaving it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_text

CONFIG = "asv.history.conf.json"
"""The history's asv configuration: benchmarks in suites/history, results and pages under results/asv (the main
asv.conf.json keeps the full speed suite's under .asv/). A separate benchmark folder, because asv imports every
module of it to discover benchmarks, and today's speed suite does not import on old commits."""
HISTORY_BENCH = "bench_history"
"""The asv benchmark module every commit of the history runs (``--bench``)."""
HISTORY_TREE = "RATBENCH_HISTORY_TREE"
"""Environment variable naming the checkout a history run measures (suites/history/bench_history.py checks it)."""


@dataclass(frozen=True)
class Asset:
    """One CDN file asv's pages load: the URL, the npm package that ships it and its path inside the package."""

    url: str
    package: str
    member: str

    @property
    def local(self) -> str:
        """Where the published folder holds it, relative to the pages."""
        return f"vendor/{self.package.split('@')[0]}/{Path(self.member).name}"


FLOT = "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/"
ASSETS = (
    Asset("https://code.jquery.com/jquery-3.3.1.min.js", "jquery@3.3.1", "dist/jquery.min.js"),
    Asset(FLOT + "jquery.flot.min.js", "flot@0.8.3", "jquery.flot.js"),
    Asset(FLOT + "jquery.flot.time.min.js", "flot@0.8.3", "jquery.flot.time.js"),
    Asset(FLOT + "jquery.flot.selection.min.js", "flot@0.8.3", "jquery.flot.selection.js"),
    Asset(FLOT + "jquery.flot.categories.min.js", "flot@0.8.3", "jquery.flot.categories.js"),
    Asset("https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js", "flot-orderbars@1.0.0",
          "js/jquery.flot.orderBars.js"),
    Asset("https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js", "stupid-table-plugin@1.1.3",
          "stupidtable.min.js"),
    Asset("https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js", "blueimp-md5@2.19.0",
          "js/md5.min.js"),
    Asset("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js", "bootstrap@3.1.1",
          "dist/js/bootstrap.min.js"),
    Asset("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css", "bootstrap@3.1.1",
          "dist/css/bootstrap.min.css"),
)
FONTS = ("bootstrap@3.1.1", "dist/fonts/")
"""bootstrap.min.css loads its glyph font from ../fonts/: the folder goes beside the stylesheet's."""

_TAG = re.compile(r'<(script|link)\b[^>]*?(?:src|href)="(https?://[^"]+)"[^>]*>')
_ATTRIBUTES = re.compile(r'\s+(?:integrity|crossorigin|referrerpolicy)="[^"]*"')


def _run(command: Sequence[str], what: str, env: Optional[dict] = None, cwd: Optional[Path] = None) -> None:
    """Run ``command``, its output passing through; a failure or a missing program is one sentence."""
    try:
        result = subprocess.run(list(command), env=env, cwd=cwd)
    except FileNotFoundError:
        raise RatbenchError(f"{what} needs `{command[0]}`, which is not on PATH") from None
    if result.returncode != 0:
        raise RatbenchError(f"{what} failed: `{' '.join(command)}` exited with {result.returncode}")


MACHINE_IDENTITY = ("cpu", "num_cpu", "arch")
"""The keys of asv's machine description that must match for two timings to share a history graph (its ram and os
strings vary between virtual machines of one kind)."""


def check_machine(results_dir: Path, machine: str) -> None:
    """Refuse to file this computer's timings under a machine name whose recorded results (``results_dir/machine/
    machine.json``) were taken on another CPU: asv would draw both in one graph, a change of computer read as a
    change of code. A name with no results yet passes."""
    from asv.machine import Machine

    recorded = results_dir / machine / "machine.json"
    if not recorded.is_file():
        return
    there = _json_object(recorded, "restore it from git: it names the computer the history's timings under that name come from")
    here = Machine.get_defaults()
    if any(str(there.get(key)) != str(here.get(key)) for key in MACHINE_IDENTITY):
        def describe(info: dict) -> str:
            return f"{info.get('cpu')} ({info.get('num_cpu')} CPUs, {info.get('arch')})"

        raise RatbenchError(f"the history's results for machine {machine!r} were taken on {describe(there)} and this "
                            f"computer is {describe(here)}; give it a machine name of its own "
                            "(`asv machine --machine NAME --yes`, then --machine NAME) so its timings get their own graphs")


def run_commits(repo: Path, results_dir: Path, commits: Sequence[str], machine: str, bench: str = HISTORY_BENCH,
                echo: Callable[[str], None] = print) -> None:
    """Benchmark each of ``commits`` (module doc) on this computer, filed under ``machine`` in ``results_dir``;
    checks the machine (:func:`check_machine`) and resolves every commit before running any."""
    check_machine(results_dir, machine)
    shas = []
    for commit in commits:
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=repo,
                               capture_output=True, text=True)
        if found.returncode != 0:
            raise RatbenchError(f"{commit!r} is not a commit of {repo}")
        shas.append(found.stdout.strip())
    with tempfile.TemporaryDirectory(prefix="ratbench-history-") as scratch:
        for i, sha in enumerate(shas, 1):
            tree = Path(scratch) / sha[:8]
            echo(f"[{i}/{len(shas)}] {sha[:8]}: checking out")
            _run(["git", "worktree", "add", "--detach", "--force", str(tree), sha], "git worktree", cwd=repo)
            try:
                # asv drops PYTHONPATH from a benchmark's environment and puts ASV_PYTHONPATH first on sys.path;
                # the benchmarks check that what they import is the commit's (HISTORY_TREE)
                env = {**os.environ, "ASV_PYTHONPATH": str(tree), HISTORY_TREE: str(tree)}
                echo(f"[{i}/{len(shas)}] {sha[:8]}: asv run --bench {bench}")
                _run([sys.executable, "-m", "asv", "run", "--config", CONFIG, "--python=same", "--set-commit-hash", sha,
                      "--bench", bench, "--machine", machine, "--attribute", "processes=1"], "asv run", env=env, cwd=repo)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, capture_output=True)


def publish(repo: Path, results_dir: Path, html_dir: Path, cache: Optional[Path] = None,
            echo: Callable[[str], None] = print) -> int:
    """``asv publish`` of the benchmarks the history holds results for, then the CDN assets vendored from npm
    (module doc); returns the pages rewritten."""
    dropped = prune_benchmarks(results_dir)
    if dropped:
        echo(f"{dropped} benchmarks without results left off the pages")
    _run([sys.executable, "-m", "asv", "publish", "--config", CONFIG], "asv publish", cwd=repo)
    echo("vendoring the pages' scripts and styles from the npm registry")
    return vendor_assets(html_dir, cache)


def prune_benchmarks(results_dir: Path) -> int:
    """Drop from asv's benchmarks.json the benchmarks no result file holds (asv lists every benchmark it found,
    and the pages would ask for graphs of each); returns how many were dropped."""
    listing = results_dir / "benchmarks.json"
    if not listing.is_file():
        raise RatbenchError(f"{results_dir} holds no asv benchmarks.json; run `ratbench history run` first")
    measured: set[str] = set()
    for path in results_dir.glob("*/*.json"):
        if path.name != "machine.json":
            measured |= set(_json_object(path).get("results", {}))
    benchmarks = _json_object(listing)
    kept = {name: entry for name, entry in benchmarks.items() if name == "version" or name in measured}
    atomic_write_text(listing, json.dumps(kept, indent=4, sort_keys=True))
    return len(benchmarks) - len(kept)


RERUN = "delete it and run `ratbench history run` again for its commit"


def _json_object(path: Path, remedy: str = RERUN) -> dict:
    """An asv file's JSON object; a damaged one is a one-sentence error ending in ``remedy``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise RatbenchError(f"{path} is not readable JSON ({err.__class__.__name__}); {remedy}") from None
    if not isinstance(data, dict):
        raise RatbenchError(f"{path} holds a JSON {type(data).__name__}, not asv's object; {remedy}")
    return data


def vendor_assets(html_dir: Path, cache: Optional[Path] = None) -> int:
    """Copy every :data:`ASSETS` file (and bootstrap's fonts) into ``html_dir`` and point the pages at them."""
    with tempfile.TemporaryDirectory(prefix="ratbench-npm-") as scratch:
        packs = Path(cache or scratch)
        packs.mkdir(parents=True, exist_ok=True)
        packages = {asset.package for asset in ASSETS} | {FONTS[0]}
        unpacked = {package: _unpack(package, packs) for package in sorted(packages)}
        for asset in ASSETS:
            target = html_dir / asset.local
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(unpacked[asset.package] / asset.member, target)
        fonts = html_dir / "vendor" / "bootstrap" / ".." / "fonts"
        shutil.copytree(unpacked[FONTS[0]] / FONTS[1], fonts.resolve(), dirs_exist_ok=True)
    by_url = {asset.url: asset.local for asset in ASSETS}
    rewritten = 0
    for page in sorted(html_dir.glob("*.html")):
        text = page.read_text()
        new = _TAG.sub(lambda m: _localise(m, by_url, page), text)
        if new != text:
            page.write_text(new)
            rewritten += 1
    return rewritten


def _localise(match: re.Match, by_url: dict[str, str], page: Path) -> str:
    tag, url = match.group(0), match.group(2)
    if url not in by_url:
        raise RatbenchError(f"{page.name} loads {url}, which ratbench does not know how to vendor; update "
                            "ratbench.history.ASSETS for this asv version")
    return _ATTRIBUTES.sub("", tag.replace(url, by_url[url]))


def _unpack(package: str, packs: Path) -> Path:
    """The unpacked ``npm pack`` tarball of ``package`` (name@version), fetched into ``packs`` once."""
    name, version = package.rsplit("@", 1)
    tarball = packs / f"{name}-{version}.tgz"
    if not tarball.exists():
        _run(["npm", "pack", package, "--pack-destination", str(packs), "--silent"], f"fetching {package} from npm")
    target = packs / f"{name}-{version}"
    if not target.exists():
        with tarfile.open(tarball) as archive:
            archive.extractall(target, filter="data")
    return target / "package"
