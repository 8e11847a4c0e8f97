"""Environment states as a resumed run sees them: encoded, saved and loaded with weights_only=True."""

from __future__ import annotations

import importlib.util
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, TypeVar

import pytest
import torch

from ratbench.safe_state import decode, encode

T = TypeVar("T")


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


def in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` (a module-level function) in a new interpreter, its result pickled back: for renders that
    must not share a process with the renderers this one made (EnvPool's DMC renderer beside dm_control's crashes
    Mesa: envs/envpool_dmc.py). A crash there fails the calling test (BrokenProcessPool) instead of the session."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()
