"""On-policy batches from real MuJoCo rollouts (gymnasium -v5) for the accuracy families.

A freshly initialised policy acts in one seeded environment for N steps
(episodes restart on termination or truncation). Observations are
standardised online by a running mean/std, as a trainer's observation
normaliser would, and the batch holds exactly the normalised observations
the policy saw. Actions are the unclipped Gaussian samples (their log-prob
is what the Fisher is of); the environment receives them clipped to its
action box. Advantages come from GAE (the trainer's
:func:`ratbench.training.gae.gae`, with time-limit bootstrapping) on a
freshly initialised critic; they are returned raw (the family standardises).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from torch import nn

from envs import make_env
from ratbench.policies import Policy
from ratbench.training.gae import gae
from ratbench.training.normalize import ObsNormalizer

GAMMA = 0.99
GAE_LAMBDA = 0.95


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """One-row forward passes gain nothing from intra-op threads and lose a lot when cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def rollout_batch(env_name: str, policy: Policy, critic: nn.Module, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(obs (n, obs_dim), actions (n, act_dim), raw GAE advantages (n,)) in float64 from ``n`` env steps.

    ``policy`` and ``critic`` must be float64; sampling uses torch's global
    generator, so call this under a fixed seed for a reproducible batch.
    """
    env = make_env(env_name, seed=seed)
    with _single_thread(), contextlib.closing(env):
        low, high = env.action_space.low, env.action_space.high
        normalizer = ObsNormalizer(env.observation_space.shape)

        def normalise(raw: np.ndarray) -> torch.Tensor:
            normalizer.update(np.asarray(raw)[None])
            return torch.from_numpy(normalizer(raw)).to(torch.float64)

        raw, _ = env.reset(seed=seed)
        current = normalise(raw)
        obs, next_obs, actions, rewards, terminated, ended = [], [], [], [], [], []
        for _ in range(n):
            action = policy.act(current[None])[0]
            raw, reward, term, trunc, _ = env.step(np.clip(action.numpy(), low, high))
            following = normalise(raw)
            obs.append(current)
            next_obs.append(following)
            actions.append(action)
            rewards.append(float(reward))
            terminated.append(bool(term))
            ended.append(bool(term or trunc))
            if term or trunc:
                raw, _ = env.reset()
                following = normalise(raw)
            current = following
    obs_t = torch.stack(obs)
    advantages, _ = gae(
        np.array(rewards),
        critic(obs_t).squeeze(-1).numpy(),
        critic(torch.stack(next_obs)).squeeze(-1).numpy(),
        np.array(terminated),
        np.array(ended),
        gamma=GAMMA,
        lam=GAE_LAMBDA,
    )
    return obs_t, torch.stack(actions), torch.from_numpy(advantages)
