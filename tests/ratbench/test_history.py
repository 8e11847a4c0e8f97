"""The committed speed and accuracy history (results/asv) and the pages ``ratbench history publish`` makes.

The browser test serves results/asv/html from a local HTTP server and opens it in headless Chromium (Debian's
chromium, driven by Playwright; .ci/run installs both): the summary grid and a benchmark's graph must draw, no
request may fail and none may leave localhost.
"""

from __future__ import annotations

import functools
import importlib
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import asv
import pytest
from asv.util import load_json

from ratbench.errors import RatbenchError
from ratbench.history import ASSETS, CONFIG, FONTS, check_machine, prune_benchmarks, run_commits, vendor_assets

ROOT = Path(__file__).resolve().parents[2]
CONF = load_json(str(ROOT / CONFIG), js_comments=True)
RESULTS, HTML = ROOT / CONF["results_dir"], ROOT / CONF["html_dir"]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(os.environ.get("RATBENCH_HISTORY_SCREENSHOT", "/tmp/ratbench-history.png"))


def test_history_holds_twenty_commits_of_speed_and_accuracy():
    machines = [d for d in RESULTS.iterdir() if d.is_dir()]
    assert machines and all((d / "machine.json").is_file() for d in machines)
    for machine in machines:
        files = [f for f in machine.glob("*.json") if f.name != "machine.json"]
        assert len({f.name.split("-")[0] for f in files}) >= 20
        names = set()
        for f in files:
            names |= set(json.loads(f.read_text())["results"])
        assert {"bench_history.History.time_direction", "bench_history.History.peakmem_direction",
                "bench_history.Accuracy.track_worst_relative_error", "bench_history.Accuracy.track_contract_margin"} <= names


def test_published_pages_load_nothing_from_outside():
    pages = list(HTML.glob("*.html"))
    assert (HTML / "index.html") in pages
    for page in pages:
        text = page.read_text()
        assert "https://cdn" not in text and "https://code.jquery" not in text, page.name
    for asset in ASSETS:
        assert (HTML / asset.local).is_file(), asset.local
    assert (HTML / "vendor" / "fonts" / "glyphicons-halflings-regular.woff").is_file()


def _fake_npm_cache(cache: Path) -> None:
    """Unpacked packages with placeholder files, so vendor_assets runs without the registry (its rewrite is
    what this test checks; the real packages come from npm in ``ratbench history publish``)."""
    for package in {a.package for a in ASSETS} | {FONTS[0]}:
        name, version = package.rsplit("@", 1)
        (cache / f"{name}-{version}.tgz").write_bytes(b"")
        root = cache / f"{name}-{version}" / "package"
        for asset in ASSETS:
            if asset.package == package:
                (root / asset.member).parent.mkdir(parents=True, exist_ok=True)
                (root / asset.member).write_text(f"/* {asset.member} */")
    fonts = cache / "bootstrap-3.1.1" / "package" / FONTS[1]
    fonts.mkdir(parents=True, exist_ok=True)
    (fonts / "glyphicons-halflings-regular.woff").write_bytes(b"font")


def test_vendoring_rewrites_every_cdn_tag_of_asvs_own_page(tmp_path):
    html, cache = tmp_path / "html", tmp_path / "cache"
    html.mkdir()
    cache.mkdir()
    shutil.copy(Path(asv.__file__).parent / "www" / "index.html", html / "index.html")
    _fake_npm_cache(cache)
    assert vendor_assets(html, cache) == 1
    text = (html / "index.html").read_text()
    assert "https://cdn" not in text and "integrity=" not in text
    assert all(f'"{a.local}"' in text for a in ASSETS)
    (html / "other.html").write_text('<script src="https://example.com/x.js"></script>')
    with pytest.raises(RatbenchError, match="does not know how to vendor"):
        vendor_assets(html, cache)


def test_an_unknown_commit_is_one_sentence_before_any_run(tmp_path):
    with pytest.raises(RatbenchError, match="'no-such-commit' is not a commit of"):
        run_commits(ROOT, tmp_path, ["HEAD", "no-such-commit"], "machine")


def test_timings_of_another_cpu_are_not_filed_under_a_recorded_machine(tmp_path):
    from asv.machine import Machine

    here = Machine.get_defaults()
    (tmp_path / "named").mkdir()
    (tmp_path / "named" / "machine.json").write_text(json.dumps({**here, "ram": "1", "os": "another kernel"}))
    check_machine(tmp_path, "named")  # the same CPU: ram and os may differ between virtual machines of one kind
    check_machine(tmp_path, "new-name")  # no results yet
    for key, other in (("cpu", f"not {here['cpu']}"), ("num_cpu", "999"), ("arch", "riscv")):
        (tmp_path / "named" / "machine.json").write_text(json.dumps({**here, key: other}))
        with pytest.raises(RatbenchError, match="give it a machine name of its own"):
            run_commits(tmp_path, tmp_path, ["HEAD"], "named")  # refused first: tmp_path is no git repository to run
    (tmp_path / "named" / "machine.json").write_text("[]")
    with pytest.raises(RatbenchError, match="restore it from git"):
        check_machine(tmp_path, "named")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                    reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
@pytest.mark.parametrize("damaged", [b"\xff\x00", b'{"a": ', b"[1, 2]"])
def test_pruning_refuses_a_damaged_asv_file_in_one_sentence_and_keeps_the_listing(tmp_path, damaged):
    """benchmarks.json keeps the benchmarks some result file measured; a damaged result file or listing is one
    sentence naming it, and the listing is left as it was."""
    listing = tmp_path / "benchmarks.json"
    listing.write_text(json.dumps({"version": 2, "a.time_x": {}, "b.time_y": {}}))
    (tmp_path / "machine").mkdir()
    (tmp_path / "machine" / "machine.json").write_text("{}")
    result = tmp_path / "machine" / "abc-env.json"
    result.write_text(json.dumps({"results": {"a.time_x": [1.0]}}))
    before = listing.read_bytes()
    result.write_bytes(damaged)
    with pytest.raises(RatbenchError, match=f"^{result} (is not readable JSON|holds a JSON list)"):
        prune_benchmarks(tmp_path)
    assert listing.read_bytes() == before
    result.write_text(json.dumps({"results": {"a.time_x": [1.0]}}))
    assert prune_benchmarks(tmp_path) == 1 and set(json.loads(listing.read_text())) == {"version", "a.time_x"}


@pytest.mark.parametrize("damaged,message", [(b"\xff\xfe", "is not readable JSON"), (b"[1]", "has no html_dir folder name")])
def test_a_damaged_history_configuration_is_one_sentence(tmp_path, monkeypatch, damaged, message):
    from click.testing import CliRunner

    from ratbench.cli import cli

    (tmp_path / CONFIG).write_bytes(damaged)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["history", "publish"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output, result.output
    assert len(result.output.splitlines()) == 1


def test_pages_render_offline_in_a_headless_browser():
    # in CI a missing Playwright is a failure, elsewhere a skip
    playwright = importlib.import_module("playwright.sync_api") if os.environ.get("CI") else pytest.importorskip(
        "playwright.sync_api")
    server = _serve(HTML)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    requests, failed, errors = [], [], []
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/index.html")
            page.wait_for_selector(".benchmark-container", timeout=30_000)  # the summary grid drew its cells
            page.goto(f"{base}/index.html#bench_history.History.time_direction?p-policy='mlp-gaussian'&p-method='woodbury'")
            # flot drew the graph: a visible plot canvas of real size
            visible = "() => [...document.querySelectorAll('canvas.flot-base')].filter(c => c.offsetParent && c.width > 300)"
            page.wait_for_function(f"({visible})().length > 0", timeout=30_000)
            points = page.evaluate(f"({visible})().length")
            page.screenshot(path=str(SCREENSHOT))
            browser.close()
    finally:
        server.shutdown()
    assert points >= 1
    assert not failed, failed
    assert not errors, errors
    assert requests and all(url.startswith(base) for url in requests), [u for u in requests if not u.startswith(base)]
