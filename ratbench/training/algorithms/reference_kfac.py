"""The reference's K-FAC baseline: its optimiser and its actor update (``--preset reference --solver kfac``).

agent-lab/ICML2026-RAT vendors alecwangcq/KFAC-Pytorch as ``kfac/kfac.py`` (with ``kfac/kfac_utils.py``) and
drives it from ``train_detach.py``'s ``KFAC_ActorUpdate`` (:392-463, line numbers at the reference's c49b552).
ratbench's ``kfac`` solver is a different method: it forms each minibatch's Kronecker factors exactly and
solves with them; this module ports the reference's optimiser, statistics and quirks included:

- Factors kept as running averages with decay 0.95 (``update_running_stat``, kfac_utils.py:33-37), starting
  from the identity (kfac.py:60-63, 68-71); A = E[a a^T] with a ones column for a bias (kfac_utils.py:120-126),
  updated at *every* forward of the policy with gradients enabled (TCov = 1, kfac.py:57-63); G = E[g g^T] N^2
  for output-gradients g of the batch-mean loss (``batch_averaged``, kfac_utils.py:170-178), updated only by the
  Fisher backward of ``-mean(log pi)`` run every TInv = 10 optimiser steps (train_detach.py:421-428).
- Every TInv steps the factors' eigendecompositions are renewed (eigenvalues below 1e-10 zeroed, kfac.py:87-97);
  each Linear/Conv2d gradient G_w becomes Q_g [(Q_g^T G_w Q_a) / (d_g d_a^T + damping)] Q_a^T, damping 0.001
  (kfac.py:113-132); all of them are scaled by nu = min(1, sqrt(kl_clip / sum(v . grad) lr^2)), kl_clip 0.001
  (kfac.py:134-150); then SGD with momentum 0.9 over every parameter, the log-std included with its raw
  gradient (kfac.py:152-181).
- The actor loss ``-mean(clamp(r) A) / (RMS(A) + 1e-8)``, A centred, is back-propagated *without* zeroing the
  gradients the Fisher backward left (train_detach.py:424-451: ``zero_grad`` comes before the statistics
  backward, not after it), so on statistics steps the step also carries the gradient of ``-mean(log pi)``;
  then ``clip_grad_norm_`` to 0.5 (:452) and the optimiser step.
- The step size moves on the last minibatch's exact KL before its step (:419, :524-530), target 0.008, within
  [1e-4, 0.05] from kfac_mlp.yaml's lr 0.01 (the cap 5e-2 is hard-coded at :530).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ratbench.training.agent import Agent
from ratbench.training.algorithms.critic import CriticTrainer
from ratbench.training.algorithms.minibatch import batch_kl_and_entropy, kl_adapted_lr, minibatches
from ratbench.training.algorithms.npg import exact_kl, update_statistics
from ratbench.training.rollout import Batch

EIGENVALUE_FLOOR = 1e-10  # kfac.py:92


def _with_ones(a: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    return torch.cat([a, a.new_ones(a.shape[0], 1)], dim=1) if layer.bias is not None else a


def input_factor(a: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """kfac_utils.py's ComputeCovA: a^T a / N (Linear), patches over positions scaled by 1 / positions (Conv2d)."""
    n = a.shape[0]
    if isinstance(layer, nn.Conv2d):
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
        if ph + pw > 0:
            a = F.pad(a, (pw, pw, ph, ph))
        patches = a.unfold(2, kh, sh).unfold(3, kw, sw).permute(0, 2, 3, 1, 4, 5)
        positions = patches.shape[1] * patches.shape[2]
        a = _with_ones(patches.reshape(-1, patches.shape[3] * kh * kw), layer) / positions
        return a.T @ (a / n)
    a = _with_ones(a, layer)
    return a.T @ (a / n)


def output_factor(g: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """kfac_utils.py's ComputeCovG with batch_averaged: (g N)^T g for a Linear; a Conv2d's output-gradients
    per position, scaled by N and the number of positions, over (N positions)."""
    n = g.shape[0]
    if isinstance(layer, nn.Conv2d):
        positions = g.shape[2] * g.shape[3]
        g = g.permute(0, 2, 3, 1).reshape(-1, g.shape[1]) * n * positions
        return g.T @ (g / g.shape[0])
    return g.T @ (g * n)


def _layer_params(m: nn.Module) -> tuple[nn.Parameter, ...]:
    """(weight, bias) of a Linear/Conv2d layer, or (weight,) without a bias."""
    return (m.weight,) if m.bias is None else (m.weight, m.bias)


class ReferenceKFACOptimizer(torch.optim.SGD):
    """kfac/kfac.py's KFACOptimizer (module doc), for the Linear and Conv2d layers of ``model``: the layers'
    gradients preconditioned and KL-clipped, then torch's SGD with momentum, which is the reference's ``_step``
    (kfac.py:152-181: no dampening, no Nesterov, the buffer starting at the first gradient)."""

    def __init__(self, model: nn.Module, lr: float, momentum: float = 0.9, stat_decay: float = 0.95,
                 damping: float = 0.001, kl_clip: float = 0.001, t_cov: int = 1, t_inv: int = 10):
        super().__init__(model.parameters(), lr=lr, momentum=momentum)
        self.damping, self.stat_decay, self.kl_clip, self.t_cov, self.t_inv = damping, stat_decay, kl_clip, t_cov, t_inv
        self.modules = [m for m in model.modules() if type(m) in (nn.Linear, nn.Conv2d)]
        self.m_aa: dict[nn.Module, torch.Tensor] = {}
        self.m_gg: dict[nn.Module, torch.Tensor] = {}
        self.eigen: dict[nn.Module, tuple[torch.Tensor, ...]] = {}
        self.steps = 0
        self.acc_stats = False
        for m in self.modules:
            m.register_forward_pre_hook(self._save_input)
            m.register_forward_hook(self._watch_output)

    def _running(self, store: dict, module: nn.Module, factor: torch.Tensor) -> None:
        """update_running_stat, with the identity start of step 0 (kfac.py:60-63)."""
        if self.steps == 0:
            store[module] = torch.eye(factor.shape[0], dtype=factor.dtype, device=factor.device)
        store[module].mul_(self.stat_decay / (1 - self.stat_decay)).add_(factor).mul_(1 - self.stat_decay)

    def _save_input(self, module: nn.Module, inputs: tuple) -> None:
        if torch.is_grad_enabled() and self.steps % self.t_cov == 0:
            self._running(self.m_aa, module, input_factor(inputs[0].detach(), module))

    def _watch_output(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        """The gradient reaching this output is the reference's backward hook's grad_output[0] (kfac.py:65-71)."""
        if output.requires_grad:
            output.register_hook(lambda grad: self._save_grad_output(module, grad))

    def _save_grad_output(self, module: nn.Module, grad: torch.Tensor) -> None:
        if self.acc_stats and self.steps % self.t_cov == 0:
            self._running(self.m_gg, module, output_factor(grad.detach(), module))

    def _natural(self, m: nn.Module) -> tuple[torch.Tensor, ...]:
        grad = m.weight.grad.reshape(m.weight.shape[0], -1)
        if m.bias is not None:
            grad = torch.cat([grad, m.bias.grad.reshape(-1, 1)], dim=1)
        d_a, q_a, d_g, q_g = self.eigen[m]
        v = q_g @ ((q_g.T @ grad @ q_a) / (d_g[:, None] * d_a[None, :] + self.damping)) @ q_a.T
        if m.bias is None:
            return (v.reshape(m.weight.shape),)
        return v[:, :-1].reshape(m.weight.shape), v[:, -1].reshape(m.bias.shape)

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: ARG002 - torch.optim signature
        lr = self.param_groups[0]["lr"]
        updates = {}
        for m in self.modules:
            if self.steps % self.t_inv == 0:
                d_a, q_a = torch.linalg.eigh(self.m_aa[m])
                d_g, q_g = torch.linalg.eigh(self.m_gg[m])
                self.eigen[m] = (d_a * (d_a > EIGENVALUE_FLOOR), q_a, d_g * (d_g > EIGENVALUE_FLOOR), q_g)
            updates[m] = self._natural(m)
        vg_sum = sum(float((v * p.grad * lr**2).sum()) for m in self.modules for v, p in zip(updates[m], _layer_params(m)))
        nu = min(1.0, math.sqrt(self.kl_clip / vg_sum))
        for m in self.modules:
            for v, p in zip(updates[m], _layer_params(m)):
                p.grad.copy_(v).mul_(nu)
        super().step()
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        index = {m: i for i, m in enumerate(self.modules)}
        state["kfac"] = {
            "steps": self.steps,
            "m_aa": {index[m]: t for m, t in self.m_aa.items()},
            "m_gg": {index[m]: t for m, t in self.m_gg.items()},
            "eigen": {index[m]: list(t) for m, t in self.eigen.items()},
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        kfac = state_dict.pop("kfac")
        super().load_state_dict(state_dict)
        self.steps = int(kfac["steps"])
        self.m_aa = {self.modules[int(i)]: t for i, t in kfac["m_aa"].items()}
        self.m_gg = {self.modules[int(i)]: t for i, t in kfac["m_gg"].items()}
        self.eigen = {self.modules[int(i)]: tuple(t) for i, t in kfac["eigen"].items()}


class ReferenceKFAC:
    """train_detach.py's KFAC_ActorUpdate with its optimiser, and the critic by its own Adam (module doc)."""

    def __init__(self, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator):
        self.agent, self.cfg, self.rng = agent, config["npg"], rng
        self.params = agent.policy.policy_parameters()
        self.optimizer = ReferenceKFACOptimizer(agent.policy, lr=self.cfg["lr"])
        self.critic = CriticTrainer.from_config(agent, config, rng)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        cfg, policy = self.cfg, self.agent.policy
        low, high = cfg["ratio_clip"]
        old_policy = copy.deepcopy(policy)
        losses, norms = [], []
        minibatch_kl = float("nan")
        for _ in range(cfg["epochs"]):
            for idx in minibatches(batch.n, cfg["minibatches"], self.rng):
                obs, actions = batch.obs[idx], batch.actions[idx]
                self.optimizer.zero_grad()
                dist = policy.distribution(obs)  # the forward whose inputs update A
                log_probs = dist.log_prob(actions)
                minibatch_kl = exact_kl(old_policy, policy, obs)
                if self.optimizer.steps % self.optimizer.t_inv == 0:
                    policy.zero_grad()
                    self.optimizer.acc_stats = True
                    (-log_probs.mean()).backward(retain_graph=True)
                    self.optimizer.acc_stats = False
                adv = batch.advantages[idx] - batch.advantages[idx].mean()
                ratio = (log_probs - batch.log_probs[idx]).exp().clamp(low, high)
                loss = (-ratio * adv).mean() / (adv.pow(2).mean().sqrt() + 1e-8) - cfg["ent_coef"] * dist.entropy().mean()
                loss.backward()
                norms.append(float(torch.nn.utils.clip_grad_norm_(self.params, cfg["max_step_norm"])))
                self.optimizer.step()
                losses.append(float(loss.detach()))
        kl, entropy = batch_kl_and_entropy(policy, batch.obs, batch.actions, batch.log_probs)
        lr = self.lr
        if cfg["kl_adaptive"]:
            for group in self.optimizer.param_groups:
                group["lr"] = kl_adapted_lr(lr, minibatch_kl, cfg)
        value_loss = self.critic.update(batch.obs, batch.returns)
        return update_statistics(kl, minibatch_kl, entropy, losses, value_loss, norms, lr, [1.0], [float("nan")],
                                 [float("nan")])

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "critic": self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.critic.load_state_dict(state["critic"])
