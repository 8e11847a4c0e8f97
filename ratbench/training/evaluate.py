"""Deterministic-policy evaluation on a separate vector env.

One episode per sub-env, each sub-env reset with its own seed, actions the
policy's mode (mapped to the env as in training: clipped, or tanh-squashed),
observations normalised with the training statistics (never updated here).
Returns are raw episode returns. Episodes still running after ``max_steps``
steps are cut there and their return so far counted: MinAtar's games have no
time limit of their own (Freeway aside), and a deterministic policy can keep
one going forever (a Seaquest submarine that never dives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from ratbench.policies import Policy
from ratbench.training.normalize import ObsNormalizer
from ratbench.training.rollout import env_actions


@dataclass
class Evaluation:
    returns: list[float]  # one per sub-env
    cut: int  # episodes still running at max_steps, counted with their return so far


@torch.no_grad()
def evaluate(envs: VectorEnv, policy: Policy, obs_norm: ObsNormalizer, seed: int, device: torch.device,
             action_squash: str, max_steps: int) -> Evaluation:
    """Run one episode in every sub-env of ``envs`` (sub-env i seeded ``seed + i``), each for at most
    ``max_steps`` steps."""
    space = envs.single_action_space
    obs, _ = envs.reset(seed=seed)
    n = envs.num_envs
    returns = np.zeros(n)
    finished = np.zeros(n, dtype=bool)
    for _ in range(max_steps):
        actions = policy.act(torch.as_tensor(obs_norm(obs), device=device), deterministic=True).cpu().numpy()
        obs, reward, term, trunc, _ = envs.step(env_actions(actions, space, action_squash))
        returns += np.where(finished, 0.0, reward)
        finished |= term | trunc
        if finished.all():
            break
    return Evaluation(returns.tolist(), int((~finished).sum()))
