"""K-FAC: per-layer Kronecker-factored Fisher blocks, damped inverse.

For each Linear/Conv2d layer with captured inputs a (bias column included)
and output-gradients g, the layer block of F is approximated by ``G (x) A``
(row-major vec of the [W | b] gradient) with A = E[sum_l a a^T] and
G = E[sum_l g g^T] / L (L = 1 for Linear; Grosse & Martens 2016 for conv).
Layers are treated as independent (block-diagonal F).

Damping convention: each block is inverted *exactly* with the same Tikhonov
lambda as every other solver, ``(G (x) A + lambda I)^-1``, through the
eigendecompositions of G and A (no factored pi-heuristic damping). K-FAC is
therefore exact when F is block diagonal across layers and each layer block
is exactly Kronecker (e.g. one Linear layer whose input is the same for all
samples). Parameters outside Linear/Conv2d layers (a log-std vector, ...)
form one extra block solved exactly with their per-sample scores.
"""

from __future__ import annotations

from typing import Optional

import torch

from ratbench.curvature import Curvature
from ratbench.problem import NPGProblem
from solvers.base import Callback, Clock, SolveResult, SolveStats, Solver, WarmStart, vanilla_gradient


class KFAC(Solver):
    name = "kfac"
    exact = "only when F is block diagonal over layers and each layer block is a Kronecker product"

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: Clock,
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:
        lam = problem.damping
        g = vanilla_gradient(curv, problem)
        d = torch.zeros_like(g)
        for layer in curv.layers:
            a_factor, g_factor = layer.kfac_factors()
            eval_a, vec_a = _psd_eigh(a_factor)
            eval_g, vec_g = _psd_eigh(g_factor)
            block = curv.layer_block(g, layer)
            rotated = vec_g.T @ block @ vec_a
            rotated = rotated / (eval_g[:, None] * eval_a[None, :] + lam)
            curv.add_layer_block(d, layer, vec_g @ rotated @ vec_a.T)
        if curv.other_scores is not None:
            scores = curv.other_scores
            m = scores.T @ scores / curv.n
            m.diagonal().add_(lam)
            curv.add_other_block(d, torch.linalg.solve(m, curv.other_block(g)))
        return SolveResult(d, None, SolveStats(iterations=1))


def _psd_eigh(factor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of a PSD Kronecker factor, in the factor's dtype.

    float32 ``eigh`` can fail to converge on the rank-deficient factors of
    small batches (LAPACK error 8199) or return non-finite values; then the
    decomposition is redone in float64 (the factors are only d x d). Rounding
    can leave eigenvalues slightly negative: they are clamped at 0 so that
    ``lambda_G lambda_A + lambda >= lambda > 0``.
    """
    try:
        evals, evecs = torch.linalg.eigh(factor)
        ok = bool(torch.isfinite(evals).all()) and bool(torch.isfinite(evecs).all())
    except torch.linalg.LinAlgError:
        ok = False
    if not ok:
        evals, evecs = torch.linalg.eigh(factor.to(torch.float64))
    return evals.clamp_min(0).to(factor.dtype), evecs.to(factor.dtype)
