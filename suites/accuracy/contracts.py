"""Accuracy contracts of the solvers, on the backward error, and the convergence budgets the suite gives them.

``ratbench accuracy --check`` fails a solver whose normwise backward error (:mod:`ratbench.metrics`),
measured with the dense float64 operator, exceeds ``c(N) eps + tau`` in its working precision eps; and, where
``kappa(F + lambda I)`` times that bound is well below 1 (<= :data:`FORWARD_CHECKED_BELOW`), whose forward
error ``||d - d*|| / ||d*||`` exceeds the bound the backward error implies. Elsewhere the forward error is
reported, not checked: beyond kappa ~ 1 / eps no backward-stable solve can promise a forward error, so a
forward contract there either fails correct solves or, as the old ``100 eps kappa`` did (4e5 at kappa 4e10),
cannot fail at all.

Derivation of the constant, per route (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.):

- **Sample-space routes** (woodbury; kaczmarz, whose blocks are Cholesky solves): the computed u is the exact
  solution of ``(G + Delta G + lambda I) u = b + Delta b``, where Delta G collects the Gram's rounding (inner
  products, Thm 3.5) and the Cholesky solve's (Thm 10.4: ``|Delta| <= gamma_{3N+1} |R^T| |R|``), and the
  computed d is ``(S + Delta S)^T u / N`` with ``|Delta S| <= gamma_N |S|`` (the length-N inner products of
  J^T u). So eta_s and eta_map are bounded by a multiple of eps that grows with N, not with kappa. The
  worst-case constants (3N + 1 and N) are far from what rounding does; the probabilistic bounds of Higham and
  Mary (2019, Thm 3.1) replace gamma_n by ``lambda_p sqrt(n) eps`` with high probability, and
  :data:`SAFETY` x sqrt(N) keeps a margin of about 8 over that. The scores' own rounding (a float32
  forward/backward) is a relative perturbation of S of the same kind and is covered by the same term.
- **Parameter-space routes** (cg, diagonal and kfac on their exact cases): the products
  ``F v = S^T (S v) / N`` and the elementwise or eigen solves have the same sqrt(N)-type accumulation, so the
  same ``SAFETY sqrt(N) eps`` bounds eta(d) of a converged solve.
- **Iterative solvers** add their stopping tolerance tau: stopping at a relative residual ``||r|| / ||rhs|| <=
  tau`` gives ``eta <= tau`` (the denominator of eta is at least ||rhs||); without a tolerance (``tol=None``:
  a fixed number of sweeps) nothing is added and the solver must have converged to meet the contract.

Measured on the quick families (float64 and float32, damping 1e-10 to 1e3): eta_s and eta_map of woodbury and
kaczmarz 0.05 to 0.7 eps, far below ``SAFETY sqrt(N) eps`` (181 eps at N = 512); a perturbation of 1e3 eps of
the solution raises eta by at least 500 eps, above the bound, so the contracts can fail
(tests/suites/accuracy/test_contracts.py plants such defects at kappa 1e2, 1e6 and 1e10).

The forward bound implied by a backward error eta-bar (first order): for a parameter-space route
``2 kappa eta / (1 - kappa eta)`` (Higham Thm 7.2); for a sample-space route, from ``d - d* = -(F + lambda I)^-1
S^T (Delta G u - Delta b) / N + Delta S^T u / N``, ``kappa eta ||S|| (||A|| ||u|| + ||b||) / (N ||g||) +
eta ||S|| ||u|| / (N ||d*||)`` (:func:`forward_bound`).

Approximations (diagonal, kfac) have contracts only on the families marked exact for them
(``Family.exact_for``); elsewhere they are report-only, as is any registered solver without an entry here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from ratbench.reference import Reference

SAFETY = 8.0
"""Multiplier of sqrt(N) eps in every backward-error contract (module doc)."""

FORWARD_CHECKED_BELOW = 1e-2
"""The forward error is checked only where its implied bound is at most this (kappa eta well below 1)."""


@dataclass(frozen=True)
class Contract:
    """route: 'sample' (eta of the sample-space solve and the map back) or 'parameter' (eta of A d = g);
    exact_cases_only: checked only where the family lists the solver in ``exact_for``; justification: why the
    bound holds (the module doc derives the constant)."""

    route: str
    justification: str
    exact_cases_only: bool = False


CONTRACTS: dict[str, Contract] = {
    "woodbury": Contract(
        "sample",
        "one Gram, one Cholesky solve of the N x N damped Gram system, one J^T u: backward stable in sample space",
    ),
    "kaczmarz": Contract(
        "sample",
        "block Cholesky solves with the residual carried in sample space: backward stable once converged; the "
        "stopping tolerance adds to the bound",
    ),
    "cg": Contract(
        "parameter",
        "CG on (F + lambda I) d = g with F v = S^T (S v) / N: stopped at relative residual tau, eta <= tau + the "
        "products' rounding",
    ),
    "diagonal": Contract(
        "parameter",
        "exact (a direct elementwise division) when F is diagonal, as on diagonal-exact-small",
        exact_cases_only=True,
    ),
    "kfac": Contract(
        "parameter",
        "exact (eigendecompositions of A and G) when F is one layer's Kronecker product G (x) A, "
        "as on kfac-exact-small",
        exact_cases_only=True,
    ),
}

ITERATIVE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}
"""Relative-residual stopping tolerance the suite gives kaczmarz and cg: ~1e4 eps64, ~8 eps32."""

KACZMARZ_SWEEPS = 200


def unit_roundoff(dtype: torch.dtype) -> float:
    """eps of the working precision (2^-52 for float64, 2^-23 for float32)."""
    return torch.finfo(dtype).eps


def backward_tolerance(solver: str, dtype: torch.dtype, n: int, stop_tol: Optional[float],
                       exact_for: Sequence[str]) -> Optional[float]:
    """``SAFETY sqrt(N) eps + tau`` for ``solver`` on an N-sample problem in ``dtype``, tau the stopping
    tolerance it ran with (None: none); None when the solver is report-only here."""
    contract = CONTRACTS.get(solver)
    if contract is None or (contract.exact_cases_only and solver not in exact_for):
        return None
    return SAFETY * math.sqrt(n) * unit_roundoff(dtype) + (stop_tol or 0.0)


def forward_bound(route: str, eta: float, reference: Reference, dual: Optional[torch.Tensor]) -> float:
    """The relative forward error a backward error ``eta`` allows (module doc), inf where first-order
    perturbation theory gives nothing (kappa eta >= 1)."""
    kappa = reference.condition_number
    if route == "parameter" or dual is None:
        return 2 * kappa * eta / (1 - kappa * eta) if kappa * eta < 1 else math.inf
    n, lam = reference.n, reference.damping
    u = dual.detach().to(device="cpu", dtype=torch.float64)
    norm = lambda v: float(torch.linalg.vector_norm(v))  # noqa: E731 - a local shorthand
    s_norm = math.sqrt(max(reference.operator_norm - lam, 0.0) * n)
    g_norm, d_norm = norm(reference.gradient), norm(reference.direction)
    if g_norm == 0 or d_norm == 0:
        return math.inf
    solve_part = kappa * eta * s_norm * (reference.operator_norm * norm(u) + norm(reference.rhs)) / (n * g_norm)
    return solve_part + eta * s_norm * norm(u) / (n * d_norm)


def convergence_budget(solver: str, dtype: torch.dtype, n: int, num_params: int) -> dict[str, Any]:
    """Solver options that let the iterative solvers converge (user ``--option`` values override them)."""
    tol = ITERATIVE_TOLERANCE[dtype]
    if solver == "kaczmarz":
        return {"sweeps": KACZMARZ_SWEEPS, "tol": tol}
    if solver == "cg":
        return {"iterations": 2 * (min(n, num_params) + 1), "tol": tol}
    return {}


def describe_budget(solver: str) -> str:
    """The convergence budget in words, for ``ratbench accuracy --list``."""
    tolerances = f"tol={ITERATIVE_TOLERANCE[torch.float64]:g} (float32: {ITERATIVE_TOLERANCE[torch.float32]:g})"
    if solver == "kaczmarz":
        return f"sweeps={KACZMARZ_SWEEPS}, {tolerances}"
    if solver == "cg":
        return f"iterations=2*(min(N,P)+1), {tolerances}"
    return ""


def describe_contract(solver: str) -> str:
    """The contract in words, for ``ratbench accuracy --list``."""
    contract = CONTRACTS.get(solver)
    if contract is None:
        return "no contract"
    space = "sample-space" if contract.route == "sample" else "parameter-space"
    where = " on its exact cases" if contract.exact_cases_only else ""
    return f"contract {space} backward error <= {SAFETY:g} sqrt(N) eps (+ tol){where}"
