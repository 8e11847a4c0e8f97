"""Uniform-random scores on real environments, through the evaluation protocol of training runs."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ratbench.cli import cli
from ratbench.training.random_score import UniformPolicy, random_score


def test_uniform_policy_draws_inside_the_space_and_is_seeded():
    box = gym.spaces.Box(low=np.array([-1.0, 0.0], np.float32), high=np.array([1.0, 5.0], np.float32))
    draws = UniformPolicy(box, 0).act(torch.zeros(1000, 3)).numpy()
    assert draws.shape == (1000, 2) and (draws >= box.low).all() and (draws <= box.high).all()
    assert draws[:, 1].mean() == pytest.approx(2.5, abs=0.2)  # uniform, not a clipped Gaussian
    np.testing.assert_array_equal(draws, UniformPolicy(box, 0).act(torch.zeros(1000, 3)).numpy())
    discrete = UniformPolicy(gym.spaces.Discrete(3, start=1), 0).act(torch.zeros(3000, 4)).numpy()
    assert set(discrete.tolist()) == {1, 2, 3}


def test_random_cartpole_lasts_about_22_steps():
    """CartPole's uniform-random return is about 22 (1 per step until the pole falls)."""
    score = random_score("cartpole", episodes=200, seed=0)
    assert score.env == "CartPole-v1" and 18 <= score.mean <= 26 and score.cut == 0 and score.episodes == 200
    assert random_score("cartpole", episodes=200, seed=0) == score


def test_the_command_prints_yaml_and_refuses_unknown_tasks(tmp_path):
    result = CliRunner().invoke(cli, ["random-score", "cartpole", "--episodes", "5"])
    assert result.exit_code == 0 and "CartPole-v1:" in result.output and "command: ratbench random-score CartPole-v1" in result.output
    result = CliRunner().invoke(cli, ["random-score", "nosuchtask", "--out", str(tmp_path / "s.yaml")])
    assert result.exit_code == 1 and "Traceback" not in result.output and not (tmp_path / "s.yaml").exists()
    result = CliRunner().invoke(cli, ["random-score", "cartpole", "--seed", str(2**32)])  # numpy's seeds stop at 2**32 - 1
    assert result.exit_code == 2 and "0<=x<=4294967295" in result.output
