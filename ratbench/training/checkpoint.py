"""Checkpoints: one torch file holding everything an exact resume needs.

Written atomically (:func:`ratbench.io.atomic_write_bytes`) as
``checkpoint.pt`` (the resume point) and, periodically, as
``checkpoints/iter_<iteration>.pt`` (the last ``keep`` are kept).
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_bytes

LATEST = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy global and python ``random`` states."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as checkpoint.pt and checkpoints/iter_<n>.pt, pruning older periodic copies."""
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    periodic = Path(run_dir) / "checkpoints" / f"iter_{state['iteration']:06d}.pt"
    atomic_write_bytes(periodic, data)
    path = atomic_write_bytes(Path(run_dir) / LATEST, data)
    copies = sorted(periodic.parent.glob("iter_*.pt"))
    for old in copies[: max(len(copies) - keep, 0)]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(run_dir) / LATEST
    if not path.is_file():
        raise RatbenchError(f"{str(run_dir)!r} has no {LATEST}; pass a run directory written by `ratbench train`")
    return torch.load(path, map_location=map_location, weights_only=False)
