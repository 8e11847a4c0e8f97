"""The sb3-contrib TRPO peer (suites/peers/sb3_trpo.py): a short real run on Hopper-v5 writes a run directory that
`ratbench report` reads as its own method, evaluated at ratbench's marks, and `report --collect` accepts."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratbench.cli import cli
from ratbench.reporting.methods import group_by_method
from ratbench.reporting.runs import load_runs
from tests.ratbench.training.helpers import read_rows

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sb3_contrib") is None,
                                reason="sb3-contrib is not installed (pip install -e '.[peers]')")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "suites" / "peers"))


def test_a_short_peer_run_is_read_as_its_own_method_at_ratbench_marks(tmp_path):
    from sb3_trpo import run

    run_dir = run("Hopper-v5", 0, 5000, tmp_path / "Hopper-v5-trpo-sb3-s0", eval_every=2048)
    rows = read_rows(run_dir)
    assert [int(r["env_steps"]) for r in rows] == [2048, 4096, 6144]  # 2 envs x 1024 per update, past the budget once
    assert [int(r["eval_step"]) for r in rows] == [2048, 4096, 6144] and all(float(r["train_return"]) > 0 for r in rows)
    runs, _ = load_runs([tmp_path])
    (group,) = group_by_method(runs, include_unfinished=True)
    assert group.method == "TRPO (sb3-contrib peer)" and group.env == "Hopper-v5" and len(group.runs) == 1
    assert not (run_dir / "checkpoint.pt").exists()
    (start,) = json.loads((run_dir / "provenance.json").read_text())["starts"]  # ratbench's format: collectable
    assert set(start["code"]) == {"commit", "dirty"} and start["peer_packages"]["sb3-contrib"] and start["threads"] == 1
    collected = CliRunner().invoke(cli, ["report", str(run_dir), "--collect", str(tmp_path / "results"),
                                         "--out", str(tmp_path / "page")])
    assert collected.exit_code == 0, collected.output
    assert (tmp_path / "results" / run_dir.name / "provenance.json").is_file()
