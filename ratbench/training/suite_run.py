"""One run of a training suite: what it is, training or resuming it here, and noting runs others train.

Shared by the local suite runner (:mod:`ratbench.training.suite`) and the Ray executor
(:mod:`ratbench.training.ray_executor`), so that neither imports the other's module for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from ratbench.training.config import resolve_config


@dataclass
class SuiteRun:
    env: str
    seed: int
    algo: str = "npg"
    solver: str | None = None
    arch: str | None = None
    steps: int | None = None
    sets: dict[str, Any] = field(default_factory=dict)
    logdir: Path = Path(".")

    def set_args(self) -> list[str]:
        return [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                for k, v in self.sets.items()]

    def command(self) -> list[str]:
        cmd = ["ratbench", "train", "--env", self.env, "--algo", self.algo, "--seed", str(self.seed)]
        for flag, value in (("--solver", self.solver), ("--arch", self.arch), ("--steps", self.steps)):
            if value is not None:
                cmd += [flag, str(value)]
        for item in self.set_args():
            cmd += ["--set", item]
        return cmd + ["--run-dir", str(self.logdir)]


def run_one(run: SuiteRun, progress_bar: bool = True, trust_checkpoint: bool = False) -> dict[str, Any]:
    """Train (or resume) one suite run in this process."""
    from ratbench.training.trainer import Trainer

    if (run.logdir / "checkpoint.pt").is_file():
        trainer = Trainer.resume(run.logdir, steps=run.steps, progress_bar=progress_bar, trust_checkpoint=trust_checkpoint)
    else:
        config = resolve_config({"env": run.env, "algo": run.algo, "solver": run.solver, "arch": run.arch,
                                 "seed": run.seed, "steps": run.steps}, sets=run.set_args())
        trainer = Trainer.create(config, logdir=run.logdir, progress_bar=progress_bar)
    return trainer.train()


def skip_busy(run: SuiteRun, busy: list[SuiteRun]) -> None:
    """Note a run another process is training (it is skipped, not failed)."""
    busy.append(run)
    click.echo(f"skipped {run.logdir}: another process is training it", err=True)


def report_busy(busy: list[SuiteRun]) -> None:
    if busy:
        click.echo(f"{len(busy)} run(s) were being trained by other processes and were skipped; "
                   "rerun the suite after they finish to confirm it is complete", err=True)
