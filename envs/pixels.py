"""Pixel observations: MinAtar's binary HWC images as uint8 CHW frames.

MinAtar returns (10, 10, C) bool arrays; ratbench's networks take channels first, and frames are stored
as uint8 (0 or 1 here) and turned into floats inside the network (:mod:`ratbench.actor_critic`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.names import MINATAR_PREFIX


class ChannelsFirstUint8(gym.ObservationWrapper):
    """(H, W, C) bool/uint8 -> (C, H, W) uint8, values unchanged."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        h, w, c = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 1, (c, h, w), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(np.asarray(observation, dtype=np.uint8), -1, 0))


def wrap_observations(env_id: str, env: gym.Env) -> gym.Env:
    """The observation wrappers a task needs in ratbench (none for flat-vector tasks)."""
    return ChannelsFirstUint8(env) if env_id.startswith(MINATAR_PREFIX) else env
