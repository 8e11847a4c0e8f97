"""The reference's shared-network RAT: one network, the policy and the value solved together
(``npg.value_update: joint``; what ``--preset reference --arch shared`` selects).

agent-lab/ICML2026-RAT ``train_shared.py`` (line numbers at its HEAD, c49b552; docs/reference-preset.md
tabulates them), per minibatch of 4 epochs x 8 (configs/rat_mlp_shared.yaml):

1. Per-sample scores of ``log pi(a_i|s_i) - (V_i - (V_i + eps_i).detach())^2``, eps_i ~ N(0, 1) drawn
   per sample and minibatch (:86-99, :114-132, :152-153: ``randomness='different'``): ``h_i = grad log pi_i + 2 eps_i grad V_i``
   over every parameter (trunk, both heads, log-std). Here a joint
   :class:`~ratbench.problem.NPGProblem` (``value=ValueTerm``) captured by the curvature layer.
2. Advantages centred and divided by their RMS + 1e-8 (:135-149); ratios clamped to [0.1, 10] (:138-139).
3. One solve of ``(K diag(r) + lambda I) Y = [A - H g_k, 1 - H g_k]``, ``K = H H^T / N``, g_k the SGD
   momentum buffer over all parameters (:155-170): the kaczmarz solver's ``original`` rule with the
   carried direction ``-g_k`` and two right-hand sides [A, 1] (weights r), so Y = [y_pi, y_v].
4. Loss ``mean(-r y_pi) + vf_coef mean((V - R)^2 y_v) - ent_coef entropy`` with the clamped ratio carrying
   the gradient (:173-175); ``clip_grad_norm_`` over all parameters to ``max_step_norm`` (:179); SGD step
   (lr 0.05, momentum 1e-6, :50-51).
5. After the epochs the step size moves on the KL(rollout policy || policy after the step) of the last
   minibatch (:187-196, :461-467: ``kl_rule: last_minibatch_after_step``), target 0.01, within
   [1e-4, the config lr]: ratbench's cap is ``npg.lr_max``, which the preset sets equal to ``npg.lr`` (0.05);
   change both to keep the reference's rule at another step size.

Before the minibatches PopArt moves its statistics on the batch's returns and normalises returns and
advantages (:433-437). With ``solver: diagonal`` the update is the reference's ``diag_Update``
(:204-325): the gradient of the loss with y_pi = A and y_v = 1 divided by the diagonal of the joint
scores' Fisher ``mean(h_i^2) + lambda`` (unweighted by the ratios), then the same clip and SGD step.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Mapping, Optional

import numpy as np
import torch

from ratbench.curvature import capture_with_log_probs
from ratbench.phases import PHASES
from ratbench.problem import NPGProblem, ValueTerm
from ratbench.training.agent import Agent
from ratbench.training.algorithms.minibatch import (batch_kl_and_entropy, kl_adapted_lr, minibatches, normalize_advantages,
                                                     value_noise)
from ratbench.training.algorithms.npg import exact_kl, momentum_direction, solver_for, update_statistics
from ratbench.training.rollout import Batch
from solvers import WarmStart


class JointNPG:
    """``update(batch, progress)`` for a shared actor-critic whose value head is trained by the solve."""

    def __init__(self, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator):
        self.agent, self.cfg, self.rng = agent, config["npg"], rng
        self.diagonal = config["solver"] == "diagonal"
        self.original = self.cfg["rat_variant"] == "original" and config["solver"] == "kaczmarz"
        batch = config["num_envs"] * config["num_steps"]
        self.solver = None if self.diagonal else solver_for(config, math.ceil(batch / self.cfg["minibatches"]))
        model = agent.model
        self.value_function = model.value_function()
        self.params = agent.policy.policy_parameters() + [p for p in model.critic_only_parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(self.params, lr=self.cfg["lr"], momentum=self.cfg["momentum"])

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        cfg, policy, popart = self.cfg, self.agent.policy, self.agent.popart
        low, high = cfg["ratio_clip"]
        popart.update(batch.returns)
        targets, advantages = popart.normalize(batch.returns), popart.normalize(batch.advantages)
        old_policy = copy.deepcopy(policy)
        rule = cfg["kl_rule"]
        losses, value_losses, norms, iterations, passes = [], [], [], [], []
        minibatch_kl = float("nan")
        last_step = (cfg["epochs"] - 1, cfg["minibatches"] - 1)
        for epoch in range(cfg["epochs"]):
            for index, idx in enumerate(minibatches(batch.n, cfg["minibatches"], self.rng)):
                obs, actions, old_log_probs = batch.obs[idx], batch.actions[idx], batch.log_probs[idx]
                adv = normalize_advantages(advantages[idx]) if cfg["advantage_norm"] else advantages[idx]
                last = (epoch, index) == last_step
                if last and rule == "last_minibatch":
                    minibatch_kl = exact_kl(old_policy, policy, obs)
                y_pi, y_v, preconditioner, stats = self._transformed(obs, actions, adv, old_log_probs)
                iterations.append(stats[0])
                passes.append(stats[1])
                dist = policy.distribution(obs)
                ratio = (dist.log_prob(actions) - old_log_probs).exp()
                loss_pi = -(ratio.clamp(low, high) * y_pi).mean()
                loss_v = ((self.agent.normalized_values(obs) - targets[idx]).pow(2) * y_v).mean()
                loss = loss_pi + cfg["vf_coef"] * loss_v - cfg["ent_coef"] * dist.entropy().mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if preconditioner is not None:
                    self._divide_gradients(preconditioner)
                norms.append(float(torch.nn.utils.clip_grad_norm_(self.params, cfg["max_step_norm"])))
                self.optimizer.step()
                losses.append(float(loss_pi.detach()))
                value_losses.append(float(loss_v.detach()))
                if last and rule == "last_minibatch_after_step":
                    minibatch_kl = exact_kl(old_policy, policy, obs)
        kl, entropy = batch_kl_and_entropy(policy, batch.obs, batch.actions, batch.log_probs)
        lr = self.lr
        if cfg["kl_adaptive"]:
            for group in self.optimizer.param_groups:
                group["lr"] = kl_adapted_lr(lr, kl if rule == "batch" else minibatch_kl, cfg)
        return update_statistics(kl, minibatch_kl, entropy, losses, float(np.mean(value_losses)), norms, lr, iterations,
                                 [float("nan")], passes)

    def _transformed(self, obs: torch.Tensor, actions: torch.Tensor, adv: torch.Tensor, old_log_probs: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], tuple[float, float]]:
        """(y_pi, y_v, preconditioner, (solver iterations, passes)) for one minibatch: the solve of step 3 (no
        preconditioner), or for the diagonal twin (A, 1) and the flat diag F + lambda of the joint scores."""
        cfg = self.cfg
        rhs = torch.stack([adv, torch.ones_like(adv)], dim=1)
        problem = NPGProblem(self.agent.policy, obs, actions, rhs, cfg["damping"], params=self.params, trusted=True,
                             value=ValueTerm(self.value_function, value_noise(self.rng, obs.shape[0], adv)))
        with PHASES("capture"):
            curv, log_probs = capture_with_log_probs(problem)
        if self.diagonal:
            return adv, torch.ones_like(adv), curv.fisher_diagonal() + cfg["damping"], (1.0, curv.passes + 1.0)
        low, high = cfg["ratio_clip"]
        weights = (log_probs - old_log_probs).exp().clamp(low, high)
        curv.scale_rows(weights.sqrt())
        carried = momentum_direction(self.optimizer, self.params) if self.original else None
        with PHASES("solve"):
            result = self.solver.solve(dataclasses.replace(problem, weights=weights), curvature=curv,
                                       warm_start=None if carried is None else WarmStart(direction=carried))
        y = result.transformed_advantage
        return y[:, 0], y[:, 1], None, (float(result.stats.iterations), result.stats.passes)

    def _divide_gradients(self, preconditioner: torch.Tensor) -> None:
        """p.grad <- p.grad / preconditioner, flat (P,) in the order of ``self.params`` (diag_Update's step)."""
        at = 0
        for p in self.params:
            p.grad.div_(preconditioner[at:at + p.numel()].view_as(p).to(p.dtype))
            at += p.numel()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
