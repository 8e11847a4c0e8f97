"""The dense float64 reference ``d* = (F + lambda I)^-1 g`` (docs/design.md section 4).

The truth the accuracy suite scores every solver against, computed
independently of the curvature layer's hooks and of the Woodbury code path:

- J is materialised row by row with ``torch.func`` per-sample gradients
  (:func:`ratbench.per_sample.per_sample_grads`) on a float64 deep copy of
  the policy, scaled by ``sqrt(w)`` as in :mod:`ratbench.problem`.
- Parameter space (``P <= max_params``): ``F = J^T J / N`` and
  ``g = J^T b / N`` are formed explicitly and
  ``d* = scipy.linalg.solve(F + lambda I, g, assume_a='pos')``.
- Sample space (larger P, where the P x P Fisher does not fit):
  ``(J J^T / N + lambda I) u = b`` by SciPy in float64, ``d* = J^T u / N``.

A joint problem's rows add the value term ``2 eps_i grad V_i`` (:class:`ratbench.problem.ValueTerm`), from
``torch.func`` per-sample gradients of the value module's copy; k right-hand sides give (P, k) solutions.

Everything the reference returns is a float64 CPU tensor. The mode that was
used is recorded in :attr:`Reference.mode` and shown in every output.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.linalg
import torch

from ratbench.errors import RatbenchError
from ratbench.per_sample import refuse_foreign, summed_per_sample_grads
from ratbench.problem import NPGProblem

DEFAULT_MAX_PARAMS = 20_000
"""Largest P solved in parameter space (F takes 8 P^2 bytes: 3.2 GB at the cutoff)."""

MODES = ("auto", "parameter", "sample")
_CHUNK_ELEMENTS = 1 << 24  # rows of J materialised per vmap call: about 128 MB of float64 at a time


@dataclass
class Reference:
    """The float64 reference solution of one problem (all tensors float64, CPU).

    mode: 'parameter' (P x P SciPy solve) or 'sample' (N x N SciPy solve);
    direction: d* (P,); gradient: g (P,); jacobian: S (N, P), rows
    ``sqrt(w_i) grad log pi_i``; fisher: F (P, P) in parameter mode, None in
    sample mode; condition_number: kappa(F + lambda I) from the spectrum of
    the smaller Gram matrix; residual: ||(F + lambda I) d* - g|| / ||g||;
    seconds: wall time of J, the solve and the checks; rhs: b = sqrt(w) A (N,) or (N, k), the
    sample-space right-hand side; operator_norm: ||F + lambda I||_2 = lambda_max(F) + lambda, which is
    also ||S S^T / N + lambda I||_2 (F and the Gram share their nonzero eigenvalues).
    """

    mode: str
    damping: float
    direction: torch.Tensor
    gradient: torch.Tensor
    jacobian: torch.Tensor
    fisher: Optional[torch.Tensor]
    condition_number: float
    residual: float
    seconds: float
    rhs: torch.Tensor
    operator_norm: float

    @property
    def n(self) -> int:
        return int(self.jacobian.shape[0])

    @property
    def num_params(self) -> int:
        return int(self.jacobian.shape[1])

    def apply_damped(self, v: torch.Tensor) -> torch.Tensor:
        """(F + lambda I) v for a flat (P,) v; in sample mode J^T (J v) / N + lambda v without forming F."""
        v = v.detach().to(device="cpu", dtype=torch.float64)
        if self.fisher is not None:
            return self.fisher @ v + self.damping * v
        return self.jacobian.T @ (self.jacobian @ v) / self.n + self.damping * v


def reference_mode(num_params: int, max_params: int = DEFAULT_MAX_PARAMS) -> str:
    """'parameter' when the P x P system is small enough, else 'sample'."""
    return "parameter" if num_params <= max_params else "sample"


def dense_jacobian(problem: NPGProblem, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Materialised scaled scores S (N, P) of ``problem`` in ``dtype``, on the problem's device.

    Row i is ``sqrt(w_i) grad_theta log pi(a_i | s_i)`` (plus ``2 eps_i grad V_i`` for a joint problem) over
    ``problem.params`` (flat order of :mod:`ratbench.problem`), from ``torch.func`` per-sample
    gradients of a deep copy of the policy (and value module) cast to ``dtype``; the problem's
    modules are never touched. Rows are computed in chunks to bound memory.
    """
    parts = problem.likelihood_parts()
    refuse_foreign([module for module, _ in parts], problem.params)  # before copying: the copies cannot name it
    memo: dict = {}  # one copy of the modules together, so a shared trunk stays shared
    modules = copy.deepcopy([module for module, _ in parts], memo)
    for module in modules:
        module.to(device=problem.device, dtype=dtype)  # in place: the copied Parameters keep their identity
    params = [memo[id(q)] for q in problem.params]
    data = [_cast(d, dtype) for _, d in parts]
    obs = _cast(problem.obs, dtype)
    n, p = problem.n, problem.num_params
    jacobian = torch.empty(n, p, dtype=dtype, device=problem.device)
    rows = max(1, _CHUNK_ELEMENTS // p)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        chunk = [(module, d[start:stop]) for module, d in zip(modules, data)]
        jacobian[start:stop] = summed_per_sample_grads(chunk, params, obs[start:stop])
    if problem.weights is not None:
        jacobian *= problem.weights.to(dtype).sqrt()[:, None]
    return jacobian


def compute_reference(problem: NPGProblem, mode: str = "auto", max_params: int = DEFAULT_MAX_PARAMS) -> Reference:
    """Solve ``problem`` in float64 with SciPy; ``mode`` is 'auto', 'parameter' or 'sample'.

    'auto' picks parameter space when ``P <= max_params``.
    """
    if mode not in MODES:
        raise RatbenchError(f"unknown reference mode {mode!r}; valid modes: {', '.join(MODES)}")
    t0 = time.perf_counter()
    chosen = reference_mode(problem.num_params, max_params) if mode == "auto" else mode
    jacobian = dense_jacobian(problem).cpu()
    if not bool(torch.isfinite(jacobian).all()):
        raise RatbenchError("the policy's per-sample scores contain NaN or inf; check the policy and its inputs")
    advantages = problem.advantages.detach().cpu().to(torch.float64)
    scale = _sqrt_weights(problem)
    rhs = (scale if advantages.dim() == 1 else scale[:, None]) * advantages
    reference = reference_from_scores(jacobian, rhs, problem.damping, chosen)
    reference.seconds = time.perf_counter() - t0
    return reference


def reference_from_scores(jacobian: torch.Tensor, rhs: torch.Tensor, damping: float, mode: str = "parameter") -> Reference:
    """The SciPy float64 solution for given scaled scores S (N, P) and right-hand side b (N,) or (N, k), in
    'parameter' or 'sample' space: :func:`compute_reference` after its Jacobian, and the reference of any other
    scores (a float32 capture upcast, to score a solve against the data it saw)."""
    t0 = time.perf_counter()
    n, lam = jacobian.shape[0], damping
    j = jacobian.detach().cpu().to(torch.float64).numpy()
    b = rhs.detach().cpu().to(torch.float64).numpy()
    g = j.T @ b / n
    fisher = None
    if mode == "parameter":
        fisher_np = j.T @ j / n
        direction = _solve_spd(fisher_np + lam * np.eye(j.shape[1]), g)
        fisher = torch.from_numpy(fisher_np)
        spectrum = np.linalg.eigvalsh(fisher_np) if j.shape[1] <= n else np.linalg.eigvalsh(j @ j.T / n)
    else:
        gram = j @ j.T / n
        u = _solve_spd(gram + lam * np.eye(n), b)
        direction = j.T @ u / n
        spectrum = np.linalg.eigvalsh(gram) if n <= j.shape[1] else np.linalg.eigvalsh(j.T @ j / n)
    smallest = 0.0 if j.shape[1] > n else max(float(spectrum[0]), 0.0)
    reference = Reference(
        mode=mode,
        damping=lam,
        direction=torch.from_numpy(direction),
        gradient=torch.from_numpy(g),
        jacobian=torch.from_numpy(j),
        fisher=fisher,
        condition_number=(float(spectrum[-1]) + lam) / (smallest + lam),
        residual=float("nan"),
        seconds=0.0,
        rhs=torch.from_numpy(b),
        operator_norm=max(float(spectrum[-1]), 0.0) + lam,
    )
    g_norm = float(np.linalg.norm(g))
    misfit = float(torch.linalg.vector_norm(reference.apply_damped(reference.direction) - reference.gradient))
    reference.residual = misfit / g_norm if g_norm > 0 else misfit
    reference.seconds = time.perf_counter() - t0
    return reference


def _solve_spd(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return scipy.linalg.solve(matrix, rhs, assume_a="pos")
    except np.linalg.LinAlgError:
        raise RatbenchError(
            "the float64 reference system is not numerically positive definite; increase the damping"
        ) from None


def _cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.detach().to(dtype) if t.is_floating_point() else t.detach()


def _sqrt_weights(problem: NPGProblem) -> torch.Tensor:
    if problem.weights is None:
        return torch.ones(problem.n, dtype=torch.float64)
    return problem.weights.detach().cpu().to(torch.float64).sqrt()
