"""Vanilla policy gradient: Adam on -(1/n) sum_i A_i log pi(a_i|s_i), no solver.

``epochs`` x ``minibatches`` steps per iteration (1 x 1 by default: one
on-policy gradient step per rollout), advantages centred and RMS-normalised,
gradient clipped to ``max_grad_norm``; the critic has its own Adam
(:class:`~ratbench.training.algorithms.critic.CriticTrainer`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ratbench.training.agent import Agent
from ratbench.training.algorithms.critic import CriticTrainer
from ratbench.training.algorithms.minibatch import batch_kl_and_entropy, minibatches, normalize_advantages
from ratbench.training.rollout import Batch


class PG:
    def __init__(self, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator):
        self.agent, self.cfg, self.rng = agent, config["pg"], rng
        self.params = agent.policy.policy_parameters()
        self.optimizer = torch.optim.Adam(self.params, lr=self.cfg["lr"])
        self.critic = CriticTrainer.from_config(agent, config, rng)

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        cfg, policy = self.cfg, self.agent.policy
        losses, norms = [], []
        for _ in range(cfg["epochs"]):
            for idx in minibatches(batch.n, cfg["minibatches"], self.rng):
                adv = batch.advantages[idx]
                if cfg["advantage_norm"]:
                    adv = normalize_advantages(adv)
                loss = -(adv * policy.log_prob(batch.obs[idx], batch.actions[idx])).mean()
                self.optimizer.zero_grad()
                loss.backward()
                norms.append(float(torch.nn.utils.clip_grad_norm_(self.params, cfg["max_grad_norm"])))
                self.optimizer.step()
                losses.append(float(loss.detach()))
        kl, entropy = batch_kl_and_entropy(policy, batch.obs, batch.actions, batch.log_probs)
        return {
            "kl": kl,
            "entropy": entropy,
            "policy_loss": float(np.mean(losses)),
            "value_loss": self.critic.update(batch.obs, batch.returns),
            "step_norm": float(np.mean(norms)),
            "lr": cfg["lr"],
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "critic": self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.critic.load_state_dict(state["critic"])
