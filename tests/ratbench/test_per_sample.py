"""per_sample_grads (vmap of grad) equals a plain autograd loop over samples.

The loop is the most literal definition of a score row: one backward of
log pi(a_i | s_i) per sample. Both evaluate the same float64 expressions,
so they agree to rounding; 1e-10 relative leaves orders of magnitude of room
while a wrong column, order or sample is O(1).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.distributions import Distribution

from ratbench import NPGProblem, RatbenchError
from ratbench.per_sample import no_distribution_validation, param_names, per_sample_grads
from ratbench.policies import GaussianPolicy, mlp
from tests.dense import rel_err
from tests.strategies import problems, property_settings

RTOL = 1e-10


def autograd_loop(problem: NPGProblem) -> torch.Tensor:
    """Rows grad log pi(a_i | s_i) over problem.params, one backward per sample: (N, P)."""
    rows = []
    for i in range(problem.n):
        logp = problem.policy.log_prob(problem.obs[i : i + 1], problem.actions[i : i + 1]).sum()
        grads = torch.autograd.grad(logp, problem.params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if gr is None else gr).reshape(-1) for gr, p in zip(grads, problem.params)]))
    return torch.stack(rows)


@property_settings(30)
@given(problems(), st.sampled_from([None, 1, 3]))
def test_matches_autograd_loop(problem, chunk_size):
    scores = per_sample_grads(problem.policy, problem.params, problem.obs, problem.actions, chunk_size=chunk_size)
    assert scores.shape == (problem.n, problem.num_params)
    assert rel_err(scores, autograd_loop(problem)) <= RTOL


@property_settings(15)
@given(problems(architectures=("gaussian_mlp", "tied", "custom_module"), freeze=False), st.randoms())
def test_columns_follow_params_order(problem, random):
    """Columns come in the order of ``params`` (each tensor row-major); other parameters are held fixed."""
    params = list(problem.params)
    full = per_sample_grads(problem.policy, params, problem.obs, problem.actions)
    starts, start = [], 0
    for p in params:
        starts.append(start)
        start += p.numel()
    order = random.sample(range(len(params)), random.randint(1, len(params)))
    picked = per_sample_grads(problem.policy, [params[i] for i in order], problem.obs, problem.actions)
    expected = torch.cat([full[:, starts[i] : starts[i] + params[i].numel()] for i in order], dim=1)
    assert rel_err(picked, expected) <= RTOL


def test_refuses_batchnorm_in_training_mode_and_foreign_parameters():
    torch.manual_seed(0)
    policy = GaussianPolicy(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)), 1).double()
    obs = torch.randn(5, 3, dtype=torch.float64)
    actions = torch.randn(5, 1, dtype=torch.float64)
    with pytest.raises(RatbenchError, match=r"BatchNorm in training mode"):
        per_sample_grads(policy, list(policy.parameters()), obs, actions)
    policy.eval()
    problem = NPGProblem(policy, obs, actions, torch.randn(5, dtype=torch.float64), 0.1)
    assert rel_err(per_sample_grads(policy, problem.params, obs, actions), autograd_loop(problem)) <= RTOL
    stranger = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(RatbenchError, match=r"not a parameter of the policy"):
        param_names(policy, [stranger])


def test_distribution_validation_is_restored():
    before = Distribution._validate_args
    with pytest.raises(KeyError):
        with no_distribution_validation():
            assert Distribution._validate_args is False
            raise KeyError("boom")
    assert Distribution._validate_args == before


def test_leaves_parameters_and_gradients_untouched():
    torch.manual_seed(0)
    policy = GaussianPolicy(mlp([3, 5, 2]), 2).double()
    before = [p.detach().clone() for p in policy.parameters()]
    obs = torch.randn(4, 3, dtype=torch.float64)
    per_sample_grads(policy, list(policy.parameters()), obs, policy.act(obs).detach())
    assert all(torch.equal(p, q) for p, q in zip(policy.parameters(), before))
    assert all(p.grad is None for p in policy.parameters())
