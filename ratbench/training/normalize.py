"""Running statistics: observation normalisation, reward scaling, PopArt values.

Every class has ``state_dict()`` / ``load_state_dict()`` so checkpoints hold
them exactly (float64 numpy / torch state).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class RunningMeanStd:
    """Mean and variance of a stream of (batch, *shape) arrays (parallel Welford, float64)."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        b_mean, b_var, b_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var, self.count = np.array(state["mean"]), np.array(state["var"]), float(state["count"])


class ObsNormalizer:
    """(obs - mean) / sqrt(var + eps), clipped; ``update`` is separate so eval can skip it."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, enabled: bool = True, epsilon: float = 1e-8):
        self.rms = RunningMeanStd(shape)
        self.clip, self.enabled, self.epsilon = clip, enabled, epsilon

    def update(self, obs: np.ndarray) -> None:
        if self.enabled:
            self.rms.update(obs)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not self.enabled:  # frames (uint8) pass through unchanged: the network scales them
            obs = np.asarray(obs)
            return obs if obs.dtype == np.uint8 else obs.astype(np.float32)
        obs = np.asarray(obs, dtype=np.float64)
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.epsilon)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return self.rms.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state)


class RewardScaler:
    """Divides rewards by the running std of the discounted return (CleanRL's NormalizeReward)."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, enabled: bool = True, epsilon: float = 1e-8):
        self.rms = RunningMeanStd(())
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.gamma, self.clip, self.enabled, self.epsilon = gamma, clip, enabled, epsilon

    def __call__(self, rewards: np.ndarray, ended: np.ndarray) -> np.ndarray:
        """Scale one vector step's rewards (num_envs,); ``ended`` resets the finished envs' returns."""
        if not self.enabled:
            return np.asarray(rewards, dtype=np.float64)
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns)
        self.returns = np.where(ended, 0.0, self.returns)
        return np.clip(rewards / np.sqrt(self.rms.var + self.epsilon), -self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return {"rms": self.rms.state_dict(), "returns": self.returns.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.load_state_dict(state["rms"])
        self.returns = np.array(state["returns"])


class PopArt:
    """Value normalisation that preserves outputs (van Hasselt et al. 2016).

    The critic's last Linear layer predicts normalised values; ``denormalize``
    maps them to returns. ``update(targets)`` moves the debiased moving mean and
    second moment of the targets by one batch, ``m <- beta m + (1 - beta) batch_mean``
    (beta per batch, 0.99999 in the reference's utils/popart.py: close to an
    equal-weight average over all batches so far), and rescales that layer so its
    denormalised outputs are unchanged. ``enabled=False`` makes it the identity.

    A per-sample beta (ratbench used 3e-4 per sample, 0.91 per 8,192-sample batch)
    nearly resets the statistics every iteration and lets the std collapse when
    the returns of one batch become uniform (19 -> 0.05 measured on Hopper).
    """

    def __init__(self, head: nn.Linear, enabled: bool = True, beta: float = 0.99999, epsilon: float = 1e-4):
        self.head, self.enabled, self.beta, self.epsilon = head, enabled, beta, epsilon
        self.mean, self.mean_sq, self.debias = 0.0, 0.0, 0.0  # debiased: no statistics until the first batch

    @property
    def std(self) -> float:
        if self.debias == 0.0:
            return 1.0
        mean, mean_sq = self.mean / self.debias, self.mean_sq / self.debias
        return float(max(np.sqrt(max(mean_sq - mean**2, 0.0)), self.epsilon))

    @property
    def shift(self) -> float:
        return self.mean / self.debias if self.debias else 0.0

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.std + self.shift if self.enabled else values

    def normalize(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.shift) / self.std if self.enabled else targets

    @torch.no_grad()
    def update(self, targets: torch.Tensor) -> None:
        """Move the statistics toward one batch of value targets (N,), preserving outputs."""
        if not self.enabled:
            return
        old_mean, old_std = self.shift, self.std
        weight = 1.0 - self.beta
        self.mean = (1 - weight) * self.mean + weight * float(targets.double().mean())
        self.mean_sq = (1 - weight) * self.mean_sq + weight * float((targets.double() ** 2).mean())
        self.debias = (1 - weight) * self.debias + weight
        new_mean, new_std = self.shift, self.std
        self.head.weight.mul_(old_std / new_std)
        self.head.bias.mul_(old_std).add_(old_mean - new_mean).div_(new_std)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "mean_sq": self.mean_sq, "debias": self.debias}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.mean_sq, self.debias = float(state["mean"]), float(state["mean_sq"]), float(state["debias"])
