"""The Gram route's dense kernels, one thread: x x^T and the damped Gram's Cholesky factor and solve.

``route`` ``lapack`` is what ratbench runs on CPU (:mod:`ratbench.symmetric`: SciPy's OpenBLAS syrk,
potrf, potrs); ``torch`` is the torch route it replaced there (blocked upper-triangle product,
``torch.linalg.cholesky_ex``, ``torch.cholesky_solve``) and still runs on CUDA. Both stay in the
history so the gap between them is visible on every machine asv runs on.
"""

from __future__ import annotations

import torch

from threadpoolctl import threadpool_limits

from ratbench.symmetric import _blocked_self_gram, cholesky_lower, gram_lower

from .common import BATCH_SIZES, light_mode

ROUTES = ["lapack", "torch"]
WIDTH = 257  # a 256-wide layer's input with its bias column


class _OneThread:
    """Kernels on one thread (torch's and OpenBLAS's pools), restored on teardown."""

    def _one_thread(self, n: int) -> None:
        if light_mode() and n > 256:
            raise NotImplementedError("light mode")
        self._threads = torch.get_num_threads()
        self._limits = threadpool_limits(limits=1, user_api="blas")
        torch.set_num_threads(1)

    def teardown(self, *params):
        if hasattr(self, "_limits"):
            self._limits.restore_original_limits()
            torch.set_num_threads(self._threads)


class GramKernel(_OneThread):
    """x x^T for x (n, 257) float32: one hidden layer's activation Gram."""

    params = [BATCH_SIZES, ROUTES]
    param_names = ["n", "route"]

    def setup(self, n, route):
        self._one_thread(n)
        self.x = torch.randn(n, WIDTH, generator=torch.Generator().manual_seed(n))
        self.run = (lambda: gram_lower(self.x)) if route == "lapack" else (lambda: _blocked_self_gram(self.x))

    def time_gram(self, n, route):
        self.run()


class CholeskyKernel(_OneThread):
    """Factor and solve (K / n + 0.1 I) u = b, K the Gram of a random (n, 257) float32 matrix."""

    params = [BATCH_SIZES, ROUTES]
    param_names = ["n", "route"]

    def setup(self, n, route):
        self._one_thread(n)
        gen = torch.Generator().manual_seed(n)
        x = torch.randn(n, WIDTH, generator=gen)
        self.m = x @ x.T / n + 0.1 * torch.eye(n)
        self.b = torch.randn(n, generator=gen)
        self.route = route

    def time_factor_and_solve(self, n, route):
        m = self.m.clone()
        if self.route == "lapack":
            factor, _ = cholesky_lower(m)
            factor.solve(self.b)
        else:
            chol, _ = torch.linalg.cholesky_ex(m)
            torch.cholesky_solve(self.b[:, None], chol)
