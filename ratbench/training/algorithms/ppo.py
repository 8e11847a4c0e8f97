"""PPO with the clipped surrogate (CleanRL's MuJoCo recipe).

One Adam over all actor-critic parameters, ``epochs`` x ``minibatches`` per
iteration, loss = clipped surrogate - ent_coef * entropy + vf_coef * value
loss (clipped around the rollout values when ``clip_value``), gradients
clipped to ``max_grad_norm``, the step size annealed linearly to zero over
the step budget when ``anneal_lr`` (so extending ``steps`` on resume
changes the remaining schedule). Values are regressed in PopArt's
normalised units (the identity with ``value_norm: none``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ratbench.training.agent import Agent
from ratbench.training.algorithms.minibatch import approx_kl, minibatches, normalize_advantages
from ratbench.training.rollout import Batch


class PPO:
    def __init__(self, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator):
        self.agent, self.cfg, self.rng = agent, config["ppo"], rng
        self.params = list(agent.model.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=self.cfg["lr"], eps=1e-5)

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        cfg, agent, policy = self.cfg, self.agent, self.agent.policy
        lr = cfg["lr"] * (1.0 - progress) if cfg["anneal_lr"] else cfg["lr"]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        agent.popart.update(batch.returns)
        targets = agent.popart.normalize(batch.returns)
        old_values = agent.popart.normalize(batch.values)
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "kl": [], "entropy": []}
        for _ in range(cfg["epochs"]):
            for idx in minibatches(batch.n, cfg["minibatches"], self.rng):
                dist = policy.distribution(batch.obs[idx])
                log_ratio = dist.log_prob(batch.actions[idx]) - batch.log_probs[idx]
                ratio = log_ratio.exp()
                adv = batch.advantages[idx]
                if cfg["advantage_norm"]:
                    adv = normalize_advantages(adv)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg["clip"], 1 + cfg["clip"])).mean()
                values = agent.normalized_values(batch.obs[idx])
                value_loss = (values - targets[idx]).pow(2)
                if cfg["clip_value"]:
                    clipped = old_values[idx] + (values - old_values[idx]).clamp(-cfg["clip"], cfg["clip"])
                    value_loss = torch.max(value_loss, (clipped - targets[idx]).pow(2))
                value_loss = 0.5 * value_loss.mean()
                entropy = dist.entropy().mean()
                loss = policy_loss - cfg["ent_coef"] * entropy + cfg["vf_coef"] * value_loss
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, cfg["max_grad_norm"])
                self.optimizer.step()
                stats["policy_loss"].append(float(policy_loss.detach()))
                stats["value_loss"].append(float(value_loss.detach()))
                stats["entropy"].append(float(entropy.detach()))
                stats["kl"].append(approx_kl(log_ratio.detach()))
            if cfg["target_kl"] is not None and stats["kl"][-1] > cfg["target_kl"]:
                break
        with torch.no_grad():
            kl = approx_kl(policy.log_prob(batch.obs, batch.actions) - batch.log_probs)
        return {
            "kl": kl,
            "entropy": float(np.mean(stats["entropy"])),
            "policy_loss": float(np.mean(stats["policy_loss"])),
            "value_loss": float(np.mean(stats["value_loss"])),
            "lr": lr,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
