"""Diagonal Fisher preconditioning: d = g / (diag(F) + lambda).

Exact exactly when F is diagonal (the score coordinates are orthogonal
across the batch). diag(F) comes from the captured factors in one pass.
"""

from __future__ import annotations

from typing import Optional

from ratbench.curvature import Curvature
from ratbench.problem import NPGProblem
from solvers.base import Callback, Clock, SolveResult, SolveStats, Solver, WarmStart, vanilla_gradient


class DiagonalFisher(Solver):
    name = "diagonal"
    exact = "only when F is diagonal"

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: Clock,
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:
        d = vanilla_gradient(curv, problem) / (curv.fisher_diagonal() + problem.damping)
        return SolveResult(d, None, SolveStats(iterations=1))
