"""The backward-error contracts can fail: planted defects are caught at kappa 1e2, 1e6 and 1e10 in float32 and
float64, and correct solves pass at all three.

The problems are built to a chosen kappa: a linear Gaussian policy (mean theta^T x, unit variance, theta = 0,
actions 1) whose score of sample i is exactly x_i, with X = U diag(sigma) V^T (N = 48 < P = 96, U and V
orthonormal) and sigma_i^2 / N equal to 1 on half the samples and to lambda on the other half, lambda =
1 / (kappa - 1). Then F + lambda I has eigenvalues 1 + lambda, 2 lambda and lambda, so kappa(F + lambda I)
= kappa exactly, and the damping changes the solution by a factor 2 on the small half at every kappa (so
dropping it is an O(1) defect, not a rounding-size one). Every solve is scored against the float64 solve of the
scores the solver saw (the float32 capture upcast): the test measures the solve, not the scores' rounding.

Where a defect is itself a change of the problem smaller than the rounding a contract allows, no backward
error can tell it from rounding (and the forward bound exceeds 1 there): a damping of 1e-6 or a flipped sign
at kappa 1e6 in float32 (relative sizes 1e-6 and 5e-6 against a bound of 7e-6). Those cases are skipped with
that reason, computed from the exact solution; the refined woodbury route, float32 work held to a float64
bound, catches every defect at every kappa.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ratbench.curvature import capture
from ratbench.policies import GaussianPolicy
from ratbench.problem import NPGProblem
from ratbench.reference import Reference, reference_from_scores
from solvers import SolveResult, make_solver
from suites.accuracy.contracts import CONTRACTS, backward_tolerance, convergence_budget, unit_roundoff
from suites.accuracy.runner import backward_errors

N, P = 48, 96
KAPPAS = (1e2, 1e6, 1e10)
DTYPES = (torch.float64, torch.float32)


def _problem(kappa: float, dtype: torch.dtype) -> NPGProblem:
    gen = torch.Generator().manual_seed(int(kappa) % 1000)
    lam = 1.0 / (kappa - 1.0)
    u, _ = torch.linalg.qr(torch.randn(N, N, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(P, N, generator=gen, dtype=torch.float64))
    sigma = torch.cat([torch.ones(N // 2), torch.full((N // 2,), lam)]).to(torch.float64).mul(N).sqrt()
    x = u @ torch.diag(sigma) @ v.T
    policy = GaussianPolicy(nn.Linear(P, 1, bias=False), act_dim=1).to(dtype)
    nn.init.zeros_(policy.body.weight)
    adv = torch.randn(N, generator=gen, dtype=torch.float64)
    return NPGProblem(policy, x.to(dtype), torch.ones(N, 1, dtype=dtype), (adv / adv.pow(2).mean().sqrt()).to(dtype),
                      lam, params=[policy.body.weight])


def _own_reference(problem: NPGProblem) -> Reference:
    """The float64 solve of the scores the solver sees (module doc)."""
    scores = capture(problem).astype(torch.float64).dense()
    return reference_from_scores(scores, problem.rhs().to(torch.float64), problem.damping)


def _routes(dtype: torch.dtype, kappa: float) -> dict[str, tuple[str, dict]]:
    """label -> (solver, options) of the correct routes; in float32 beyond the float32 Cholesky's reach
    (kappa 1e10: not numerically positive definite) the refined woodbury is the sample-space route."""
    # the suite's stopping tolerance (1e-12 = 4500 eps64) would hide a 1e3 eps defect behind itself; 100 eps
    # keeps the bound (55 eps + tol) below the 500 eps such a perturbation adds
    budget = lambda name: {**convergence_budget(name, dtype, N, P), "tol": 100 * unit_roundoff(dtype)}  # noqa: E731
    routes = {"cg": ("cg", budget("cg")), "woodbury refined": ("woodbury", {"refine": True})}
    if dtype == torch.float64 or kappa < 1e10:
        routes["woodbury"] = ("woodbury", {})
        # one block: a direct solve; smaller blocks converge at a rate set by kappa and miss the bound at 1e6
        # within the suite's 200 sweeps (eta 2.6e-5 measured), which the contract rightly reports
        routes["kaczmarz"] = ("kaczmarz", {**budget("kaczmarz"), "block_size": N})
    return routes


def _tolerance(solver: str, options: dict, dtype: torch.dtype) -> float:
    """The contract bound; a refined solve is held to its residual precision, float64."""
    working = torch.float64 if options.get("refine") else dtype
    return backward_tolerance(solver, working, N, options.get("tol"), [])


def _eta(solver: str, result: SolveResult, reference: Reference) -> float:
    return backward_errors(result, reference, CONTRACTS[solver].route)["backward_error"]


CASES = [(kappa, dtype, label) for kappa in KAPPAS for dtype in DTYPES for label in _routes(dtype, kappa)]


def _id(case) -> str:
    kappa, dtype, label = case
    return f"kappa{kappa:.0e}-{str(dtype)[6:]}-{label.replace(' ', '-')}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_correct_solves_meet_their_contract(case):
    kappa, dtype, label = case
    solver, options = _routes(dtype, kappa)[label]
    problem = _problem(kappa, dtype)
    reference = _own_reference(problem)
    assert reference.condition_number == pytest.approx(kappa, rel=1e-6)
    result = make_solver(solver, **options).solve(problem)
    assert _eta(solver, result, reference) <= _tolerance(solver, options, dtype)


def _wrong_sign(result: SolveResult, reference: Reference, eps: float) -> SolveResult:
    dual = None if result.dual is None else -result.dual
    return dataclasses.replace(result, direction=-result.direction, dual=dual)


def _perturbed(result: SolveResult, reference: Reference, eps: float) -> SolveResult:
    """A relative perturbation of 1e3 eps of what the route computes: u for a sample-space route (the
    direction moved with it, d + S^T du / N), d for a parameter-space one."""
    gen = torch.Generator().manual_seed(7)
    if result.dual is not None:
        u = result.dual.to(torch.float64)
        du = torch.randn(u.shape, generator=gen, dtype=torch.float64)
        du *= 1e3 * eps * u.norm() / du.norm()
        d = result.direction.to(torch.float64) + reference.jacobian.T @ du / reference.n
        return dataclasses.replace(result, direction=d, dual=u + du)
    d = result.direction.to(torch.float64)
    dd = torch.randn(d.shape, generator=gen, dtype=torch.float64)
    return dataclasses.replace(result, direction=d + 1e3 * eps * d.norm() / dd.norm() * dd)


DEFECTS = {"wrong sign": _wrong_sign, "perturbation 1e3 eps": _perturbed, "damping dropped": 0.0,
           "residual's damping term off by 2": 2.0}
"""A defect is either a change of the correct result or a factor on the damping the route solves with (its
residual b - S d - lambda u and its factorisation alike)."""


def _intrinsic_size(defect: str, reference: Reference, route: str, eps: float) -> float:
    """The backward error of the defect applied to the exact solution: the relative change of the problem it
    amounts to. A defect smaller than the rounding a contract allows cannot be told from rounding by any
    backward error (nor by the forward error, whose bound exceeds 1 there)."""
    a_norm, lam = reference.operator_norm, reference.damping
    if defect == "wrong sign":  # A (-x) - rhs = -2 rhs
        if route == "sample":
            s, b = reference.jacobian, reference.rhs
            u = torch.linalg.solve(s @ s.T / reference.n + lam * torch.eye(reference.n, dtype=torch.float64), b)
            return float(2 * b.norm() / (a_norm * u.norm() + b.norm()))
        g, d = reference.gradient, reference.direction
        return float(2 * g.norm() / (a_norm * d.norm() + g.norm()))
    if defect == "perturbation 1e3 eps":
        return 500 * eps
    return abs(DEFECTS[defect] - 1.0) * lam / a_norm


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_planted_defects_fail_the_contract(case, defect):
    kappa, dtype, label = case
    solver, options = _routes(dtype, kappa)[label]
    problem = _problem(kappa, dtype)
    reference = _own_reference(problem)
    plant = DEFECTS[defect]
    tolerance = _tolerance(solver, options, dtype)
    eps = unit_roundoff(torch.float64 if options.get("refine") else dtype)
    size = _intrinsic_size(defect, reference, CONTRACTS[solver].route, eps)
    if size < 2 * tolerance:
        assert dtype == torch.float32 and kappa >= 1e6 and not options.get("refine")  # nowhere else
        pytest.skip(f"undetectable by any backward error: the defect is a relative change of the problem of "
                    f"{size:.0e}, within the {tolerance:.0e} that rounding in float32 may cause at kappa {kappa:.0e}; "
                    f"the refined route's float64 bound catches it")
    if callable(plant):
        result = plant(make_solver(solver, **options).solve(problem), reference, eps)
    else:
        result = make_solver(solver, **options).solve(dataclasses.replace(problem, damping=problem.damping * (plant or 1e-9)))
    assert _eta(solver, result, reference) > tolerance
