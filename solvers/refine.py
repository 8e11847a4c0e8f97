"""Mixed-precision refinement of the damped Gram solve (``woodbury.refine``).

The sample-space system ``M u = b``, ``M = S S^T / N + lambda I``, is formed and Cholesky-factored in the
curvature's working precision (float32: the O(N^2 P) Gram and the O(N^3) factorisation, the expensive part),
and its solution is corrected with residuals computed in float64 from the same scores upcast (exact: a float32
number is a float64 one), each step costing one J v and one J^T u:

    u_0 = 0;  repeat: r = b - M u (float64);  stop when eta_s(u) <= tol;  u += z,  z from M_32^-1 r

The corrections are those of conjugate gradients on ``M u = b`` preconditioned by the float32 factor, in
float64 (CG-IR, Higham and Pranesh 2021, the SPD form of GMRES-IR, Carson and Higham 2018). While the factor
is accurate (kappa(M) eps32 well below 1) the preconditioned matrix is I up to ~kappa eps32 and one or two
steps suffice, as in classical iterative refinement; where the float32 Gram is not numerically positive
definite, the factor of ``M_32 + delta I`` (delta the smallest power-of-two multiple of eps32 ||M_32|| that
factorises) still leaves the eigenvalues of the preconditioned matrix near 1 except those of M below delta,
which CG removes. The stopping rule is the normwise backward error of the float64 system,
``eta_s = ||b - M u|| / (||M|| ||u|| + ||b||)``, with ||M||_2 from power iterations on M_32 (a lower bound,
so eta is over-estimated and the stop is conservative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ratbench.curvature import Curvature
from ratbench.errors import RatbenchError
from ratbench.phases import PHASES
from ratbench.symmetric import CholeskyFactor, cholesky_lower
from solvers.base import integer_option, tolerance_option
from solvers.cg import conjugate_gradient

RESIDUAL_DTYPE = torch.float64
DEFAULT_TOL = 16 * torch.finfo(torch.float64).eps
MAX_SHIFTS = 60  # delta doubles up to 2^60 eps ||M||: beyond that M_32 is not a matrix worth factorising
POWER_STEPS = 30


@dataclass(frozen=True)
class Refinement:
    """The options of a refined solve, shared by woodbury and kaczmarz: the float64 backward error it stops
    at and the most CG-IR steps per right-hand side."""

    tol: float = DEFAULT_TOL
    max_steps: int = 200

    @staticmethod
    def from_options(solver: str, refine: Any, tol: Any, max_steps: Any) -> Optional["Refinement"]:
        """The solver options ``refine``, ``refine_tol``, ``refine_steps`` checked (None when refine is off)."""
        if not isinstance(refine, bool):
            raise RatbenchError(f"{solver} refine must be true or false, got {refine!r}")
        tol = tolerance_option(f"{solver} refine_tol", tol, allow_zero=False)
        steps = integer_option(f"{solver} refine_steps", max_steps, minimum=1)
        return Refinement(tol, steps) if refine else None


@dataclass
class RefinedSolve:
    """u: float64 (rows,) or (rows, k), the refined solution; steps: CG-IR corrections taken (the largest over
    columns); shift: delta added to the float32 factor (0 when it factorised as it was); backward_error:
    eta_s of u, the largest over columns."""

    u: torch.Tensor
    steps: int
    shift: float
    backward_error: float


def widened(curv: Curvature) -> Curvature:
    """The curvature's scores in the residual precision (itself when already there); the copy's products count
    as passes of ``curv``."""
    return curv if curv.dtype == RESIDUAL_DTYPE else curv.astype(RESIDUAL_DTYPE)


def refined_gram_solve(curv: Curvature, wide: Curvature, damping: float, rhs: torch.Tensor, refinement: Refinement,
                       rows: Optional[torch.Tensor] = None) -> RefinedSolve:
    """Solve (S_B S_B^T / N + lambda I) u = rhs, B = ``rows`` (all when None), to the float64 backward error
    ``refinement.tol`` (module doc): the Gram and factor from ``curv``, the residuals from ``wide``."""
    with PHASES("gram"):
        m = curv.gram(rows, rows, lower_only=True).div_(curv.n)
    m.diagonal().add_(damping)
    norm = _spectral_norm(m)
    factor, shift = _shifted_factor(m, norm)
    b = rhs.to(RESIDUAL_DTYPE)
    columns = [b] if b.dim() == 1 else list(b.unbind(1))
    results = [_cg_ir(wide, rows, damping, column, factor, curv.dtype, norm, refinement) for column in columns]
    u = results[0][0] if b.dim() == 1 else torch.stack([r[0] for r in results], dim=1)
    return RefinedSolve(u, max(r[1] for r in results), shift, max(r[2] for r in results))


def _spectral_norm(m: torch.Tensor) -> float:
    """||M||_2 of the symmetric M whose lower triangle ``m`` holds, by power iteration (a lower bound)."""
    full = torch.tril(m) + torch.tril(m, -1).T
    v = torch.ones(full.shape[0], dtype=full.dtype, device=full.device) / full.shape[0] ** 0.5
    estimate = 0.0
    for _ in range(POWER_STEPS):
        w = full @ v
        estimate = float(torch.linalg.vector_norm(w))
        if estimate == 0:
            break
        v = w / estimate
    return estimate


def _shifted_factor(m: torch.Tensor, norm: float) -> tuple[CholeskyFactor, float]:
    """The Cholesky factor of M_32, or of M_32 + delta I for the smallest delta = 2^j eps ||M|| that works."""
    with PHASES("cholesky"):
        factor, ok = cholesky_lower(m.clone())
        shift = 0.0
        eps = torch.finfo(m.dtype).eps
        for j in range(MAX_SHIFTS):
            if ok:
                return factor, shift
            shift = 2.0**j * eps * norm
            shifted = m.clone()
            shifted.diagonal().add_(shift)
            factor, ok = cholesky_lower(shifted)
    raise RatbenchError(f"the damped Gram system cannot be factored even shifted by {shift:.1e} in {m.dtype}; "
                        "its scores hold NaN or inf")


def _cg_ir(wide: Curvature, rows: Optional[torch.Tensor], damping: float, b: torch.Tensor, factor: CholeskyFactor,
           low: torch.dtype, norm: float, refinement: Refinement) -> tuple[torch.Tensor, int, float]:
    """Preconditioned CG (:func:`solvers.cg.conjugate_gradient`) in float64 on M u = b from u = 0, stopped on
    eta_s: (u, steps, eta_s)."""
    n = wide.n

    def apply(v: torch.Tensor) -> torch.Tensor:
        return wide.jvp(wide.vjp(v, rows), rows) / n + damping * v

    def precondition(r: torch.Tensor) -> torch.Tensor:
        scale = float(torch.linalg.vector_norm(r))  # float32 sees r / ||r||: no underflow of small residuals
        if scale == 0:
            return torch.zeros_like(r)
        return factor.solve((r / scale).to(low)).to(RESIDUAL_DTYPE) * scale

    b_norm = float(torch.linalg.vector_norm(b))

    def backward_error(u: torch.Tensor, r: torch.Tensor) -> float:
        # in float64 the recurrence r stays within ~eps64 ||M|| ||u|| per step of b - M u
        return float(torch.linalg.vector_norm(r)) / (norm * float(torch.linalg.vector_norm(u)) + b_norm)

    return conjugate_gradient(apply, b, iterations=refinement.max_steps, tol=refinement.tol,
                              precondition=precondition, error=backward_error)
