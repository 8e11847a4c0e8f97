"""Rollouts: actions at the env boundary, and observation statistics moved per step or per iteration."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ratbench.training import Trainer
from ratbench.training.rollout import env_actions
from tests.ratbench.training.helpers import small_config


def test_env_actions_clip_or_squash_into_the_box():
    box = gym.spaces.Box(-0.4, 0.4, (3,), np.float32)
    raw = np.array([[-3.0, 0.1, 0.3]])
    np.testing.assert_allclose(env_actions(raw, box, "clip"), [[-0.4, 0.1, 0.3]])
    np.testing.assert_allclose(env_actions(raw, box, "tanh"), 0.4 * np.tanh(raw))  # the reference's tanh(a) * act_lim
    np.testing.assert_allclose(env_actions(raw, box, "tanh_clip"), np.clip(np.tanh(raw), -0.4, 0.4))
    shifted = gym.spaces.Box(np.array([0.0, -2.0, 1.0]), np.array([1.0, 0.0, 3.0]))
    np.testing.assert_allclose(env_actions(raw, shifted, "tanh"), [0.5, -1.0, 2.0] + np.array([0.5, 1.0, 1.0]) * np.tanh(raw))
    unit = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    many = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32) * 3
    assert np.array_equal(env_actions(many, unit, "tanh"), np.tanh(many))  # bitwise: [-1, 1] runs are unchanged
    assert np.array_equal(env_actions(many, unit, "tanh_clip"), np.tanh(many))
    discrete = np.array([1, 0])
    assert env_actions(discrete, gym.spaces.Discrete(2), "tanh") is discrete


def _record_updates(trainer) -> list[int]:
    """Wrap the trainer's observation normaliser so that every update records its number of rows."""
    rows, update = [], trainer.obs_norm.update

    def recording(obs):
        rows.append(len(obs))
        return update(obs)

    trainer.obs_norm.update = recording
    return rows


def test_per_iteration_statistics_renormalise_the_batch_and_its_old_log_probs(tmp_path):
    """obs_norm_update=iteration (the reference): the statistics move once, by exactly the batch's
    observations, and the stored old log-probabilities are the policy's on the renormalised batch,
    so every first importance ratio is exactly 1."""
    config = small_config("hopper", extra=["obs_norm_update=iteration", "action_squash=tanh"])
    trainer = Trainer.create(config, logdir=tmp_path, progress_bar=False)
    try:
        count = trainer.obs_norm.rms.count
        updates = _record_updates(trainer)
        batch = trainer.collector.collect()
        assert updates == [batch.n] and trainer.obs_norm.rms.count == count + batch.n
        with torch.no_grad():
            log_probs = trainer.agent.policy.log_prob(batch.obs, batch.actions)
        assert torch.equal(log_probs, batch.log_probs)
        assert float(batch.obs.abs().max()) <= config["obs_clip"]
    finally:
        trainer.close()


def test_per_step_statistics_move_every_step(tmp_path):
    """obs_norm_update=step (ratbench's settings; the preset, Hopper's default, updates per iteration): one update
    per env step, of one row per env."""
    config = small_config("hopper", preset="none")
    trainer = Trainer.create(config, logdir=tmp_path, progress_bar=False)
    try:
        count = trainer.obs_norm.rms.count
        updates = _record_updates(trainer)
        batch = trainer.collector.collect()
        assert updates == [config["num_envs"]] * config["num_steps"]
        assert trainer.obs_norm.rms.count == count + batch.n  # the reset rows were counted at reset
    finally:
        trainer.close()
