"""CPU threads for torch: never more than a run's share of the cores, and waiting threads that sleep.

Two torch processes whose OpenMP pools busy-wait slow each other down about 4x on a 2-core machine
(issue 9: Hopper at 250-350 steps/s beside one CPU-bound process with torch's 2 threads, about 1,200
with one). Two rules avoid it:

- ``OMP_WAIT_POLICY=PASSIVE`` (set when :mod:`ratbench` is imported, before torch loads its OpenMP
  runtime, unless the user set it): idle pool threads sleep instead of spinning.
- :func:`auto_threads`: a run's default thread count is its share of the cores this process may use,
  ``cores // jobs`` (``jobs``: runs started together, ``RATBENCH_JOBS`` in the suite runner's
  children), lowered by the cores other processes keep busy *now* (:func:`busy_cores`: /proc/stat
  sampled over a quarter second, not the 1-minute load average, which lags: a run started right after
  another process ended saw a load of 1.1 on an idle 2-core machine and took 1 thread), and at least 1.

:func:`set_compute_threads` applies the count to torch and to SciPy's OpenBLAS alike.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

JOBS_VARIABLE = "RATBENCH_JOBS"


def prefer_passive_waiting() -> None:
    """Ask OpenMP for sleeping idle threads; only effective before torch is first imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def concurrent_jobs() -> int:
    """Runs started together with this one: ``RATBENCH_JOBS`` (set by ``--suite --jobs N``), else 1."""
    try:
        return max(1, int(os.environ.get(JOBS_VARIABLE, "1")))
    except ValueError:
        return 1


SAMPLE_SECONDS = 0.25


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over every CPU from /proc/stat's first line; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return total - idle, total


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """How many cores other processes keep busy now: /proc/stat's busy share over ``seconds`` (this
    process sleeps meanwhile) times the CPU count; the 1-minute load average where /proc/stat is missing."""
    before = _cpu_times()
    if before is not None:
        time.sleep(seconds)
    after = _cpu_times()
    if before is None or after is None:  # no /proc/stat (or it vanished between the readings)
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    total = after[1] - before[1]
    return 0.0 if total <= 0 else (after[0] - before[0]) / total * (os.cpu_count() or 1)


def auto_threads(jobs: int | None = None, busy: float | None = None) -> int:
    """max(1, min(cores // jobs, cores - round(busy))): this run's share, minus cores busy now."""
    cores = available_cores()
    jobs = concurrent_jobs() if jobs is None else max(1, jobs)
    if busy is None:
        busy = busy_cores()
    return max(1, min(cores // jobs, cores - int(round(busy))))


def choose_threads(threads: int | None) -> tuple[int, str]:
    """The thread count for a run whose config says ``threads`` (None: :func:`auto_threads`), and why."""
    if threads is not None:
        return threads, "set by threads"
    cores, jobs, busy = available_cores(), concurrent_jobs(), busy_cores()
    return auto_threads(jobs, busy), f"auto: {cores} cores for {jobs} run(s), {busy:.1f} busy now"


def set_compute_threads(threads: int | None) -> int:
    """Use ``threads`` (None: :func:`choose_threads`'s automatic count) threads in torch and in the BLAS
    that SciPy ships (OpenBLAS, which :mod:`ratbench.symmetric` calls on CPU and which keeps its own
    pool); returns the count."""
    import torch
    from threadpoolctl import threadpool_limits

    import ratbench.symmetric  # noqa: F401  (loads SciPy's BLAS, so that the limit reaches it)

    count = choose_threads(threads)[0]
    torch.set_num_threads(count)
    threadpool_limits(limits=count, user_api="blas")
    return count


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch threads, then restore the previous count. The rollout uses 1:
    its forwards are 32-row products, where a second thread costs more in synchronisation than it saves
    (Hopper, 256 steps of 32 envs, quiet machine: 0.22 s of policy forwards with 2 threads, 0.11 s with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
