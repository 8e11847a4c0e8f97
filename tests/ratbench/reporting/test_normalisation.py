"""The committed normalisation anchors: measured random scores that their commands reproduce, sourced references."""

import pytest
from click.testing import CliRunner

from ratbench.cli import cli
from ratbench.reporting.normalisation import family, load_anchors, load_random_scores
from ratbench.reporting.published import load_reference_scores


def test_every_anchored_task_has_a_measured_random_score_below_its_reference():
    anchors = load_anchors()
    assert {"Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v4"} <= set(anchors)
    for env, a in anchors.items():
        assert a.random < a.reference.score, env
        assert a.random_command.startswith(f"ratbench random-score {env} ") and a.reference.source
        assert a.normalise([a.random, a.reference.score]).tolist() == pytest.approx([0.0, 1.0])
    assert "MinAtar/Seaquest-v1" in load_random_scores() and "MinAtar/Seaquest-v1" not in load_reference_scores()


@pytest.mark.parametrize("env", ["Hopper-v5", "MinAtar/Breakout-v1"])
def test_a_committed_random_score_is_what_its_command_gives(env, tmp_path):
    committed = load_random_scores()[env]
    args = committed["command"].split()[1:] + ["--out", str(tmp_path / "scores.yaml")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    import yaml

    assert yaml.safe_load((tmp_path / "scores.yaml").read_text())[env] == committed


def test_families():
    assert family("Hopper-v5") == family("Humanoid-v4") == "MuJoCo"
    assert family("MinAtar/Breakout-v1") == "MinAtar" and family("DMC/cheetah-run-v0") == "DMC"
    assert family("Pong-v5") == "Atari" and family("CartPole-v1") == "other"
