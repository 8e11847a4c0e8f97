"""Run directories in the exact format ``ratbench train`` writes, with hand-made curves."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import yaml

from ratbench.training.config import resolve_config
from ratbench.training.logger import COLUMNS, EXTRA_COLUMNS


@functools.cache
def algorithm_init(algo: str) -> str:
    """The layer init today's runs of ``algo`` write (its shipped algo layer's, else the schema's)."""
    return resolve_config({"algo": algo})["model"]["init"]


def write_run(root: Path, name: str, steps: Sequence[int], train: Sequence[float], *, seed: int = 0, budget: int | None = None,
              evals: dict[int, float] | None = None, marks: dict[int, int] | None = None, env: str = "hopper",
              **config: Any) -> Path:
    """config.yaml (env, algo npg + kaczmarz unless overridden, as RAT's default (the reference preset's rule)
    unless ``preset`` or ``npg`` say otherwise, seed, steps) and progress.csv with
    ``train_return`` per row, ``eval_return`` at the steps given in ``evals`` and, for those of them in
    ``marks``, the mark it stands for in ``eval_step``."""
    run = root / name
    run.mkdir(parents=True)
    full = {"env": env, "algo": "npg", "solver": "kaczmarz", "arch": "separate", "seed": seed,
            "steps": budget if budget is not None else steps[-1], **config}
    if full["algo"] == "npg" and full["solver"] == "kaczmarz":  # RAT's default, the reference preset, unless told
        full.setdefault("preset", "reference")
    full.setdefault("npg", {"rat_variant": "original" if full.get("preset") else "corrected"})
    full.setdefault("model", {"init": algorithm_init(full["algo"])})  # as today's runs write it
    (run / "config.yaml").write_text(yaml.safe_dump(full, sort_keys=False))
    header = list(COLUMNS + EXTRA_COLUMNS)
    lines = [",".join(header)]
    for i, (step, value) in enumerate(zip(steps, train)):
        row = {"iteration": i + 1, "env_steps": step, "wall_time": float(step), "train_return": value,
               "eval_return": (evals or {}).get(step), "eval_step": (marks or {}).get(step)}
        lines.append(",".join("" if row.get(c) is None else repr(row[c]) for c in header))
    (run / "progress.csv").write_text("\n".join(lines) + "\n")
    return run
