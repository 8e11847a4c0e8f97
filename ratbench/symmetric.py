"""Symmetric dense kernels of the Gram route: x x^T, Cholesky factor and solve.

CPU float32/float64 tensors go to the BLAS/LAPACK that SciPy ships (OpenBLAS) through zero-copy
NumPy views; other devices, dtypes and tensors that require grad stay in torch. Why: torch's CPU
wheel links MKL, which takes slow code paths on AMD CPUs. Measured on this project's 2-core AMD EPYC
machine, one thread, n = 1,024 float32, nothing else running: x x^T for d = 257 takes 2.3 ms with
OpenBLAS ``ssyrk`` (one triangle) against 5.2 ms for torch's ``x @ x.T`` (3.4 ms for the blocked
upper-triangle product this module falls back to), and the Cholesky factor takes 3.9 ms with
``spotrf`` against 12.7 ms with ``torch.linalg.cholesky_ex``.

Triangles: :func:`gram_lower` guarantees only the lower triangle (with the diagonal), which is all the
Cholesky factor reads; :func:`fill_upper` makes a full symmetric matrix where one is needed.
OpenBLAS keeps its own thread pool: :func:`ratbench.threads.set_compute_threads` sizes it with torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

_PREFIX = {torch.float32: "s", torch.float64: "d"}
_BLOCKED_MIN_WIDTH = 64  # below this width one product beats the blocked upper-triangle product


def _scipy_route(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype in _PREFIX and not t.requires_grad and t.numel() > 0 for t in tensors)


def gram_lower(x: torch.Tensor) -> torch.Tensor:
    """x x^T for x (n, d) as a C-contiguous (n, n) tensor whose lower triangle (diagonal included) is
    exact; the strictly upper triangle is unspecified."""
    if _scipy_route(x):
        a = x.detach().contiguous().numpy()
        syrk = getattr(_blas, _PREFIX[x.dtype] + "syrk")
        # a.T is the same memory in Fortran order: syrk(trans=1) forms a a^T in Fortran order with its
        # upper triangle set, which read back in C order is the lower triangle.
        return torch.from_numpy(syrk(1.0, a.T, trans=1, lower=0)).T
    return _blocked_self_gram(x)


def _blocked_self_gram(x: torch.Tensor, parts: int = 8) -> torch.Tensor:
    """x x^T from the blocks on and above the diagonal, about (parts + 1) / (2 parts) of the flops
    (torch exposes no syrk); the lower triangle is filled by transposed copies, so the result is full."""
    n, d = x.shape
    if d < _BLOCKED_MIN_WIDTH or n < 2 * parts:
        return x @ x.T
    out = torch.empty(n, n, dtype=x.dtype, device=x.device)
    bounds = [(i * n) // parts for i in range(parts + 1)]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        block = x[start:stop] @ x[start:].T
        out[start:stop, start:] = block
        out[stop:, start:stop] = block[:, stop - start:].T
    return out


def fill_upper(m: torch.Tensor) -> torch.Tensor:
    """The full symmetric matrix whose lower triangle is that of the square ``m``."""
    lower = torch.ones(m.shape, dtype=torch.bool, device=m.device).tril_()
    return torch.where(lower, m, m.T)


@dataclass(frozen=True)
class CholeskyFactor:
    """A factored symmetric positive definite M: ``data`` is LAPACK's upper factor U (U^T U = M) in
    Fortran order when ``lapack``, else torch's lower factor L (L L^T = M)."""

    data: torch.Tensor
    lapack: bool

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """M^-1 rhs for rhs (n,) or (n, k)."""
        if rhs.dtype != self.data.dtype:
            raise ValueError(f"rhs is {rhs.dtype}, the factor {self.data.dtype}")
        if self.lapack:
            potrs = getattr(_lapack, _PREFIX[self.data.dtype] + "potrs")
            x, info = potrs(self.data.numpy(), rhs.detach().contiguous().numpy(), lower=0)
            if info != 0:
                raise ValueError(f"potrs: argument {-info} is invalid")
            return torch.from_numpy(x)
        if rhs.dim() == 2:
            return torch.cholesky_solve(rhs, self.data)
        return torch.cholesky_solve(rhs[:, None], self.data)[:, 0]


def cholesky_lower(m: torch.Tensor) -> tuple[CholeskyFactor, bool]:
    """Factor the symmetric positive definite matrix whose lower triangle is that of ``m`` (n, n).

    Returns (factor, ok): ``ok`` is False when the matrix is not numerically positive definite or holds
    NaN or inf.
    ``m`` may be overwritten."""
    if _scipy_route(m) and m.is_contiguous():
        potrf = getattr(_lapack, _PREFIX[m.dtype] + "potrf")
        # C-order m is Fortran-order m^T: its upper triangle is m's lower one. clean=0 leaves the
        # other triangle as it was instead of zeroing it (which costs as much as the factorisation).
        factor, info = potrf(m.numpy().T, lower=0, clean=0, overwrite_a=1)
        # potrf reports success on NaN input (torch's route does not); a NaN or inf anywhere in the
        # lower triangle reaches a later diagonal entry of U, so checking the diagonal catches it
        finite = bool(np.isfinite(np.diagonal(factor)).all())
        return CholeskyFactor(torch.from_numpy(factor), lapack=True), info == 0 and finite
    chol, info = torch.linalg.cholesky_ex(m)
    return CholeskyFactor(chol, lapack=False), int(info) == 0 and bool(torch.isfinite(chol.diagonal()).all())
