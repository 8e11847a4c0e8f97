"""Randomized block Kaczmarz on the sample-space system (RAT).

The Woodbury system ``M u = b`` with ``M = S S^T / N + lambda I`` is the
normal system of the consistent, underdetermined system
``[S, sqrt(N lambda) I] x = b``, x = (d, v), whose minimum-norm solution has
``d = d*``. One block step on rows B is an exact block-coordinate
minimisation of the quadratic ``f(u) = 1/2 u^T M u - u^T (b - S d_base)``:

    r_B  = b_B - S_B d - lambda u_B          (one J v on the block)
    du   = M_BB^-1 r_B                        (b x b Cholesky solve)
    u_B += du;  d += S_B^T du / N             (one J^T u on the block)

so ``f`` never increases, and from ``u = 0, d = 0`` the iterates converge to
the Woodbury solution. Each sweep draws a fresh random partition of the
batch into blocks of ``block_size`` rows (seeded).

Warm starts: ``WarmStart(dual=u0)`` starts from ``d = S^T u0 / N`` (a warm
start at the solution stays there). ``WarmStart(direction=d0)`` (e.g. the
previous minibatch's direction) starts the primal from d0 with ``u = 0``;
Kaczmarz then converges to the solution of the augmented system nearest
(d0, 0), which is ``d* + lambda (F + lambda I)^-1 d0``: d* only when d0 = 0
(even a d0 in the row space of S leaves a bias of that size).

``residual="original"`` reproduces the rule of the reference RAT code
(docs/design.md section 6), kept to compare against: the block right-hand side is
``b_B + S_B delta_prev`` where ``delta_prev`` is the previous block's
*increment* (the reference subtracts its previous descent step, which is
minus that increment), with no ``- lambda u_B`` term, and the returned
direction is the last increment alone, not an accumulated iterate.
"""

from __future__ import annotations

from typing import Optional

import torch

from ratbench.curvature import Curvature
from ratbench.errors import RatbenchError
from ratbench.problem import NPGProblem
from solvers.base import (
    Callback,
    Clock,
    Progress,
    SolveResult,
    SolveStats,
    Solver,
    WarmStart,
    dual_residual,
    integer_option,
    solve_damped_gram,
    tolerance_option,
)
from solvers.refine import DEFAULT_TOL, Refinement, refined_gram_solve, widened

RESIDUAL_RULES = ("block", "original")


class Kaczmarz(Solver):
    name = "kaczmarz"
    exact = "converges to d* as sweeps grow (residual='block'); exact after one sweep when block_size >= N"
    multi_rhs = True  # k right-hand sides share every block's Gram and Cholesky factor

    def __init__(
        self,
        block_size: int = 256,
        sweeps: int = 1,
        tol: Optional[float] = None,
        seed: int = 0,
        residual: str = "block",
        refine: bool = False,
        refine_tol: float = DEFAULT_TOL,
        refine_steps: int = 200,
    ):
        """block_size: rows per block; sweeps: maximum passes over the batch;
        tol: stop after a sweep whose relative residual ||b - S d - lambda u|| / ||b||
        is below tol (the check costs one extra J v pass per sweep and is counted);
        seed: seeds the block partitions; residual: 'block' (correct) or 'original';
        refine, refine_tol, refine_steps: each block solve in mixed precision as woodbury's (solvers/refine.py),
        with the iterates, residuals and products in float64 (direction and u come in float64)."""
        if residual not in RESIDUAL_RULES:
            raise RatbenchError(f"unknown kaczmarz residual rule {residual!r}; valid rules: {', '.join(RESIDUAL_RULES)}")
        self.block_size = integer_option("kaczmarz block_size", block_size, minimum=1)
        self.sweeps = integer_option("kaczmarz sweeps", sweeps, minimum=1)
        self.tol = None if tol is None else tolerance_option("kaczmarz tol", tol, allow_zero=False)
        self.seed = integer_option("kaczmarz seed", seed)
        self.residual = residual
        self.refinement = Refinement.from_options("kaczmarz", refine, refine_tol, refine_steps)

    def _solve(
        self,
        problem: NPGProblem,
        curv: Curvature,
        clock: Clock,
        callback: Optional[Callback],
        warm_start: Optional[WarmStart],
    ) -> SolveResult:
        n, lam = curv.n, problem.damping
        low = curv  # the factorisations' precision; with refinement the rest runs on its float64 copy
        if self.refinement is not None:
            curv = widened(low)
        b = problem.rhs().to(curv.dtype)
        u, d, d_base = self._start(curv, warm_start, problem.columns)
        generator = torch.Generator().manual_seed(self.seed)
        all_rows = torch.arange(n, device=curv.device)
        original = self.residual == "original"
        history: list[dict] = []
        step, residual = 0, float("nan")
        # S d over the whole batch, kept while every block is the whole batch (then S S^T du / N = r - lam du
        # needs no J v); known zero on a cold start.
        sd: Optional[torch.Tensor] = torch.zeros_like(b) if warm_start is None or (
            warm_start.direction is None and warm_start.dual is None) else None
        for _ in range(self.sweeps):
            order = torch.randperm(n, generator=generator).to(curv.device)
            for rows in torch.split(order, self.block_size):
                # A block of the whole batch is the same block in any order: take the rows as
                # they are (block=None) and skip gathering every layer's factors.
                rows, block = (all_rows, None) if rows.numel() == n else (rows, rows)
                s_d = sd[rows] if sd is not None else curv.jvp(d, block)
                r = b[rows] + s_d if original else b[rows] - s_d - lam * u[rows]
                if self.refinement is None:
                    du = solve_damped_gram(curv, lam, r, block)
                else:
                    du = refined_gram_solve(low, curv, lam, r, self.refinement, block).u
                u[rows] += du
                increment = curv.vjp(du, block) / n
                d = increment if original else d + increment
                if block is None and sd is not None:
                    sd = (r - lam * du) if original else sd + r - lam * du
                else:
                    sd = None
                step += 1
                record = {"iteration": step, "passes": curv.passes, "seconds": clock.elapsed()}
                if not original:
                    record["dual_objective"] = _dual_objective(d, d_base, u, b, lam, n)
                history.append(record)
                clock.report(callback, lambda t: Progress(step, curv.passes, t, d, float("nan")))
            if self.tol is not None:
                residual = dual_residual(curv, problem, d, u)
                history[-1]["residual"] = residual
                if residual < self.tol:
                    break
        if self.tol is None:
            with curv.uncounted():
                residual = dual_residual(curv, problem, d, u)
        stats = SolveStats(iterations=step, residual=residual, history=history)
        return SolveResult(d, problem.to_transformed_advantage(u), stats, dual=u, scores_direction=sd)

    @staticmethod
    def _start(curv: Curvature, warm: Optional[WarmStart], columns: Optional[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(u, d, d_base) with d = d_base + S^T u / N; with k right-hand sides each is (rows, k), and a
        one-column warm start starts every column."""
        tail = () if columns is None else (columns,)
        zeros_p = torch.zeros(curv.num_params, *tail, dtype=curv.dtype, device=curv.device)
        zeros_n = torch.zeros(curv.n, *tail, dtype=curv.dtype, device=curv.device)
        if warm is None or (warm.direction is None and warm.dual is None):
            return zeros_n, zeros_p, zeros_p
        for label, t, rows in (("dual", warm.dual, curv.n), ("direction", warm.direction, curv.num_params)):
            if t is not None and tuple(t.shape) not in {(rows,), (rows, *tail)}:
                raise RatbenchError(f"warm-start {label} must have shape {(rows, *tail)}, got {tuple(t.shape)}")

        def spread(t: torch.Tensor) -> torch.Tensor:
            t = t.to(curv.dtype)
            return (t[:, None].expand(-1, columns) if columns is not None and t.dim() == 1 else t).clone()

        if warm.dual is None:
            d0 = spread(warm.direction)
            return zeros_n, d0, d0.clone()
        u0 = spread(warm.dual)
        from_dual = curv.vjp(u0) / curv.n
        if warm.direction is None:
            return u0, from_dual, zeros_p
        d0 = spread(warm.direction)
        return u0, d0, d0 - from_dual


def _dual_objective(d: torch.Tensor, d_base: torch.Tensor, u: torch.Tensor, b: torch.Tensor, lam: float, n: int) -> float:
    """f(u) = 1/2 u^T M u - u^T (b - S d_base), from d - d_base = S^T u / N without touching S (summed over
    the columns of k right-hand sides)."""
    dd = d - d_base
    return float(0.5 * n * (dd * dd).sum() + 0.5 * lam * (u * u).sum() - (u * b).sum() + n * (d_base * dd).sum())
