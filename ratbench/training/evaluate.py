"""Deterministic-policy evaluation on a separate vector env.

One episode per sub-env, each sub-env reset with its own seed, actions the
policy's mode, observations normalised with the training statistics
(never updated here). Returns are raw episode returns.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from ratbench.policies import Policy
from ratbench.training.normalize import ObsNormalizer


@torch.no_grad()
def evaluate(envs: VectorEnv, policy: Policy, obs_norm: ObsNormalizer, seed: int, device: torch.device) -> list[float]:
    """Run one episode in every sub-env of ``envs`` (sub-env i seeded ``seed + i``); their returns."""
    space = envs.single_action_space
    bounds = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
    obs, _ = envs.reset(seed=seed)
    n = envs.num_envs
    returns = np.zeros(n)
    finished = np.zeros(n, dtype=bool)
    while not finished.all():
        actions = policy.act(torch.as_tensor(obs_norm(obs), device=device), deterministic=True).cpu().numpy()
        if bounds is not None:
            actions = np.clip(actions, *bounds)
        obs, reward, term, trunc, _ = envs.step(actions)
        returns += np.where(finished, 0.0, reward)
        finished |= term | trunc
    return returns.tolist()
