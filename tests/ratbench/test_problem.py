"""NPGProblem: its conventions (scaled rows, right-hand side, y = u / sqrt(w)) and its refusals.

Every user error must be a RatbenchError whose one sentence names what is
wrong; the tests match on those key words.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from torch import nn

from ratbench import NPGProblem, RatbenchError
from ratbench.policies import CategoricalPolicy, GaussianPolicy, categorical_mlp, gaussian_mlp, mlp
from tests.strategies import problems, property_settings

N = 6


def _gaussian():
    torch.manual_seed(0)
    policy = gaussian_mlp(3, 2, hidden=(4,)).double()
    obs = torch.randn(N, 3, dtype=torch.float64)
    return policy, obs, policy.act(obs).detach(), torch.randn(N, dtype=torch.float64)


def _categorical():
    torch.manual_seed(0)
    policy = categorical_mlp(3, 4, hidden=(4,)).double()
    obs = torch.randn(N, 3, dtype=torch.float64)
    return policy, obs, policy.act(obs), torch.randn(N, dtype=torch.float64)


@property_settings(20)
@given(problems())
def test_conventions(problem):
    """b = sqrt(w) A, y = u / sqrt(w), P and dtype from problem.params; advantages used as given."""
    w = torch.ones(problem.n, dtype=torch.float64) if problem.weights is None else problem.weights
    assert torch.equal(problem.sqrt_weights(), w.sqrt())
    assert torch.allclose(problem.rhs(), w.sqrt() * problem.advantages, rtol=0, atol=0)
    u = torch.randn(problem.n, dtype=torch.float64)
    assert torch.allclose(problem.to_transformed_advantage(u) * w.sqrt(), u, rtol=4e-16, atol=0)
    assert problem.n == problem.obs.shape[0]
    assert problem.num_params == sum(p.numel() for p in problem.params)
    assert problem.dtype == torch.float64
    assert all(p.requires_grad for p in problem.params)


def test_default_parameters_of_a_plain_module_with_log_prob():
    """Any module with log_prob works; its trainable parameters are the default params."""

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.mean = nn.Linear(3, 1)
            self.frozen = nn.Parameter(torch.zeros(1), requires_grad=False)

        def log_prob(self, obs, actions):
            return -0.5 * (actions[:, 0] - self.mean(obs)[:, 0]) ** 2

    policy = Custom()
    problem = NPGProblem(policy, torch.randn(N, 3), torch.randn(N, 1), torch.randn(N), 0.5)
    assert problem.params == [policy.mean.weight, policy.mean.bias]
    assert problem.damping == 0.5 and isinstance(problem.damping, float)


@pytest.mark.parametrize("damping", [0, -1.0, float("nan"), float("inf"), -float("inf"), "abc", None])
def test_rejects_bad_damping(damping):
    policy, obs, actions, adv = _gaussian()
    with pytest.raises(RatbenchError, match=r"damping must be (positive|a positive number)"):
        NPGProblem(policy, obs, actions, adv, damping)


def test_accepts_numeric_damping_types():
    policy, obs, actions, adv = _gaussian()
    for damping in (1, 1e-4, "0.1", torch.tensor(0.1)):
        assert NPGProblem(policy, obs, actions, adv, damping).damping == pytest.approx(float(damping))


def _bad(what: str):
    """(policy, obs, actions, advantages, weights, message) with one mistake ``what``."""
    policy, obs, actions, adv = _gaussian()
    good_w = torch.ones(N, dtype=torch.float64)
    nan = float("nan")
    cases = {
        "empty batch": (obs[:0], actions[:0], adv[:0], None, r"batch is empty"),
        "action rows": (obs, actions[:-1], adv, None, r"actions have 5 rows but obs has 6"),
        "action width": (obs, torch.zeros(N, 3, dtype=torch.float64), adv, None, r"actions have shape \(6, 3\).*expects \(6, 2\)"),
        "broadcastable actions": (obs, torch.zeros(N, 1, dtype=torch.float64), adv, None, r"actions have shape \(6, 1\).*expects \(6, 2\)"),
        "flat actions": (obs, torch.zeros(N, dtype=torch.float64), adv, None, r"actions have shape \(6,\).*expects \(6, 2\)"),
        "advantage length": (obs, actions, adv[:-1], None, r"advantages must have shape \(6,\).*got \(5,\)"),
        "advantage cube": (obs, actions, adv[:, None, None], None, r"advantages must have shape \(6,\) or \(6, k\).*got \(6, 1, 1\)"),
        "advantage rows": (obs, actions, adv[:-1, None].repeat(1, 2), None, r"advantages must have shape.*got \(5, 2\)"),
        "weight length": (obs, actions, adv, good_w[:-1], r"weights must have shape \(6,\).*got \(5,\)"),
        "zero weight": (obs, actions, adv, torch.tensor([1, 1, 0, 1, 1, 1.0]), r"weights must be finite and strictly positive"),
        "negative weight": (obs, actions, adv, -good_w, r"weights must be finite and strictly positive"),
        "nan weight": (obs, actions, adv, torch.tensor([1, nan, 1, 1, 1, 1.0]), r"weights must be finite and strictly positive"),
        "inf weight": (obs, actions, adv, torch.tensor([1, math.inf, 1, 1, 1, 1.0]), r"weights must be finite and strictly positive"),
        "nan obs": (obs.index_fill(0, torch.tensor([2]), nan), actions, adv, None, r"obs contain NaN or inf"),
        "inf obs": (obs.index_fill(0, torch.tensor([0]), math.inf), actions, adv, None, r"obs contain NaN or inf"),
        "nan actions": (obs, actions.index_fill(0, torch.tensor([1]), nan), adv, None, r"actions contain NaN or inf"),
        "inf advantages": (obs, actions, adv.index_fill(0, torch.tensor([3]), -math.inf), None, r"advantages contain NaN or inf"),
        "nan advantages": (obs, actions, adv.index_fill(0, torch.tensor([3]), nan), None, r"advantages contain NaN or inf"),
    }
    obs_, actions_, adv_, weights, message = cases[what]
    return policy, obs_, actions_, adv_, weights, message


BAD = [
    "empty batch", "action rows", "action width", "broadcastable actions", "flat actions",
    "advantage length", "advantage cube", "advantage rows", "weight length", "zero weight", "negative weight",
    "nan weight", "inf weight", "nan obs", "inf obs", "nan actions", "inf advantages", "nan advantages",
]  # fmt: skip


@pytest.mark.parametrize("what", BAD)
def test_rejects_bad_batch(what):
    policy, obs, actions, adv, weights, message = _bad(what)
    with pytest.raises(RatbenchError, match=message):
        NPGProblem(policy, obs, actions, adv, 0.1, weights=weights)


@pytest.mark.parametrize("actions", [[0, 1, 2, 4, 1, 0], [0, -1, 2, 3, 1, 0], [0.5, 1, 2, 3, 1, 0]])
def test_rejects_categorical_actions_outside_support(actions):
    policy, obs, _, adv = _categorical()
    with pytest.raises(RatbenchError, match=r"actions lie outside the support"):
        NPGProblem(policy, obs, torch.tensor(actions), adv, 0.1)


def test_rejects_categorical_actions_of_wrong_shape():
    policy, obs, actions, adv = _categorical()
    with pytest.raises(RatbenchError, match=r"actions have shape \(6, 1\).*expects \(6,\)"):
        NPGProblem(policy, obs, actions[:, None], adv, 0.1)


def test_rejects_policy_without_log_prob_or_parameters():
    obs, adv = torch.randn(N, 3), torch.randn(N)
    with pytest.raises(RatbenchError, match=r"no log_prob\(obs, actions\) method"):
        NPGProblem(nn.Linear(3, 1), obs, torch.randn(N, 1), adv, 0.1)
    frozen = GaussianPolicy(mlp([3, 2]), 2).requires_grad_(False)
    with pytest.raises(RatbenchError, match=r"no trainable parameters"):
        NPGProblem(frozen, obs, torch.randn(N, 2), adv, 0.1)


def test_categorical_policy_with_integer_actions_is_accepted():
    policy, obs, actions, adv = _categorical()
    problem = NPGProblem(policy, obs, actions, adv, 0.1)
    assert problem.actions.dtype == torch.int64 and isinstance(policy, CategoricalPolicy)
