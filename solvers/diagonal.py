"""Diagonal Fisher preconditioning: d = g / (diag(F) + lambda).

Exact exactly when F is diagonal (the score coordinates are orthogonal
across the batch). diag(F) comes from the captured factors in one pass.

``weighted=False`` takes diag(F) from the unweighted scores (sum_i s_i^2 / (w_i N)) while g keeps the
weights: the reference's diag baseline, which weights the loss by the ratios but not its Fisher
(agent-lab/ICML2026-RAT train_detach.py:364-376). Then d is not (diag F + lambda)^-1 g of this problem's F.
"""

from __future__ import annotations

from typing import Optional

from ratbench.curvature import Curvature
from ratbench.errors import RatbenchError
from ratbench.problem import NPGProblem
from solvers.base import Callback, Clock, SolveResult, SolveStats, Solver, WarmStart, vanilla_gradient


class DiagonalFisher(Solver):
    name = "diagonal"
    exact = "only when F is diagonal"

    def __init__(self, weighted: bool = True):
        """weighted: diag(F) of the weighted scores (the problem's F) or of the unweighted ones (module doc)."""
        if not isinstance(weighted, bool):
            raise RatbenchError(f"diagonal weighted must be true or false, got {weighted!r}")
        self.weighted = weighted

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: Clock,
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:
        unweight = None if self.weighted or problem.weights is None else 1.0 / problem.weights
        d = vanilla_gradient(curv, problem) / (curv.fisher_diagonal(unweight) + problem.damping)
        return SolveResult(d, None, SolveStats(iterations=1))
