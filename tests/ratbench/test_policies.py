"""Policies: log-probabilities against closed forms, parameter bookkeeping, and the
analytic linear-Gaussian scores that other tests use as an autograd-free reference.

Closed-form log-densities are the same float64 expressions evaluated in
another order, so they agree to a few ulps of the log-density's terms; we allow
1e-12 relative to the largest term.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from ratbench.actor_critic import ActorCritic
from ratbench.per_sample import per_sample_grads
from ratbench.policies import CategoricalPolicy, GaussianPolicy, StateGaussianPolicy, categorical_mlp, gaussian_mlp, mlp
from tests.dense import linear_gaussian_scores, rel_err, sqrt_weights
from tests.strategies import linear_gaussian_problems, property_settings

dims = st.integers(1, 5)


@property_settings(20)
@given(dims, dims, st.integers(1, 16), st.floats(-2.0, 1.0), st.integers(0, 2**31 - 1))
def test_gaussian_log_prob_closed_form(obs_dim, act_dim, n, log_std, seed):
    torch.manual_seed(seed)
    policy = gaussian_mlp(obs_dim, act_dim, hidden=(4,), log_std_init=log_std).double()
    obs, actions = torch.randn(n, obs_dim, dtype=torch.float64), torch.randn(n, act_dim, dtype=torch.float64)
    mean, log_std = policy.body(obs), float(policy.log_std[0].detach())  # the parameter holds log_std rounded to float32
    assert torch.equal(policy.log_std, torch.full((act_dim,), log_std, dtype=torch.float64))
    quad = -0.5 * (((actions - mean) / math.exp(log_std)) ** 2).sum(-1)
    const = -act_dim * (log_std + 0.5 * math.log(2 * math.pi))
    logp = policy.log_prob(obs, actions)
    assert logp.shape == (n,)
    assert torch.allclose(logp, quad + const, rtol=0, atol=1e-12 * float(quad.abs().max().detach() + abs(const)))
    assert torch.equal(policy.act(obs, deterministic=True), mean)


@property_settings(20)
@given(dims, st.integers(2, 6), st.integers(1, 16), st.integers(0, 2**31 - 1))
def test_categorical_log_prob_is_log_softmax(obs_dim, n_actions, n, seed):
    torch.manual_seed(seed)
    policy = categorical_mlp(obs_dim, n_actions, hidden=(4,)).double()
    obs = torch.randn(n, obs_dim, dtype=torch.float64)
    actions = torch.randint(n_actions, (n,))
    logits = policy.body(obs)
    expected = torch.log_softmax(logits, -1).gather(1, actions[:, None])[:, 0]
    assert torch.allclose(policy.log_prob(obs, actions), expected, rtol=0, atol=1e-12 * float(logits.abs().max().detach() + 1))
    assert torch.equal(policy.act(obs, deterministic=True), logits.argmax(-1))


def test_state_gaussian_splits_mean_and_clamped_log_std():
    body = nn.Linear(1, 4, bias=False).double()
    with torch.no_grad():
        body.weight.copy_(torch.tensor([[1.0], [-2.0], [30.0], [-40.0]]))  # mean (s, -2s), log-std (30s, -40s)
    policy = StateGaussianPolicy(body, 2)
    dist = policy.distribution(torch.ones(1, 1, dtype=torch.float64))
    assert torch.equal(dist.mean, torch.tensor([[1.0, -2.0]], dtype=torch.float64))
    assert torch.allclose(dist.stddev.log(), torch.tensor([[2.0, -20.0]], dtype=torch.float64))  # clamped to [-20, 2]


@property_settings(25)
@given(linear_gaussian_problems())
def test_analytic_linear_gaussian_scores_match_autograd(problem):
    """The closed-form scores (z s^T, z, ((a - mu)/sigma)^2 - 1) that the solver tests use as an
    autograd-free d* reference agree with per-sample autograd (1e-10 relative, float64)."""
    autograd = per_sample_grads(problem.policy, problem.params, problem.obs, problem.actions) * sqrt_weights(problem)[:, None]
    assert rel_err(linear_gaussian_scores(problem), autograd) <= 1e-10


@property_settings(10)
@given(dims, dims, st.lists(st.integers(1, 6), min_size=1, max_size=3), st.booleans())
def test_actor_critic_parameter_split(obs_dim, act_dim, hidden, discrete):
    shared = ActorCritic(obs_dim, act_dim, hidden=hidden, shared=True, discrete=discrete)
    policy_ids = {id(p) for p in shared.policy.policy_parameters()}
    critic_only = shared.critic_only_parameters()
    value_head = shared.critic[-1]
    assert {id(p) for p in critic_only} == {id(value_head.weight), id(value_head.bias)}
    assert policy_ids.isdisjoint(id(p) for p in critic_only)
    trunk = {id(p) for p in shared.critic[0].parameters()}
    assert trunk <= policy_ids  # the shared trunk is part of what the Fisher is over
    obs = torch.randn(3, obs_dim)
    assert shared.value(obs).shape == (3,)

    separate = ActorCritic(obs_dim, act_dim, hidden=hidden, shared=False, discrete=discrete)
    assert {id(p) for p in separate.critic_only_parameters()} == {id(p) for p in separate.critic.parameters()}
    expected = CategoricalPolicy if discrete else GaussianPolicy
    assert isinstance(separate.policy, expected)


def test_mlp_layout():
    net = mlp([3, 5, 7, 2])
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [5, 7, 2]
    assert isinstance(mlp([4, 2], nn.ReLU)[0], nn.Linear) and len(mlp([4, 2])) == 1
    frozen = gaussian_mlp(3, 2)
    frozen.log_std.requires_grad_(False)
    assert all(p is not frozen.log_std for p in frozen.policy_parameters())
    assert np.isclose(sum(p.numel() for p in frozen.policy_parameters()), 3 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2)
