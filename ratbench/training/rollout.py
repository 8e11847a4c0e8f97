"""Rollouts: step a vector env with the current policy and return one flat batch.

The vector env resets finished sub-envs in the same step
(:func:`envs.vector.make_vector_env`), so a step's returned observation may
already belong to the next episode; the last observation of an episode cut
by a time limit comes from ``info["final_obs"]`` and its value is the
bootstrap target (:mod:`ratbench.training.gae`). Episode returns and lengths
are counted on the raw rewards; the algorithms see the (optionally) scaled
ones.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from ratbench.training.agent import Agent
from ratbench.training.gae import gae
from ratbench.training.normalize import ObsNormalizer, RewardScaler


@dataclass
class Batch:
    """One iteration's samples, flattened time-major to N = num_steps * num_envs rows.

    obs: (N, obs_dim) normalised float32; actions: (N,) int64 or (N, act_dim);
    log_probs, values (return units), advantages, returns: (N,);
    episodes: (return, length) of the episodes that ended in this rollout.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episodes: list[tuple[float, int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.obs.shape[0])


class EpisodeTracker:
    """Running raw return and length of every sub-env's current episode."""

    def __init__(self, num_envs: int, recent: int = 20):
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.recent: deque[float] = deque(maxlen=recent)

    def step(self, rewards: np.ndarray, ended: np.ndarray) -> list[tuple[float, int]]:
        self.returns += rewards
        self.lengths += 1
        finished = [(float(self.returns[i]), int(self.lengths[i])) for i in np.flatnonzero(ended)]
        self.returns[ended] = 0.0
        self.lengths[ended] = 0
        self.recent.extend(r for r, _ in finished)
        return finished

    def state_dict(self) -> dict[str, Any]:
        return {"returns": self.returns.copy(), "lengths": self.lengths.copy(), "recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns, self.lengths = np.array(state["returns"]), np.array(state["lengths"])
        self.recent.clear()
        self.recent.extend(state["recent"])


class Collector:
    """Holds the vector env's current observations and collects batches."""

    def __init__(
        self,
        envs: VectorEnv,
        agent: Agent,
        obs_norm: ObsNormalizer,
        reward_scaler: RewardScaler,
        num_steps: int,
        gamma: float,
        gae_lambda: float,
        device: torch.device,
    ):
        self.envs, self.agent, self.obs_norm, self.reward_scaler = envs, agent, obs_norm, reward_scaler
        self.num_steps, self.gamma, self.gae_lambda, self.device = num_steps, gamma, gae_lambda, device
        self.tracker = EpisodeTracker(envs.num_envs)
        space = envs.single_action_space
        self.action_bounds = (space.low, space.high) if isinstance(space, gym.spaces.Box) else None
        self.raw_obs: np.ndarray | None = None

    def reset(self, seed: int) -> None:
        self.raw_obs, _ = self.envs.reset(seed=seed)
        self.obs_norm.update(self.raw_obs)

    def _tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.obs_norm(obs), device=self.device)

    @torch.no_grad()
    def collect(self) -> Batch:
        T, E = self.num_steps, self.envs.num_envs
        policy = self.agent.policy
        obs_buf, act_buf, logp_buf, val_buf = [], [], [], []
        rewards = np.zeros((T, E))
        terminated = np.zeros((T, E), dtype=bool)
        ended = np.zeros((T, E), dtype=bool)
        bootstrap = np.zeros((T, E))  # V(final_obs) where truncated
        episodes: list[tuple[float, int]] = []
        for t in range(T):
            obs = self._tensor(self.raw_obs)
            dist = policy.distribution(obs)
            actions = dist.sample()
            obs_buf.append(obs)
            act_buf.append(actions)
            logp_buf.append(dist.log_prob(actions))
            val_buf.append(self.agent.values(obs))
            env_actions = actions.cpu().numpy()
            if self.action_bounds is not None:
                env_actions = np.clip(env_actions, *self.action_bounds)
            next_obs, reward, term, trunc, info = self.envs.step(env_actions)
            done = term | trunc
            episodes.extend(self.tracker.step(reward, done))
            rewards[t] = self.reward_scaler(reward, done)
            terminated[t], ended[t] = term, done
            self.obs_norm.update(next_obs)
            cut = np.flatnonzero(trunc & ~term)
            if cut.size:
                final = np.stack([info["final_obs"][i] for i in cut])
                bootstrap[t, cut] = self.agent.values(self._tensor(final)).cpu().numpy()
            self.raw_obs = next_obs
        values = torch.stack(val_buf).cpu().numpy().astype(np.float64)
        last_values = self.agent.values(self._tensor(self.raw_obs)).cpu().numpy()
        next_values = np.concatenate([values[1:], last_values[None]], axis=0)
        truncated = ended & ~terminated
        next_values = np.where(truncated, bootstrap, next_values)
        advantages, returns = gae(rewards, values, next_values, terminated, ended, self.gamma, self.gae_lambda)
        dtype = obs_buf[0].dtype
        flat = lambda a: torch.as_tensor(a.reshape(T * E), dtype=dtype, device=self.device)  # noqa: E731
        return Batch(
            obs=torch.cat(obs_buf),
            actions=torch.cat(act_buf),
            log_probs=torch.cat(logp_buf),
            values=flat(values),
            advantages=flat(advantages),
            returns=flat(returns),
            episodes=episodes,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"raw_obs": None if self.raw_obs is None else self.raw_obs.copy(), "tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.raw_obs = np.array(state["raw_obs"])
        self.tracker.load_state_dict(state["tracker"])
