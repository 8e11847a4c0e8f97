"""The training speed report on a small real run: every phase measured as often as it runs, nested phases inside their parents."""

import json
import math
from collections import Counter

from click.testing import CliRunner

from ratbench.cli import cli
from ratbench.phases import Phases
from ratbench.training.config import resolve_config
from ratbench.training.speed_report import format_report, measure_training

SMALL = ["threads=1", "num_envs=2", "num_steps=128", "model.hidden=[16, 16]"]


def test_every_phase_runs_as_often_as_the_iteration_says_and_nests_in_its_parent(monkeypatch):
    calls: Counter = Counter()
    timed = Phases.__call__

    def counting(self, name):
        if self.enabled:
            calls[name] += 1
        return timed(self, name)

    monkeypatch.setattr(Phases, "__call__", counting)
    report = measure_training("cartpole", sets=SMALL, iterations=2)
    config = resolve_config({"env": "cartpole", "algo": "npg", "solver": "kaczmarz", "seed": 0}, sets=SMALL)
    solves = 2 * config["npg"]["epochs"] * config["npg"]["minibatches"]
    assert calls["env_step"] == calls["policy_forward"] == 2 * config["num_steps"]
    # one block per minibatch (the kaczmarz default): one Gram product per solve, and "cholesky" times
    # the factorisation and the triangular solves (solvers/base.py solve_damped_gram): two per solve
    assert calls["capture"] == calls["solve"] == calls["gram"] == solves and calls["cholesky"] == 2 * solves
    assert calls["critic"] == 2 and calls["evaluation"] == 1
    s = report.seconds  # the phases are timed inside the rollout and the update: what is left is never negative
    assert s["rollout (rest)"] >= 0 and s["update (rest)"] >= 0
    assert report.ratio == report.training_steps_per_s / report.random_steps_per_s
    assert math.isfinite(report.ratio) and report.ratio > 0
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
