"""Actor-critic networks: separate networks or a shared trunk.

``ActorCritic.policy`` is a :class:`ratbench.policies.Policy` (what the
natural-gradient solvers see); ``ActorCritic.value(obs) -> (N,)`` is the
critic. With ``shared=True`` the policy body and the value head sit on one
trunk, so ``policy.policy_parameters()`` holds the trunk and the policy head
but not the value head.

Flat observations get MLP trunks; image observations (C, H, W), stored as uint8, get
:func:`minatar_cnn` trunks, which turn the frames into floats (scaled by ``1 / high``) inside the
network.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ratbench.policies import CategoricalPolicy, GaussianPolicy, Policy, mlp


class ToFloat(nn.Module):
    """uint8 frames -> floats in [0, 1] (``scale = 1 / high`` of the observation box), in the network's
    dtype (a buffer follows ``.double()`` / ``.to()``)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.scale.dtype) * self.scale


def minatar_cnn(obs_shape: Sequence[int], hidden: int = 128, scale: float = 1.0) -> nn.Sequential:
    """The MinAtar network's trunk (Young & Tian 2019): one 3x3 conv with 16 channels, ReLU, a dense
    layer of ``hidden`` units, ReLU. obs (N, C, H, W) uint8 -> (N, hidden)."""
    channels, height, width = obs_shape
    return nn.Sequential(
        ToFloat(scale), nn.Conv2d(channels, 16, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * (height - 2) * (width - 2), hidden), nn.ReLU(),
    )


class ActorCritic(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        *,
        discrete: bool = False,
        hidden: Sequence[int] = (64, 64),
        shared: bool = False,
        log_std_init: float = 0.0,
        activation: type[nn.Module] = nn.Tanh,
        image_shape: Sequence[int] | None = None,
        image_scale: float = 1.0,
    ):
        super().__init__()
        hidden = list(hidden)
        self.shared = shared
        if image_shape is not None:
            width = hidden[-1]
            trunk = minatar_cnn(image_shape, width, image_scale)
            policy_body = nn.Sequential(trunk, nn.Linear(width, act_dim))
            critic_trunk = trunk if shared else minatar_cnn(image_shape, width, image_scale)
            self.critic = nn.Sequential(critic_trunk, nn.Linear(width, 1))
        elif shared:
            trunk = nn.Sequential(mlp([obs_dim, *hidden], activation), activation())
            policy_body = nn.Sequential(trunk, nn.Linear(hidden[-1], act_dim))
            self.critic = nn.Sequential(trunk, nn.Linear(hidden[-1], 1))
        else:
            policy_body = mlp([obs_dim, *hidden, act_dim], activation)
            self.critic = mlp([obs_dim, *hidden, 1], activation)
        self.policy: Policy = (
            CategoricalPolicy(policy_body) if discrete else GaussianPolicy(policy_body, act_dim, log_std_init)
        )

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s): obs (N, obs_dim) -> (N,)."""
        return self.critic(obs).squeeze(-1)

    def critic_only_parameters(self) -> list[nn.Parameter]:
        """Parameters that only the value function uses (the value head when shared)."""
        policy_ids = {id(p) for p in self.policy.parameters()}
        return [p for p in self.critic.parameters() if id(p) not in policy_ids]
