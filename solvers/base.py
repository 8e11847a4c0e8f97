"""The interface every solver shares.

A solver maps an :class:`~ratbench.problem.NPGProblem` to an approximation
of ``d* = (F + lambda I)^-1 g`` (an ascent direction; see the conventions in
:mod:`ratbench.problem`). ``solve`` captures the batch's curvature with one
forward/backward pass unless a :class:`~ratbench.curvature.Curvature` of the
same problem is passed in.

A problem with k right-hand sides (advantages (N, k)) gets directions (P, k) and transformed
advantages (N, k): solved together by the solvers whose work is shared across columns
(``multi_rhs``: one Gram and one factorisation for woodbury and kaczmarz), column by column on one
capture by the others.

``callback(progress)`` (optional) is called after every iteration of an
iterative solver with a :class:`Progress`; the time the callback takes is
not counted in ``Progress.elapsed`` nor in ``SolveResult.stats.seconds``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import torch

from ratbench.curvature import Curvature, capture
from ratbench.errors import RatbenchError
from ratbench.phases import PHASES
from ratbench.problem import NPGProblem
from ratbench.symmetric import cholesky_lower


@dataclass
class Progress:
    """State after one iteration (one block step, one CG step)."""

    iteration: int
    passes: float
    elapsed: float
    direction: torch.Tensor
    residual: float


@dataclass
class SolveStats:
    """iterations: solver iterations (block steps for kaczmarz, CG steps for cg, 1 for direct solvers);
    passes: rows touched by Gram/Jv/J^T u products over N, plus 1 for the capture pass;
    residual: final relative residual of the system the solver works on (NaN where it has none);
    history: per-iteration dicts (iteration, passes, seconds, residual[, dual_objective]);
    seconds: wall time of ``solve`` (capture included unless a curvature was passed in)."""

    iterations: int = 0
    passes: float = 0.0
    residual: float = float("nan")
    history: list = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class SolveResult:
    """direction: flat (P,) ascent direction ((P, k) for k right-hand sides, as every field below);
    transformed_advantage: (N,) y with
    d = (1/N) sum_i w_i y_i grad log pi_i, or None for solvers without one;
    dual: (N,) the sample-space iterate u (scaled rows), or None;
    scores_direction: (N,) S d when the solver knows it without a J v product
    (Woodbury, Kaczmarz with whole-batch blocks), else None."""

    direction: torch.Tensor
    transformed_advantage: Optional[torch.Tensor]
    stats: SolveStats
    dual: Optional[torch.Tensor] = None
    scores_direction: Optional[torch.Tensor] = None


Callback = Callable[[Progress], None]


@dataclass
class WarmStart:
    """Where an iterative solver starts.

    direction: flat (P,) primal start d0; dual: (N,) sample-space start u0
    (for this problem's rows). Direct solvers (woodbury, diagonal, kfac)
    are exact or closed-form and ignore it.
    """

    direction: Optional[torch.Tensor] = None
    dual: Optional[torch.Tensor] = None


class Solver:
    """Base class. Subclasses set ``name`` and ``exact`` and implement ``_solve``."""

    name: ClassVar[str] = ""
    exact: ClassVar[str] = ""  # when the solver returns d* exactly, in one line
    multi_rhs: ClassVar[bool] = False  # whether _solve takes (N, k) right-hand sides itself

    def solve(
        self,
        problem: NPGProblem,
        curvature: Optional[Curvature] = None,
        callback: Optional[Callback] = None,
        warm_start: Optional[WarmStart] = None,
    ) -> SolveResult:
        """Approximate d* for ``problem``; see the module docstring."""
        clock = Clock()
        if curvature is None:
            with torch.enable_grad():
                curvature = capture(problem)
            start_rows = -curvature.n  # the capture pass counts as one pass
        else:
            start_rows = curvature.rows_touched
        with torch.no_grad():
            if problem.columns is None or self.multi_rhs:
                result = self._solve(problem, curvature, clock, callback, warm_start)
            else:
                result = self._solve_columns(problem, curvature, clock, callback, warm_start)
        result.stats.passes = (curvature.rows_touched - start_rows) / curvature.n
        result.stats.seconds = clock.elapsed()
        return result

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: "Clock",
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _solve_columns(self, problem: NPGProblem, curv: Curvature, clock: "Clock", callback: Optional[Callback],
                       warm_start: Optional[WarmStart]) -> SolveResult:
        """k right-hand sides one at a time on the same capture; results stacked as columns (iterations and
        residual: the largest over the columns, NaN where one is). ``callback`` is not called: a column's iterate is not an
        iterate of the whole problem."""
        results = []
        for j, advantages in enumerate(problem.advantages.unbind(1)):
            column = dataclasses.replace(problem, advantages=advantages, trusted=True)
            warm = None if warm_start is None else WarmStart(
                direction=_column(warm_start.direction, j), dual=_column(warm_start.dual, j))
            results.append(self._solve(column, curv, clock, None, warm))

        def stacked(name: str) -> Optional[torch.Tensor]:
            parts = [getattr(r, name) for r in results]
            return None if any(p is None for p in parts) else torch.stack(parts, dim=1)

        residuals = [r.stats.residual for r in results]
        stats = SolveStats(iterations=max(r.stats.iterations for r in results),
                           residual=float("nan") if any(math.isnan(x) for x in residuals) else max(residuals),
                           history=[h for r in results for h in r.stats.history])
        return SolveResult(stacked("direction"), stacked("transformed_advantage"), stats, dual=stacked("dual"),
                           scores_direction=stacked("scores_direction"))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Clock:
    """Wall clock that pauses while a callback runs."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._paused = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self._start - self._paused

    def report(self, callback: Optional[Callback], make: Callable[[float], Progress]) -> None:
        """Call ``callback(make(elapsed))`` with the clock paused."""
        if callback is None:
            return
        t0 = time.perf_counter()
        callback(make(self.elapsed()))
        self._paused += time.perf_counter() - t0


def _column(t: Optional[torch.Tensor], j: int) -> Optional[torch.Tensor]:
    """Column j of a (rows, k) warm start; a one-column (rows,) start serves every column."""
    return t if t is None or t.dim() == 1 else t[:, j]


def integer_option(option: str, value: Any, minimum: Optional[int] = None) -> int:
    """A solver option as an int (integral floats and numeric strings accepted), else RatbenchError."""
    if isinstance(value, numbers.Integral):
        number: Optional[int] = int(value)
    else:
        as_float = _as_float(value)
        number = int(as_float) if as_float.is_integer() else None
    if number is None or (minimum is not None and number < minimum):
        kind = "a positive integer" if minimum == 1 else "an integer"
        raise RatbenchError(f"{option} must be {kind}, got {value!r}")
    return number


def tolerance_option(option: str, value: Any, allow_zero: bool) -> float:
    """A finite tolerance > 0 (>= 0 when ``allow_zero``), else RatbenchError."""
    number = _as_float(value)
    if not (math.isfinite(number) and (number >= 0 if allow_zero else number > 0)):
        kind = "non-negative" if allow_zero else "positive"
        raise RatbenchError(f"{option} must be {kind} and finite, got {value!r}")
    return number


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def solve_damped_gram(curv: Curvature, damping: float, rhs: torch.Tensor, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Solve (S_B S_B^T / N + lambda I) x = rhs by Cholesky, B = ``rows`` (all when None).

    Then S_B S_B^T x / N = rhs - lambda x up to the solve's rounding: a caller gets S_B (S_B^T x / N)
    without a J v product."""
    with PHASES("gram"):
        m = curv.gram(rows, rows, lower_only=True).div_(curv.n)
    m.diagonal().add_(damping)
    with PHASES("cholesky"):
        factor, ok = cholesky_lower(m)
    if not ok:
        raise RatbenchError(
            f"the damped Gram system is not numerically positive definite in {curv.dtype}; "
            "increase the damping, solve in float64, or refine in mixed precision with the solver's refine=true "
            "(woodbury and kaczmarz: --option woodbury.refine=true; in training --set npg.solver_options.refine=true)"
        )
    with PHASES("cholesky"):
        return factor.solve(rhs)


def dual_residual(curv: Curvature, problem: NPGProblem, direction: torch.Tensor, dual: torch.Tensor) -> float:
    """||b - S d - lambda u|| / ||b||: relative residual of the sample-space system at (d, u)."""
    b = problem.rhs()
    r = b - curv.jvp(direction) - problem.damping * dual
    return float(torch.linalg.vector_norm(r) / torch.linalg.vector_norm(b))


def vanilla_gradient(curv: Curvature, problem: NPGProblem) -> torch.Tensor:
    """g = S^T b / N, flat (P,)."""
    return curv.vjp(problem.rhs()) / curv.n
