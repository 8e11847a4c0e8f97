"""Actor-critic networks: separate networks or a shared trunk.

``ActorCritic.policy`` is a :class:`ratbench.policies.Policy` (what the
natural-gradient solvers see); ``ActorCritic.value(obs) -> (N,)`` is the
critic. With ``shared=True`` the policy body and the value head sit on one
trunk, so ``policy.policy_parameters()`` holds the trunk and the policy head
but not the value head.

Flat observations get MLP trunks; image observations (C, H, W), stored as uint8, get a CNN trunk
from :mod:`ratbench.trunks` (``trunk``: MinAtar's, the Nature CNN or IMPALA's ResNet), which turns
the frames into floats (scaled by ``1 / high``) inside the network.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ratbench.policies import CategoricalPolicy, GaussianPolicy, Policy, mlp
from ratbench.trunks import image_trunk


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
        trunk: str = "auto",
        init: str = "torch",
    ):
        super().__init__()
        hidden = list(hidden)
        self.shared = shared
        if image_shape is not None:
            width = hidden[-1]
            body = image_trunk(trunk, image_shape, width, image_scale)
            policy_body = nn.Sequential(body, nn.Linear(width, act_dim))
            critic_body = body if shared else image_trunk(trunk, image_shape, width, image_scale)
            self.critic = nn.Sequential(critic_body, nn.Linear(width, 1))
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
        if init == "orthogonal":
            self._orthogonal_init(policy_head=policy_body[-1], value_head=self.critic[-1])
        elif init != "torch":
            raise ValueError(f"init must be 'torch' or 'orthogonal', got {init!r}")

    def _orthogonal_init(self, policy_head: nn.Module, value_head: nn.Module) -> None:
        """SB3's ``ortho_init`` (stable_baselines3/common/policies.py, ``ActorCriticPolicy._build``) and CleanRL's
        ``layer_init``: every Linear and Conv2d weight orthogonal with gain sqrt(2), the policy head's 0.01 and the
        value head's 1, every bias zero (the Gaussian log-std keeps ``log_std_init``)."""
        gains = {policy_head: 0.01, value_head: 1.0}
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.orthogonal_(module.weight, gain=gains.get(module, math.sqrt(2)))
                nn.init.zeros_(module.bias)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s): obs (N, obs_dim) -> (N,)."""
        return self.critic(obs).squeeze(-1)

    def value_function(self) -> "ValueFunction":
        """V as a module of its own (the value term of a joint problem, :class:`ratbench.problem.ValueTerm`)."""
        return ValueFunction(self.critic)

    def critic_only_parameters(self) -> list[nn.Parameter]:
        """Parameters that only the value function uses (the value head when shared)."""
        policy_ids = {id(p) for p in self.policy.parameters()}
        return [p for p in self.critic.parameters() if id(p) not in policy_ids]


class ValueFunction(nn.Module):
    """critic: obs -> (N, 1) as ``forward(obs) -> V (N,)``."""

    def __init__(self, critic: nn.Module):
        super().__init__()
        self.critic = critic

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)
