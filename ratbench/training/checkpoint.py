"""Checkpoints: one torch file holding everything an exact resume needs.

Written atomically (:func:`ratbench.io.atomic_write_bytes`) as
``checkpoint.pt`` (the resume point) and, periodically, as
``checkpoints/iter_<iteration>.pt`` (the last ``keep`` are kept). The state is stored as plain data
(:mod:`ratbench.safe_state`) and read back with ``torch.load(..., weights_only=True)``, so
resuming a run directory someone else wrote runs no code from it: a checkpoint that holds anything
else (a pickled object, as checkpoints of earlier ratbench versions do) is refused in one sentence,
and resumed only when the user says it is trusted (``--trust-checkpoint``).
"""

from __future__ import annotations

import io
import pickle
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_bytes
from ratbench.safe_state import decode, encode

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
    torch.save(encode(state), buf)
    data = buf.getvalue()
    periodic = Path(run_dir) / "checkpoints" / f"iter_{state['iteration']:06d}.pt"
    atomic_write_bytes(periodic, data)
    path = atomic_write_bytes(Path(run_dir) / LATEST, data)
    copies = sorted(periodic.parent.glob("iter_*.pt"))
    for old in copies[: max(len(copies) - keep, 0)]:
        old.unlink(missing_ok=True)
    return path


# Every checkpoint's top level: key -> the types its value may have.
REQUIRED = {"iteration": (int,), "env_steps": (int,), "episodes": (int,), "wall_time": (int, float),
            "agent": (dict,), "algo": (dict,), "obs_norm": (dict,), "reward_scaler": (dict,), "collector": (dict,),
            "envs": (list, type(None)), "trainer_rng": (dict,), "rng": (dict,)}
TRUST_FLAG = "--trust-checkpoint"


def _names_a_global(err: Exception) -> str | None:
    """The Python global (a class or function the file would import and call) that a weights-only load
    refused, as ``"it would call posix.system"``; None when the failure is a damaged file's."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return None if found is None else f"it would call {found.group(1)}"


def _refuse(path: Path, detail: str) -> RatbenchError:
    return RatbenchError(
        f"{path} holds more than tensors, numbers, strings and containers ({detail}), and ratbench does not "
        f"run code from a checkpoint; if it is a checkpoint of an earlier ratbench version (or one you trust), "
        f"resume it on purpose with {TRUST_FLAG}, which unpickles it")


def _read(path: Path, map_location: str | torch.device, trust: bool) -> dict[str, Any] | None:
    """The checkpoint in ``path``, or None when it is empty, truncated or lacks a ratbench checkpoint's
    entries; raises when it holds anything a weights-only load refuses (unless ``trust``)."""
    try:
        raw = torch.load(path, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as err:
        detail = None if trust else _names_a_global(err)
        if detail is not None:
            raise _refuse(path, detail) from None
        return None
    except Exception:  # torch raises many kinds for a damaged file (EOFError, RuntimeError, zip errors)
        return None
    if not isinstance(raw, dict) or any(not isinstance(raw.get(k), types) or isinstance(raw.get(k), bool)
                                        for k, types in REQUIRED.items()):
        return None
    return decode(raw)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu", warn=_warn,
                    trust: bool = False) -> dict[str, Any]:
    """The resume point: ``checkpoint.pt``, or, when that file is damaged (a run killed while the disk
    was full, a copy cut short, entries missing or of the wrong type), the newest intact
    ``checkpoints/iter_*.pt``, saying so via ``warn``. A file holding anything but plain data is refused
    (:class:`RatbenchError`), whichever it is, unless ``trust`` (then it is unpickled)."""
    run_dir = Path(run_dir)
    path = run_dir / LATEST
    periodic = sorted((run_dir / "checkpoints").glob("iter_*.pt"), reverse=True)
    if not path.is_file() and not periodic:
        raise RatbenchError(f"{str(run_dir)!r} has no {LATEST}; pass a run directory written by `ratbench train`")
    if path.is_file():
        state = _read(path, map_location, trust)
        if state is not None:
            return state
    for candidate in periodic:
        state = _read(candidate, map_location, trust)
        if state is not None:
            warn(f"{path} is missing or damaged; resuming from {candidate} (iteration {state['iteration']})")
            return state
    raise RatbenchError(f"{path} is damaged (empty, truncated or missing entries) and no intact checkpoints/iter_*.pt is left; "
                        "start the run again in a new directory")
