"""provenance.json: which code, packages and machine ran a run, one entry per start or resume.

A published number must say what produced it. Each entry holds the ratbench version and, when the
code runs from a git checkout, its commit and whether the tree had uncommitted changes; the versions
of the packages that decide the numbers (torch, numpy, scipy, gymnasium, mujoco, envpool, minatar, dm-control)
and the OpenGL backend MuJoCo renders with when set (``MUJOCO_GL``: DMC pixels);
Python, the platform, the CPU, torch threads and the iteration the entry starts at. Entries are only
appended, so a run resumed under other code shows it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ratbench.io import write_json

PROVENANCE_FILE = "provenance.json"
PACKAGES = ("ratbench", "torch", "numpy", "scipy", "gymnasium", "mujoco", "envpool", "minatar", "dm-control")
SOURCE_DIR = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(SOURCE_DIR), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """{"commit": sha or None, "dirty": bool or None} of the checkout ratbench runs from (None for an
    installed copy, whose directory holds no pyproject.toml, even inside some other repository)."""
    commit = _git("rev-parse", "HEAD") if (SOURCE_DIR / "pyproject.toml").is_file() else None
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def entry(iteration: int, threads: int, threads_reason: str | None = None) -> dict[str, Any]:
    """One start's record (see the module docstring)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "iteration": iteration,
        "code": code_version(),
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "threads": threads,
        "threads_reason": threads_reason,
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
    }


def read_starts(run_dir: Path) -> list[dict[str, Any]] | None:
    """The entries of ``run_dir``/provenance.json, one per start ([] when the run has no such file); None when the
    file is damaged: not a JSON object whose ``starts`` is a list of objects."""
    path = Path(run_dir) / PROVENANCE_FILE
    if not path.is_file():
        return []
    try:
        starts = json.loads(path.read_text(encoding="utf-8"))["starts"]
    except (OSError, ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        return None
    return starts if isinstance(starts, list) and all(isinstance(s, dict) for s in starts) else None


def append(run_dir: Path, record: dict[str, Any]) -> None:
    """Add ``record`` to ``run_dir``/provenance.json (written atomically; a damaged file is restarted)."""
    write_json(Path(run_dir) / PROVENANCE_FILE, {"starts": [*(read_starts(run_dir) or []), record]})
