"""provenance.json: every start of a run records the code commit, package versions and machine."""

import json
import subprocess

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


def test_a_damaged_file_is_restarted_not_fatal(tmp_path):
    (tmp_path / PROVENANCE_FILE).write_text("{not json")
    append(tmp_path, entry(3, 1))
    assert [s["iteration"] for s in json.loads((tmp_path / PROVENANCE_FILE).read_text())["starts"]] == [3]
