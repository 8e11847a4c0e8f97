"""Randomized block Kaczmarz (RAT) on M u = b, M = S S^T / N + lambda I (docs/design.md section 2).

A block step is exact block-coordinate minimisation of the dual quadratic
f(u) = 1/2 u^T M u - u^T b, and f(u) - f(u*) = 1/2 ||u - u*||_M^2, so:
- f never increases along the iterates;
- one step on block B from error e (residual r = b - M u) gives exactly
  ||e+||_M^2 = ||e||_M^2 - r_B^T M_BB^-1 r_B, hence, for a fixed partition
  into m blocks picked uniformly,
  E ||e+||_M^2 = ||e||_M^2 - (1/m) sum_B r_B^T M_BB^-1 r_B;
- the iterates converge to the Woodbury solution, and a warm start at it stays there.

Float64 allowances follow test_woodbury: an exact computation is allowed
4 (N + P) eps kappa relative error (kappa = max(kappa(F + lambda I), kappa(M))).
A run stopped at relative residual ||r|| / ||b|| <= tol is allowed, on top,
the exact consequence of that residual: ||d - d*|| = ||S^T M^-1 r|| / N
<= ||r|| / (2 sqrt(N lambda)) (the singular values of S^T M^-1 / N are
sigma / (sigma^2 + N lambda) <= 1 / (2 sqrt(N lambda))).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from ratbench import NPGProblem, RatbenchError
from ratbench.curvature import capture
from ratbench.policies import GaussianPolicy
from solvers import Progress, WarmStart, make_solver
from solvers.base import solve_damped_gram
from tests.dense import EPS64, dense, exact_rtol, linear_gaussian, rel_err, stopped_allowance, to_np
from tests.strategies import linear_gaussian_problems, problems, property_settings

TOL = 1e-12
"""Relative residual the convergence tests stop at (well above the float64 floor eps kappa for kappa <= 21)."""


def moderately_damped(problem: NPGProblem, log_rho: float) -> NPGProblem:
    """The problem with lambda = 10^log_rho lambda_max(F): kappa(M) <= 1 + 10^-log_rho.

    Kaczmarz's rate is set by the conditioning, so convergence tests use
    log_rho in [-1.3, 1] (kappa <= 21) to finish in a few hundred sweeps.
    """
    lam_max = dense(problem).fisher_eigenvalues()[-1]
    assume(lam_max > 0)
    return dataclasses.replace(problem, damping=10**log_rho * lam_max)


@property_settings(30)
@given(problems(), st.integers(1, 24), st.integers(1, 3))
def test_dual_objective_never_increases(problem, block_size, sweeps):
    """f(u_k+1) <= f(u_k), up to rounding in evaluating f, and f(u_k) >= f*.

    Every f(u_k) <= f(0) = 0, so each term of f is at most 4 |f*| (||u||_M <= 2 ||b||_M^-1),
    and evaluating them costs dot products of length <= N + P: slack 4 (N + P) eps * 4 |f*|.
    The floor f* = -b^T M^-1 b / 2 comes from a float64 solve and the last iterate from a float64
    Cholesky solve: each carries a relative error of order eps * kappa(M) on top, so that
    comparison gets the slack times kappa(M).
    """
    reference = dense(problem)
    f_star = -0.5 * reference.rhs @ reference.dual()
    result = make_solver("kaczmarz", block_size=block_size, sweeps=sweeps).solve(problem)
    values = [0.0] + [h["dual_objective"] for h in result.stats.history]
    slack = 16 * (problem.n + problem.num_params) * EPS64 * abs(f_star)
    assert all(after <= before + slack for before, after in zip(values, values[1:]))
    assert values[-1] >= f_star - slack * reference.dual_condition_number()


def _block_step(curv, problem: NPGProblem, u: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One block step from u (d = S^T u / N) with the solver's building blocks: (u+, d+, r_B^T M_BB^-1 r_B)."""
    d = curv.vjp(u) / curv.n
    r = problem.rhs()[rows] - curv.jvp(d, rows) - problem.damping * u[rows]
    du = solve_damped_gram(curv, problem.damping, r, rows)
    u_next = u.clone()
    u_next[rows] += du
    return u_next, d + curv.vjp(du, rows) / curv.n, float(r.dot(du))


@property_settings(30)
@given(problems(), st.data())
def test_expected_decrease_identity_for_a_fixed_partition(problem, data):
    """E ||e+||_M^2 = ||e||_M^2 - (1/m) sum_B r_B^T M_BB^-1 r_B, by enumerating every block.

    Each per-block identity is exact; its terms are quadratic forms of size up to
    s = (||e||_M + ||u*||_M)^2, each evaluated to 4 (N + P) eps kappa relative accuracy.
    """
    reference, curv = dense(problem), capture(problem)
    m_dense, u_star = reference.damped_gram, reference.dual()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    u = torch.from_numpy(rng.standard_normal(problem.n) * np.linalg.norm(u_star) / np.sqrt(problem.n))
    block_size = data.draw(st.integers(1, problem.n))
    blocks = torch.split(torch.from_numpy(rng.permutation(problem.n)), block_size)

    def energy(v: np.ndarray) -> float:
        return float(v @ m_dense @ v)

    e = to_np(u) - u_star
    scale = (np.sqrt(energy(e)) + np.sqrt(energy(u_star))) ** 2
    allowance = exact_rtol(problem, reference) * scale
    after, decrease = [], []
    for rows in blocks:
        u_next, _, dec = _block_step(curv, problem, u, rows)
        after.append(energy(to_np(u_next) - u_star))
        decrease.append(dec)
        assert abs(after[-1] - (energy(e) - dec)) <= allowance  # the exact per-block identity
        assert dec >= -allowance
    assert abs(np.mean(after) - (energy(e) - np.mean(decrease))) <= allowance


@property_settings(20)
@given(problems(n=st.integers(1, 7)), st.integers(1, 7), st.data())
def test_solver_first_step_is_an_exact_block_step(problem, block_size, data):
    """The solver's first step from a dual warm start equals the building-block step on some block of
    its size (every block of that size is enumerated: seed-agnostic), and decreases f by exactly
    1/2 r_B^T M_BB^-1 r_B."""
    reference, curv = dense(problem), capture(problem)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    u = torch.from_numpy(rng.standard_normal(problem.n))
    steps: list[Progress] = []
    result = make_solver("kaczmarz", block_size=block_size, sweeps=1).solve(
        problem, warm_start=WarmStart(dual=u), callback=lambda p: steps.append(dataclasses.replace(p, direction=p.direction.clone()))
    )
    size = min(block_size, problem.n)
    candidates = [_block_step(curv, problem, u, torch.tensor(rows)) for rows in itertools.combinations(range(problem.n), size)]
    f0 = float(0.5 * to_np(u) @ reference.damped_gram @ to_np(u) - to_np(u) @ reference.rhs)
    f1 = result.stats.history[0]["dual_objective"]
    scale = abs(f0) + abs(0.5 * reference.rhs @ reference.dual())
    # Blocks whose score rows vanish (saturated categorical probabilities) move u but not d, so
    # several blocks can give the same direction with different decreases: some block must match both.
    matches = [
        (rel_err(steps[0].direction, d_next), abs((f0 - f1) - 0.5 * dec))
        for _, d_next, dec in candidates
    ]
    assert any(
        d_err <= exact_rtol(problem, reference) and f_err <= exact_rtol(problem, reference) * scale
        for d_err, f_err in matches
    ), f"no block of size {size} matches the first step (direction error, decrease error): {matches}"


@property_settings(12)
@given(problems(), st.floats(-1.3, 1.0), st.integers(1, 24))
def test_converges_to_woodbury(problem, log_rho, block_size):
    problem = moderately_damped(problem, log_rho)
    reference = dense(problem)
    result = make_solver("kaczmarz", block_size=block_size, sweeps=400, tol=TOL).solve(problem)
    woodbury = make_solver("woodbury").solve(problem)
    assert result.stats.residual <= TOL
    assert rel_err(result.dual, woodbury.dual) <= reference.dual_condition_number() * TOL + exact_rtol(problem, reference)
    allowance = stopped_allowance(problem, reference, result.direction, result.dual, reference.npg())
    assert np.linalg.norm(to_np(result.direction) - reference.npg()) <= allowance


@property_settings(25)
@given(problems(), st.integers(0, 8))
def test_one_block_of_at_least_n_rows_is_exact(problem, extra):
    reference = dense(problem)
    result = make_solver("kaczmarz", block_size=problem.n + extra, sweeps=1).solve(problem)
    assert result.stats.iterations == 1
    assert rel_err(result.direction, reference.npg()) <= exact_rtol(problem, reference)


@property_settings(20)
@given(problems(), st.integers(1, 24), st.integers(1, 2))
def test_warm_start_at_the_solution_stays_there(problem, block_size, sweeps):
    reference = dense(problem)
    u_star = make_solver("woodbury").solve(problem).dual
    d_star = reference.npg()
    rtol = exact_rtol(problem, reference)
    steps: list[torch.Tensor] = []
    result = make_solver("kaczmarz", block_size=block_size, sweeps=sweeps).solve(
        problem, warm_start=WarmStart(dual=u_star), callback=lambda p: steps.append(p.direction.clone())
    )
    assert all(rel_err(d, d_star) <= rtol for d in steps)
    assert rel_err(result.dual, u_star) <= rtol
    f_star = -0.5 * reference.rhs @ reference.dual()
    assert all(abs(h["dual_objective"] - f_star) <= rtol * abs(f_star) for h in result.stats.history)


@property_settings(12)
@given(problems(), st.floats(-1.3, 1.0), st.integers(1, 24), st.data())
def test_primal_warm_start_converges_to_nearest_augmented_solution(problem, log_rho, block_size, data):
    """From (d0, u = 0), Kaczmarz converges to the solution of [S, sqrt(N lambda) I] (d, v) = b nearest
    (d0, 0) -- computed here by a dense minimum-norm least-squares solve -- which equals
    d* + lambda (F + lambda I)^-1 d0: NOT d* unless d0 = 0."""
    problem = moderately_damped(problem, log_rho)
    reference = dense(problem)
    n, p, lam = problem.n, problem.num_params, problem.damping
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    d0 = rng.standard_normal(p) * np.linalg.norm(reference.npg()) / np.sqrt(p)
    augmented = np.hstack([reference.scores, np.sqrt(n * lam) * np.eye(n)])
    x0 = np.concatenate([d0, np.zeros(n)])
    nearest = x0 + scipy.linalg.lstsq(augmented, reference.rhs - augmented @ x0)[0]
    d_limit = nearest[:p]
    closed_form = reference.npg() + lam * scipy.linalg.solve(reference.damped_fisher, d0, assume_a="pos")
    assert rel_err(d_limit, closed_form) <= exact_rtol(problem, reference)

    result = make_solver("kaczmarz", block_size=block_size, sweeps=400, tol=TOL).solve(
        problem, warm_start=WarmStart(direction=torch.from_numpy(d0))
    )
    assert result.stats.residual <= TOL
    allowance = stopped_allowance(problem, reference, result.direction, result.dual, d_limit)
    assert np.linalg.norm(to_np(result.direction) - d_limit) <= allowance + exact_rtol(problem, reference) * np.linalg.norm(d0)
    # how far from d*: exactly lambda ||(F + lambda I)^-1 d0|| >= lambda / (lambda_max + lambda) ||d0||
    gap = np.linalg.norm(d_limit - reference.npg())
    lam_max = reference.fisher_eigenvalues()[-1]
    assert gap >= (1 - 1e-6) * lam / (lam_max + lam) * np.linalg.norm(d0)


@property_settings(15)
@given(linear_gaussian_problems(), st.floats(-1.3, 1.0), st.integers(1, 24))
def test_linear_gaussian_closed_form(problem, log_rho, block_size):
    """mean = W s + c: d* from the analytic scores (no autograd); converged Kaczmarz hits it."""
    problem = moderately_damped(problem, log_rho)
    analytic = linear_gaussian(problem)
    result = make_solver("kaczmarz", block_size=block_size, sweeps=400, tol=TOL).solve(problem)
    assert result.stats.residual <= TOL
    allowance = stopped_allowance(problem, analytic, result.direction, result.dual, analytic.npg())
    assert np.linalg.norm(to_np(result.direction) - analytic.npg()) <= allowance


# -- the reference code's residual rule (residual="original") -----------------------------------
#
# Its block step solves M_BB du = b_B + S_B d_prev, where d_prev is the previous block's
# *increment*, and returns the last increment S_B^T du / N alone (docs/design.md section 6). From
# d_prev = 0 the first step with one block of all N rows is the Woodbury solution d*. Iterated
# with one full block, d_k = sum_{j<k} T^j d*, T = (F + lambda I)^-1 F, whose limit solves
# d = d* + T d, i.e. d = (I - T)^-1 d* = (F + lambda I) d* / lambda = g / lambda: the VANILLA
# gradient over lambda, at relative distance ||F d*|| / (lambda ||d*||) >= lambda_min+(F) / lambda
# from d* (d* lies in range(F); lambda_min+ is the smallest non-zero eigenvalue). With smaller
# blocks there is no fixed point: the output is always the last block's increment, a vector in
# the span of that block's score rows.


@property_settings(10)
@given(linear_gaussian_problems(n=st.integers(2, 24)), st.floats(0.0, 1.0), st.integers(2, 4))
def test_original_residual_with_one_full_block(problem, log_rho, sweeps):
    problem = moderately_damped(problem, log_rho)  # rho >= 1: ||T|| <= 1/2, so 60 sweeps reach the limit
    analytic = linear_gaussian(problem)
    d_star, lam = analytic.npg(), problem.damping
    t = scipy.linalg.solve(analytic.damped_fisher, analytic.fisher, assume_a="pos")
    rtol = exact_rtol(problem, analytic)

    curv = capture(problem)

    def original(k: int) -> torch.Tensor:
        solver = make_solver("kaczmarz", block_size=problem.n, sweeps=k, residual="original")
        return solver.solve(problem, curvature=curv).direction

    assert rel_err(original(1), d_star) <= rtol  # one step from zero: exact
    partial = sum(np.linalg.matrix_power(t, j) @ d_star for j in range(sweeps))
    assert rel_err(original(sweeps), partial) <= sweeps * rtol
    limit = to_np(original(60))
    assert rel_err(limit, analytic.gradient / lam) <= 60 * rtol  # the fixed point is g / lambda
    distance = rel_err(limit, d_star)
    assert abs(distance - np.linalg.norm(analytic.fisher @ d_star) / (lam * np.linalg.norm(d_star))) <= 60 * rtol
    positive = analytic.fisher_eigenvalues()
    positive = positive[positive > 1e-12 * positive[-1]]
    assert distance >= (1 - 1e-6) * positive[0] / lam


def test_original_residual_with_small_blocks_returns_one_block_increment():
    """block_size 1: the output is a multiple of ONE score row, so it misses d* by at least the
    distance from d* to the nearest such line -- here more than half of ||d*||."""
    torch.manual_seed(3)
    policy = GaussianPolicy(torch.nn.Linear(3, 2), 2).double()
    obs = torch.randn(16, 3, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(16, dtype=torch.float64), 0.5)
    analytic = linear_gaussian(problem)
    d_star, rows = analytic.npg(), analytic.scores
    d = to_np(make_solver("kaczmarz", block_size=1, sweeps=3, residual="original").solve(problem).direction)
    cosines = np.abs(rows @ d) / (np.linalg.norm(rows, axis=1) * np.linalg.norm(d))
    assert cosines.max() >= 1 - 1e-12  # parallel to one score row
    distance_to_lines = [np.linalg.norm(d_star - (s @ d_star) / (s @ s) * s) for s in rows]
    assert min(distance_to_lines) >= 0.5 * np.linalg.norm(d_star)
    assert np.linalg.norm(d - d_star) >= min(distance_to_lines)
    converged = make_solver("kaczmarz", block_size=1, sweeps=200, tol=TOL).solve(problem)  # same blocks, run to tol
    assert converged.stats.residual <= TOL
    allowance = stopped_allowance(problem, analytic, converged.direction, converged.dual, d_star)
    assert np.linalg.norm(to_np(converged.direction) - d_star) <= allowance


def test_warm_start_shape_mismatch():
    torch.manual_seed(0)
    policy = GaussianPolicy(torch.nn.Linear(3, 2), 2).double()
    obs = torch.randn(5, 3, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(5, dtype=torch.float64), 0.1)
    solver = make_solver("kaczmarz", block_size=2)
    with pytest.raises(RatbenchError, match=r"warm-start dual must have shape \(5,\), got \(4,\)"):
        solver.solve(problem, warm_start=WarmStart(dual=torch.zeros(4, dtype=torch.float64)))
    with pytest.raises(RatbenchError, match=rf"warm-start direction must have shape \({problem.num_params},\), got \(3,\)"):
        solver.solve(problem, warm_start=WarmStart(direction=torch.zeros(3, dtype=torch.float64)))
