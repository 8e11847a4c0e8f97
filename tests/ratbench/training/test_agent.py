"""The agent's networks built from a config: how image frames reach the trunk."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ratbench.training.agent import Agent
from ratbench.training.config import resolve_config
from ratbench.trunks import ToFloat


@pytest.mark.parametrize("obs_norm", [False, True])
def test_frames_are_scaled_once(obs_norm):
    """uint8 frames are scaled to [0, 1] inside the network; frames that observation normalisation has already
    standardised reach the convolutions unscaled."""
    config = resolve_config({"env": "minatar-breakout", "algo": "npg"}, sets=[f"obs_norm={str(obs_norm).lower()}"])
    frames = gym.spaces.Box(0, 255, (4, 12, 12), np.uint8)
    agent = Agent(config, frames, gym.spaces.Discrete(3))
    to_float = [m for m in agent.modules() if isinstance(m, ToFloat)]  # the actor's trunk and the critic's
    assert len(to_float) == 2
    brightest = torch.full((1, 4, 12, 12), 1.0 if obs_norm else 255.0)
    assert all(torch.equal(m(brightest), torch.ones_like(brightest)) for m in to_float)
