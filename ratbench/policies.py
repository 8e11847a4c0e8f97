"""Policies: a differentiable body plus an action distribution.

Every policy exposes ``log_prob(obs, actions) -> (N,)`` and
``distribution(obs)``; the parameters a natural-gradient solver works on are
``policy_parameters()`` (for a shared actor-critic these exclude the value
head, which never touches log pi).

Heads:
- ``GaussianPolicy``: mean from the body, state-independent log-std vector
  (the MuJoCo default).
- ``StateGaussianPolicy``: the body outputs ``2 * act_dim`` numbers, the mean
  and the log-std, both state dependent.
- ``CategoricalPolicy``: the body outputs logits.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """A plain MLP ``sizes[0] -> ... -> sizes[-1]`` with no activation after the last layer."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Policy(nn.Module):
    """Base class: subclasses implement ``distribution``."""

    def distribution(self, obs: torch.Tensor) -> Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a_i | s_i) for a batch: obs (N, ...), actions (N, ...) -> (N,)."""
        return self.distribution(obs).log_prob(actions)

    def policy_parameters(self) -> list[nn.Parameter]:
        """The parameters that log pi depends on (what the Fisher is over)."""
        return [p for p in self.parameters() if p.requires_grad]

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        dist = self.distribution(obs)
        if deterministic:
            return dist.mode if not isinstance(dist, Categorical) else dist.probs.argmax(-1)
        return dist.sample()


class GaussianPolicy(Policy):
    """Diagonal Gaussian with a state-independent log-std vector.

    body: obs (N, ...) -> mean (N, act_dim).
    """

    def __init__(self, body: nn.Module, act_dim: int, log_std_init: float = 0.0):
        super().__init__()
        self.body = body
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def distribution(self, obs: torch.Tensor) -> Distribution:
        mean = self.body(obs)
        return Independent(Normal(mean, self.log_std.exp().expand_as(mean)), 1)

    def log_std_scores(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Per-sample d log pi(a_i|s_i) / d log_std in closed form: (a - mu)^2 / sigma^2 - 1, (N, act_dim)."""
        return ((actions - mean) * torch.exp(-self.log_std)) ** 2 - 1.0


class StateGaussianPolicy(Policy):
    """Diagonal Gaussian whose mean and log-std both come from the body.

    body: obs (N, ...) -> (N, 2 * act_dim) = [mean, log_std].
    """

    def __init__(self, body: nn.Module, act_dim: int):
        super().__init__()
        self.body = body
        self.act_dim = act_dim

    def distribution(self, obs: torch.Tensor) -> Distribution:
        out = self.body(obs)
        mean, log_std = out[..., : self.act_dim], out[..., self.act_dim :]
        return Independent(Normal(mean, log_std.clamp(-20.0, 2.0).exp()), 1)


class CategoricalPolicy(Policy):
    """Categorical over ``n`` actions; body: obs (N, ...) -> logits (N, n)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def distribution(self, obs: torch.Tensor) -> Distribution:
        return Categorical(logits=self.body(obs))


def gaussian_mlp(obs_dim: int, act_dim: int, hidden: Iterable[int] = (64, 64), log_std_init: float = 0.0) -> GaussianPolicy:
    """The MuJoCo default: tanh MLP mean, state-independent log-std."""
    return GaussianPolicy(mlp([obs_dim, *hidden, act_dim]), act_dim, log_std_init)


def categorical_mlp(obs_dim: int, n_actions: int, hidden: Iterable[int] = (64, 64)) -> CategoricalPolicy:
    return CategoricalPolicy(mlp([obs_dim, *hidden, n_actions]))
