"""Environment states as a resumed run sees them: encoded, saved and loaded with weights_only=True."""

from __future__ import annotations

import importlib.util
import io
from typing import Any

import pytest
import torch

from ratbench.safe_state import decode, encode


def through_checkpoint(state: Any) -> Any:
    """``state`` after the trip a checkpoint makes (:mod:`ratbench.training.checkpoint`)."""
    buffer = io.BytesIO()
    torch.save(encode(state), buffer)
    buffer.seek(0)
    return decode(torch.load(buffer, weights_only=True))


needs_envpool = pytest.mark.skipif(importlib.util.find_spec("envpool") is None,
                                   reason="envpool is not installed (pip install 'ratbench[envpool]')")
"""For test modules of the EnvPool backends: checks the package without importing it, since envpool must be
imported after EGL is loaded (envs.envpool_backend.import_envpool) for DMC renders to work in one process."""
