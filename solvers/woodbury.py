"""Exact Woodbury solve in sample space (the dense-Gram form of RAT).

d* = S^T u / N with (S S^T / N + lambda I) u = b: one Gram matrix, one
N x N Cholesky solve, one J^T u product.
"""

from __future__ import annotations

from typing import Optional

from ratbench.curvature import Curvature
from ratbench.problem import NPGProblem
from solvers.base import Callback, Clock, SolveResult, SolveStats, Solver, WarmStart, dual_residual, solve_damped_gram


class Woodbury(Solver):
    name = "woodbury"
    exact = "always (up to rounding in the working dtype)"
    multi_rhs = True  # k right-hand sides share the Gram and its Cholesky factor

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: Clock,
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:
        b = problem.rhs()
        u = solve_damped_gram(curv, problem.damping, b)
        d = curv.vjp(u) / curv.n
        with curv.uncounted():
            stats = SolveStats(iterations=1, residual=dual_residual(curv, problem, d, u))
        return SolveResult(d, problem.to_transformed_advantage(u), stats, dual=u, scores_direction=b - problem.damping * u)
