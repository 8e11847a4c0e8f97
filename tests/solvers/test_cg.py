"""Conjugate gradient on (F + lambda I) d = g with Fisher-vector products.

In exact arithmetic the energy-norm error ||d_k - d*||_A (A = F + lambda I)
decreases monotonically and CG terminates after m steps, m = the number of
distinct eigenvalues of A <= min(P, rank(F) + 1) <= min(P, N + 1).

Finite precision (see termination_floor): CG behaves like exact CG on a matrix
whose eigenvalues are spread over intervals of width ~eps lambda_max around
the true ones (Greenbaum 1989), so after m steps the residual is not zero but
bounded through the polynomial that vanishes at every eigenvalue. Large
outlying eigenvalues make that bound grow like eps kappa^(m-1), so the
termination tests use N <= 4 (m <= 5), where it is informative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ratbench import NPGProblem
from ratbench.errors import RatbenchError
from solvers import WarmStart, make_solver
from tests.dense import EPS64, Dense, dense, exact_rtol, linear_gaussian, rel_err, to_np
from tests.strategies import linear_gaussian_problems, problems, property_settings


def true_residual(reference: Dense, direction) -> float:
    """||g - (F + lambda I) d|| / ||g||, densely (the absolute residual when g = 0, e.g. one action)."""
    g = reference.gradient
    residual = np.linalg.norm(g - reference.damped_fisher @ to_np(direction))
    return float(residual / np.linalg.norm(g)) if np.any(g) else float(residual)


def max_steps(problem: NPGProblem) -> int:
    """min(P, N + 1): the exact-arithmetic bound on CG steps."""
    return min(problem.num_params, problem.n + 1)


def termination_floor(problem: NPGProblem, reference: Dense, start: np.ndarray | None = None) -> float:
    """The relative residual finite-precision CG reaches after min(P, N + 1) steps.

    With lambda_1..lambda_m the distinct eigenvalues of A, exact CG after m steps does at least as
    well (in the A^-1 norm) as p(z) = prod_i (1 - z / lambda_i), and on eigenvalues perturbed by
    delta = eps lambda_max (Greenbaum's model of rounding) |p(lambda_j + delta)| <=
    eps (lambda_max / lambda_j) prod_{i != j} |1 - lambda_j / lambda_i| =: eps G. In the 2-norm that
    is sqrt(kappa) eps G; add the attainable accuracy eps kappa of any solve, the dimension constant
    4 (N + P) used throughout (test_woodbury), and, for a warm start d0, the factor
    1 + ||A d0|| / ||g|| (rounding is relative to the largest vector formed).
    Measured over hundreds of N <= 4 problems: at most 1.7x the floor without the 4 (N + P).
    """
    values = reference.fisher_eigenvalues()
    nonzero = values[values > 1e-13 * values[-1]]
    eig = np.concatenate([nonzero, [0.0] if nonzero.size < reference.num_params else []]) + problem.damping
    growth = max(eig.max() / lj * np.prod([abs(1 - lj / li) for i, li in enumerate(eig) if i != j]) for j, lj in enumerate(eig))
    kappa = reference.condition_number()
    scale = 1.0
    if start is not None and np.any(reference.gradient):
        scale += np.linalg.norm(reference.damped_fisher @ start) / np.linalg.norm(reference.gradient)
    return 4 * (problem.n + problem.num_params) * EPS64 * (np.sqrt(kappa) * growth + kappa) * scale


@property_settings(40)
@given(problems())
def test_energy_norm_error_decreases_monotonically(problem):
    """||d_k - d*||_A is non-increasing; slack: the error of the reference d* itself in the
    A-norm, 4 (N + P) eps kappa ||d*||_A (the A-norm error of d* is at most its 2-norm
    error times sqrt(lambda_max(A)), and ||d*||_A >= sqrt(lambda_min(A)) ||d*||)."""
    reference = dense(problem)
    d_star = reference.npg()
    directions: list[torch.Tensor] = []
    make_solver("cg", iterations=2 * max_steps(problem), tol=0.0).solve(problem, callback=lambda p: directions.append(p.direction.clone()))
    errors = [reference.energy_norm(d_star)] + [reference.energy_norm(to_np(d) - d_star) for d in directions]
    slack = exact_rtol(problem, reference) * np.sqrt(reference.kappa()) * reference.energy_norm(d_star)
    assert all(after <= before + slack for before, after in zip(errors, errors[1:]))


@property_settings(40)
@given(problems(n=st.integers(1, 4)))
def test_terminates_within_min_p_and_rank_plus_one_steps(problem):
    reference = dense(problem)
    floor = termination_floor(problem, reference)
    result = make_solver("cg", iterations=max_steps(problem), tol=0.0).solve(problem)
    assert result.stats.iterations <= max_steps(problem) <= problem.num_params
    assert true_residual(reference, result.direction) <= floor
    assert rel_err(result.direction, reference.npg()) <= reference.condition_number() * floor


@property_settings(25)
@given(problems())
def test_reported_residual_is_the_true_residual(problem):
    """stats.residual is CG's recursively updated residual; it may drift from the true one only by
    rounding: |reported - true| <= 4 (N + P) eps kappa (the residual gap of CG is O(eps kappa))."""
    reference = dense(problem)
    result = make_solver("cg", iterations=max_steps(problem), tol=0.0).solve(problem)
    if result.stats.iterations:
        assert abs(result.stats.residual - true_residual(reference, result.direction)) <= exact_rtol(problem, reference)


@property_settings(25)
@given(problems(), st.floats(1e-12, 1e-2))
def test_the_squared_residual_rule_stops_at_the_first_step_below_it(problem, tol):
    """tol_on="rr" (the reference's utils/cg.py:18): the solve stops after the first step whose r . r is below tol,
    and not before, which the same iterations run to the end with tol 0 show step by step."""
    full = make_solver("cg", iterations=max_steps(problem), tol=0.0).solve(problem)
    squares = [h["residual"] ** 2 * float(dense(problem).gradient @ dense(problem).gradient) for h in full.stats.history]
    stopped = make_solver("cg", iterations=max_steps(problem), tol=tol, tol_on="rr").solve(problem)
    below = [i for i, s in enumerate(squares, 1) if s <= tol * (1 - 1e-6)]
    expected = below[0] if below else full.stats.iterations
    if not any(abs(s - tol) <= 1e-6 * tol for s in squares):  # a residual at the threshold may fall either side
        assert stopped.stats.iterations == expected


def test_an_unknown_tolerance_measure_is_refused():
    with pytest.raises(RatbenchError, match="unknown cg tol_on"):
        make_solver("cg", tol_on="absolute")


@property_settings(20)
@given(problems(n=st.integers(1, 4)), st.data())
def test_any_warm_start_converges_to_d_star(problem, data):
    """Unlike Kaczmarz's primal warm start, CG from any d0 solves the same system: it still
    terminates in <= min(P, N + 1) steps (A keeps <= rank + 1 distinct eigenvalues)."""
    reference = dense(problem)
    d_star = reference.npg()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    d0 = rng.standard_normal(problem.num_params) * (np.linalg.norm(d_star) + 1) / np.sqrt(problem.num_params)
    result = make_solver("cg", iterations=max_steps(problem), tol=0.0).solve(problem, warm_start=WarmStart(direction=torch.from_numpy(d0)))
    assert true_residual(reference, result.direction) <= termination_floor(problem, reference, start=d0)
    at_solution = exact_rtol(problem, reference) * (1 + reference.condition_number())  # ||g - A d*|| / ||g|| after rounding
    start_at_solution = make_solver("cg", iterations=5, tol=at_solution).solve(problem, warm_start=WarmStart(direction=torch.from_numpy(d_star)))
    assert start_at_solution.stats.iterations == 0
    assert np.array_equal(to_np(start_at_solution.direction), d_star)


@property_settings(25)
@given(linear_gaussian_problems(n=st.integers(1, 4)))
def test_linear_gaussian_closed_form(problem):
    """mean = W s + c: d* from the analytic scores (no autograd); CG hits it within min(P, N + 1) steps."""
    analytic = linear_gaussian(problem)
    result = make_solver("cg", iterations=max_steps(problem), tol=0.0).solve(problem)
    assert rel_err(result.direction, analytic.npg()) <= analytic.condition_number() * termination_floor(problem, analytic)


@property_settings(15)
@given(linear_gaussian_problems(n=st.integers(8, 24), max_obs_dim=2, max_act_dim=1))
def test_linear_gaussian_more_samples_than_parameters(problem):
    """N > P (P <= 4): termination within P steps, the bound that binds when P < N + 1."""
    analytic = linear_gaussian(problem)
    floor = termination_floor(problem, analytic)
    result = make_solver("cg", iterations=problem.num_params, tol=0.0).solve(problem)
    assert true_residual(analytic, result.direction) <= floor
    assert rel_err(result.direction, analytic.npg()) <= analytic.condition_number() * floor



class _Distribution(torch.nn.Module):
    """policy.distribution as a forward, so that torch.func.functional_call can re-evaluate it."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs):
        return self.policy.distribution(obs)


def _kl_hessian(problem: NPGProblem) -> np.ndarray:
    """The Hessian of mean_i KL(pi(.|s_i) fixed || pi(.|s_i)) in the flat parameters, by
    torch.autograd.functional.hessian of a functional re-evaluation (not the solver's operator)."""
    from torch.distributions import kl_divergence
    from torch.func import functional_call
    from torch.nn.utils import parameters_to_vector

    module = _Distribution(problem.policy)
    names = {id(p): n for n, p in module.named_parameters()}
    layout = [(names[id(p)], p.shape, p.numel()) for p in problem.params]
    with torch.no_grad():
        fixed = problem.policy.distribution(problem.obs)

    def kl(flat: torch.Tensor) -> torch.Tensor:
        tensors, at = {}, 0
        for name, shape, size in layout:
            tensors[name] = flat[at:at + size].view(shape)
            at += size
        return kl_divergence(fixed, functional_call(module, tensors, (problem.obs,), strict=False)).mean()

    return to_np(torch.autograd.functional.hessian(kl, parameters_to_vector(problem.params).detach()))


@property_settings(10)
@given(problems(architectures=("gaussian_mlp", "categorical", "state_gaussian"), freeze=False,
                dampings=st.floats(-2.0, 1.0).map(lambda e: 10.0**e)))
def test_kl_hessian_curvature_solves_the_policy_fisher_system(problem):
    """curvature='kl_hessian' (the reference's fvp, TRPO's FVP) run to convergence is (H + lambda I)^-1 g with H
    the KL Hessian (the policy's own Fisher) and g the weighted vanilla gradient; 4P steps of CG in float64 on a
    system of condition <= (||H|| + lambda) / lambda reach it to the allowance below (observed < 1e-12)."""
    reference = dense(problem)
    hessian = _kl_hessian(problem)
    system = hessian + problem.damping * np.eye(problem.num_params)
    expected = np.linalg.solve(system, reference.gradient)
    kappa = np.linalg.cond(system)
    result = make_solver("cg", curvature="kl_hessian", iterations=4 * problem.num_params, tol=0.0).solve(problem)
    assert rel_err(result.direction, expected) <= 1e3 * problem.num_params * EPS64 * kappa
