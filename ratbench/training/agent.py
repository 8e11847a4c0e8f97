"""The trained model: an actor-critic built from the config, plus value normalisation.

The critic's last Linear layer predicts *normalised* values; :meth:`Agent.values`
returns them mapped back to returns through :class:`~ratbench.training.normalize.PopArt`
(the identity when ``value_norm: none``).
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ratbench.actor_critic import ActorCritic
from ratbench.errors import RatbenchError
from ratbench.policies import Policy
from ratbench.training.normalize import PopArt

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def space_sizes(obs_space: gym.Space, act_space: gym.Space) -> tuple[int, int, bool]:
    """(obs_dim, act_dim or number of actions, discrete) for flat Box observations or (C, H, W) images
    (obs_dim is then C * H * W)."""
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) not in (1, 3):
        raise RatbenchError(f"only flat Box or (C, H, W) image observations are supported, this env has {obs_space}; "
                            "pick a MuJoCo, classic-control or MinAtar task")
    if isinstance(act_space, gym.spaces.Discrete):
        return int(np.prod(obs_space.shape)), int(act_space.n), True
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return int(np.prod(obs_space.shape)), act_space.shape[0], False
    raise RatbenchError(f"only Discrete or flat Box actions are supported, this env has {act_space}")


def _image_scale(config: Mapping[str, Any], obs_space: gym.Space) -> float:
    """The factor an image trunk applies to its frames: 1 / the box's high (uint8 frames to [0, 1]), or 1 when
    observation normalisation already hands the network standardised floats (scaling those again by 1/255
    would shrink them to about +-0.02: the reference preset on DMC or Atari frames)."""
    if len(obs_space.shape) != 3 or config["obs_norm"]:
        return 1.0
    return 1.0 / float(np.max(obs_space.high))


class Agent(nn.Module):
    def __init__(self, config: Mapping[str, Any], obs_space: gym.Space, act_space: gym.Space):
        super().__init__()
        obs_dim, act_dim, discrete = space_sizes(obs_space, act_space)
        model_cfg = config["model"]
        self.model = ActorCritic(
            obs_dim,
            act_dim,
            discrete=discrete,
            hidden=tuple(model_cfg["hidden"]),
            shared=config["arch"] == "shared",
            log_std_init=model_cfg["log_std_init"],
            activation=ACTIVATIONS[model_cfg["activation"]],
            image_shape=obs_space.shape if len(obs_space.shape) == 3 else None,
            image_scale=_image_scale(config, obs_space),
            trunk=model_cfg["trunk"],
            init=model_cfg["init"],
        )
        self.discrete = discrete
        self.popart = PopArt(self.model.critic[-1], enabled=config["value_norm"] == "popart", beta=config["popart_beta"])

    @property
    def policy(self) -> Policy:
        return self.model.policy

    def normalized_values(self, obs: torch.Tensor) -> torch.Tensor:
        """The critic's raw output (N,), in PopArt's normalised units."""
        return self.model.value(obs)

    @torch.no_grad()
    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) in return units, (N,)."""
        return self.popart.denormalize(self.model.value(obs))

    def full_state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "popart": self.popart.state_dict()}

    def load_full_state(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.popart.load_state_dict(state["popart"])
