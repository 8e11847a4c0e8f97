"""Exact Woodbury solve in sample space (the dense-Gram form of RAT).

d* = S^T u / N with (S S^T / N + lambda I) u = b: one Gram matrix, one
N x N Cholesky solve, one J^T u product.

``refine=True`` keeps the Gram and its factor in the working precision and refines u with float64
residuals of the same scores (:mod:`solvers.refine`), then maps back in float64: the direction and u
come in float64, with the float64 backward error ``refine_tol`` (default 16 eps64), at the cost of
two float64 passes per refinement step. kaczmarz takes the same options for its block solves.
"""

from __future__ import annotations

from typing import Optional

from ratbench.curvature import Curvature
from ratbench.phases import PHASES
from ratbench.problem import NPGProblem
from solvers.base import Callback, Clock, SolveResult, SolveStats, Solver, WarmStart, dual_residual, solve_damped_gram
from solvers.refine import DEFAULT_TOL, Refinement, refined_gram_solve, widened


class Woodbury(Solver):
    name = "woodbury"
    exact = "always (up to rounding in the working dtype; with refine, in float64)"
    multi_rhs = True  # k right-hand sides share the Gram and its Cholesky factor

    def __init__(self, refine: bool = False, refine_tol: float = DEFAULT_TOL, refine_steps: int = 200):
        """refine: mixed-precision refinement (module doc); refine_tol: the float64 backward error it stops at;
        refine_steps: the most refinement (CG-IR) steps per right-hand side."""
        self.refinement = Refinement.from_options("woodbury", refine, refine_tol, refine_steps)

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: Clock,
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:
        b = problem.rhs()
        if self.refinement is not None:
            wide = widened(curv)
            refined = refined_gram_solve(curv, wide, problem.damping, b, self.refinement)
            u = refined.u
            with PHASES("vjp"):
                d = wide.vjp(u) / curv.n
            stats = SolveStats(iterations=refined.steps, residual=refined.backward_error)
            return SolveResult(d, problem.to_transformed_advantage(u), stats, dual=u,
                               scores_direction=b.to(u.dtype) - problem.damping * u)
        u = solve_damped_gram(curv, problem.damping, b)
        d = curv.vjp(u) / curv.n
        with curv.uncounted():
            stats = SolveStats(iterations=1, residual=dual_residual(curv, problem, d, u))
        return SolveResult(d, problem.to_transformed_advantage(u), stats, dual=u, scores_direction=b - problem.damping * u)
