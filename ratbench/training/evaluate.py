"""Deterministic-policy evaluation on a separate vector env.

One episode per sub-env, each sub-env reset with its own seed, actions the
policy's mode (mapped to the env as in training: clipped, or tanh-squashed),
observations normalised with the training statistics (never updated here).
Returns are raw episode returns.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from ratbench.policies import Policy
from ratbench.training.normalize import ObsNormalizer
from ratbench.training.rollout import env_actions


@torch.no_grad()
def evaluate(envs: VectorEnv, policy: Policy, obs_norm: ObsNormalizer, seed: int, device: torch.device,
             action_squash: str = "clip") -> list[float]:
    """Run one episode in every sub-env of ``envs`` (sub-env i seeded ``seed + i``); their returns."""
    space = envs.single_action_space
    obs, _ = envs.reset(seed=seed)
    n = envs.num_envs
    returns = np.zeros(n)
    finished = np.zeros(n, dtype=bool)
    while not finished.all():
        actions = policy.act(torch.as_tensor(obs_norm(obs), device=device), deterministic=True).cpu().numpy()
        obs, reward, term, trunc, _ = envs.step(env_actions(actions, space, action_squash))
        returns += np.where(finished, 0.0, reward)
        finished |= term | trunc
    return returns.tolist()
