"""Woodbury: the sample-space solve equals the parameter-space dense solve (the identity RAT rests on).

Tolerance (float64). Both routes are backward stable: each forms a Gram
matrix from J (inner products of length <= max(N, P)) and Cholesky/LU-solves
it, so each has a normwise backward error of at most ~(N + P) eps, and a
forward error of at most that times the condition number of the system it
solves: kappa(F + lambda I) for the dense route, kappa(M) for Woodbury
(M = S S^T / N + lambda I, whose conditioning governs u and hence d when
N > rank). So ||d_woodbury - d*|| / ||d*|| <= 2 (N + P) eps kappa with
kappa = max(kappa(F + lambda I), kappa(M)), times the condition c >= 1 of
the matrix-vector product each route forms outside its solve (g = S^T b / N,
d = S^T u / N: c = || |S|^T |x| || / ||S^T x||, large only when the terms
cancel, e.g. two nearly equal rows of S meeting nearly opposite advantages;
hypothesis found such a problem with c ~ 66 and error 47 eps kappa). We
allow 4 (N + P) eps kappa c. Observed over hundreds of random problems: at
most ~5 eps kappa c.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ratbench import NPGProblem, RatbenchError
from ratbench.policies import GaussianPolicy
from solvers import WarmStart, make_solver
from tests.dense import EPS64, dense, exact_rtol, linear_gaussian, rel_err, sqrt_weights, to_np
from tests.strategies import linear_gaussian_problems, problems, property_settings


@property_settings(60)
@given(problems())
def test_woodbury_equals_parameter_space_solve(problem):
    reference = dense(problem)
    result = make_solver("woodbury").solve(problem)
    assert rel_err(result.direction, reference.npg()) <= exact_rtol(problem, reference)


@property_settings(25)
@given(problems())
def test_dual_solves_the_sample_space_system(problem):
    """u is a backward-stable solution of M u = b: ||b - M u|| <= c N eps (||M|| ||u|| + ||b||),
    and stats.residual is that relative residual. c = 4 (Cholesky: ~N eps; forming M: ~P eps -> 4 (N + P))."""
    reference = dense(problem)
    result = make_solver("woodbury").solve(problem)
    u, m, b = to_np(result.dual), reference.damped_gram, reference.rhs
    residual = np.linalg.norm(b - m @ u)
    allowance = 4 * (problem.n + problem.num_params) * EPS64 * (np.linalg.norm(m, 2) * np.linalg.norm(u) + np.linalg.norm(b))
    assert residual <= allowance
    assert result.stats.residual <= allowance / np.linalg.norm(b)
    assert rel_err(result.transformed_advantage * sqrt_weights(problem), result.dual) <= 4 * EPS64


@property_settings(25)
@given(linear_gaussian_problems())
def test_linear_gaussian_closed_form(problem):
    """mean = W s + c: F and g from the Gaussian score formulas (no autograd), d* by SciPy."""
    analytic = linear_gaussian(problem)
    result = make_solver("woodbury").solve(problem)
    assert rel_err(result.direction, analytic.npg()) <= exact_rtol(problem, analytic)


def test_warm_start_ignored():
    torch.manual_seed(0)
    policy = GaussianPolicy(torch.nn.Linear(3, 2), 2).double()
    obs = torch.randn(5, 3, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(5, dtype=torch.float64), 0.1)
    cold = make_solver("woodbury").solve(problem)
    warm = make_solver("woodbury").solve(problem, warm_start=WarmStart(torch.ones(problem.num_params, dtype=torch.float64), torch.ones(5, dtype=torch.float64)))
    assert torch.equal(cold.direction, warm.direction)


def test_refuses_a_damped_gram_that_is_not_numerically_positive_definite():
    """Every score is 0 (actions at the mean, state-independent log-std frozen) and lambda = 1e-50
    underflows to 0 in float32, so M = 0: Cholesky must fail with a clear message."""
    torch.manual_seed(0)
    policy = GaussianPolicy(torch.nn.Linear(3, 2), 2)
    policy.log_std.requires_grad_(False)
    obs = torch.randn(4, 3)
    with torch.no_grad():
        actions = policy.body(obs)
    problem = NPGProblem(policy, obs, actions, torch.randn(4), 1e-50)
    with pytest.raises(RatbenchError, match=r"not numerically positive definite in torch.float32; increase the damping, solve in float64, or refine"):
        make_solver("woodbury").solve(problem)


@property_settings(10)
@given(problems(), st.floats(0.5, 4.0))
def test_scaling_advantages_scales_the_direction(problem, factor):
    """d* is linear in b: scaling the advantages by c scales d by c (to rounding)."""
    reference = dense(problem)
    base = make_solver("woodbury").solve(problem).direction
    scaled = make_solver("woodbury").solve(dataclasses.replace(problem, advantages=factor * problem.advantages)).direction
    assert rel_err(scaled, factor * base) <= exact_rtol(problem, reference)
