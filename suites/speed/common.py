"""asv glue shared by the speed benchmarks: parameter grids, skips, a problem per setup.

asv treats ``NotImplementedError`` raised in ``setup`` as "skipped" (the
result shows as n/a), which is how CUDA without a GPU, the per-sample route
where J would not fit, and the light mode's heavy sizes are left out.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch._dynamo  # noqa: F401  (see below)

from ratbench.benchmarking import speed as sp
from ratbench.benchmarking.measure import synchronize
from ratbench.problem import NPGProblem

# torch.func imports torch._dynamo on first use, several seconds per process. asv's
# forkserver imports this module once before forking a child per benchmark case, so
# importing it here keeps that cost out of every case (and out of --quick timings).

DEVICES = ["cpu", "cuda"]
BATCH_SIZES = [256, 1024, 4096]
WIDTHS = [64, 256, 1024]

LIGHT_ENV = "RATBENCH_ASV_LIGHT"
LIGHT_MAX_N, LIGHT_MAX_WIDTH = 256, 256
"""In light mode, cases with N or width above these are skipped."""


def light_mode() -> bool:
    """``RATBENCH_ASV_LIGHT`` set to anything but empty/0: skip the heavy sizes (CI's quick check)."""
    return os.environ.get(LIGHT_ENV, "") not in ("", "0")


def skip_unless_runnable(device: str, n: int, width: int) -> None:
    """Raise NotImplementedError (asv: skip) for CUDA without a GPU and for light mode's heavy sizes."""
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("no CUDA device: cuda benchmarks are skipped")
    if light_mode() and (n > LIGHT_MAX_N or width > LIGHT_MAX_WIDTH):
        raise NotImplementedError(f"{LIGHT_ENV} is set: N={n}, width {width} is skipped")


def prepare(policy: str, device: str, n: int, width: int, method: str) -> tuple[NPGProblem, Callable[[], Any]]:
    """The problem and a runner that executes ``method`` once and waits for the device.

    Skips (NotImplementedError) where :func:`skip_unless_runnable` says so and where the
    per-sample route would need more than :data:`ratbench.benchmarking.speed.PER_SAMPLE_MAX_BYTES`.
    """
    skip_unless_runnable(device, n, width)
    problem = sp.build_problem(n, width, policy, device)
    if method == "per-sample" and not sp.per_sample_feasible(problem):
        raise NotImplementedError(
            f"per-sample route skipped: J would take {2 * sp.jacobian_bytes(problem) / 2**30:.1f} GiB "
            f"(limit {sp.PER_SAMPLE_MAX_BYTES / 2**30:.0f} GiB)"
        )
    run = sp.method_runner(method, problem)  # synchronises the device after each run
    synchronize(problem.device)
    return problem, run


def cuda_peak_bytes(run: Callable[[], Any], device: torch.device) -> int:
    """Peak CUDA memory allocated by one ``run()`` beyond what was allocated before it."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    run()
    return torch.cuda.max_memory_allocated(device) - base
