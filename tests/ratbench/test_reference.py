"""The dense float64 reference: J route, both solve modes, and the quantities metrics use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from ratbench.curvature import capture
from ratbench.errors import RatbenchError
from ratbench.policies import GaussianPolicy, gaussian_mlp
from ratbench.problem import NPGProblem
from ratbench.reference import compute_reference, dense_jacobian, reference_mode
from tests.dense import column_dense, exact_rtol, joint_scores, rel_err
from tests.strategies import joint_problems, property_settings

EPS64 = float(np.finfo(np.float64).eps)


def _mlp_problem(n: int, obs_dim: int, act_dim: int, hidden: tuple[int, ...], damping: float, seed: int, weighted: bool) -> NPGProblem:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    policy = gaussian_mlp(obs_dim, act_dim, hidden, log_std_init=-0.3).double()
    obs = torch.randn(n, obs_dim, generator=gen, dtype=torch.float64)
    actions = torch.randn(n, act_dim, generator=gen, dtype=torch.float64)
    advantages = torch.randn(n, generator=gen, dtype=torch.float64)
    weights = torch.rand(n, generator=gen, dtype=torch.float64) + 0.5 if weighted else None
    return NPGProblem(policy, obs, actions, advantages, damping=damping, weights=weights)


def _kappa_bound(jacobian: torch.Tensor, damping: float) -> float:
    """(lambda_max(F) + lambda) / lambda: bounds kappa(F + lambda I) and kappa(J J^T / N + lambda I)."""
    top = torch.linalg.matrix_norm(jacobian, ord=2).item() ** 2 / jacobian.shape[0]
    return (top + damping) / damping


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 40),
    obs_dim=st.integers(1, 5),
    act_dim=st.integers(1, 3),
    hidden=st.sampled_from([(), (3,), (6,), (4, 3)]),
    log_damping=st.floats(-4.0, 2.0),
    seed=st.integers(0, 2**16),
    weighted=st.booleans(),
)
def test_parameter_and_sample_space_agree(n, obs_dim, act_dim, hidden, log_damping, seed, weighted):
    """Woodbury identity in float64: (F + lambda I)^-1 g == J^T (J J^T / N + lambda I)^-1 b / N.

    Both are backward-stable float64 Cholesky solves, so each has a relative
    forward error of about kappa * eps64; 1e3 * eps64 * kappa leaves room for
    the dimension-dependent constants without hiding an O(1) disagreement.
    """
    damping = 10.0**log_damping
    problem = _mlp_problem(n, obs_dim, act_dim, hidden, damping, seed, weighted)
    by_params = compute_reference(problem, mode="parameter")
    by_samples = compute_reference(problem, mode="sample")
    assert (by_params.mode, by_samples.mode) == ("parameter", "sample")
    tol = 1e3 * EPS64 * _kappa_bound(by_params.jacobian, damping)
    scale = torch.linalg.vector_norm(by_params.direction)
    assert torch.linalg.vector_norm(by_params.direction - by_samples.direction) <= tol * scale + 1e-300
    # Both modes satisfy the parameter-space normal equations to the same accuracy.
    for reference in (by_params, by_samples):
        assert reference.residual <= tol


def test_linear_gaussian_jacobian_matches_closed_form():
    """mean = W x, log-std fixed: the score of W is (a - W x) / sigma^2 x^T, row-major."""
    torch.manual_seed(0)
    n, obs_dim, act_dim, log_std = 7, 4, 2, -0.5
    policy = GaussianPolicy(nn.Linear(obs_dim, act_dim, bias=False), act_dim, log_std_init=log_std).double()
    obs = torch.randn(n, obs_dim, dtype=torch.float64)
    actions = torch.randn(n, act_dim, dtype=torch.float64)
    weights = torch.linspace(0.5, 2.0, n, dtype=torch.float64)
    problem = NPGProblem(policy, obs, actions, torch.randn(n, dtype=torch.float64), damping=0.3,
                         weights=weights, params=[policy.body.weight])
    residual = (actions - obs @ policy.body.weight.detach().T) / np.exp(2 * log_std)
    expected = torch.einsum("na,ni->nai", residual, obs).reshape(n, -1) * weights.sqrt()[:, None]
    torch.testing.assert_close(dense_jacobian(problem), expected, rtol=1e-12, atol=1e-14)

    # d* by the textbook formula on the closed-form J.
    reference = compute_reference(problem)
    b = (weights.sqrt() * problem.advantages).numpy()
    j = expected.numpy()
    d_star = np.linalg.solve(j.T @ j / n + 0.3 * np.eye(j.shape[1]), j.T @ b / n)
    np.testing.assert_allclose(reference.direction.numpy(), d_star, rtol=1e-10, atol=1e-14)


def test_dense_jacobian_matches_the_fast_path_and_leaves_the_policy_alone():
    """Two independent routes to S (torch.func vs the hooks of the curvature layer) agree in float64."""
    problem = _mlp_problem(12, 3, 2, (5, 4), 0.1, seed=3, weighted=True)
    before = [p.detach().clone() for p in problem.params]
    jacobian = dense_jacobian(problem)
    assert jacobian.shape == (problem.n, problem.num_params) and jacobian.dtype == torch.float64
    torch.testing.assert_close(jacobian, capture(problem).dense(), rtol=1e-10, atol=1e-12)
    for p, q in zip(problem.params, before):
        assert p.dtype == torch.float64 and torch.equal(p.detach(), q)


def test_dense_jacobian_in_float32_on_the_problem_device():
    problem = _mlp_problem(9, 3, 2, (4,), 0.1, seed=1, weighted=False)
    jacobian32 = dense_jacobian(problem, dtype=torch.float32)
    assert jacobian32.dtype == torch.float32 and jacobian32.device == problem.device
    # float32 scores of a float64 policy: the rounding of a few float32 flops (eps32 ~ 1.2e-7).
    torch.testing.assert_close(jacobian32.double(), dense_jacobian(problem), rtol=1e-5, atol=1e-6)


def test_auto_mode_follows_the_cutoff():
    problem = _mlp_problem(10, 3, 2, (4,), 0.1, seed=2, weighted=False)
    p = problem.num_params
    assert compute_reference(problem, max_params=p).mode == "parameter"
    assert compute_reference(problem, max_params=p - 1).mode == "sample"
    assert reference_mode(p, p) == "parameter" and reference_mode(p + 1, p) == "sample"


def test_damped_operator_and_condition_number_in_both_modes():
    problem = _mlp_problem(15, 4, 2, (6,), 0.05, seed=4, weighted=False)
    by_params = compute_reference(problem, mode="parameter")
    by_samples = compute_reference(problem, mode="sample")
    assert by_params.fisher is not None and by_samples.fisher is None
    j = by_params.jacobian.numpy()
    damped = j.T @ j / problem.n + 0.05 * np.eye(problem.num_params)
    v = torch.randn(problem.num_params, dtype=torch.float64)
    for reference in (by_params, by_samples):
        np.testing.assert_allclose(reference.apply_damped(v).numpy(), damped @ v.numpy(), rtol=1e-12, atol=1e-12)
        eig = np.linalg.eigvalsh(damped)
        assert reference.condition_number == pytest.approx(eig[-1] / eig[0], rel=1e-8)
    torch.testing.assert_close(by_params.gradient, torch.from_numpy(j.T @ problem.rhs().numpy() / problem.n))


def test_unknown_mode_is_a_user_error():
    problem = _mlp_problem(4, 2, 1, (), 0.1, seed=0, weighted=False)
    with pytest.raises(RatbenchError, match="valid modes: auto, parameter, sample"):
        compute_reference(problem, mode="dual")


@property_settings(15)
@given(joint_problems())
def test_joint_problems_have_their_value_term_and_every_column_in_the_reference(problem):
    """train_shared.py's scores (value term included) and one float64 solution per right-hand side."""
    scores = joint_scores(problem)
    reference = compute_reference(problem)
    assert rel_err(reference.jacobian, scores) <= 1e-10
    assert reference.direction.shape == (problem.num_params, problem.advantages.shape[1])
    for j in range(problem.advantages.shape[1]):
        column = column_dense(problem, scores, j)
        assert rel_err(reference.direction[:, j], column.npg()) <= exact_rtol(problem, column)
