"""`preset: reference` against a dense float64 re-statement of the reference RAT update.

The re-statement below is written from agent-lab/ICML2026-RAT train_detach.py (RAT_ActorUpdate,
lines 191-291, and the KL rule at 525-530) and train_detach.py:266-273 (the exact kernel
solve), independently of ratbench's curvature layer and solvers: per-sample scores H by plain
autograd, K = H H^T / N, y = solve(K diag(ratio) + lambda I, A - H g_k) with g_k the SGD momentum
buffer, loss gradient -(1/N) H^T (ratio * y), clip_grad_norm_ to 0.5, SGD(lr, momentum=1e-6),
and the step size moved by the exact KL of the last minibatch before its step.
"""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import ratbench.training.algorithms.npg as npg_module
import ratbench.training.algorithms.reference_kfac as kfac_module
from ratbench.errors import RatbenchError
from ratbench.training import resolve_config
from ratbench.training.agent import Agent
from ratbench.training.algorithms import make_algorithm
from ratbench.training.algorithms.npg import NPG
from tests.ratbench.training.helpers import record_minibatches, synthetic_batches

OBS_DIM, ACT_DIM, N_BATCH = 5, 2, 64
SETS = ["npg.lr=0.4", "npg.lr_max=1.0", "model.hidden=[16, 16]", "npg.epochs=1", "npg.minibatches=2", "num_envs=2", f"num_steps={N_BATCH // 2}"]


def test_preset_resolves_to_the_reference_setup():
    config = resolve_config({"env": "humanoid", "preset": "reference"})
    assert config["preset"] == "reference" and config["solver"] == "kaczmarz"
    assert (config["num_envs"], config["num_steps"], config["gamma"]) == (32, 256, 0.999)
    assert config["model"]["activation"] == "relu" and config["action_squash"] == "tanh"
    assert (config["obs_clip"], config["obs_eps"], config["obs_norm_update"]) == (5.0, 1e-5, "iteration")
    npg = config["npg"]
    assert (npg["rat_variant"], npg["step_norm"], npg["max_step_norm"], npg["momentum"], npg["kl_rule"]) == (
        "original", "l2", 0.5, 1e-6, "last_minibatch")
    assert config["critic"] == {"lr": 0.001, "epochs": 4, "minibatches": 8, "max_grad_norm": 5.0, "adam_eps": 1e-8}  # train_detach.py:74


def _mean(policy, theta, obs):
    return torch.func.functional_call(policy.body, {n: t for (n, _), t in zip(policy.body.named_parameters(), theta[1:])}, (obs,))


def _gaussian_logp(policy, theta: list[torch.Tensor], obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) per row with the parameters ``theta`` = [log_std, body...] (the reference's compute_logp)."""
    mean = _mean(policy, theta, obs)
    log_std = theta[0]
    var = torch.exp(log_std) ** 2
    return (-((act - mean) ** 2) / (2 * var) - log_std - math.log(math.sqrt(2 * math.pi))).sum(-1)


def _gaussian_kl(policy, theta_old, theta, obs) -> float:
    """The reference's _real_kl (train_detach.py:224): exact KL(old || new), summed over actions."""
    mu_old, mu, ls_old, ls = _mean(policy, theta_old, obs), _mean(policy, theta, obs), theta_old[0], theta[0]
    return float((ls - ls_old + 0.5 * (torch.exp(ls_old) ** 2 + (mu_old - mu) ** 2) / torch.exp(ls) ** 2 - 0.5).sum(-1).mean())


def _scores(policy, theta, obs, act) -> torch.Tensor:
    """H: (N, P) per-sample gradients of log pi, one autograd call per row."""
    rows = []
    for i in range(obs.shape[0]):
        leaves = [t.detach().requires_grad_(True) for t in theta]
        grads = torch.autograd.grad(_gaussian_logp(policy, leaves, obs[i:i + 1], act[i:i + 1]).sum(), leaves)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _unflatten(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(flat[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out


def test_update_matches_a_dense_restatement_of_the_reference(monkeypatch):
    """Two rollouts x two minibatches: every parameter update of the preset equals the dense
    float64 re-statement's to 1e-8 relative (float64 Cholesky vs LU on 32 x 32 systems: ~1e-13).
    The step size starts at 0.4 (lr_max 1.0) so that the KL rules disagree: the last minibatch's KL
    before its step (0.0078, in the band: keep) against the batch KL after the epochs (0.023: shrink)."""
    torch.manual_seed(0)
    config = resolve_config({"env": "hopper", "preset": "reference", "seed": 0}, sets=SETS)
    agent = Agent(config, gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gym.spaces.Box(-1.0, 1.0, (ACT_DIM,))).double()
    policy = agent.policy
    params = policy.policy_parameters()
    names = [n for n, _ in policy.named_parameters()]
    assert names[0] == "log_std" and len(names) == len(params)  # flat order: log_std, then the body's layers

    used = record_minibatches(monkeypatch, npg_module)
    updates: list[torch.Tensor] = []
    algo = NPG(agent, config, np.random.default_rng(0))
    real_apply = algo._apply

    def recorded_apply(step):
        before = torch.cat([p.detach().reshape(-1) for p in params])
        real_apply(step)
        updates.append(torch.cat([p.detach().reshape(-1) for p in params]) - before)

    monkeypatch.setattr(algo, "_apply", recorded_apply)

    gen = torch.Generator().manual_seed(1)
    theta = [p.detach().clone() for p in params]
    buf, lr, lam = None, config["npg"]["lr"], config["npg"]["damping"]
    expected: list[torch.Tensor] = []
    for batch in synthetic_batches(policy, gen, N_BATCH, OBS_DIM):
        obs, act, old_logp, adv_all = batch.obs, batch.actions, batch.log_probs, batch.advantages
        start = len(used)
        algo.update(batch, 0.0)
        theta_old = [t.clone() for t in theta]
        kl = float("nan")
        for idx in used[start:]:
            o, a = obs[idx], act[idx]
            n = o.shape[0]
            with torch.no_grad():
                ratio = torch.exp(_gaussian_logp(policy, theta, o, a) - old_logp[idx])
                kl = _gaussian_kl(policy, theta_old, theta, o)
            ratio = ratio.clamp(0.1, 10.0)
            adv = adv_all[idx] - adv_all[idx].mean()
            adv = adv / (adv.pow(2).mean().sqrt() + 1e-8)
            H = _scores(policy, theta, o, a)
            rhs = adv if buf is None else adv - H @ buf
            y = torch.linalg.solve(H @ H.T / n * ratio[None, :] + lam * torch.eye(n, dtype=torch.float64), rhs)
            grad = -(H.T @ (ratio * y)) / n
            grad = grad * min(1.0, 0.5 / (float(grad.norm()) + 1e-6))
            buf = grad if buf is None else 1e-6 * buf + grad
            flat = torch.cat([t.reshape(-1) for t in theta]) - lr * buf
            expected.append(flat - torch.cat([t.reshape(-1) for t in theta]))
            theta = _unflatten(flat, theta)
        if kl > 0.008 * 2:
            lr = max(lr / 1.5, 1e-4)
        elif kl < 0.008 / 2:
            lr = min(lr * 1.5, config["npg"]["lr_max"])
        assert algo.lr == pytest.approx(lr, rel=1e-12)
    assert len(updates) == len(expected) == 4
    for got, want in zip(updates, expected):
        assert float((got - want).norm() / want.norm()) <= 1e-8
    final = torch.cat([p.detach().reshape(-1) for p in params])
    assert float((final - torch.cat([t.reshape(-1) for t in theta])).norm()) <= 1e-8 * float(final.norm())


def _restated_cg(fvp, g, nsteps=10, residual_tol=1e-10):
    """utils/cg.py's conjugate_gradient, line for line."""
    x, r = torch.zeros_like(g), g.clone()
    p, rdotr = r.clone(), torch.dot(r, r)
    for _ in range(nsteps):
        z = fvp(p)
        alpha = rdotr / torch.dot(p, z)
        x += alpha * p
        r -= alpha * z
        new_rdotr = torch.dot(r, r)
        p = r + new_rdotr / rdotr * p
        rdotr = new_rdotr
        if rdotr < residual_tol:
            break
    return x


def _fvp_step(policy, theta, obs, act, old_logp, adv_raw) -> torch.Tensor:
    """train_detach.py's TrustRegion_ActorUpdate (:83-180) on the parameters ``theta``: the descent step written
    into the gradients (CG on the entropy-KL Hessian + 0.1 I, then step * clamp(0.5 / d^T (H + 0.1 I) d, max=1))."""
    leaves = [t.detach().requires_grad_(True) for t in theta]
    ratio = torch.exp(_gaussian_logp(policy, leaves, obs, act) - old_logp).clamp(0.1, 10.0)
    adv = adv_raw - adv_raw.mean()
    loss = (-ratio * adv).mean() / (adv.pow(2).mean().sqrt() + 1e-8)
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, leaves)])
    mu, log_std = _mean(policy, leaves, obs), leaves[0]
    mu_ref, ls_ref = mu.detach(), log_std.detach()
    ent_kl = (log_std - ls_ref + 0.5 * (torch.exp(ls_ref) ** 2 + (mu_ref - mu) ** 2) / torch.exp(log_std) ** 2 - 0.5).sum(-1).mean()
    kl_grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(ent_kl, leaves, create_graph=True)])

    def fvp(x):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(kl_grad.dot(x), leaves, retain_graph=True)]) + 0.1 * x

    step = _restated_cg(fvp, grad)
    quadratic = torch.dot(step, fvp(step))
    return (step * torch.clamp(0.5 / quadratic, max=1.0)).detach()


def _diag_step(policy, theta, obs, act, old_logp, adv_raw) -> torch.Tensor:
    """train_detach.py's diag_ActorUpdate (:342-379) on ``theta``: the loss gradient with detached clamped ratios
    over the diagonal of the *unweighted* scores' Fisher plus 0.1, then clip_grad_norm_ to 0.5."""
    leaves = [t.detach().requires_grad_(True) for t in theta]
    logp = _gaussian_logp(policy, leaves, obs, act)
    ratio = torch.exp(logp - old_logp).clamp(0.1, 10.0).detach()
    adv = adv_raw - adv_raw.mean()
    adv = adv / (adv.pow(2).mean().sqrt() + 1e-8)
    diag_fisher = torch.linalg.norm(_scores(policy, theta, obs, act), dim=0).pow(2) / obs.shape[0]
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad((-ratio * logp * adv).mean(), leaves)])
    step = grad / (diag_fisher + 0.1)
    return step * min(1.0, 0.5 / (float(step.norm()) + 1e-6))


def _with_stale_samples(batch):
    """The batch with every 5th sample's behaviour log-prob 3 lower and every 7th's 3 higher (from the 2nd on), as
    if another policy had drawn them: their ratios, about e^3 and e^-3, fall outside [0.1, 10] and are clamped
    from the first minibatch on, where the policy has not moved and the solve is as well conditioned as usual."""
    log_probs = batch.log_probs.clone()
    log_probs[::5] -= 3.0
    log_probs[1::7] += 3.0
    return dataclasses.replace(batch, log_probs=log_probs)


def _baseline_parity_gap(monkeypatch, solver, restated_step, mutate=None, stale=False, clamped=None) -> float:
    """Two rollouts x two minibatches of `--preset reference --solver SOLVER` against ``restated_step``: the
    largest relative difference of the parameters after a rollout or of the step size. ``stale``: some samples'
    ratios are clamped (:func:`_with_stale_samples`); ``clamped`` (a list) receives how many per minibatch."""
    torch.manual_seed(0)
    config = resolve_config({"env": "hopper", "preset": "reference", "solver": solver, "seed": 0}, sets=SETS)
    agent = Agent(config, gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gym.spaces.Box(-1.0, 1.0, (ACT_DIM,))).double()
    policy = agent.policy
    params = policy.policy_parameters()
    used = record_minibatches(monkeypatch, npg_module)
    algo = NPG(agent, config, np.random.default_rng(0))
    if mutate is not None:
        mutate(monkeypatch, algo)
    gen = torch.Generator().manual_seed(1)
    theta = [p.detach().clone() for p in params]
    buf, lr, gap = None, config["npg"]["lr"], 0.0
    for batch in synthetic_batches(policy, gen, N_BATCH, OBS_DIM):
        batch = _with_stale_samples(batch) if stale else batch
        obs, act, old_logp, adv_all = batch.obs, batch.actions, batch.log_probs, batch.advantages
        start = len(used)
        algo.update(batch, 0.0)
        theta_old = [t.clone() for t in theta]
        kl = float("nan")
        for idx in used[start:]:
            kl = _gaussian_kl(policy, theta_old, theta, obs[idx])
            if clamped is not None:
                ratio = torch.exp(_gaussian_logp(policy, theta, obs[idx], act[idx]) - old_logp[idx])
                clamped.append(int(((ratio < 0.1) | (ratio > 10.0)).sum()))
            step = restated_step(policy, theta, obs[idx], act[idx], old_logp[idx], adv_all[idx])
            buf = step if buf is None else 1e-6 * buf + step
            theta = _unflatten(torch.cat([t.reshape(-1) for t in theta]) - lr * buf, theta)
        if kl > 0.008 * 2:
            lr = max(lr / 1.5, 1e-4)
        elif kl < 0.008 / 2:
            lr = min(lr * 1.5, config["npg"]["lr_max"])
        got = torch.cat([p.detach().reshape(-1) for p in params])
        want = torch.cat([t.reshape(-1) for t in theta])
        gap = max(gap, float((got - want).norm() / want.norm()), abs(algo.lr - lr) / lr)
    return gap


def test_fvp_baseline_matches_a_dense_restatement_of_the_reference(monkeypatch):
    """`--preset reference --solver cg` is train_detach.py's fvp baseline: CG (10 steps) on the KL Hessian, the
    clip by d^T (H + 0.1 I) d without a square root, SGD with momentum 1e-6, the last minibatch's KL rule."""
    assert _baseline_parity_gap(monkeypatch, "cg", _fvp_step) <= 1e-8


@pytest.mark.parametrize("solver,restated", [("cg", _fvp_step), ("diagonal", _diag_step)], ids=["fvp", "diag"])
def test_the_baselines_treat_clamped_ratios_as_the_reference_does(monkeypatch, solver, restated):
    """fvp differentiates -mean(clamp(r) A) through the clamp, so a clamped sample adds nothing; diag weights
    each sample by its detached clamped ratio. Both hold where ratios are clamped."""
    clamped: list[int] = []
    assert _baseline_parity_gap(monkeypatch, solver, restated, stale=True, clamped=clamped) <= 1e-8
    assert min(clamped) > 0


def test_weighting_clamped_samples_fails_the_fvp_parity(monkeypatch):
    def weight(monkeypatch, algo):
        algo.cfg["clipped_ratio"] = "weight"

    assert _baseline_parity_gap(monkeypatch, "cg", _fvp_step, weight, stale=True) > 1e-5


def test_a_square_root_in_the_fvp_clip_fails_the_parity(monkeypatch):
    def with_sqrt(monkeypatch, algo):
        real = algo._step_norm
        monkeypatch.setattr(algo, "_step_norm", lambda *args: math.sqrt(real(*args)))

    assert _baseline_parity_gap(monkeypatch, "cg", _fvp_step, with_sqrt) > 1e-5


def test_diag_baseline_matches_a_dense_restatement_of_the_reference(monkeypatch):
    """`--preset reference --solver diagonal` is train_detach.py's diag baseline: the ratio-weighted gradient over
    the unweighted diagonal Fisher plus 0.1, the L2 clip to 0.5, SGD with momentum 1e-6, the KL rule."""
    assert _baseline_parity_gap(monkeypatch, "diagonal", _diag_step) <= 1e-8


@pytest.mark.parametrize("mutation", ["no clip", "weighted diagonal"])
def test_mutations_of_the_diag_baseline_fail_the_parity(monkeypatch, mutation):
    def mutate(monkeypatch, algo):
        if mutation == "no clip":
            monkeypatch.setattr(algo, "_clip_coefficient", lambda norm: 1.0)
        else:
            algo.solver.weighted = True

    assert _baseline_parity_gap(monkeypatch, "diagonal", _diag_step, mutate) > 1e-5


def test_preset_selects_the_fvp_baseline_for_cg_and_refuses_other_solvers():
    npg = resolve_config({"env": "hopper", "preset": "reference", "solver": "cg"})["npg"]
    assert npg["solver_options"] == {"iterations": 10, "tol": 1e-10, "tol_on": "rr", "curvature": "kl_hessian"}
    assert (npg["step_norm"], npg["rat_variant"], npg["momentum"], npg["kl_rule"]) == (
        "kl_quadratic", "corrected", 1e-6, "last_minibatch")
    kfac = resolve_config({"env": "hopper", "preset": "reference", "solver": "kfac"})["npg"]
    assert (kfac["kfac_variant"], kfac["lr"], kfac["lr_max"], kfac["step_norm"]) == ("reference", 0.01, 0.05, "l2")
    # what the parity tests override (step size, its cap, the 4 x 8 schedule) pinned to the reference's yaml files:
    # fvp_mlp.yaml / diag_mlp.yaml / kfac_mlp.yaml (lr, max_grad_norm 0.5, damping 0.1, 4 epochs x 8 minibatches,
    # ratio clamp [0.1, 10]) and train_detach.py:524-530's KL rule (target 0.008, floor 1e-4, cap 5e-2)
    for solver, lr, step_norm in (("cg", 0.05, "kl_quadratic"), ("diagonal", 0.05, "l2"), ("kfac", 0.01, "l2")):
        config = resolve_config({"env": "hopper", "preset": "reference", "solver": solver})
        npg = config["npg"]
        assert (npg["lr"], npg["lr_min"], npg["lr_max"], npg["target_kl"], npg["kl_adaptive"], npg["kl_rule"]) == (
            lr, 1e-4, 0.05, 0.008, True, "last_minibatch"), solver
        assert (npg["epochs"], npg["minibatches"], npg["max_step_norm"], npg["step_norm"]) == (4, 8, 0.5, step_norm), solver
        assert solver == "kfac" or npg["damping"] == 0.1, solver  # K-FAC's own damping (0.001) is its optimiser's
        assert (npg["ratio_clip"], npg["advantage_norm"], config["num_envs"], config["num_steps"]) == (
            [0.1, 10.0], True, 32, 256), solver
    diag = resolve_config({"env": "hopper", "preset": "reference", "solver": "diagonal"})["npg"]
    assert (diag["momentum"], diag["rat_variant"], diag["solver_options"].get("weighted")) == (1e-6, "corrected", False)
    with pytest.raises(RatbenchError, match="--solver kaczmarz \\(RAT\\), cg, diagonal or kfac"):
        resolve_config({"env": "hopper", "preset": "reference", "solver": "woodbury"})
    with pytest.raises(RatbenchError, match="K-FAC optimiser; use it with --solver kfac"):
        resolve_config({"env": "hopper", "solver": "woodbury"}, sets=["npg.kfac_variant=reference"])


KFAC_SETS = ["model.hidden=[16, 16]", "npg.epochs=1", "npg.minibatches=6", "num_envs=2", f"num_steps={N_BATCH // 2}"]


def _running(m, factor, step, decay):
    """kfac_utils.py:33-37's update_running_stat, from the identity at step 0 (kfac.py:60-63)."""
    m = torch.eye(factor.shape[0], dtype=factor.dtype) if step == 0 else m
    return (m * decay / (1 - decay) + factor) * (1 - decay)


class _RestatedKFAC:
    """kfac/kfac.py + train_detach.py's KFAC_ActorUpdate (:392-463) on a flat list ``theta`` = [log_std, W1, b1,
    W2, b2, W3, b3] of a ReLU MLP mean (the preset's), written from the reference without ratbench's optimiser."""

    def __init__(self, theta, lr, decay=0.95):
        self.theta, self.lr, self.decay = theta, lr, decay
        self.m_aa, self.m_gg, self.eigen, self.buf, self.step = [None] * 3, [None] * 3, [None] * 3, None, 0

    def _forward(self, leaves, obs):
        inputs, outputs, h = [], [], obs
        for i in range(3):
            inputs.append(h)
            z = h @ leaves[1 + 2 * i].T + leaves[2 + 2 * i]
            z.retain_grad()
            outputs.append(z)
            h = torch.relu(z) if i < 2 else z
        return h, inputs, outputs

    def update(self, obs, act, old_logp, adv_raw):
        n, decay = obs.shape[0], self.decay
        leaves = [t.detach().requires_grad_(True) for t in self.theta]
        mean, inputs, outputs = self._forward(leaves, obs)
        for i, a in enumerate(inputs):  # every forward with gradients: A (kfac.py:57-63)
            a1 = torch.cat([a.detach(), torch.ones(n, 1, dtype=a.dtype)], 1)
            self.m_aa[i] = _running(self.m_aa[i], a1.T @ (a1 / n), self.step, decay)
        log_std = leaves[0]
        logp = (-((act - mean) ** 2) / (2 * torch.exp(log_std) ** 2) - log_std - math.log(math.sqrt(2 * math.pi))).sum(-1)
        grads = [torch.zeros_like(t) for t in leaves]
        if self.step % 10 == 0:  # the Fisher backward (:421-428), whose gradients stay in p.grad
            fisher = torch.autograd.grad(-logp.mean(), leaves + outputs, retain_graph=True)
            grads = [g.clone() for g in fisher[:len(leaves)]]
            for i, g in enumerate(fisher[len(leaves):]):
                self.m_gg[i] = _running(self.m_gg[i], g.T @ (g * n), self.step, decay)
        ratio = torch.exp(logp - old_logp).clamp(0.1, 10.0)
        adv = adv_raw - adv_raw.mean()
        loss = (-ratio * adv).mean() / (adv.pow(2).mean().sqrt() + 1e-8)
        grads = [g + h for g, h in zip(grads, torch.autograd.grad(loss, leaves))]
        norm = float(torch.cat([g.reshape(-1) for g in grads]).norm())
        grads = [g * min(1.0, 0.5 / (norm + 1e-6)) for g in grads]
        vg_sum, updates = 0.0, []
        for i in range(3):
            if self.step % 10 == 0:
                d_a, q_a = torch.linalg.eigh(self.m_aa[i])
                d_g, q_g = torch.linalg.eigh(self.m_gg[i])
                self.eigen[i] = (d_a * (d_a > 1e-10), q_a, d_g * (d_g > 1e-10), q_g)
            d_a, q_a, d_g, q_g = self.eigen[i]
            g = torch.cat([grads[1 + 2 * i], grads[2 + 2 * i][:, None]], 1)
            v = q_g @ ((q_g.T @ g @ q_a) / (d_g[:, None] * d_a[None, :] + 0.001)) @ q_a.T
            vg_sum += float((v * g * self.lr**2).sum())
            updates.append(v)
        nu = min(1.0, math.sqrt(0.001 / vg_sum))
        for i, v in enumerate(updates):
            grads[1 + 2 * i], grads[2 + 2 * i] = v[:, :-1] * nu, v[:, -1] * nu
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.buf = flat if self.buf is None else 0.9 * self.buf + flat
        self.theta = _unflatten(torch.cat([t.reshape(-1) for t in self.theta]) - self.lr * self.buf, self.theta)
        self.step += 1


def _kfac_parity_gap(monkeypatch, mutate=None) -> float:
    torch.manual_seed(0)
    config = resolve_config({"env": "hopper", "preset": "reference", "solver": "kfac", "seed": 0}, sets=KFAC_SETS)
    agent = Agent(config, gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gym.spaces.Box(-1.0, 1.0, (ACT_DIM,))).double()
    policy = agent.policy
    params = policy.policy_parameters()
    used = record_minibatches(monkeypatch, kfac_module)
    algo = make_algorithm(config, agent, np.random.default_rng(0))
    if mutate is not None:
        mutate(algo)
    restated = _RestatedKFAC([p.detach().clone() for p in params], config["npg"]["lr"])
    gen, gap = torch.Generator().manual_seed(1), 0.0
    for batch in synthetic_batches(policy, gen, N_BATCH, OBS_DIM):
        obs, act, old_logp, adv_all = batch.obs, batch.actions, batch.log_probs, batch.advantages
        start = len(used)
        algo.update(batch, 0.0)
        theta_old = [t.clone() for t in restated.theta]
        kl = float("nan")
        for idx in used[start:]:
            with torch.no_grad():  # functional calls of the policy's own modules: no gradients, so its hooks keep out
                kl = _gaussian_kl(policy, theta_old, restated.theta, obs[idx])
            restated.update(obs[idx], act[idx], old_logp[idx], adv_all[idx])
        if kl > 0.008 * 2:
            restated.lr = max(restated.lr / 1.5, 1e-4)
        elif kl < 0.008 / 2:
            restated.lr = min(restated.lr * 1.5, 5e-2)  # hard-coded cap (train_detach.py:530)
        got = torch.cat([p.detach().reshape(-1) for p in params])
        want = torch.cat([t.reshape(-1) for t in restated.theta])
        gap = max(gap, float((got - want).norm() / want.norm()), abs(algo.lr - restated.lr) / restated.lr)
    return gap


def test_kfac_baseline_matches_a_dense_restatement_of_the_reference(monkeypatch):
    """`--preset reference --solver kfac` is train_detach.py's K-FAC baseline with kfac/kfac.py's optimiser over 12
    optimiser steps (two factor inverses, at steps 0 and 10): running factors from the identity, the Fisher
    backward's gradient left in p.grad, the clip, the damped eigen-preconditioner, the KL clip, momentum 0.9."""
    assert _kfac_parity_gap(monkeypatch) <= 1e-8


def test_a_different_statistics_decay_fails_the_kfac_parity(monkeypatch):
    def mutate(algo):
        algo.optimizer.stat_decay = 0.9

    assert _kfac_parity_gap(monkeypatch, mutate) > 1e-5
