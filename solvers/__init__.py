"""Natural-gradient solvers behind one interface, and their registry.

>>> from solvers import make_solver
>>> solver = make_solver("kaczmarz", block_size=128, sweeps=4)
>>> result = solver.solve(problem)          # result.direction: (P,) ascent direction
"""

from __future__ import annotations

import inspect
from typing import Any

from ratbench.errors import RatbenchError, unknown_name
from solvers.base import Progress, SolveResult, SolveStats, Solver, WarmStart
from solvers.cg import ConjugateGradient
from solvers.diagonal import DiagonalFisher
from solvers.kaczmarz import Kaczmarz
from solvers.kfac import KFAC
from solvers.woodbury import Woodbury

SOLVERS: dict[str, type[Solver]] = {
    cls.name: cls for cls in (Woodbury, Kaczmarz, ConjugateGradient, DiagonalFisher, KFAC)
}


def solver_names() -> list[str]:
    """Registered solver names, in registry order."""
    return list(SOLVERS)


def solver_options(name: str) -> dict[str, Any]:
    """The options a solver accepts and their defaults."""
    cls = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {k: p.default for k, p in params.items() if k != "self" and p.kind not in variadic}


def make_solver(name: str, **options: Any) -> Solver:
    """Build a registered solver; unknown names and options raise RatbenchError."""
    cls = _lookup(name)
    valid = solver_options(name)
    bad = sorted(set(options) - set(valid))
    if bad:
        allowed = ", ".join(valid) if valid else "none"
        raise RatbenchError(f"solver {name!r} has no option {', '.join(map(repr, bad))}; its options: {allowed}")
    return cls(**options)


def _lookup(name: str) -> type[Solver]:
    if name not in SOLVERS:
        raise unknown_name("solver", name, SOLVERS)
    return SOLVERS[name]


__all__ = [
    "SOLVERS",
    "Progress",
    "SolveResult",
    "SolveStats",
    "Solver",
    "WarmStart",
    "make_solver",
    "solver_names",
    "solver_options",
]
