"""How close a direction d is to the reference d* (all computed in float64).

- relative error ``||d - d*|| / ||d*||`` (Euclidean);
- cosine ``d . d* / (||d|| ||d*||)`` (NaN when either vector is zero);
- relative error in the (F + lambda I) norm
  ``||d - d*||_A / ||d*||_A`` with ``||v||_A^2 = v^T (F + lambda I) v``: the
  norm the regularised NPG objective measures, in which CG's error decreases
  monotonically.

For k right-hand sides (d and d* of shape (P, k)) the norms are Frobenius norms and the inner products
sum over the columns: the metrics of the stacked solution.

Backward errors (how small a change of the problem makes the computed answer exact; Rigal and Gaches 1967,
Higham, *Accuracy and Stability of Numerical Algorithms*, Thm 7.1), with the dense float64 operator of the
reference, A = F + lambda I, G = S S^T / N (S the scaled scores) and b the sample-space right-hand side:

- parameter space, for a route that solves A d = g: ``eta(d) = ||A d - g|| / (||A||_2 ||d|| + ||g||)``;
- sample space, for a route that solves (G + lambda I) u = b and maps back d = S^T u / N (woodbury,
  kaczmarz): ``max(eta_s, eta_map)`` with ``eta_s = ||(G + lambda I) u - b|| / (||G + lambda I||_2 ||u|| +
  ||b||)`` and ``eta_map = ||d - S^T u / N|| / (||S||_2 ||u|| / N)``, the smallest relative change of S that
  makes the map exact. A parameter-space eta of such a route is not bounded by c eps: a perturbation E of the
  sample-space solve reaches the residual as S^T E u / N, of size up to sqrt(kappa(G + lambda I)) c eps
  relative to ||A|| ||d|| (5.6e3 eps64 measured on hopper-rollout-small at lambda 1e-10).
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


def _norm(v: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(v))


def backward_error(d: torch.Tensor, reference: Reference) -> float:
    """Parameter-space normwise backward error of d (P,) or (P, k) for (F + lambda I) d = g (module doc)."""
    d = _f64(d).reshape(reference.gradient.shape)
    residual = _norm(reference.apply_damped(d) - reference.gradient)
    return _ratio(residual, reference.operator_norm * _norm(d) + _norm(reference.gradient))


def sample_backward_error(u: torch.Tensor, d: torch.Tensor, reference: Reference) -> float:
    """max(eta_s, eta_map) of a sample-space route's iterate u (N,) or (N, k) and direction d (module doc)."""
    s, n, lam = reference.jacobian, reference.n, reference.damping
    u, d = _f64(u).reshape(reference.rhs.shape), _f64(d).reshape(reference.gradient.shape)
    mapped = s.T @ u / n
    eta_s = _ratio(_norm(s @ mapped + lam * u - reference.rhs), reference.operator_norm * _norm(u) + _norm(reference.rhs))
    s_norm = math.sqrt(max(reference.operator_norm - lam, 0.0) * n)  # ||S||_2 = sqrt(N lambda_max(F))
    eta_map = _ratio(_norm(d - mapped), s_norm * _norm(u) / n)
    return max(eta_s, eta_map)
