"""Tolerance contracts of the solvers and the convergence budgets the suite gives them.

``ratbench accuracy --check`` fails when a solver's relative error
``||d - d*|| / ||d*||`` against the float64 reference exceeds its contract.

- float64: the fixed tolerances below.
- float32: a condition-dependent tolerance ``FLOAT32_FACTOR * eps32 *
  kappa(F + lambda I)`` for every contract. A backward-stable float32
  computation (scores from a float32 forward/backward, a Cholesky or
  iterative solve stopped at a residual of ~8 eps32) has a forward error of
  about ``c * eps32 * kappa`` with a modest c (the quick set shows c <= 6);
  the factor 100 leaves room for depth- and N-dependent accumulation while
  any real defect (a wrong sign, scale or residual rule: an O(1) error)
  still fails.

Approximations (diagonal, kfac) have contracts only on the families marked
exact for them (``Family.exact_for``); elsewhere they are report-only, as is
any registered solver without an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

EPS32 = torch.finfo(torch.float32).eps
FLOAT32_FACTOR = 100.0


@dataclass(frozen=True)
class Contract:
    """float64_tolerance: max relative error in float64; exact_cases_only: checked only where
    the family lists the solver in ``exact_for``; justification: why the number holds."""

    float64_tolerance: float
    justification: str
    exact_cases_only: bool = False

    def tolerance(self, dtype: torch.dtype, condition_number: float) -> float:
        """The relative-error bound for a problem in ``dtype`` with kappa(F + lambda I) = condition_number."""
        if dtype == torch.float64:
            return self.float64_tolerance
        return FLOAT32_FACTOR * EPS32 * condition_number


CONTRACTS: dict[str, Contract] = {
    "woodbury": Contract(
        1e-9,
        "exact: one Cholesky solve of the N x N damped Gram system and one J^T u; float64 rounding "
        "gives ~1e-16 * kappa, far below 1e-9 for kappa <= 1e6",
    ),
    "kaczmarz": Contract(
        1e-8,
        "block coordinate descent on the SPD sample-space system converges linearly to d*; with the "
        "suite's budget (stop when the relative residual < 1e-12, at most 200 sweeps) the error is "
        "<= kappa * 1e-12 << 1e-8",
    ),
    "cg": Contract(
        1e-8,
        "CG on the SPD system (F + lambda I) d = g converges to d*; stopped at relative residual "
        "1e-12 within 2 (min(N, P) + 1) iterations, the error is <= kappa * 1e-12 << 1e-8",
    ),
    "diagonal": Contract(
        1e-9,
        "exact (a direct elementwise division) when F is diagonal, as on diagonal-exact-small",
        exact_cases_only=True,
    ),
    "kfac": Contract(
        1e-9,
        "exact (eigendecompositions of A and G) when F is one layer's Kronecker product G (x) A, "
        "as on kfac-exact-small",
        exact_cases_only=True,
    ),
}

ITERATIVE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-6}
"""Relative-residual stopping tolerance the suite gives kaczmarz and cg: ~1e4 eps64, ~8 eps32."""

KACZMARZ_SWEEPS = 200


def contract_tolerance(
    solver: str, dtype: torch.dtype, condition_number: float, exact_for: Sequence[str]
) -> Optional[float]:
    """The relative-error bound ``solver`` must meet on this problem, or None when report-only."""
    contract = CONTRACTS.get(solver)
    if contract is None or (contract.exact_cases_only and solver not in exact_for):
        return None
    return contract.tolerance(dtype, condition_number)


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
