"""TRPO's step against dense references: the KL Hessian, the CG direction, the trust region and the line search."""

import numpy as np
import pytest
import torch
from scipy import linalg
from torch.distributions import kl_divergence

from ratbench.errors import RatbenchError
from ratbench.policies import categorical_mlp, gaussian_mlp
from ratbench.training import resolve_config
from ratbench.training.algorithms.trpo import TrustRegionStep, standardise

SETTINGS = dict(cg_steps=200, damping=0.1, shrink=0.8, max_backtracks=10)


def _problem(kind: str, seed: int, n: int = 64):
    """A small float64 policy, a batch of its own actions and standardised random advantages."""
    torch.manual_seed(seed)
    if kind == "gaussian":
        policy = gaussian_mlp(3, 2, hidden=(6,)).double()
    else:
        policy = categorical_mlp(3, 4, hidden=(6,)).double()
    obs = torch.randn(n, 3, dtype=torch.float64)
    with torch.no_grad():
        actions = policy.act(obs)
        log_probs = policy.log_prob(obs, actions)
    advantages = standardise(torch.randn(n, dtype=torch.float64) + actions.reshape(n, -1)[:, 0].double())
    return policy, obs, actions, log_probs, advantages


def _flat_params(policy):
    return torch.cat([p.detach().reshape(-1) for p in policy.policy_parameters()]).clone()


def _dense_kl_hessian(step: TrustRegionStep) -> np.ndarray:
    """The Hessian of the mean KL(new || old) at the rollout policy, by torch.autograd.functional.hessian
    on the flat parameter vector (an independent route from TRPO's double back-propagation)."""
    names = [name for name, _ in step.policy.named_parameters()]
    shapes = [param.shape for _, param in step.policy.named_parameters()]

    class Distribution(torch.nn.Module):  # functional_call needs a forward: the policy's distribution
        def __init__(self):
            super().__init__()
            self.policy = step.policy

        def forward(self, obs):
            return self.policy.distribution(obs)

    def kl_of(flat: torch.Tensor) -> torch.Tensor:
        tensors, offset = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            tensors[f"policy.{name}"] = flat[offset:offset + size].view(shape)
            offset += size
        new = torch.func.functional_call(Distribution(), tensors, (step.obs,))
        return kl_divergence(new, step.old).mean()

    return torch.autograd.functional.hessian(kl_of, _flat_params(step.policy)).numpy()


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_the_direction_is_the_dense_damped_kl_hessian_solve(kind):
    policy, obs, actions, log_probs, advantages = _problem(kind, 0)
    step = TrustRegionStep(policy, obs, actions, log_probs, advantages)
    hessian = _dense_kl_hessian(step)
    g = torch.autograd.grad(step.surrogate(), step.params)
    g = torch.cat([x.reshape(-1) for x in g]).numpy()
    expected = linalg.solve(hessian + 0.1 * np.eye(len(g)), g, assume_a="pos")
    start = _flat_params(policy)
    done = step.apply(target_kl=0.01, **SETTINGS)
    np.testing.assert_allclose(done["direction"].numpy(), expected, rtol=1e-6, atol=1e-9)
    # the full step's quadratic model spends exactly the KL budget: beta^2 s^T (H + damping I) s / 2 = target
    s = done["direction"].numpy()
    assert 0.5 * done["full_step"] ** 2 * s @ (hessian + 0.1 * np.eye(len(s))) @ s == pytest.approx(0.01, rel=1e-8)
    if done["accepted"]:
        np.testing.assert_allclose(_flat_params(policy).numpy(), start.numpy() + done["step_size"] * s, rtol=1e-12)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("seed", range(6))
def test_an_accepted_step_keeps_the_exact_kl_inside_and_improves_the_surrogate(kind, seed):
    policy, obs, actions, log_probs, advantages = _problem(kind, seed)
    step = TrustRegionStep(policy, obs, actions, log_probs, advantages)
    old = step.old
    before = float(step.surrogate().detach())
    done = step.apply(target_kl=0.01, **SETTINGS)
    assert done["accepted"]  # a small, well-posed problem: some shrink of the CG step improves
    with torch.no_grad():
        new = policy.distribution(obs)
        kl = float(torch.distributions.kl_divergence(new, old).mean())
        after = float((advantages * torch.exp(new.log_prob(actions) - log_probs)).mean())
    assert kl <= 0.01 * (1 + 1e-9) and kl == pytest.approx(done["kl"], rel=1e-9)
    assert after > before and after - before == pytest.approx(done["improvement"], rel=1e-9)


def test_a_full_step_outside_the_region_is_shrunk():
    """Light damping (1e-3): the damped quadratic model no longer overestimates the exact KL, the full step
    leaves the region, and the line search shrinks it until it is inside."""
    policy, obs, actions, log_probs, advantages = _problem("gaussian", 0)
    start = _flat_params(policy)
    step = TrustRegionStep(policy, obs, actions, log_probs, advantages)
    done = step.apply(target_kl=0.01, cg_steps=200, damping=1e-3, shrink=0.8, max_backtracks=10)
    assert done["accepted"] and done["backtracks"] >= 1 and done["kl"] < 0.01
    assert done["step_size"] == pytest.approx(done["full_step"] * 0.8 ** done["backtracks"])
    step.set_params(start + done["full_step"] * done["direction"])
    with torch.no_grad():
        assert float(step.kl()) >= 0.01 or float(step.surrogate()) <= done["objective"]


def test_a_zero_gradient_takes_no_step():
    policy, obs, actions, log_probs, _ = _problem("gaussian", 2)
    start = _flat_params(policy)
    flat = torch.zeros(obs.shape[0], dtype=torch.float64)  # the surrogate is 0 everywhere: nothing improves
    done = TrustRegionStep(policy, obs, actions, log_probs, flat).apply(target_kl=0.01, **SETTINGS)
    assert not done["accepted"] and done["step_size"] == 0.0 and torch.equal(_flat_params(policy), start)


def test_a_step_that_cannot_improve_is_rejected_and_leaves_the_policy():
    """A nonzero gradient, but every tried step scores below the start (the surrogate is lowered by 1 after its
    first evaluation, far more than a step inside the region gains): the line search tries all its steps, accepts
    none, and restores the parameters."""
    policy, obs, actions, log_probs, advantages = _problem("gaussian", 2)
    start = _flat_params(policy)
    step = TrustRegionStep(policy, obs, actions, log_probs, advantages)
    real, calls = step.surrogate, []

    def lowered():
        calls.append(None)
        return real() if len(calls) == 1 else real() - 1.0

    step.surrogate = lowered
    done = step.apply(target_kl=0.01, **SETTINGS)
    assert done["full_step"] > 0 and len(calls) == 1 + SETTINGS["max_backtracks"]
    assert not done["accepted"] and done["step_size"] == 0.0 and torch.equal(_flat_params(policy), start)


def test_trpo_refuses_a_shared_network():
    with pytest.raises(RatbenchError, match="out of the trust region"):
        resolve_config({"env": "hopper", "algo": "trpo", "arch": "shared"})


def test_when_every_tried_step_leaves_the_region_none_is_taken():
    """Almost no damping on a rank-deficient Fisher: CG's direction is huge along directions the batch does
    not see, and even 0.8^9 of the full step leaves the region, so the policy stays."""
    policy, obs, actions, log_probs, advantages = _problem("gaussian", 0)
    start = _flat_params(policy)
    step = TrustRegionStep(policy, obs, actions, log_probs, advantages)
    done = step.apply(target_kl=0.01, cg_steps=200, damping=1e-6, shrink=0.8, max_backtracks=10)
    assert not done["accepted"] and done["backtracks"] == 10 and torch.equal(_flat_params(policy), start)
