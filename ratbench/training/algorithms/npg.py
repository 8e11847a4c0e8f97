"""Natural policy gradient with a pluggable solver (RAT when the solver is ``kaczmarz``).

Per iteration, ``epochs`` x ``minibatches`` policy steps. Each minibatch:

1. importance ratios r_i = pi(a_i|s_i) / pi_old(a_i|s_i), clamped to ``ratio_clip``,
   become the per-sample weights w_i of the :class:`~ratbench.problem.NPGProblem` (log pi comes
   from the curvature capture's own forward, whose rows are then scaled by sqrt(w_i)); with
   ``clipped_ratio: drop`` a sample whose ratio was clamped adds nothing to the gradient, its advantage
   zeroed after normalisation (the fvp baseline's loss -mean(clamp(r) A) has a zero derivative there,
   train_detach.py:123-125), while its weight stays in a weighted Fisher;
2. advantages are centred and divided by their RMS (``advantage_norm``); with ``ent_coef`` > 0 an entropy
   bonus joins them as a per-sample term, ent_coef * -(log pi_i - mean log pi) (:func:`entropy_advantage`),
   so the solve sees the gradient of return + ent_coef * entropy in the span of the sampled scores;
3. the solver returns the ascent direction d ~ (F + lambda I)^-1 g of this
   minibatch alone: the corrected variant starts every solve from zero, so
   nothing survives from one minibatch to the next (a multi-block or
   multi-sweep Kaczmarz solve still warm-starts its own blocks);
4. d is clipped to ``max_step_norm`` in the Fisher norm sqrt(d^T F d) =
   ||S d|| / sqrt(N) (S d from the solver when it knows it, else one J v product
   on the captured curvature), in L2, or (``kl_quadratic``, the reference's fvp baseline,
   train_detach.py:163-166) by d^T (H + lambda I) d with H the KL Hessian, no square root;
5. the optimiser (SGD with ``momentum``, step size ``lr``) gets ``p.grad = -d`` and steps.

After the epochs a KL sets the next step size (``kl_adaptive``: lr / 1.5 above
2 x target, x 1.5 below half the target, clamped to [lr_min, lr_max]); it is the
approximate KL between the rollout policy and the new one over the whole batch
(``kl_rule: batch``) or the exact KL of the last minibatch before its step
(``kl_rule: last_minibatch``, the reference's rule, train_detach.py:224 and 525-530).
Then the critic is fitted.

Why nothing is carried in the corrected variant: Kaczmarz started from d0 returns
d* + lambda (F_k + lambda I)^-1 d0, so a carried direction survives unchanged in the
null space of the minibatch's Fisher (rank <= minibatch size, far below P) and
piles up over the minibatches of an iteration, unseen by the batch's Fisher-norm
clip and KL (issue 8: 7x the parameter displacement on Hopper, 3.1x the batch KL
on an independent batch on InvertedPendulum).

``rat_variant: original`` reproduces the reference RAT code (train_detach.py:259-281):
Kaczmarz with ``residual="original"``, warm-started from minus the SGD momentum
buffer (the previous clipped loss gradient; the plain clipped step when
``momentum`` is 0), carried across minibatches and rollouts, and clipping in
L2 whatever ``step_norm`` says (docs/design.md section 6).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch.nn.utils import vector_to_parameters

from ratbench.curvature import capture_with_log_probs
from ratbench.phases import PHASES
from ratbench.problem import NPGProblem
from ratbench.training.agent import Agent
from ratbench.training.algorithms.critic import CriticTrainer
from ratbench.training.algorithms.minibatch import (
    batch_kl_and_entropy,
    entropy_advantage,
    kl_adapted_lr,
    minibatches,
    normalize_advantages,
)
from ratbench.training.rollout import Batch
from solvers import WarmStart, make_solver


def solver_for(config: Mapping[str, Any], minibatch_size: int):
    """The configured solver; kaczmarz defaults to one block per minibatch (block_size = minibatch, sweeps = 1)."""
    npg = config["npg"]
    options = dict(npg["solver_options"])
    if config["solver"] == "kaczmarz":
        options.setdefault("block_size", minibatch_size)
        options.setdefault("sweeps", 1)
        if npg["rat_variant"] == "original":
            options["residual"] = "original"
    return make_solver(config["solver"], **options)


def update_statistics(kl: float, minibatch_kl: float, entropy: float, losses: list, value_loss: float, norms: list,
                      lr: float, iterations: list, residuals: list, passes: list) -> dict[str, float]:
    """The progress.csv statistics of a natural-gradient update (means over its minibatches; NaN where a
    solver reports none)."""
    return {
        "kl": kl,
        "kl_last_minibatch": minibatch_kl,
        "entropy": entropy,
        "policy_loss": float(np.mean(losses)),
        "value_loss": value_loss,
        "step_norm": float(np.mean(norms)),
        "lr": lr,
        "solver_iterations": float(np.mean(iterations)),
        "solver_residual": float(np.nanmean(residuals)) if not np.all(np.isnan(residuals)) else float("nan"),
        "solver_passes": float(np.nanmean(passes)) if not np.all(np.isnan(passes)) else float("nan"),
    }


def momentum_direction(optimizer: torch.optim.SGD, params: list[torch.nn.Parameter]) -> Optional[torch.Tensor]:
    """Minus the SGD momentum buffers of ``params``, flat (P,): the ascent direction the reference carries as
    g_k (train_detach.py:268-273, train_shared.py:162-167); None before the first step or without momentum."""
    buffers = [optimizer.state[p].get("momentum_buffer") for p in params]
    if any(b is None for b in buffers):
        return None
    return -torch.cat([b.reshape(-1) for b in buffers])


@torch.no_grad()
def exact_kl(old, new, obs: torch.Tensor) -> float:
    """Mean exact KL(old(.|s) || new(.|s)) over the rows of ``obs`` (N, ...)."""
    return float(torch.distributions.kl_divergence(old.distribution(obs), new.distribution(obs)).mean())


class NPG:
    def __init__(self, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator):
        self.agent, self.cfg, self.rng = agent, config["npg"], rng
        self.original = self.cfg["rat_variant"] == "original" and config["solver"] == "kaczmarz"
        self.step_norm = "l2" if self.original else self.cfg["step_norm"]  # the original rule clips in L2
        batch = config["num_envs"] * config["num_steps"]
        self.solver = solver_for(config, math.ceil(batch / self.cfg["minibatches"]))
        self.params = agent.policy.policy_parameters()
        self.optimizer = torch.optim.SGD(self.params, lr=self.cfg["lr"], momentum=self.cfg["momentum"])
        self.previous: Optional[torch.Tensor] = None  # original variant: the carried flat ascent direction
        self.critic = CriticTrainer.from_config(agent, config, rng)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _step_norm(self, result, curv, problem: NPGProblem) -> float:
        """Fisher norm ||S d|| / sqrt(N) (S d from the solver when it has it, else one J v), L2, or the
        reference fvp's d^T (H + lambda I) d (one more product with the capture's KL Hessian)."""
        direction = result.direction
        if self.step_norm == "fisher":
            sd = result.scores_direction
            if sd is None:
                with curv.uncounted():
                    sd = curv.jvp(direction)
            return float(torch.linalg.vector_norm(sd) / math.sqrt(curv.n))
        if self.step_norm == "kl_quadratic":
            with curv.uncounted():  # the solver's KL-Hessian graph when it built one (cg, kl_hessian)
                return float(direction.dot(curv.kl_hessian(problem)(direction)))
        return float(torch.linalg.vector_norm(direction))

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        cfg, policy = self.cfg, self.agent.policy
        low, high = cfg["ratio_clip"]
        last_kl = cfg["kl_rule"] == "last_minibatch"
        old_policy = copy.deepcopy(policy) if last_kl else None
        losses, norms, iterations, residuals, passes = [], [], [], [], []
        minibatch_kl = float("nan")
        last_step = (cfg["epochs"] - 1, cfg["minibatches"] - 1)
        for epoch in range(cfg["epochs"]):
            for index, idx in enumerate(minibatches(batch.n, cfg["minibatches"], self.rng)):
                obs, actions = batch.obs[idx], batch.actions[idx]
                adv = batch.advantages[idx]
                if cfg["advantage_norm"]:
                    adv = normalize_advantages(adv)
                unweighted = NPGProblem(policy, obs, actions, adv, cfg["damping"], params=self.params, trusted=True)
                if old_policy is not None and (epoch, index) == last_step:  # the rule reads the last one only
                    minibatch_kl = exact_kl(old_policy, policy, obs)
                with PHASES("capture"):
                    # One forward gives both the scores and log pi for the ratios; the weights then scale
                    # the captured rows (sqrt(w_i) per sample), exactly what a weighted capture computes.
                    curv, log_probs = capture_with_log_probs(unweighted)
                ratio = (log_probs - batch.log_probs[idx]).exp()
                weights = ratio.clamp(low, high)
                curv.scale_rows(weights.sqrt())
                losses.append(float(-(ratio * adv).mean()))
                if cfg["ent_coef"]:
                    adv = adv + cfg["ent_coef"] * entropy_advantage(log_probs)
                if cfg["clipped_ratio"] == "drop":  # the clamp's zero derivative: no gradient from clamped samples
                    adv = torch.where(weights == ratio, adv, torch.zeros_like(adv))
                problem = dataclasses.replace(unweighted, advantages=adv, weights=weights)
                warm = WarmStart(direction=self.previous) if self.original and self.previous is not None else None
                with PHASES("solve"):
                    result = self.solver.solve(problem, curvature=curv, warm_start=warm)
                direction = result.direction
                norm = self._step_norm(result, curv, problem)
                step = direction * self._clip_coefficient(norm)
                norms.append(norm)
                iterations.append(result.stats.iterations)
                residuals.append(result.stats.residual)
                passes.append(result.stats.passes)
                self._apply(step)
                if self.original:
                    self.previous = self._carried(step)
        kl, entropy = batch_kl_and_entropy(policy, batch.obs, batch.actions, batch.log_probs)
        lr = self.lr
        if cfg["kl_adaptive"]:
            self._adapt_lr(minibatch_kl if last_kl else kl)
        with PHASES("critic"):
            value_loss = self.critic.update(batch.obs, batch.returns)
        return update_statistics(kl, minibatch_kl, entropy, losses, value_loss, norms, lr, iterations, residuals, passes)

    def _apply(self, step: torch.Tensor) -> None:
        """p.grad = -step (ascent direction -> loss gradient), then one SGD step."""
        grads = [torch.empty_like(p) for p in self.params]
        vector_to_parameters(-step.to(self.params[0].dtype), grads)
        for p, g in zip(self.params, grads):
            p.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _clip_coefficient(self, norm: float) -> float:
        """min(1, max / norm) for the Fisher norm and the KL quadratic (train_detach.py:166's
        ``clamp(max / q, max=1)``); in L2, torch.nn.utils.clip_grad_norm_'s min(1, max / (norm + 1e-6))
        (what the reference calls, train_detach.py:280)."""
        if self.step_norm in ("fisher", "kl_quadratic"):
            return min(1.0, self.cfg["max_step_norm"] / norm) if norm > 0 else 1.0
        return min(1.0, self.cfg["max_step_norm"] / (norm + 1e-6))

    def _carried(self, step: torch.Tensor) -> torch.Tensor:
        """The original variant's carried ascent direction: minus the SGD momentum buffer (the
        reference's g_k, train_detach.py:268-273), or the clipped step when there is no buffer."""
        carried = momentum_direction(self.optimizer, self.params)
        return step.detach().clone() if carried is None else carried.to(step.dtype)

    def _adapt_lr(self, kl: float) -> None:
        lr = kl_adapted_lr(self.lr, kl, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "previous": None if self.previous is None else self.previous.clone(),
            "critic": self.critic.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.previous = state["previous"]
        self.critic.load_state_dict(state["critic"])

