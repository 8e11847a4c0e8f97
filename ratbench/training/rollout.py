"""Rollouts: step a vector env with the current policy and return one flat batch.

The vector env resets finished sub-envs in the same step
(:func:`envs.vector.make_vector_env`), so a step's returned observation may
already belong to the next episode; the last observation of an episode cut
by a time limit comes from ``info["final_obs"]`` and its value is the
bootstrap target (:mod:`ratbench.training.gae`). Episode returns and lengths
are counted on the raw rewards; the algorithms see the (optionally) scaled
ones.

Observation statistics move every step (``obs_norm_update="step"``) or once per
iteration (``"iteration"``, the reference's train_detach.py): then the policy
acts on the previous iteration's statistics, the batch's raw observations update
them after the rollout, the batch is renormalised with the new statistics and
its old log-probabilities are recomputed on it, so the first importance ratios
are exactly 1. The values (and so the advantages) keep the rollout's inputs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv

from ratbench.phases import PHASES
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


def env_actions(actions: np.ndarray, space: gym.Space, squash: str = "clip") -> np.ndarray:
    """What the env receives for policy actions (others than Box actions unchanged):

    - ``clip``: clipped to the box (MuJoCo clamps controls to ctrlrange the same way);
    - ``tanh``: tanh scaled to the box, centre + half-width * tanh(a) (the reference's
      ``torch.tanh(actions) * act_lim``, utils/runners.py:58-59, for its symmetric boxes); on a box of
      [-1, 1] exactly tanh(a);
    - ``tanh_clip``: tanh then clipped to the box, ratbench's mapping before 2026-12-06: equal to ``tanh`` on
      boxes of [-1, 1] (every -v5 MuJoCo benchmark task), saturated on smaller ones (Humanoid's +-0.4);
      kept to describe and reproduce the runs made with it."""
    if not isinstance(space, gym.spaces.Box):
        return actions
    if squash == "tanh":
        half, centre = (space.high - space.low) / 2, (space.high + space.low) / 2
        actions = centre + half * np.tanh(actions)
    elif squash == "tanh_clip":
        actions = np.tanh(actions)
    return np.clip(actions, space.low, space.high)


class EpisodeTracker:
    """Running raw return and length of every sub-env's current episode; ``recent`` keeps the
    returns of the last 100 finished episodes (the reference's ``eprewmean`` window)."""

    def __init__(self, num_envs: int, recent: int = 100):
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
        obs_norm_update: str = "step",
        action_squash: str = "clip",
    ):
        self.envs, self.agent, self.obs_norm, self.reward_scaler = envs, agent, obs_norm, reward_scaler
        self.num_steps, self.gamma, self.gae_lambda, self.device = num_steps, gamma, gae_lambda, device
        self.per_step = obs_norm_update == "step"
        self.action_squash = action_squash
        self.tracker = EpisodeTracker(envs.num_envs)
        self.raw_obs: np.ndarray | None = None

    def reset(self, seed: int) -> None:
        self.raw_obs, _ = self.envs.reset(seed=seed)
        if self.per_step:
            self.obs_norm.update(self.raw_obs)

    def _tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.obs_norm(obs), device=self.device)

    @torch.no_grad()
    def collect(self) -> Batch:
        T, E = self.num_steps, self.envs.num_envs
        policy = self.agent.policy
        obs_buf, act_buf, logp_buf, val_buf, raw_buf = [], [], [], [], []
        rewards = np.zeros((T, E))
        terminated = np.zeros((T, E), dtype=bool)
        ended = np.zeros((T, E), dtype=bool)
        bootstrap = np.zeros((T, E))  # V(final_obs) where truncated
        episodes: list[tuple[float, int]] = []
        for t in range(T):
            with PHASES("policy_forward"):
                obs = self._tensor(self.raw_obs)
                dist = policy.distribution(obs)
                actions = dist.sample()
                logp_buf.append(dist.log_prob(actions))
                val_buf.append(self.agent.values(obs))
                to_env = env_actions(actions.cpu().numpy(), self.envs.single_action_space, self.action_squash)
            obs_buf.append(obs)
            if not self.per_step:  # renormalised after the rollout
                raw_buf.append(self.raw_obs)
            act_buf.append(actions)
            with PHASES("env_step"):
                next_obs, reward, term, trunc, info = self.envs.step(to_env)
            done = term | trunc
            episodes.extend(self.tracker.step(reward, done))
            rewards[t] = self.reward_scaler(reward, done)
            terminated[t], ended[t] = term, done
            if self.per_step:
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
        dtype = next(self.agent.parameters()).dtype  # values and advantages in the networks' dtype (frames are uint8)
        flat = lambda a: torch.as_tensor(a.reshape(T * E), dtype=dtype, device=self.device)  # noqa: E731
        obs, actions, log_probs = torch.cat(obs_buf), torch.cat(act_buf), torch.cat(logp_buf)
        if not self.per_step:
            raw = np.concatenate(raw_buf)
            self.obs_norm.update(raw)
            obs = self._tensor(raw)
            log_probs = policy.log_prob(obs, actions)
        return Batch(
            obs=obs,
            actions=actions,
            log_probs=log_probs,
            values=flat(values),
            advantages=flat(advantages),
            returns=flat(returns),
            episodes=episodes,
        )

    def restart_episodes(self, seed: int) -> None:
        """Start fresh episodes in every sub-env (for a backend whose state cannot be restored); the
        unfinished episodes' partial returns are dropped, the finished ones' statistics kept."""
        self.reset(seed)
        self.tracker.returns[:] = 0.0
        self.tracker.lengths[:] = 0

    def state_dict(self) -> dict[str, Any]:
        return {"raw_obs": None if self.raw_obs is None else self.raw_obs.copy(), "tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.raw_obs = np.array(state["raw_obs"])
        self.tracker.load_state_dict(state["tracker"])
