"""Conjugate gradient in parameter space with Fisher-vector products (TRPO style).

Solves (F + lambda I) d = g with F v = S^T (S v) / N from the captured
factors: each iteration is one J v and one J^T u over the batch (one pass
each, about the cost of a forward and a backward). F here is the empirical
Fisher of the batch's sampled actions, the same matrix every other solver
uses, so all solvers target the same d*.

In exact arithmetic the (F + lambda I)-norm error decreases monotonically and
CG terminates in at most rank(F) + 1 iterations.

``curvature="kl_hessian"`` replaces F by the Hessian H of the mean KL(pi_theta(.|s) detached || pi_theta(.|s))
over the batch's states, by double back-propagation: the Fisher of the policy's own distribution (the
expected, not the sampled-action, Fisher), the matrix of TRPO's and the natural actor-critic's Fisher-vector
product (agent-lab/ICML2026-RAT train_detach.py:139-146). Each product counts as two passes (a backward of
the KL gradient's dot product through its graph). It is not the d* of the other solvers.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ratbench.curvature import Curvature
from ratbench.errors import RatbenchError
from ratbench.problem import NPGProblem
from solvers.base import (
    Callback,
    Clock,
    Progress,
    SolveResult,
    SolveStats,
    Solver,
    WarmStart,
    integer_option,
    tolerance_option,
    vanilla_gradient,
)


class ConjugateGradient(Solver):
    name = "cg"
    exact = "converges to d*; exact in at most rank(F) + 1 iterations in exact arithmetic"

    def __init__(self, iterations: int = 10, tol: float = 1e-10, curvature: str = "empirical", tol_on: str = "relative"):
        """iterations: maximum CG steps; tol: stop when the residual r = g - (F + lambda I) d measures at most tol,
        measured (``tol_on``) as ||r|| / ||g|| ('relative') or as r . r ('rr': the reference's absolute rule,
        agent-lab/ICML2026-RAT utils/cg.py:18, ``rdotr < residual_tol``); curvature: 'empirical' (F = S^T S / N)
        or 'kl_hessian' (the Hessian of the mean KL, module doc)."""
        if curvature not in CURVATURES:
            raise RatbenchError(f"unknown cg curvature {curvature!r}; valid: {', '.join(CURVATURES)}")
        if tol_on not in TOLERANCE_MEASURES:
            raise RatbenchError(f"unknown cg tol_on {tol_on!r}; valid: {', '.join(TOLERANCE_MEASURES)}")
        self.tol_on = tol_on
        self.iterations = integer_option("cg iterations", iterations, minimum=1)
        self.tol = tolerance_option("cg tol", tol, allow_zero=True)
        self.curvature = curvature

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: Clock,
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:
        lam = problem.damping
        if self.curvature == "kl_hessian":
            operator = curv.kl_hessian(problem)
        else:
            def operator(v: torch.Tensor) -> torch.Tensor:
                return curv.fvp(v) + lam * v

        g = vanilla_gradient(curv, problem)
        if torch.linalg.vector_norm(g) == 0:  # d* = (F + lambda I)^-1 0 = 0 exactly, whatever the warm start says
            return SolveResult(torch.zeros_like(g), None, SolveStats(iterations=0, residual=0.0))
        start = None
        if warm_start is not None and warm_start.direction is not None:
            start = warm_start.direction.to(curv.dtype).clone()
        history: list[dict] = []

        def after_step(step: int, d: torch.Tensor, residual: float) -> None:
            history.append({"iteration": step, "passes": curv.passes, "seconds": clock.elapsed(), "residual": residual})
            clock.report(callback, lambda t: Progress(step, curv.passes, t, d, residual))

        squared = (lambda d, r: float(r.dot(r))) if self.tol_on == "rr" else None
        d, step, residual = conjugate_gradient(operator, g, start, self.iterations, self.tol, after_step, error=squared)
        return SolveResult(d, None, SolveStats(iterations=step, residual=residual, history=history))


CURVATURES = ("empirical", "kl_hessian")
TOLERANCE_MEASURES = ("relative", "rr")


def conjugate_gradient(operator: Callable[[torch.Tensor], torch.Tensor], g: torch.Tensor,
                       start: Optional[torch.Tensor] = None, iterations: int = 10, tol: float = 0.0,
                       after_step: Optional[Callable[[int, torch.Tensor, float], None]] = None,
                       precondition: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                       error: Optional[Callable[[torch.Tensor, torch.Tensor], float]] = None,
                       ) -> tuple[torch.Tensor, int, float]:
    """Conjugate gradient on ``operator(d) = g`` for a symmetric positive definite operator (P,) -> (P,),
    from ``start`` (zero when None), at most ``iterations`` steps, stopping once the relative residual
    ``||g - operator(d)|| / ||g||`` (or ``error(d, r)`` of the iterate and its residual, when given) is at most
    ``tol``. ``precondition(r)`` applies M^-1 of a symmetric positive definite M (preconditioned CG).
    Returns (d, steps taken, that residual); ``after_step(step, d, residual)`` is called after every step.
    Used by the ``cg`` solver (the empirical Fisher), by TRPO (the Hessian of the KL) and by the mixed-precision
    refinement (solvers/refine.py: the float32 factor as preconditioner, the float64 backward error as error)."""
    g_norm = torch.linalg.vector_norm(g)
    if g_norm == 0:
        return torch.zeros_like(g), 0, 0.0
    if start is not None:
        d = start
        r = g - operator(d)
    else:
        d, r = torch.zeros_like(g), g.clone()

    def measured(d: torch.Tensor, r: torch.Tensor, rz: torch.Tensor) -> float:
        if error is not None:
            return error(d, r)
        return float(torch.sqrt(rz if precondition is None else r.dot(r)) / g_norm)  # without M, rz is r . r

    z = r if precondition is None else precondition(r)
    p, rz = z.clone(), r.dot(z)
    residual = measured(d, r, rz)
    step = 0
    while step < iterations and residual > tol:
        ap = operator(p)
        curvature = p.dot(ap)
        if not curvature > 0:  # p has vanished to rounding (underflow): d is as accurate as the dtype allows
            break
        alpha = rz / curvature
        d = d + alpha * p
        r = r - alpha * ap
        z = r if precondition is None else precondition(r)
        rz_new = r.dot(z)
        p = z + (rz_new / rz) * p
        rz = rz_new
        step += 1
        residual = measured(d, r, rz)
        if after_step is not None:
            after_step(step, d, residual)
    return d, step, residual
