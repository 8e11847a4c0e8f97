"""Deterministic evaluation: one episode per sub-env, cut at max_steps where an episode never ends."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from envs.vector import make_vector_env
from ratbench.policies import CategoricalPolicy
from ratbench.training.evaluate import evaluate
from ratbench.training.normalize import ObsNormalizer


class _ConstantLogits(nn.Module):
    """Logits that ignore the observation: the deterministic policy always plays ``action``."""

    def __init__(self, actions: int, action: int):
        super().__init__()
        self.logits = nn.Parameter(torch.nn.functional.one_hot(torch.tensor(action), actions).double())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(obs.shape[0], -1)


def _evaluate(env: str, action: int, max_steps: int, num_envs: int = 3):
    envs = make_vector_env(env, num_envs, mode="sync")
    try:
        policy = CategoricalPolicy(_ConstantLogits(int(envs.single_action_space.n), action))
        normalizer = ObsNormalizer(envs.single_observation_space.shape, enabled=False)
        return evaluate(envs, policy, normalizer, 0, torch.device("cpu"), "clip", max_steps)
    finally:
        envs.close()


def test_a_never_ending_minatar_episode_is_cut_at_max_steps():
    """MinAtar Seaquest has no time limit: a submarine that never dives (action 0) stays alive forever,
    which hung a 5M-step suite run in evaluation. Cut at max_steps, every episode is counted as cut."""
    pytest.importorskip("minatar", reason="needs the minatar package (extra [minatar])")
    result = _evaluate("minatar-seaquest", action=0, max_steps=300)
    assert result.cut == 3 and result.returns == [0.0, 0.0, 0.0]


def test_episodes_that_end_are_not_cut():
    """CartPole pushed one way falls within a few dozen steps: return = steps survived (reward 1 per step)."""
    result = _evaluate("cartpole", action=0, max_steps=27_000)
    assert result.cut == 0 and all(1 <= r < 100 and float(r).is_integer() for r in result.returns)
