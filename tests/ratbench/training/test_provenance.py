"""provenance.json: every start of a run records the code commit, package versions and machine."""

import json
import subprocess

import pytest

from ratbench.errors import RatbenchError
from ratbench.reporting.collect import collect
from ratbench.reporting.runs import load_runs
from ratbench.training import Trainer
from ratbench.training.provenance import PROVENANCE_FILE, SOURCE_DIR, append, code_version, entry
from tests.ratbench.training.helpers import small_config


def test_a_run_and_its_resume_each_append_an_entry_and_collect_keeps_them(tmp_path):
    run = tmp_path / "run"
    Trainer.create(small_config("cartpole", steps=1024), logdir=run, progress_bar=False).train()
    Trainer.resume(run, steps=2048, progress_bar=False).train()
    starts = json.loads((run / PROVENANCE_FILE).read_text())["starts"]
    assert [s["iteration"] for s in starts] == [0, 1]
    for start in starts:
        assert start["packages"]["torch"] and start["packages"]["gymnasium"] and start["python"] and start["threads"] >= 1
        assert start["code"] == code_version()
    runs, _ = load_runs([run])
    (copied,) = collect(runs, tmp_path / "results")
    assert json.loads((copied / PROVENANCE_FILE).read_text())["starts"] == starts
    commit = code_version()["commit"]
    expected = [] if commit is None else [commit + ("+dirty" if code_version()["dirty"] else "")]
    assert json.loads((copied / "summary.json").read_text())["commits"] == expected


def test_code_version_is_the_checkouts_head():
    head = subprocess.run(["git", "-C", str(SOURCE_DIR), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:  # an installed copy outside a checkout records no commit
        assert code_version() == {"commit": None, "dirty": None}
    else:
        assert code_version()["commit"] == head.stdout.strip() and isinstance(code_version()["dirty"], bool)


@pytest.mark.parametrize("damaged", ["{not json", '{"starts": 5}', '{"starts": null}', "[1, 2]"])
def test_a_damaged_file_is_restarted_not_fatal(tmp_path, damaged):
    (tmp_path / PROVENANCE_FILE).write_text(damaged)
    append(tmp_path, entry(3, 1))
    assert [s["iteration"] for s in json.loads((tmp_path / PROVENANCE_FILE).read_text())["starts"]] == [3]


def test_collect_refuses_a_damaged_provenance_or_config_before_writing_anything(tmp_path):
    """Every run's summary is computed before the first file is copied: the good run is not collected alone."""
    good, bad = tmp_path / "a-good", tmp_path / "b-bad"
    for run in (good, bad):
        Trainer.create(small_config("cartpole", steps=512), logdir=run, progress_bar=False).train()
    runs, _ = load_runs([good, bad])
    (bad / PROVENANCE_FILE).write_bytes(b"\xff\x00garbage")
    with pytest.raises(RatbenchError, match=r"provenance.json is damaged"):
        collect(runs, tmp_path / "results")
    (bad / PROVENANCE_FILE).write_text('{"starts": [1, 2]}')
    with pytest.raises(RatbenchError, match=r"provenance.json is damaged"):
        collect(runs, tmp_path / "results")
    (bad / PROVENANCE_FILE).unlink()
    runs[1].config["steps"] = "many"
    with pytest.raises(RatbenchError, match=r"^cannot collect .*b-bad: its config.yaml or progress.csv"):
        collect(runs, tmp_path / "results")
    assert not (tmp_path / "results").exists()
