"""The training speed report on a small real run: every phase measured, the parts add up."""

import json

import pytest
from click.testing import CliRunner

from ratbench.cli import cli
from ratbench.training.speed_report import ROLLOUT_PHASES, UPDATE_PHASES, format_report, measure_training

SMALL = ["threads=1", "num_envs=2", "num_steps=128", "model.hidden=[16, 16]"]


def test_phases_add_up_to_the_iteration():
    report = measure_training("cartpole", sets=SMALL, iterations=2)
    s = report.seconds
    for name in (*ROLLOUT_PHASES, "capture", "gram", "cholesky", "critic"):
        assert s[name] > 0, name
    assert sum(s[n] for n in ROLLOUT_PHASES) + s["rollout (rest)"] == pytest.approx(s["rollout"])
    assert sum(s[n] for n in UPDATE_PHASES) + s["update (rest)"] == pytest.approx(s["update"])
    assert 0 < report.ratio < 5 and report.random_steps_per_s > 0
    text = format_report(report)
    assert "update per 8,192 samples" in text and "ratio" in text


def test_cli_prints_and_writes_json(tmp_path):
    out = tmp_path / "speed.json"
    args = ["speed", "--training", "cartpole", "--iterations", "1", "--json", str(out)] + [x for s in SMALL for x in ("--set", s)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["env"] == "cartpole" and data["solver"] == "kaczmarz" and data["ratio"] > 0
    assert "gram" in data["seconds_per_iteration"]
    bad = CliRunner().invoke(cli, ["speed", "--training", "cartpole", "--solver", "cg", "--solver", "woodbury"])
    assert bad.exit_code == 1 and "at most one --solver" in bad.output
