"""Checkpoints: one torch file holding everything an exact resume needs.

Written atomically (:func:`ratbench.io.atomic_write_bytes`) as
``checkpoint.pt`` (the resume point) and, periodically, as
``checkpoints/iter_<iteration>.pt`` (the last ``keep`` are kept).
"""

from __future__ import annotations

import io
import random
import sys
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


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any] | None:
    """The checkpoint in ``path``, or None when it is empty, truncated or not a ratbench checkpoint."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception:  # torch raises many kinds for a damaged file (EOFError, RuntimeError, UnpicklingError)
        return None
    return state if isinstance(state, dict) and "iteration" in state else None


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu", warn=_warn) -> dict[str, Any]:
    """The resume point: ``checkpoint.pt``, or, when that file is damaged (a run killed while the disk
    was full, a copy cut short), the newest intact ``checkpoints/iter_*.pt``, saying so via ``warn``."""
    run_dir = Path(run_dir)
    path = run_dir / LATEST
    periodic = sorted((run_dir / "checkpoints").glob("iter_*.pt"), reverse=True)
    if not path.is_file() and not periodic:
        raise RatbenchError(f"{str(run_dir)!r} has no {LATEST}; pass a run directory written by `ratbench train`")
    if path.is_file():
        state = _read(path, map_location)
        if state is not None:
            return state
    for candidate in periodic:
        state = _read(candidate, map_location)
        if state is not None:
            warn(f"{path} is missing or damaged; resuming from {candidate} (iteration {state['iteration']})")
            return state
    raise RatbenchError(f"{path} is damaged (empty or truncated) and no intact checkpoints/iter_*.pt is left; "
                        "start the run again in a new directory")
