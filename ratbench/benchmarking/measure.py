"""Wall time and peak memory of one call, on CPU or CUDA.

CUDA: ``torch.cuda`` peak allocated bytes, with a synchronise before each
clock read. CPU: PyTorch's CPU allocator keeps no statistics, so a sampler
thread reads the process's resident set size (``/proc/self/statm``) every
``interval`` seconds; the peak is the highest RSS seen minus the RSS before
the call. Large tensors are mmap-ed and returned to the OS when freed, so
this tracks the working set of big buffers; it is a measurement with the
sampling interval's resolution, not an allocator count.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"  # Linux: sizes of this process in pages, the resident set second


@dataclass
class Measurement:
    seconds: float
    peak_bytes: int
    value: Any = None


def cpu_memory_measured() -> bool:
    """Whether this OS offers the RSS probe the CPU peak needs (Linux's /proc); elsewhere CPU peaks read 0."""
    return os.path.exists(_STATM)


def _rss_bytes() -> int:
    try:
        with open(_STATM) as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: no cheap RSS probe
        return 0


class _RssSampler(threading.Thread):
    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = _rss_bytes()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, _rss_bytes())


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], Any], device: torch.device | str = "cpu", interval: float = 5e-4) -> Measurement:
    """Run ``fn()`` once; return its wall time, peak extra memory and value."""
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        value = fn()
        synchronize(device)
        seconds = time.perf_counter() - t0
        return Measurement(seconds, torch.cuda.max_memory_allocated(device) - base, value)
    base = _rss_bytes()
    sampler = _RssSampler(interval)
    sampler.start()
    t0 = time.perf_counter()
    try:
        value = fn()
    finally:
        seconds = time.perf_counter() - t0
        peak = sampler.stop()
    return Measurement(seconds, max(0, peak - base), value)
