"""`--preset reference --arch shared` against a dense float64 re-statement of train_shared.py's RAT_Update.

The re-statement below is written from agent-lab/ICML2026-RAT train_shared.py (RAT_Update :73-202, the epoch
loop and KL rule :449-467, SGD with momentum 1e-6 :50-51), independently of ratbench's curvature layer and
solvers: per-sample gradients H of ``log pi_i - (V_i - (V_i + eps_i).detach())^2`` by plain autograd, one row at
a time, over every parameter; ``K = H H^T / N``; ``[y_pi, y_v] = solve(K diag(r) + lambda I, [A - H g_k,
1 - H g_k])`` with g_k the SGD momentum buffer; the loss ``mean(-r y_pi) + vf_coef mean((V - R)^2 y_v)`` with
the clamped ratio's gradient; ``clip_grad_norm_`` to 0.5; SGD; and the step size moved by the exact KL of the
last minibatch after its step, target 0.01. The same eps and minibatches are fed to both (recorded from
ratbench's run). PopArt is off here (value_norm none): with it, returns and advantages are affinely
normalised first (train_shared.py:433-437), which the per-minibatch advantage normalisation undoes up to its
1e-8 and which tests/ratbench/training/test_normalize.py covers.

Each mutation (g_k dropped, one right-hand side, the value fitted by Adam, the KL read before the step)
changes the parameters by far more than the 1e-8 the faithful update is held to.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

import ratbench.training.algorithms.joint as joint_module
import ratbench.training.algorithms.npg as npg_module
from ratbench.errors import RatbenchError
from ratbench.training import resolve_config
from ratbench.training.agent import Agent
from ratbench.training.algorithms import JointNPG, make_algorithm
from tests.ratbench.training.helpers import record_minibatches, record_value_noise, synthetic_batches

OBS_DIM, ACT_DIM, N_BATCH = 5, 2, 64
SETS = ["npg.lr=2.5", "npg.lr_max=2.5", "model.hidden=[16, 16]", "npg.epochs=1", "npg.minibatches=2", "num_envs=2",
        f"num_steps={N_BATCH // 2}", "value_norm=none"]
RTOL = 1e-8  # float64 Cholesky (ratbench) against LU (the re-statement) on 32 x 32 systems: ~1e-13


def test_preset_with_shared_arch_selects_the_joint_update():
    config = resolve_config({"env": "humanoid", "preset": "reference", "arch": "shared"})
    npg = config["npg"]
    assert (npg["value_update"], npg["target_kl"], npg["kl_rule"], npg["vf_coef"]) == (
        "joint", 0.01, "last_minibatch_after_step", 1.0)
    assert (npg["rat_variant"], npg["momentum"], npg["step_norm"], npg["max_step_norm"], npg["lr"]) == (
        "original", 1e-6, "l2", 0.5, 0.05)
    assert resolve_config({"env": "humanoid", "preset": "reference"})["npg"]["value_update"] == "critic"


@pytest.mark.parametrize("explicit, sets, message", [
    ({"arch": "separate"}, ["npg.value_update=joint"], "use it with --arch shared"),
    ({"arch": "shared", "solver": "cg"}, ["npg.value_update=joint"], "runs with the solvers"),
    ({"algo": "ppo", "arch": "shared"}, ["npg.value_update=joint"], "ppo trains its value function"),
])
def test_bad_combinations_get_one_sentence(explicit, sets, message):
    with pytest.raises(RatbenchError, match=message):
        resolve_config({"env": "hopper", **explicit}, sets=sets)


def _twin_params(model) -> list[torch.nn.Parameter]:
    """The flat order of the joint update: the policy's parameters, then the value head's."""
    return model.policy.policy_parameters() + model.critic_only_parameters()


def _likelihood_rows(model, obs, act, eps) -> torch.Tensor:
    """H (N, P): per-sample gradients of the reference's compute_logp (train_shared.py:114-132), one row at a time."""
    params, rows = _twin_params(model), []
    for i in range(obs.shape[0]):
        o, a = obs[i:i + 1], act[i:i + 1]
        mu = model.policy.body(o)
        log_std = model.policy.log_std
        var = torch.exp(log_std) ** 2
        pi_logp = (-((a - mu) ** 2) / (2 * var) - log_std - 0.5 * np.log(2 * np.pi)).sum()
        vals = model.value(o)
        vf_logp = -(vals - (vals + eps[i]).detach()).pow(2).sum()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(pi_logp + vf_logp, params)]))
    return torch.stack(rows)


def _kl(old, new, obs) -> float:
    """The reference's _real_kl (train_shared.py:196): exact Gaussian KL(old || new), summed over actions."""
    mu_old, mu = old.policy.body(obs), new.policy.body(obs)
    ls_old, ls = old.policy.log_std, new.policy.log_std
    return float((ls - ls_old + 0.5 * (torch.exp(ls_old) ** 2 + (mu_old - mu) ** 2) / torch.exp(ls) ** 2 - 0.5).sum(-1).mean())


def _restated_rollout(model, buf, lr, cfg, batch, used, noises, diagonal=False):
    """One rollout of train_shared.py's update on ``model`` (modified in place); returns (buf, lr)."""
    params = _twin_params(model)
    old = copy.deepcopy(model)
    lam, kl = cfg["damping"], float("nan")
    for idx, eps in zip(used, noises):
        obs, act, ret = batch.obs[idx], batch.actions[idx], batch.returns[idx]
        n = obs.shape[0]
        adv = batch.advantages[idx] - batch.advantages[idx].mean()
        adv = adv / (adv.pow(2).mean().sqrt() + 1e-8)
        logp = model.policy.distribution(obs).log_prob(act)
        ratio = torch.exp(logp - batch.log_probs[idx]).clamp(0.1, 10.0)
        H = _likelihood_rows(model, obs, act, eps).detach()
        if diagonal:  # diag_Update (:283-303): y = (A, 1), the gradient over mean(h^2) + lambda, no g_k
            y = torch.stack([adv, torch.ones_like(adv)], dim=1)
        else:
            rhs = torch.stack([adv, torch.ones_like(adv)], dim=1)
            if buf is not None:
                rhs = rhs - (H @ buf)[:, None]
            system = H @ H.T / n @ torch.diag(ratio.detach()) + lam * torch.eye(n, dtype=torch.float64)
            y = torch.linalg.solve(system, rhs)
        loss = (-ratio * y[:, 0]).mean() + cfg["vf_coef"] * ((model.value(obs) - ret).pow(2) * y[:, 1]).mean()
        grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])
        if diagonal:
            grad = grad / (torch.linalg.norm(H, dim=0).pow(2) / n + lam)
        grad = grad * min(1.0, 0.5 / (float(grad.norm()) + 1e-6))
        buf = grad if buf is None else 1e-6 * buf + grad
        with torch.no_grad():
            flat = torch.cat([p.reshape(-1) for p in params]) - lr * buf
            at = 0
            for p in params:
                p.copy_(flat[at:at + p.numel()].view_as(p))
                at += p.numel()
            kl = _kl(old, model, obs)
    if kl > 0.01 * 2:
        lr = max(lr / 1.5, 1e-4)
    elif kl < 0.01 / 2:
        lr = min(lr * 1.5, cfg["lr"])  # the config's lr is the cap (train_shared.py:467)
    return buf, lr


def _parity_gap(monkeypatch, sets=(), mutate=None, solver="kaczmarz") -> float:
    """max over the two rollouts of ||theta_ratbench - theta_restated|| / ||theta|| and of the step sizes'
    relative difference, with the restatement faithful to train_shared.py and ratbench configured by ``sets``
    and modified by ``mutate(algo)``. At lr 2.5 (the cap, as the config's lr is in the reference) the KL rules
    disagree after the first rollout: the last minibatch's KL after its step is 0.0038 (in the band: keep 2.5),
    before it 0.0213 (above 0.02: shrink to 1.67)."""
    torch.manual_seed(0)
    config = resolve_config({"env": "hopper", "preset": "reference", "arch": "shared", "seed": 0, "solver": solver},
                            sets=[*SETS, *sets])
    agent = Agent(config, gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gym.spaces.Box(-1.0, 1.0, (ACT_DIM,))).double()
    twin = copy.deepcopy(agent.model)
    used = record_minibatches(monkeypatch, joint_module, npg_module)  # npg: the Adam-critic mutation's steps
    noises = record_value_noise(monkeypatch, joint_module)
    algo = make_algorithm(config, agent, np.random.default_rng(0))
    if mutate is not None:
        mutate(monkeypatch, algo)
    buf, lr, gap = None, 2.5, 0.0
    for batch in synthetic_batches(agent.policy, torch.Generator().manual_seed(1), N_BATCH, OBS_DIM, noisy_returns=True):
        start = len(used)
        algo.update(batch, 0.0)
        if not noises[start:]:  # the value fitted by Adam draws no value noise: replay with fresh draws
            noises.extend(torch.randn(len(i), dtype=torch.float64) for i in used[start:])
        buf, lr = _restated_rollout(twin, buf, lr, {**config["npg"], "vf_coef": 1.0}, batch, used[start:], noises[start:],
                                    diagonal=solver == "diagonal")
        got = torch.cat([p.detach().reshape(-1) for p in _twin_params(agent.model)])
        want = torch.cat([p.detach().reshape(-1) for p in _twin_params(twin)])
        gap = max(gap, float((got - want).norm() / want.norm()), abs(algo.lr - lr) / lr)
    return gap


def test_joint_update_matches_a_dense_restatement_of_train_shared(monkeypatch):
    assert _parity_gap(monkeypatch) <= RTOL


def test_joint_diagonal_twin_matches_a_dense_restatement_of_diag_update(monkeypatch):
    """`--solver diagonal` with the joint update is train_shared.py's diag_Update (:204-325): the gradient of the
    loss with y = (A, 1) divided by the mean squared joint scores (value term included, unweighted) plus 0.1."""
    assert _parity_gap(monkeypatch, solver="diagonal") <= RTOL


def _drop_carried(monkeypatch, algo):
    monkeypatch.setattr(joint_module, "momentum_direction", lambda optimizer, params: None)


def _one_right_hand_side(monkeypatch, algo):
    real = algo._transformed

    def only_policy(*args):
        y_pi, y_v, preconditioner, stats = real(*args)
        return y_pi, torch.ones_like(y_v), preconditioner, stats

    monkeypatch.setattr(algo, "_transformed", only_policy)


@pytest.mark.parametrize("sets, mutate", [
    ((), _drop_carried),
    ((), _one_right_hand_side),
    (("npg.value_update=critic",), None),
    (("npg.kl_rule=last_minibatch",), None),
], ids=["g_k dropped", "one right-hand side", "value fitted by Adam", "KL before the step"])
def test_mutations_of_the_update_fail_the_parity(monkeypatch, sets, mutate):
    assert _parity_gap(monkeypatch, sets, mutate) > 1e3 * RTOL


def test_joint_update_is_the_algorithm_and_resumes_its_optimizer():
    config = resolve_config({"env": "hopper", "preset": "reference", "arch": "shared"}, sets=SETS)
    agent = Agent(config, gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gym.spaces.Box(-1.0, 1.0, (ACT_DIM,))).double()
    algo = make_algorithm(config, agent, np.random.default_rng(0))
    assert isinstance(algo, JointNPG)
    policy_params = agent.policy.policy_parameters()
    assert [id(p) for p in algo.params[:len(policy_params)]] == [id(p) for p in policy_params]
    assert sorted(map(id, algo.params)) == sorted(map(id, agent.model.parameters()))  # the value head joins the solve
    batch = next(synthetic_batches(agent.policy, torch.Generator().manual_seed(2), N_BATCH, OBS_DIM, noisy_returns=True))
    stats = algo.update(batch, 0.0)
    assert np.isfinite(stats["kl_last_minibatch"]) and stats["lr"] == pytest.approx(2.5)
    clone = make_algorithm(config, copy.deepcopy(agent), np.random.default_rng(0))
    clone.load_state_dict(algo.state_dict())
    assert clone.lr == algo.lr and len(clone.optimizer.state) == len(algo.optimizer.state)
