"""Run solvers on accuracy problems and score them against the float64 reference.

One record per (problem, solver): the metrics of :mod:`ratbench.metrics` (forward errors and the
backward error of the solver's route), the solver's own clock (capture included, callback excluded), peak memory
from :func:`ratbench.benchmarking.measure.measure`, iterations and passes, the contract
verdict, and the convergence curve (relative error after every iteration of
an iterative solver, recorded through the solver callback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from tqdm import tqdm

from ratbench.errors import RatbenchError
from ratbench.benchmarking.measure import measure
from ratbench.metrics import backward_error, relative_error, sample_backward_error, score
from ratbench.problem import NPGProblem
from ratbench.reference import DEFAULT_MAX_PARAMS, Reference, compute_reference
from solvers import Progress, SolveResult, make_solver, solver_options
from suites.accuracy.contracts import (CONTRACTS, FORWARD_CHECKED_BELOW, backward_tolerance, convergence_budget,
                                      forward_bound)
from suites.accuracy.families import get_family

SolverOptions = dict[str, dict[str, Any]]

RECORD_FIELDS = (
    "problem", "solver", "dtype", "device", "damping", "seed", "n", "num_params", "reference_mode",
    "condition_number", "relative_error", "cosine", "damped_relative_error", "backward_error", "backward_space",
    "seconds", "peak_memory_bytes", "iterations", "passes", "solver_residual", "backward_tolerance",
    "forward_tolerance", "contract", "error", "options", "curve",
)
"""Keys of one record, in output order (documented in the README's accuracy section)."""


@dataclass
class ProblemInfo:
    """What the table and the JSON say about one problem and its reference."""

    name: str
    n: int
    num_params: int
    reference_mode: str
    reference_seconds: float
    condition_number: float
    reference_residual: float
    exact_for: list[str]


def validate_options(options: SolverOptions) -> None:
    """Build each solver once with the user's options so a bad option or value fails before any work."""
    for name, given in options.items():
        make_solver(name, **given)


def effective_options(solver: str, problem: NPGProblem, options: SolverOptions) -> dict[str, Any]:
    """The suite's convergence budget for ``solver`` on ``problem``, overridden by the user's options."""
    budget = convergence_budget(solver, problem.dtype, problem.n, problem.num_params)
    return {**budget, **options.get(solver, {})}


def run_pair(problem: NPGProblem, reference: Reference, solver: str, options: dict[str, Any], exact_for: list[str]) -> dict[str, Any]:
    """Solve ``problem`` once with ``solver`` and score the direction; returns one record."""
    curve: list[dict[str, float]] = []

    def on_progress(progress: Progress) -> None:
        curve.append(
            {
                "iteration": progress.iteration,
                "passes": progress.passes + 1.0,  # + the capture pass, as in SolveStats.passes
                "seconds": progress.elapsed,
                "relative_error": relative_error(progress.direction, reference.direction),
            }
        )

    contract = CONTRACTS.get(solver)
    route = "parameter" if contract is None else contract.route
    tolerance = backward_tolerance(solver, problem.dtype, problem.n, options.get("tol"), exact_for)
    record: dict[str, Any] = {
        "problem": problem.name,
        "solver": solver,
        "dtype": str(problem.dtype).removeprefix("torch."),
        "device": str(problem.device),
        "damping": problem.damping,
        "n": problem.n,
        "num_params": problem.num_params,
        "options": {**solver_options(solver), **options},
        "reference_mode": reference.mode,
        "condition_number": reference.condition_number,
        "backward_tolerance": tolerance,
        "forward_tolerance": None,
    }
    try:
        measurement = measure(lambda: make_solver(solver, **options).solve(problem, callback=on_progress), device=problem.device)
    except RatbenchError as err:
        nan = math.nan
        record.update(relative_error=nan, cosine=nan, damped_relative_error=nan, backward_error=nan,
                      backward_space=route, seconds=nan, peak_memory_bytes=None, iterations=None, passes=nan,
                      solver_residual=nan, error=str(err))
    else:
        result = measurement.value
        record.update(score(result.direction, reference).as_dict())
        record.update(backward_errors(result, reference, route))
        if tolerance is not None:
            bound = forward_bound(record["backward_space"], tolerance, reference, result.dual)
            record["forward_tolerance"] = bound if bound <= FORWARD_CHECKED_BELOW else None
        record.update(
            seconds=result.stats.seconds,
            peak_memory_bytes=measurement.peak_bytes,
            iterations=result.stats.iterations,
            passes=result.stats.passes,
            solver_residual=result.stats.residual,
            error=None,
        )
    record["contract"] = verdict(record, tolerance)
    record["curve"] = curve
    return record


def backward_errors(result: SolveResult, reference: Reference, route: str) -> dict[str, Any]:
    """The backward error of the route the solver took: in sample space when it returns its sample-space
    iterate (``dual``) and its contract's route is the sample one, else in parameter space."""
    if route == "sample" and result.dual is not None:
        return {"backward_error": sample_backward_error(result.dual, result.direction, reference), "backward_space": "sample"}
    return {"backward_error": backward_error(result.direction, reference), "backward_space": "parameter"}


def verdict(record: dict[str, Any], tolerance: Optional[float]) -> str:
    """'pass', 'fail' or 'none' (report-only): the backward error within its bound and, where it is checked,
    the forward error within the bound that implies; a NaN error fails."""
    if tolerance is None:
        return "none"
    forward = record["forward_tolerance"]
    backward_ok = record["backward_error"] <= tolerance
    return "pass" if backward_ok and (forward is None or record["relative_error"] <= forward) else "fail"


def run_suite(
    problems: list[str],
    solvers: list[str],
    *,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    damping: float = 0.1,
    seed: int = 0,
    options: Optional[SolverOptions] = None,
    max_params: int = DEFAULT_MAX_PARAMS,
    progress: bool = True,
) -> tuple[list[ProblemInfo], list[dict[str, Any]]]:
    """Every solver on every problem; one reference per problem. Names must be valid (see families)."""
    options = options or {}
    infos, records = [], []
    with tqdm(total=len(problems) * len(solvers), unit="pair", disable=not progress, leave=False) as bar:
        for name in problems:
            family = get_family(name)
            bar.set_description(f"{name}: reference")
            problem = family.build(dtype=dtype, device=device, seed=seed, damping=damping)
            reference = compute_reference(problem, max_params=max_params)
            infos.append(
                ProblemInfo(
                    name=name,
                    n=problem.n,
                    num_params=problem.num_params,
                    reference_mode=reference.mode,
                    reference_seconds=reference.seconds,
                    condition_number=reference.condition_number,
                    reference_residual=reference.residual,
                    exact_for=list(family.exact_for),
                )
            )
            for solver in solvers:
                bar.set_description(f"{name}: {solver}")
                record = run_pair(problem, reference, solver, effective_options(solver, problem, options), list(family.exact_for))
                record["seed"] = seed
                records.append({key: record[key] for key in RECORD_FIELDS})
                bar.update(1)
            del problem, reference
    return infos, records


SWEEP_DAMPINGS = tuple(10.0**k for k in range(-10, 4))
"""The conditioning sweep's dampings, one per decade from 1e-10 to 1e3."""


def run_sweep(
    problems: list[str],
    solvers: list[str],
    dtypes: list[torch.dtype],
    *,
    dampings: tuple[float, ...] = SWEEP_DAMPINGS,
    device: str = "cpu",
    seed: int = 0,
    options: Optional[SolverOptions] = None,
    max_params: int = DEFAULT_MAX_PARAMS,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """:func:`run_suite` at every damping in every dtype: the records, each with its dtype, damping and kappa."""
    records = []
    with tqdm(total=len(dtypes) * len(dampings), unit="setting", disable=not progress, leave=False) as bar:
        for dtype in dtypes:
            for damping in dampings:
                bar.set_description(f"{str(dtype).removeprefix('torch.')}, damping {damping:.0e}")
                records += run_suite(problems, solvers, dtype=dtype, device=device, damping=damping, seed=seed,
                                     options=options, max_params=max_params, progress=False)[1]
                bar.update(1)
    return records
