"""The training speed report: where one training iteration's time goes, and how close training runs
to the speed of its own environments.

A few iterations of a real run (default config of the task, any overrides) are timed phase by
phase (:mod:`ratbench.phases`): env steps and policy forwards of the rollout; capture (which also gives the ratios),
Gram, Cholesky (the rest of the solve), critic and the rest of the update; evaluation, measured
once and amortised over ``eval.every`` iterations. In the same process and with the same torch
threads, the same vector env is stepped with random actions for the same number of steps: the
ratio of training steps/s to that rate says how much of the environment's speed training keeps.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Sequence



from envs.dmc import renderer_kwargs
from envs.registry import resolve_env_id
from envs.vector import make_vector_env
from ratbench.benchmarking.measure import synchronize
from ratbench.phases import PHASES
from ratbench.training.config import resolve_config
from ratbench.training.evaluate import evaluate
from ratbench.training.schedule import evaluations_per_iteration
from ratbench.training.trainer import EVAL_SEED_OFFSET, Trainer

ROLLOUT_PHASES = ("env_step", "policy_forward")
UPDATE_PHASES = ("capture", "gram", "cholesky", "critic")  # gram and cholesky run inside "solve"
TARGET_RATIO = 0.6  # issue 9: training steps/s >= 0.6 of the random-action rate


@dataclass
class TrainingSpeed:
    env: str
    solver: str | None
    algo: str
    batch: int
    iterations: int
    threads: int
    load_average: float
    seconds: dict[str, float] = field(default_factory=dict)  # per iteration, per phase (and the rest)
    training_steps_per_s: float = float("nan")
    backend: str = "gymnasium"
    random_steps_per_s: float = float("nan")

    @property
    def ratio(self) -> float:
        return self.training_steps_per_s / self.random_steps_per_s

    @property
    def update_per_8192(self) -> float:
        return self.seconds["update"] * 8192 / self.batch


def random_action_rate(env: str, num_envs: int, mode: str, steps: int, seed: int, backend: str = "gymnasium",
                       **env_kwargs: Any) -> float:
    """Agent steps/s of ``num_envs`` copies stepped ``steps`` times with random actions (same vector env kind;
    ``env_kwargs`` as for :func:`envs.vector.make_vector_env`, e.g. a DMC renderer)."""
    envs = make_vector_env(env, num_envs, mode=mode, backend=backend, **env_kwargs)
    try:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
        actions = [envs.action_space.sample() for _ in range(min(steps, 64))]
        start = time.perf_counter()
        for t in range(steps):
            envs.step(actions[t % len(actions)])
        return steps * num_envs / (time.perf_counter() - start)
    finally:
        envs.close()


def measure_training(env: str, solver: str | None = "kaczmarz", algo: str = "npg", sets: Sequence[str] = (),
                     iterations: int = 3, seed: int = 0) -> TrainingSpeed:
    """Time ``iterations`` iterations (after one untimed warm-up) and the random-action rate."""
    config = resolve_config({"env": env, "algo": algo, "solver": solver if algo == "npg" else None, "seed": seed},
                            sets=list(sets))
    evaluations = evaluations_per_iteration(config)
    with tempfile.TemporaryDirectory(prefix="ratbench-speed-") as run_dir:
        trainer = Trainer(config, run_dir, progress_bar=False)
        trainer.config["eval"].update(every=0, every_steps=0)  # evaluation is timed once below and amortised
        trainer.config["steps"] = 10**12
        try:
            trainer._iterate()
            sync = (lambda: synchronize(trainer.device)) if trainer.device.type == "cuda" else None
            rollout = update = 0.0
            with PHASES.recording(sync) as totals:
                for _ in range(iterations):
                    row = trainer._iterate()
                    rollout += row["time_env"]
                    update += row["time_update"]
                start = time.perf_counter()
                with PHASES("evaluation"):
                    evaluate(trainer.eval_envs, trainer.agent.policy, trainer.obs_norm, seed + EVAL_SEED_OFFSET,
                             trainer.device, config["action_squash"], config["eval"]["max_episode_steps"])
                evaluation = time.perf_counter() - start
            threads = trainer.threads
            batch = config["num_envs"] * config["num_steps"]
            mode, backend = config["vector"], config["envs"]["backend"]
        finally:
            trainer.close()
    report = TrainingSpeed(env=config["env"], solver=config["solver"], algo=algo, batch=batch, iterations=iterations,
                           threads=threads, load_average=os.getloadavg()[0])
    per = {name: totals.get(name, 0.0) / iterations for name in (*ROLLOUT_PHASES, *UPDATE_PHASES)}
    per["rollout (rest)"] = rollout / iterations - sum(per[n] for n in ROLLOUT_PHASES)
    per["update (rest)"] = update / iterations - sum(per[n] for n in UPDATE_PHASES)
    per["evaluation (amortised)"] = evaluation * evaluations
    per["rollout"], per["update"] = rollout / iterations, update / iterations
    report.seconds = per
    total = per["rollout"] + per["update"] + per["evaluation (amortised)"]
    report.training_steps_per_s = batch / total
    report.random_steps_per_s = random_action_rate(config["env"], config["num_envs"], mode,
                                                   config["num_steps"] * iterations, seed, backend,
                                                   **renderer_kwargs(resolve_env_id(config["env"]),
                                                                     config["envs"]["dmc_renderer"]))
    report.backend = backend
    return report


def format_report(report: TrainingSpeed) -> str:
    total = report.seconds["rollout"] + report.seconds["update"] + report.seconds["evaluation (amortised)"]
    lines = [f"ratbench speed --training {report.env}: {report.algo}"
             + (f" + {report.solver}" if report.solver else "")
             + f" on {report.backend}, {report.batch:,} samples per iteration, {report.iterations} timed iterations after 1 warm-up, "
             f"{report.threads} torch thread{'s' if report.threads != 1 else ''}, load average {report.load_average:.1f}",
             "", f"{'phase':<24}{'s / iteration':>14}{'share':>8}"]
    order = [*ROLLOUT_PHASES, "rollout (rest)", *UPDATE_PHASES, "update (rest)", "evaluation (amortised)"]
    for name in order:
        seconds = report.seconds[name]
        lines.append(f"{name:<24}{seconds:>14.3f}{100 * seconds / total:>7.0f}%")
    lines += ["", f"update per 8,192 samples: {report.update_per_8192:.2f} s",
              f"training: {report.training_steps_per_s:,.0f} agent steps/s; random actions on the same vector env: "
              f"{report.random_steps_per_s:,.0f} steps/s; ratio {report.ratio:.2f} (target >= {TARGET_RATIO})"]
    return "\n".join(lines)


def as_dict(report: TrainingSpeed) -> dict:
    return {"env": report.env, "algo": report.algo, "solver": report.solver, "batch": report.batch,
            "iterations": report.iterations, "threads": report.threads, "load_average": report.load_average,
            "seconds_per_iteration": dict(report.seconds), "training_steps_per_s": report.training_steps_per_s,
            "random_steps_per_s": report.random_steps_per_s, "ratio": report.ratio,
            "update_s_per_8192": report.update_per_8192, "backend": report.backend}


__all__ = ["TrainingSpeed", "as_dict", "format_report", "measure_training", "random_action_rate"]
