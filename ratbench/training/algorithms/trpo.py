"""TRPO (Schulman et al. 2015) as sb3-contrib implements it: one trust-region step per rollout.

On the whole batch (no minibatches), with advantages standardised ``(A - mean) / (std + 1e-8)``:

1. the surrogate ``L(theta) = mean(r A)``, ``r = pi_theta(a|s) / pi_old(a|s)``, and its gradient ``g``
   at the rollout policy;
2. the search direction ``s = (H + damping I)^-1 g`` by :func:`solvers.cg.conjugate_gradient` (ratbench's
   CG, ``cg_steps`` steps), where ``H v`` is the Hessian of the mean KL(pi_theta || pi_old) applied to v
   by double back-propagation (the policy's exact Fisher, not the empirical one of the ``cg`` solver);
3. the full step ``beta s`` with ``beta = sqrt(2 target_kl / s^T (H + damping I) s)`` (the quadratic
   model's KL equals ``target_kl``), shrunk by ``line_search_shrink`` up to ``line_search_steps`` times
   until the exact mean KL is below ``target_kl`` *and* the surrogate improves; if no step qualifies
   the policy is left unchanged.

The value function is fitted afterwards by its own Adam (:class:`CriticTrainer`). Reference:
Stable-Baselines-Team/stable-baselines3-contrib sb3_contrib/trpo/trpo.py (``TRPO.train``: the KL term
``kl_divergence(new, old).mean()``, ``hessian_vector_product`` with ``cg_damping`` added, the line
search's strict ``kl < target_kl and objective > old objective``); defaults are its constructor's.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
from torch.distributions import kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ratbench.curvature import kl_hessian_operator
from ratbench.training.agent import Agent
from ratbench.training.algorithms.critic import CriticTrainer
from ratbench.training.rollout import Batch
from solvers.cg import conjugate_gradient


def standardise(advantages: torch.Tensor) -> torch.Tensor:
    """sb3's advantage normalisation: ``(A - mean) / (std + 1e-8)``, std with Bessel's correction."""
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


class TrustRegionStep:
    """One TRPO policy step on a fixed batch; ``policy`` is updated in place by :meth:`apply`."""

    def __init__(self, policy, obs: torch.Tensor, actions: torch.Tensor, old_log_probs: torch.Tensor,
                 advantages: torch.Tensor):
        self.policy, self.obs, self.actions = policy, obs, actions
        self.old_log_probs, self.advantages = old_log_probs, advantages
        self.params = policy.policy_parameters()
        with torch.no_grad():
            self.old = policy.distribution(obs)

    def surrogate(self) -> torch.Tensor:
        ratio = torch.exp(self.policy.log_prob(self.obs, self.actions) - self.old_log_probs)
        return (self.advantages * ratio).mean()

    def kl(self) -> torch.Tensor:
        """Mean KL(pi_theta || pi_old) over the batch, exact for the policy's distribution."""
        return kl_divergence(self.policy.distribution(self.obs), self.old).mean()

    def set_params(self, flat: torch.Tensor) -> None:
        vector_to_parameters(flat, self.params)

    def apply(self, cg_steps: int, damping: float, target_kl: float, shrink: float,
              max_backtracks: int) -> dict[str, Any]:
        """Direction, scaling and line search (module doc); returns what was done: accepted, step_size (the
        multiple of ``direction`` taken), step_norm, kl, objective (before), improvement, cg_steps,
        cg_residual, backtracks, full_step (the multiple the line search started from) and direction."""
        objective = self.surrogate()
        g = parameters_to_vector(torch.autograd.grad(objective, self.params, retain_graph=True))
        fvp = kl_hessian_operator(self.kl(), self.params, damping)

        direction, cg_done, residual = conjugate_gradient(fvp, g.detach(), iterations=cg_steps)
        curvature = float(direction.dot(fvp(direction)))
        start = parameters_to_vector(self.params).detach().clone()
        result = {"accepted": False, "step_size": 0.0, "step_norm": 0.0, "kl": 0.0,
                  "objective": float(objective.detach()), "improvement": 0.0, "cg_steps": cg_done,
                  "cg_residual": residual, "backtracks": 0, "full_step": 0.0, "direction": direction}
        if not curvature > 0:  # a zero gradient: nothing to do
            return result
        full = math.sqrt(2 * target_kl / curvature)
        result["full_step"] = full
        with torch.no_grad():
            for backtrack in range(max_backtracks):
                size = full * shrink ** backtrack
                self.set_params(start + size * direction)
                new_objective, kl = float(self.surrogate()), float(self.kl())
                if kl < target_kl and new_objective > result["objective"]:
                    result.update(accepted=True, step_size=size, kl=kl, improvement=new_objective - result["objective"],
                                  backtracks=backtrack, step_norm=size * float(torch.linalg.vector_norm(direction)))
                    return result
            self.set_params(start)  # no step qualified: the policy stays where it was
            result["backtracks"] = max_backtracks
        return result


class TRPO:
    def __init__(self, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator):
        self.agent, self.cfg, self.rng = agent, config["trpo"], rng
        self.critic = CriticTrainer.from_config(agent, config, rng)

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        cfg, policy = self.cfg, self.agent.policy
        advantages = standardise(batch.advantages) if cfg["advantage_norm"] else batch.advantages
        step = TrustRegionStep(policy, batch.obs, batch.actions, batch.log_probs, advantages)
        done = step.apply(cfg["cg_steps"], cfg["cg_damping"], cfg["target_kl"], cfg["line_search_shrink"],
                          cfg["line_search_steps"])
        with torch.no_grad():
            entropy = float(policy.distribution(batch.obs).entropy().mean())
        return {
            "kl": done["kl"],
            "entropy": entropy,
            "policy_loss": -done["objective"] - done["improvement"],  # minus the surrogate after the step
            "value_loss": self.critic.update(batch.obs, batch.returns),
            "step_norm": done["step_norm"],  # ||theta_new - theta_old|| (0: the line search found no step)
            "lr": done["step_size"],  # the accepted multiple of the CG direction
            "solver_iterations": done["cg_steps"],
            "solver_residual": done["cg_residual"],
            "solver_passes": done["backtracks"],  # line-search shrinks before the accepted step
        }

    def state_dict(self) -> dict[str, Any]:
        return {"critic": self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])
