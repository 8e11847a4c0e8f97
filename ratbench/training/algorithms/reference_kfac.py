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
- Every TInv steps the factors' eigendecompositions are renewed (eigenvalues below 1e-10 zeroed, kfac.py:88-98);
  each Linear/Conv2d gradient G_w becomes Q_g [(Q_g^T G_w Q_a) / (d_g d_a^T + damping)] Q_a^T, damping 0.001
  (kfac.py:115-135); all of them are scaled by nu = min(1, sqrt(kl_clip / sum(v . grad) lr^2)), kl_clip 0.001
  (kfac.py:137-153); then SGD with momentum 0.9 over every parameter, the log-std included with its raw
  gradient (kfac.py:155-178).
- The actor loss ``-mean(clamp(r) A) / (RMS(A) + 1e-8)``, A centred, is back-propagated *without* zeroing the
  gradients the Fisher backward left (train_detach.py:424-451: ``zero_grad`` comes before the statistics
  backward, not after it), so on statistics steps the step also carries the gradient of ``-mean(log pi)``;
  then ``clip_grad_norm_`` to 0.5 (:452) and the optimiser step.
- The step size moves on the last minibatch's exact KL before its step (:419, :524-530), target 0.008, within
  [1e-4, 0.05] from kfac_mlp.yaml's lr 0.01 (the cap 5e-2 is hard-coded at :530).

``train_shared.py``'s ``KFAC_Update`` (:327-404 at HEAD, configs/kfac_mlp_shared.yaml) is the same optimiser over
the whole shared network (``npg.value_update: joint``, ``--preset reference --arch shared --solver kfac``):
- One forward gives the values and the policy (:329); the Fisher backward every TInv steps differentiates
  ``mean(log pi) - mean((V - (V + eps).detach())^2)``, eps ~ N(0, 1) per sample (:356-366, note the sign: the
  separate program's is ``-mean(log pi)``), and its gradient again stays in p.grad.
- The loss adds ``vf_coef (1.0) mean((V - R)^2)`` on PopArt-normalised returns (:388-390, :433-437); the clip and
  the step cover every parameter (:393-394). The PopArt value head (utils/popart.py's module, not an
  ``nn.Linear``) is not one of the optimiser's layers (kfac.py:38, :74-86 keep layers by class name), so it
  takes the SGD step with its raw gradient.
- The step size moves on the last minibatch's KL before its step, target 0.01, within [1e-4, the config lr]
  (:461-467), and kfac_mlp_shared.yaml's lr is 0.001: the rule can only lower it.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ratbench.training.agent import Agent
from ratbench.training.algorithms.critic import CriticTrainer
from ratbench.training.algorithms.minibatch import batch_kl_and_entropy, kl_adapted_lr, minibatches, value_noise
from ratbench.training.algorithms.npg import exact_kl, update_statistics
from ratbench.training.rollout import Batch

EIGENVALUE_FLOOR = 1e-10  # kfac.py:93


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
    """kfac/kfac.py's KFACOptimizer (module doc), for the Linear and Conv2d layers of ``model`` but those in
    ``skip``: the layers' gradients preconditioned and KL-clipped, then torch's SGD with momentum over every
    parameter, which is the reference's ``_step`` (kfac.py:155-178: no dampening, no Nesterov, the buffer
    starting at the first gradient).

    The reference's networks call each layer once per forward; ratbench's shared trunk is called once per head.
    So a layer's input enters A once per optimiser step (its first forward with gradients of the step), and the
    statistics backward (:meth:`accumulate_statistics`) sums the gradients reaching a layer's outputs over its
    calls before forming G: on the same inputs that sum is the gradient reaching the single call's output."""

    def __init__(self, model: nn.Module, lr: float, momentum: float = 0.9, stat_decay: float = 0.95,
                 damping: float = 0.001, kl_clip: float = 0.001, t_cov: int = 1, t_inv: int = 10,
                 skip: Sequence[nn.Module] = ()):
        super().__init__([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)
        self.damping, self.stat_decay, self.kl_clip, self.t_cov, self.t_inv = damping, stat_decay, kl_clip, t_cov, t_inv
        skipped = {id(m) for m in skip}
        self.modules = [m for m in model.modules() if type(m) in (nn.Linear, nn.Conv2d) and id(m) not in skipped]
        self.m_aa: dict[nn.Module, torch.Tensor] = {}
        self.m_gg: dict[nn.Module, torch.Tensor] = {}
        self.eigen: dict[nn.Module, tuple[torch.Tensor, ...]] = {}
        self.steps = 0
        self._inputs_counted: set[nn.Module] = set()
        self._output_grads: Optional[dict[nn.Module, torch.Tensor]] = None  # while the statistics backward runs
        for m in self.modules:
            m.register_forward_pre_hook(self._save_input)
            m.register_forward_hook(self._watch_output)

    def _running(self, store: dict, module: nn.Module, factor: torch.Tensor) -> None:
        """update_running_stat, with the identity start of step 0 (kfac.py:60-63)."""
        if self.steps == 0:
            store[module] = torch.eye(factor.shape[0], dtype=factor.dtype, device=factor.device)
        store[module].mul_(self.stat_decay / (1 - self.stat_decay)).add_(factor).mul_(1 - self.stat_decay)

    def _save_input(self, module: nn.Module, inputs: tuple) -> None:
        if torch.is_grad_enabled() and self.steps % self.t_cov == 0 and module not in self._inputs_counted:
            self._inputs_counted.add(module)
            self._running(self.m_aa, module, input_factor(inputs[0].detach(), module))

    def _watch_output(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        """The gradient reaching this output is the reference's backward hook's grad_output[0] (kfac.py:65-71)."""
        if output.requires_grad:
            output.register_hook(lambda grad: self._save_grad_output(module, grad))

    def _save_grad_output(self, module: nn.Module, grad: torch.Tensor) -> None:
        if self._output_grads is not None:
            held = self._output_grads.get(module)
            self._output_grads[module] = grad.detach() if held is None else held + grad.detach()

    def accumulate_statistics(self, likelihood: torch.Tensor) -> None:
        """The Fisher backward (kfac.py:65-71 with ``acc_stats`` on): ``likelihood.backward(retain_graph=True)``,
        its gradients left in ``p.grad``, and G moved by the gradients reaching each layer's outputs (class doc)."""
        self._output_grads = {}
        try:
            likelihood.backward(retain_graph=True)
            grads = self._output_grads
        finally:
            self._output_grads = None
        if self.steps % self.t_cov == 0:
            for module, grad in grads.items():
                self._running(self.m_gg, module, output_factor(grad, module))

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
        self._inputs_counted.clear()

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
    """train_detach.py's KFAC_ActorUpdate with its optimiser and the critic by its own Adam; with
    ``npg.value_update: joint`` (a shared network) train_shared.py's KFAC_Update (module doc)."""

    def __init__(self, agent: Agent, config: Mapping[str, Any], rng: np.random.Generator):
        self.agent, self.cfg, self.rng = agent, config["npg"], rng
        self.joint = self.cfg["value_update"] == "joint"
        model = agent.model if self.joint else agent.policy
        # the reference's PopArt head is utils/popart.py's own module, not an nn.Linear: K-FAC leaves it alone
        skip = [agent.model.critic[-1]] if self.joint and agent.popart.enabled else []
        self.optimizer = ReferenceKFACOptimizer(model, lr=self.cfg["lr"], skip=skip)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.critic = None if self.joint else CriticTrainer.from_config(agent, config, rng)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _likelihood(self, log_probs: torch.Tensor, values: Optional[torch.Tensor]) -> torch.Tensor:
        """What the Fisher backward differentiates: ``-mean(log pi)`` (train_detach.py:424-428), or for the
        shared network ``mean(log pi) - mean((V - (V + eps).detach())^2)``, eps ~ N(0, 1) per sample
        (train_shared.py:356-366)."""
        if values is None:
            return -log_probs.mean()
        eps = value_noise(self.rng, values.shape[0], values)
        return log_probs.mean() - (values - (values + eps).detach()).pow(2).mean()

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        cfg, policy, popart = self.cfg, self.agent.policy, self.agent.popart
        low, high = cfg["ratio_clip"]
        advantages, targets = batch.advantages, batch.returns
        if self.joint:  # train_shared.py:433-437
            popart.update(batch.returns)
            advantages, targets = popart.normalize(batch.advantages), popart.normalize(batch.returns)
        old_policy = copy.deepcopy(policy)
        losses, value_losses, norms = [], [], []
        minibatch_kl = float("nan")
        for _ in range(cfg["epochs"]):
            for idx in minibatches(batch.n, cfg["minibatches"], self.rng):
                obs, actions = batch.obs[idx], batch.actions[idx]
                self.optimizer.zero_grad()
                dist = policy.distribution(obs)  # the forward whose inputs update A
                log_probs = dist.log_prob(actions)
                values = self.agent.normalized_values(obs) if self.joint else None
                minibatch_kl = exact_kl(old_policy, policy, obs)
                if self.optimizer.steps % self.optimizer.t_inv == 0:
                    self.optimizer.zero_grad()
                    self.optimizer.accumulate_statistics(self._likelihood(log_probs, values))
                adv = advantages[idx] - advantages[idx].mean()
                ratio = (log_probs - batch.log_probs[idx]).exp().clamp(low, high)
                loss_pi = (-ratio * adv).mean() / (adv.pow(2).mean().sqrt() + 1e-8)
                loss = loss_pi - cfg["ent_coef"] * dist.entropy().mean()
                if self.joint:
                    loss_v = (values - targets[idx]).pow(2).mean()
                    loss = loss + cfg["vf_coef"] * loss_v
                    value_losses.append(float(loss_v.detach()))
                loss.backward()
                norms.append(float(torch.nn.utils.clip_grad_norm_(self.params, cfg["max_step_norm"])))
                self.optimizer.step()
                losses.append(float(loss_pi.detach()))
        kl, entropy = batch_kl_and_entropy(policy, batch.obs, batch.actions, batch.log_probs)
        lr = self.lr
        if cfg["kl_adaptive"]:
            for group in self.optimizer.param_groups:
                group["lr"] = kl_adapted_lr(lr, minibatch_kl, cfg)
        value_loss = float(np.mean(value_losses)) if self.joint else self.critic.update(batch.obs, batch.returns)
        return update_statistics(kl, minibatch_kl, entropy, losses, value_loss, norms, lr, [1.0], [float("nan")],
                                 [float("nan")])

    def state_dict(self) -> dict[str, Any]:
        state = {"optimizer": self.optimizer.state_dict()}
        return state if self.critic is None else {**state, "critic": self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
