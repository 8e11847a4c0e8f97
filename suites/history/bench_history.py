"""Speed, memory and accuracy per commit: the benchmarks behind the committed history pages (results/asv).

They use only what the project has offered since its accuracy and speed suites began (``build_problem``,
``method_runner`` and ``run_suite``, whose module moved once), so one set of pages covers the whole history:
the lean update, the OpenBLAS Gram route, the conv capture. ``ratbench history`` runs them for a list of
commits and publishes the pages (README, "Speed and accuracy history").

- ``History.time_direction`` / ``peakmem_direction``: one direction (capture pass included) or the vanilla
  backward on the Humanoid-sized Gaussian MLP (N = 1,024, 256 x 256) and the small CNN (N = 256, 3 x 32 x 32).
- ``Accuracy.track_worst_relative_error``: each solver's largest ``||d - d*|| / ||d*||`` over the quick
  accuracy families that hold a contract for it, in float64 and float32 (damping 0.1);
  ``track_contract_margin``: the smallest ratio of a bound to the error it bounds over the same records (above 1:
  every contract met with room; the contract is the backward error since issue 27, the forward error before).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import ratbench

try:
    from ratbench.benchmarking import speed as sp
except ImportError:  # before commit 4118b6f the speed workloads lived in ratbench/speed.py
    from ratbench import speed as sp

_TREE = os.environ.get("RATBENCH_HISTORY_TREE")  # ratbench.history.HISTORY_TREE, not imported: old commits lack it


def _refuse_other_checkouts(module) -> None:
    """In a history run, ``module`` must come from the commit's checkout, not from whatever is installed."""
    if _TREE and not Path(module.__file__).resolve().is_relative_to(Path(_TREE).resolve()):
        raise ImportError(f"this history run measures {_TREE} but imported {module.__name__} from {module.__file__}")


_refuse_other_checkouts(ratbench)

WORKLOADS = {"mlp-gaussian": (1024, 256), "cnn-categorical": (256, 32)}
METHODS = ["vanilla", "woodbury", "kaczmarz", "cg", "kfac"]
SOLVERS = ["woodbury", "kaczmarz", "cg", "diagonal", "kfac"]
DTYPES = ["float64", "float32"]


class History:
    params = [list(WORKLOADS), METHODS]
    param_names = ["policy", "method"]
    timeout = 600
    repeat = (3, 10, 20.0)

    def setup(self, policy, method):
        n, width = WORKLOADS[policy]
        # suites.speed.common.light_mode's rule, restated: that module imports what old commits lack
        if os.environ.get("RATBENCH_ASV_LIGHT", "") not in ("", "0") and n > 256:  # CI's quick check
            raise NotImplementedError("RATBENCH_ASV_LIGHT is set: the N = 1,024 workload is skipped")
        problem = sp.build_problem(n, width, policy, "cpu")
        self.run = sp.method_runner(method, problem)
        self.run()  # warm-up: first-call costs (torch.func, LAPACK) are not what the history compares

    def time_direction(self, policy, method):
        self.run()

    def peakmem_direction(self, policy, method):
        self.run()


def _margin(record: dict) -> float:
    """bound / error of one record with a contract (both key sets the project has used), inf without one."""
    if record.get("contract") in (None, "none"):
        return math.inf
    if "backward_tolerance" in record:
        error, bound = record["backward_error"], record["backward_tolerance"]
    else:
        error, bound = record["relative_error"], record["contract_tolerance"]
    if error is None or error != error:
        return 0.0
    return bound / error if error > 0 else math.inf


class Accuracy:
    params = [SOLVERS, DTYPES]
    param_names = ["solver", "dtype"]
    timeout = 1200

    def setup_cache(self):
        import torch

        from suites.accuracy import runner
        from suites.accuracy.families import quick_set
        from suites.accuracy.runner import run_suite

        _refuse_other_checkouts(runner)

        records = {}
        for dtype in DTYPES:
            try:
                _, found = run_suite(quick_set(), SOLVERS, dtype=getattr(torch, dtype), progress=False)
            except TypeError:  # before the suite had a progress bar to turn off
                _, found = run_suite(quick_set(), SOLVERS, dtype=getattr(torch, dtype))
            for record in found:
                records.setdefault((record["solver"], dtype), []).append(record)
        return records

    def track_worst_relative_error(self, records, solver, dtype):
        checked = [r for r in records[(solver, dtype)] if r.get("contract") not in (None, "none")]
        return max((r["relative_error"] for r in checked), default=float("nan"))

    def track_contract_margin(self, records, solver, dtype):
        margins = [_margin(r) for r in records[(solver, dtype)]]
        finite = [m for m in margins if m != math.inf]
        return min(finite, default=float("nan"))

    track_worst_relative_error.unit = "relative error"
    track_contract_margin.unit = "bound / error"
