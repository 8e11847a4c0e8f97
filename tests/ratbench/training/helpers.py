"""Small real training configs shared by the training tests (threads pinned for determinism)."""

from __future__ import annotations

import csv
from pathlib import Path

from ratbench.training import resolve_config

# A tiny but real setup: 4 envs x 256 steps (1,024 samples per iteration), 32x32 MLPs.
SMALL = ["threads=1", "num_envs=4", "num_steps=256", "model.hidden=[32, 32]", "eval.every=1", "eval.episodes=2",
         "checkpoint.every=1"]
TIMING_COLUMNS = {"fps", "time_env", "time_update", "wall_time"}


def small_config(env: str, algo: str = "npg", steps: int = 2048, extra=(), **explicit):
    return resolve_config({"env": env, "algo": algo, "steps": steps, **explicit}, sets=[*SMALL, *extra])


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(Path(run_dir) / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def header(run_dir: Path) -> list[str]:
    with open(Path(run_dir) / "progress.csv", newline="") as f:
        return next(csv.reader(f))
