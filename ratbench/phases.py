"""Wall time per phase of a training iteration, recorded only when asked for.

``with PHASES("env_step"): ...`` costs one attribute check while recording is off (the default), so
the phases stay in the training code for good. :mod:`ratbench.training.speed_report` switches
recording on for a few iterations and prints where the time goes. Phases may nest (``gram`` and
``cholesky`` inside a solve); each name accumulates its own wall time, with the device synchronised
before each clock read on CUDA.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Callable, Iterator, Optional


class Phases:
    def __init__(self) -> None:
        self.enabled = False
        self.totals: dict[str, float] = defaultdict(float)
        self.sync: Optional[Callable[[], None]] = None

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        if self.sync is not None:
            self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync is not None:
                self.sync()
            self.totals[name] += time.perf_counter() - start

    @contextlib.contextmanager
    def recording(self, sync: Optional[Callable[[], None]] = None) -> Iterator[dict[str, float]]:
        """Record into a fresh dict of totals (seconds per phase name) for the duration."""
        self.enabled, self.sync, self.totals = True, sync, defaultdict(float)
        try:
            yield self.totals
        finally:
            self.enabled, self.sync = False, None


PHASES = Phases()
