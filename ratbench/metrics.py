"""How close a direction d is to the reference d* (all computed in float64).

- relative error ``||d - d*|| / ||d*||`` (Euclidean);
- cosine ``d . d* / (||d|| ||d*||)`` (NaN when either vector is zero);
- relative error in the (F + lambda I) norm
  ``||d - d*||_A / ||d*||_A`` with ``||v||_A^2 = v^T (F + lambda I) v``: the
  norm the regularised NPG objective measures, in which CG's error decreases
  monotonically.

For k right-hand sides (d and d* of shape (P, k)) the norms are Frobenius norms and the inner products
sum over the columns: the metrics of the stacked solution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from ratbench.reference import Reference

Operator = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Scores:
    relative_error: float
    cosine: float
    damped_relative_error: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _f64(v: torch.Tensor) -> torch.Tensor:
    return v.detach().to(device="cpu", dtype=torch.float64)


def _ratio(numerator: float, denominator: float) -> float:
    if denominator > 0:
        return numerator / denominator
    return 0.0 if numerator == 0 else math.inf


def relative_error(d: torch.Tensor, d_star: torch.Tensor) -> float:
    """||d - d*|| / ||d*|| (0 when both are zero, inf when only d* is)."""
    d, d_star = _f64(d), _f64(d_star)
    return _ratio(float(torch.linalg.vector_norm(d - d_star)), float(torch.linalg.vector_norm(d_star)))


def cosine(d: torch.Tensor, d_star: torch.Tensor) -> float:
    """Cosine of the angle between d and d*, clamped to [-1, 1] (rounding can step a few ulps past
    it for parallel vectors); NaN when either is zero."""
    d, d_star = _f64(d), _f64(d_star)
    norms = float(torch.linalg.vector_norm(d)) * float(torch.linalg.vector_norm(d_star))
    return min(1.0, max(-1.0, float((d * d_star).sum()) / norms)) if norms > 0 else math.nan


def damped_relative_error(d: torch.Tensor, d_star: torch.Tensor, apply_damped: Operator) -> float:
    """||d - d*||_A / ||d*||_A with ``apply_damped(v) = (F + lambda I) v`` (A symmetric positive definite)."""
    d, d_star = _f64(d), _f64(d_star)
    error = d - d_star
    error_sq = max(float((error * _f64(apply_damped(error))).sum()), 0.0)
    target_sq = max(float((d_star * _f64(apply_damped(d_star))).sum()), 0.0)
    return _ratio(math.sqrt(error_sq), math.sqrt(target_sq))


def score(d: torch.Tensor, reference: Reference) -> Scores:
    """All three metrics of ``d`` against ``reference.direction``."""
    return Scores(
        relative_error=relative_error(d, reference.direction),
        cosine=cosine(d, reference.direction),
        damped_relative_error=damped_relative_error(d, reference.direction, reference.apply_damped),
    )
