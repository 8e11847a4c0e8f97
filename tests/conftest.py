"""Hypothesis profiles: CI (the CI environment variable set) draws the same examples on every run.

Locally, examples are random and failures are replayed from .hypothesis/; in CI the fresh clone has
no example database, so derandomising keeps a landing decision from hinging on one lucky draw.
`HYPOTHESIS_PROFILE=dev` (or any registered name) overrides the choice.
"""

import os

from hypothesis import settings

# No deadline: hypothesis's per-example time limit is a wall-clock assert, and on a shared, loaded machine it fails
# correct code (an evaluation-schedule example of 138,055 loop steps took 268 ms beside two training runs, 142 ms alone).
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
