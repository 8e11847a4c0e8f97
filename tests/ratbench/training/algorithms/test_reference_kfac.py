"""`--preset reference --arch shared --solver kfac` against a dense float64 re-statement of train_shared.py's
KFAC_Update with kfac/kfac.py's optimiser (the separate-network K-FAC baseline's parity test is in
tests/ratbench/training/test_reference_preset.py).

The re-statement is written from the reference (train_shared.py:327-404, :461-467; kfac/kfac.py; kfac_utils.py)
on the flat parameters of the shared network, without ratbench's optimiser or modules: one forward of the trunk
feeds both heads; every layer's input enters A once per optimiser step; every TInv = 10 steps the Fisher backward
of ``mean(log pi) - mean((V - (V + eps).detach())^2)`` moves G and leaves its gradient in place; the loss
``-mean(clamp(r) A) / RMS(A) + mean((V - R)^2)``; the clip to 0.5; the damped eigen-preconditioner of every
layer, the KL clip and SGD momentum 0.9; the step size moved by the last minibatch's KL before its step, target
0.01, capped at the config lr. PopArt is off (value_norm none), so the value head is an ``nn.Linear`` the
optimiser preconditions, as the reference's would be without PopArt; with PopArt on the head is left alone
(the last test). The eps and the minibatches are recorded from ratbench's run and fed to both.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import ratbench.training.algorithms.reference_kfac as kfac_module
from ratbench.errors import RatbenchError
from ratbench.training import resolve_config
from ratbench.training.agent import Agent
from ratbench.training.algorithms import ReferenceKFAC, make_algorithm
from tests.ratbench.training.helpers import record_minibatches, record_value_noise, synthetic_batches

OBS_DIM, ACT_DIM, N_BATCH = 5, 2, 64
SETS = ["model.hidden=[16, 16]", "npg.epochs=1", "npg.minibatches=6", "num_envs=2", f"num_steps={N_BATCH // 2}",
        "value_norm=none", "npg.lr=0.05", "npg.lr_max=0.05"]
# (weight, bias) of each layer in the order of the restated forward: trunk 1, trunk 2, the mean head, the value head
LAYERS = [("critic.0.0.0.weight", "critic.0.0.0.bias"), ("critic.0.0.2.weight", "critic.0.0.2.bias"),
          ("policy.body.1.weight", "policy.body.1.bias"), ("critic.1.weight", "critic.1.bias")]
RTOL = 1e-8  # the same float64 operations in another order: ~1e-15 measured


def _running(m, factor, step, decay=0.95):
    """kfac_utils.py:33-37's update_running_stat, from the identity at step 0 (kfac.py:60-63)."""
    m = torch.eye(factor.shape[0], dtype=factor.dtype) if step == 0 else m
    return (m * decay / (1 - decay) + factor) * (1 - decay)


def _forward(theta, obs):
    """The shared network: (mean (N, act), V (N,), the four layers' inputs, their outputs)."""
    (w1, b1), (w2, b2), (wm, bm), (wv, bv) = [(theta[w], theta[b]) for w, b in LAYERS]
    z1 = obs @ w1.T + b1
    h1 = torch.relu(z1)
    z2 = h1 @ w2.T + b2
    h = torch.relu(z2)
    zm, zv = h @ wm.T + bm, h @ wv.T + bv
    return zm, zv[:, 0], [obs, h1, h, h], [z1, z2, zm, zv]


def _log_prob(theta, mean, act):
    log_std = theta["policy.log_std"]
    return (-((act - mean) ** 2) / (2 * torch.exp(log_std) ** 2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def _kl(theta_old, theta, obs) -> float:
    """The reference's _kl (train_shared.py:354): exact Gaussian KL(old || new), summed over actions."""
    with torch.no_grad():
        mu_old, mu = _forward(theta_old, obs)[0], _forward(theta, obs)[0]
    ls_old, ls = theta_old["policy.log_std"], theta["policy.log_std"]
    return float((ls - ls_old + 0.5 * (torch.exp(ls_old) ** 2 + (mu_old - mu) ** 2) / torch.exp(ls) ** 2 - 0.5).sum(-1).mean())


class _RestatedSharedKFAC:
    def __init__(self, theta: dict[str, torch.Tensor], lr: float):
        self.theta, self.lr, self.step = theta, lr, 0
        self.m_aa, self.m_gg, self.eigen, self.buf = [None] * 4, [None] * 4, [None] * 4, None

    def update(self, obs, act, old_logp, adv_raw, ret, eps):
        n, names = obs.shape[0], list(self.theta)
        leaves = {k: t.detach().requires_grad_(True) for k, t in self.theta.items()}
        mean, values, inputs, outputs = _forward(leaves, obs)
        for i, a in enumerate(inputs):  # the one forward with gradients of this step
            a1 = torch.cat([a.detach(), torch.ones(n, 1, dtype=a.dtype)], 1)
            self.m_aa[i] = _running(self.m_aa[i], a1.T @ (a1 / n), self.step)
        logp = _log_prob(leaves, mean, act)
        grads = {k: torch.zeros_like(t) for k, t in leaves.items()}
        if self.step % 10 == 0:  # the Fisher backward (:356-366), its gradients left in p.grad
            likelihood = logp.mean() - (values - (values + eps).detach()).pow(2).mean()
            fisher = torch.autograd.grad(likelihood, [leaves[k] for k in names] + outputs, retain_graph=True)
            grads = {k: g.clone() for k, g in zip(names, fisher)}
            for i, g in enumerate(fisher[len(names):]):
                self.m_gg[i] = _running(self.m_gg[i], g.T @ (g * n), self.step)
        ratio = torch.exp(logp - old_logp).clamp(0.1, 10.0)
        adv = adv_raw - adv_raw.mean()
        loss = (-ratio * adv).mean() / (adv.pow(2).mean().sqrt() + 1e-8) + 1.0 * (values - ret).pow(2).mean()
        for k, g in zip(names, torch.autograd.grad(loss, [leaves[k] for k in names])):
            grads[k] = grads[k] + g
        norm = float(torch.cat([g.reshape(-1) for g in grads.values()]).norm())
        grads = {k: g * min(1.0, 0.5 / (norm + 1e-6)) for k, g in grads.items()}
        vg_sum, updates = 0.0, []
        for i, (w, b) in enumerate(LAYERS):
            if self.step % 10 == 0:
                d_a, q_a = torch.linalg.eigh(self.m_aa[i])
                d_g, q_g = torch.linalg.eigh(self.m_gg[i])
                self.eigen[i] = (d_a * (d_a > 1e-10), q_a, d_g * (d_g > 1e-10), q_g)
            d_a, q_a, d_g, q_g = self.eigen[i]
            g = torch.cat([grads[w], grads[b][:, None]], 1)
            v = q_g @ ((q_g.T @ g @ q_a) / (d_g[:, None] * d_a[None, :] + 0.001)) @ q_a.T
            vg_sum += float((v * g * self.lr**2).sum())
            updates.append(v)
        nu = min(1.0, math.sqrt(0.001 / vg_sum))
        for (w, b), v in zip(LAYERS, updates):
            grads[w], grads[b] = v[:, :-1] * nu, v[:, -1] * nu
        flat = torch.cat([grads[k].reshape(-1) for k in names])
        self.buf = flat if self.buf is None else 0.9 * self.buf + flat
        new = torch.cat([self.theta[k].reshape(-1) for k in names]) - self.lr * self.buf
        at = 0
        for k in names:
            self.theta[k] = new[at:at + self.theta[k].numel()].view_as(self.theta[k])
            at += self.theta[k].numel()
        self.step += 1


def _agent(sets=()):
    config = resolve_config({"env": "hopper", "preset": "reference", "arch": "shared", "solver": "kfac", "seed": 0},
                            sets=[*SETS, *sets])
    return config, Agent(config, gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gym.spaces.Box(-1.0, 1.0, (ACT_DIM,))).double()


def _parity_gap(monkeypatch, mutate=None) -> float:
    """max over two rollouts of 6 minibatches (12 optimiser steps, inverses at 0 and 10) of the parameters'
    relative difference and the step sizes'."""
    torch.manual_seed(0)
    config, agent = _agent()
    restated = _RestatedSharedKFAC({k: p.detach().clone() for k, p in agent.model.named_parameters()}, config["npg"]["lr"])
    used = record_minibatches(monkeypatch, kfac_module)
    noises = record_value_noise(monkeypatch, kfac_module)
    algo = make_algorithm(config, agent, np.random.default_rng(0))
    if mutate is not None:
        mutate(monkeypatch, algo)
    gap = 0.0
    for batch in synthetic_batches(agent.policy, torch.Generator().manual_seed(1), N_BATCH, OBS_DIM, noisy_returns=True):
        start, drawn = len(used), len(noises)
        algo.update(batch, 0.0)
        eps = iter(noises[drawn:])
        theta_old, kl = dict(restated.theta), float("nan")
        for idx in used[start:]:
            kl = _kl(theta_old, restated.theta, batch.obs[idx])
            if restated.step % 10 == 0:  # a mutation that draws no noise: the re-statement draws its own
                noise = next(eps, None)
                noise = torch.randn(len(idx), dtype=torch.float64) if noise is None else noise
            restated.update(batch.obs[idx], batch.actions[idx], batch.log_probs[idx], batch.advantages[idx],
                            batch.returns[idx], noise)
        if kl > 0.01 * 2:
            restated.lr = max(restated.lr / 1.5, 1e-4)
        elif kl < 0.01 / 2:
            restated.lr = min(restated.lr * 1.5, config["npg"]["lr"])  # the config lr is the cap (:467)
        names = list(restated.theta)
        params = dict(agent.model.named_parameters())
        got = torch.cat([params[k].detach().reshape(-1) for k in names])
        want = torch.cat([restated.theta[k].reshape(-1) for k in names])
        gap = max(gap, float((got - want).norm() / want.norm()), abs(algo.lr - restated.lr) / restated.lr)
    return gap


def test_shared_kfac_matches_a_dense_restatement_of_kfac_update(monkeypatch):
    assert _parity_gap(monkeypatch) <= RTOL


def _likelihood_negated(monkeypatch, algo):
    real = algo._likelihood
    monkeypatch.setattr(algo, "_likelihood", lambda log_probs, values: -real(log_probs, values))


def _value_noise_dropped(monkeypatch, algo):
    monkeypatch.setattr(algo, "_likelihood", lambda log_probs, values: log_probs.mean() - (values - values.detach()).pow(2).mean())


def _inputs_counted_per_call(monkeypatch, algo):
    class Forgetful(set):
        def add(self, item):  # never remembers a layer: A moves at each of the trunk's two calls
            pass

    algo.optimizer._inputs_counted = Forgetful()


def _output_factor_per_call(monkeypatch, algo):
    opt = algo.optimizer

    def per_call(module, grad):
        if opt._output_grads is not None:  # G moved by each call's gradient instead of their sum
            opt._running(opt.m_gg, module, kfac_module.output_factor(grad.detach(), module))

    monkeypatch.setattr(opt, "_save_grad_output", per_call)


@pytest.mark.parametrize("mutate", [_likelihood_negated, _value_noise_dropped, _inputs_counted_per_call,
                                    _output_factor_per_call],
                         ids=["the separate program's sign", "no value noise", "A per trunk call", "G per trunk call"])
def test_mutations_of_the_shared_kfac_fail_the_parity(monkeypatch, mutate):
    assert _parity_gap(monkeypatch, mutate) > 1e3 * RTOL


def test_preset_selects_the_shared_kfac_and_leaves_the_popart_head_to_sgd():
    config = resolve_config({"env": "humanoid", "preset": "reference", "arch": "shared", "solver": "kfac"})
    npg = config["npg"]
    assert (npg["kfac_variant"], npg["value_update"], npg["lr"], npg["lr_max"], npg["kl_rule"], npg["target_kl"]) == (
        "reference", "joint", 0.001, 0.001, "last_minibatch", 0.01)
    for value_norm, head_preconditioned in (("popart", False), ("none", True)):
        _, agent = _agent([f"value_norm={value_norm}"])
        algo = make_algorithm(_agent([f"value_norm={value_norm}"])[0], agent, np.random.default_rng(0))
        assert isinstance(algo, ReferenceKFAC) and algo.critic is None
        layers = {id(m) for m in algo.optimizer.modules}
        assert (id(agent.model.critic[-1]) in layers) == head_preconditioned
        assert id(agent.model.policy.body[1]) in layers and len(layers) == 3 + head_preconditioned
        assert sorted(map(id, algo.params)) == sorted(map(id, agent.model.parameters()))


@pytest.mark.parametrize("explicit, sets, message", [
    ({"arch": "shared", "preset": "reference", "solver": "kfac"}, ["npg.kl_rule=last_minibatch_after_step"],
     "must be last_minibatch"),
    ({"arch": "shared", "solver": "kfac"}, ["npg.kfac_variant=reference"], "set npg.value_update=joint"),
    ({"arch": "shared", "solver": "kfac"}, ["npg.value_update=joint"], "or with kfac as the reference's"),
])
def test_bad_kfac_combinations_get_one_sentence(explicit, sets, message):
    with pytest.raises(RatbenchError, match=message):
        resolve_config({"env": "hopper", **explicit}, sets=sets)


def test_shared_kfac_resumes_its_optimizer_statistics(monkeypatch):
    config, agent = _agent()
    algo = make_algorithm(config, agent, np.random.default_rng(0))
    batch = next(synthetic_batches(agent.policy, torch.Generator().manual_seed(2), N_BATCH, OBS_DIM, noisy_returns=True))
    algo.update(batch, 0.0)
    clone = make_algorithm(config, _agent()[1], np.random.default_rng(0))
    clone.load_state_dict(algo.state_dict())
    assert set(algo.state_dict()) == {"optimizer"} and clone.optimizer.steps == algo.optimizer.steps == 6
    for a, b in zip(algo.optimizer.modules, clone.optimizer.modules):
        torch.testing.assert_close(algo.optimizer.m_gg[a], clone.optimizer.m_gg[b], rtol=0, atol=0)
