"""The value function's own optimiser (used by npg and pg; ppo trains it jointly).

Targets are GAE returns; with PopArt the statistics move first (outputs
preserved) and the critic regresses the normalised targets.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch

from ratbench.training.agent import Agent
from ratbench.training.algorithms.minibatch import minibatches


class CriticTrainer:
    """Adam on the critic's parameters (the shared trunk included for a shared arch)."""

    def __init__(self, agent: Agent, lr: float, epochs: int, num_minibatches: int, max_grad_norm: Optional[float],
                 rng: np.random.Generator, adam_eps: float = 1e-8):
        self.agent, self.epochs, self.num_minibatches, self.max_grad_norm, self.rng = (
            agent, epochs, num_minibatches, max_grad_norm, rng)
        self.params = list(agent.model.critic.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=lr, eps=adam_eps)

    @classmethod
    def from_config(cls, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator) -> "CriticTrainer":
        """The critic trainer of a config's ``critic`` section."""
        critic = config["critic"]
        return cls(agent, critic["lr"], critic["epochs"], critic["minibatches"], critic["max_grad_norm"], rng,
                   critic["adam_eps"])

    def update(self, obs: torch.Tensor, returns: torch.Tensor) -> float:
        """Fit V to ``returns`` (N,); the mean squared error (normalised units) over all minibatches."""
        self.agent.popart.update(returns)
        targets = self.agent.popart.normalize(returns)
        losses = []
        for _ in range(self.epochs):
            for idx in minibatches(obs.shape[0], self.num_minibatches, self.rng):
                loss = (self.agent.normalized_values(obs[idx]) - targets[idx]).pow(2).mean()  # F.mse_loss, as the reference
                self.optimizer.zero_grad()
                loss.backward()
                if self.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
                self.optimizer.step()
                losses.append(float(loss.detach()))
        return float(np.mean(losses))

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
