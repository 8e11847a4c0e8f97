"""A task's random-policy score: the lower anchor of ratbench's fixed normalisation.

Measured with the evaluation protocol of training runs (:func:`ratbench.training.evaluate.evaluate`:
one episode per sub-env of a synchronous vector env, sub-env i seeded ``seed + i``, episodes cut at
``max_episode_steps``), with actions drawn uniformly from the action space (a Box uniformly in its
bounds, a Discrete space uniformly over its actions): the "random" score of D4RL and of the Atari
normalisation, measured here on ratbench's own environments.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from envs.names import DMC_PREFIX
from envs.registry import resolve_env_id
from envs.vector import make_vector_env
from ratbench.training.evaluate import evaluate
from ratbench.training.normalize import ObsNormalizer


class UniformPolicy:
    """Stands in for a :class:`~ratbench.policies.Policy` in :func:`evaluate`: ignores observations and
    draws each sub-env's action uniformly from ``space`` with its own seeded generator."""

    def __init__(self, space: gym.Space, seed: int):
        self.space, self.rng = space, np.random.default_rng(seed)

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        n = obs.shape[0]
        if isinstance(self.space, gym.spaces.Discrete):
            draws = self.space.start + self.rng.integers(0, self.space.n, size=n)
        elif isinstance(self.space, gym.spaces.Box):
            draws = self.rng.uniform(self.space.low, self.space.high, size=(n, *self.space.shape))
        else:
            raise TypeError(f"no uniform policy for a {type(self.space).__name__} action space")
        return torch.as_tensor(draws)


@dataclass(frozen=True)
class RandomScore:
    env: str  # gymnasium id
    mean: float  # mean raw episode return
    std: float
    episodes: int
    seed: int
    cut: int  # episodes still running at max_episode_steps (their return so far counted)


def random_score(env: str, episodes: int = 100, seed: int = 0, max_episode_steps: int = 27_000,
                 backend: str = "gymnasium") -> RandomScore:
    """Mean return of ``episodes`` uniform-random episodes of ``env`` (short name or gymnasium id). A DMC pixel
    task is simulated without rendering: the policy never looks at a frame, and rewards do not depend on them."""
    env_id = resolve_env_id(env)
    blind = {"frames": False} if env_id.startswith(DMC_PREFIX) and backend == "gymnasium" else {}
    envs = make_vector_env(env, episodes, mode="sync", backend=backend, **blind)
    try:
        obs_norm = ObsNormalizer(envs.single_observation_space.shape, enabled=False)
        policy = UniformPolicy(envs.single_action_space, seed)
        result = evaluate(envs, policy, obs_norm, seed, torch.device("cpu"), "clip", max_episode_steps)
    finally:
        envs.close()
    returns = np.asarray(result.returns)
    return RandomScore(env_id, float(returns.mean()), float(returns.std()), episodes, seed, result.cut)


__all__ = ["RandomScore", "UniformPolicy", "random_score"]
