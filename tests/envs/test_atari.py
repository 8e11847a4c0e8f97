"""Atari through EnvPool: the frames the Nature CNN expects, and a couple of training iterations per algorithm.

A smoke test (CPU-sized: 2 envs, 32-step batches, one full evaluation game); full Atari runs are GPU jobs.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.vector import make_vector_env
from ratbench.errors import RatbenchError
from ratbench.training import Trainer
from ratbench.training.config import resolve_config
from tests.envs.helpers import needs_envpool
from tests.ratbench.training.helpers import read_rows

pytestmark = needs_envpool


def test_frames_are_uint8_channels_first_stacks_of_four():
    envs = make_vector_env("atari-breakout", 2, backend="envpool")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        assert envs.single_observation_space.shape == (4, 84, 84) and envs.single_action_space.n == 4
    finally:
        envs.close()


def test_the_gymnasium_backend_says_to_use_envpool():
    with pytest.raises(RatbenchError, match="envs.backend=envpool"):
        make_vector_env("atari-pong", 1, backend="gymnasium")


@pytest.mark.parametrize("algo,solver", [("npg", "kaczmarz"), ("ppo", None)])
def test_two_iterations_train_and_evaluate(tmp_path, algo, solver):
    config = resolve_config({"env": "atari-pong", "algo": algo, "solver": solver, "steps": 64}, sets=[
        "num_envs=2", "num_steps=16", "eval.episodes=1", "threads=1", "model.hidden=[32]",
        f"{algo}.minibatches=2", f"{algo}.epochs=1"])
    assert config["envs"]["backend"] == "envpool" and config["model"]["trunk"] == "auto"
    trainer = Trainer.create(config, logdir=tmp_path, progress_bar=False)
    assert trainer.agent.policy.body[0][1].kernel_size == (8, 8)  # auto picked the Nature CNN for 84x84 frames
    summary = trainer.train()
    rows = read_rows(tmp_path)
    assert summary["iterations"] == 2 and [int(r["env_steps"]) for r in rows] == [32, 64]
    pong = float(rows[-1]["eval_return"])  # one full game of Pong: an integer score difference
    assert -21 <= pong <= 21 and pong.is_integer()
