"""The training loop: rollout -> advantages -> policy/critic update -> log -> checkpoint.

A run directory holds config.yaml (the resolved config), progress.csv,
TensorBoard event files, checkpoint.pt (the resume point) and
checkpoints/iter_*.pt. Checkpoints are taken only at iteration boundaries
and hold every piece of state (networks, optimisers, step size, warm-start
direction, normalisers, the vector env's MuJoCo/classic-control states and
RNGs, the current observations, episode counters and the torch / numpy /
python RNGs), so a resumed run continues exactly as if it had not stopped.
Ctrl-C (or SIGTERM) writes the last boundary's state and leaves a resumable run.
"""

from __future__ import annotations

import copy
import random
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from envs.dmc import renderer_kwargs
from envs.registry import resolve_env_id
from envs.vector import get_vector_state, make_vector_env, set_vector_state
from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_text
from ratbench.benchmarking.measure import synchronize
from ratbench.phases import PHASES
from ratbench.threads import choose_threads, set_compute_threads, torch_threads
from ratbench.training import provenance
from ratbench.training.agent import Agent
from ratbench.training.algorithms import make_algorithm
from ratbench.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ratbench.training.config import load_run_config, to_yaml
from ratbench.training.evaluate import evaluate
from ratbench.training.logger import RunLogger, read_progress
from ratbench.training.normalize import ObsNormalizer, RewardScaler
from ratbench.training.rollout import Collector
from ratbench.training.run_lock import RunLock
from ratbench.training.schedule import evaluation_step, steps_per_iteration, steps_per_sample

CONFIG_FILE = "config.yaml"
EVAL_SEED_OFFSET = 1_000_000


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RatbenchError("--device cuda was asked for but PyTorch sees no CUDA device; use --device cpu")
    return torch.device(name)


def default_run_dir(config: Mapping[str, Any], root: str | Path = "runs") -> Path:
    """runs/<env>-<algo>-<solver>-s<seed>-<timestamp> (solver 'none' for ppo and pg)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{config['env']}-{config['algo']}-{config['solver'] or 'none'}-s{config['seed']}-{stamp}"
    path, n = Path(root) / name, 1
    while path.exists():
        n += 1
        path = Path(root) / f"{name}-{n}"
    return path


def rounded_steps(config: Mapping[str, Any]) -> int:
    """The step count a run reaches: its budget rounded up to whole iterations (:func:`steps_per_iteration`)."""
    batch = steps_per_iteration(config)
    return -(-config["steps"] // batch) * batch


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> Any:
    """Treat SIGTERM (a scheduler's stop) like Ctrl-C; returns the handler to restore (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


class Trainer:
    """Builds everything from a resolved config; use :meth:`create` or :meth:`resume`."""

    def __init__(self, config: Mapping[str, Any], run_dir: Path, progress_bar: bool = True):
        self.config, self.run_dir, self.progress_bar = dict(config), Path(run_dir), progress_bar
        cfg = self.config
        self.device = resolve_device(cfg["device"])
        self.threads, self.threads_reason = choose_threads(cfg["threads"])
        set_compute_threads(self.threads)
        seed = cfg["seed"]
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        backend = cfg["envs"]["backend"]
        extra = renderer_kwargs(resolve_env_id(cfg["env"]), cfg["envs"]["dmc_renderer"])
        self.envs = make_vector_env(cfg["env"], cfg["num_envs"], mode=cfg["vector"], backend=backend, **extra)
        self.eval_envs = make_vector_env(cfg["env"], cfg["eval"]["episodes"], mode="sync", backend=backend, **extra)
        obs_space, act_space = self.envs.single_observation_space, self.envs.single_action_space
        self.agent = Agent(cfg, obs_space, act_space).to(self.device)
        self.obs_norm = ObsNormalizer(obs_space.shape, cfg["obs_clip"], cfg["obs_norm"], cfg["obs_eps"])
        self.reward_scaler = RewardScaler(cfg["num_envs"], cfg["gamma"], cfg["reward_clip"], cfg["reward_norm"])
        self.algo = make_algorithm(cfg, self.agent, self.rng)
        self.collector = Collector(self.envs, self.agent, self.obs_norm, self.reward_scaler, cfg["num_steps"],
                                   cfg["gamma"], cfg["gae_lambda"], self.device, cfg["obs_norm_update"],
                                   cfg["action_squash"])
        self.collector.reset(seed)
        self.iteration, self.env_steps, self.episodes, self.wall_offset = 0, 0, 0, 0.0
        self.rows: list[dict[str, Any]] = []
        self.interrupted, self.closed = False, False
        self.config_to_write = False  # resume: config.yaml (the budget may be larger) is written when training starts
        self.lock: Optional[RunLock] = None  # held from create/resume until close

    # -- construction -------------------------------------------------------
    @classmethod
    def create(cls, config: Mapping[str, Any], logdir: Optional[str | Path] = None, progress_bar: bool = True) -> "Trainer":
        """A fresh run in ``logdir`` (default :func:`default_run_dir`); writes config.yaml."""
        run_dir = Path(logdir) if logdir else default_run_dir(config)
        lock = RunLock(run_dir)  # first: a run another process is training is busy, not "already holds a run"
        try:
            if (run_dir / "checkpoint.pt").exists() or (run_dir / "progress.csv").exists():
                raise RatbenchError(f"{str(run_dir)!r} already holds a run; continue it with --resume {run_dir} "
                                    "or pick another --run-dir / --logdir")
            trainer = cls(config, run_dir, progress_bar)
        except BaseException:
            lock.abandon()
            raise
        trainer.lock = lock
        trainer._write_config()
        return trainer

    @classmethod
    def resume(cls, run_dir: str | Path, steps: Optional[int] = None, device: Optional[str] = None,
               threads: Optional[int] = None, progress_bar: bool = True, trust_checkpoint: bool = False) -> "Trainer":
        """Continue the run in ``run_dir`` from its checkpoint; ``steps`` may raise the step budget,
        ``device`` and ``threads`` replace the saved machine settings; ``trust_checkpoint`` unpickles a
        checkpoint that is not plain data (one of an earlier version) instead of refusing it."""
        run_dir = Path(run_dir)
        config_path = run_dir / CONFIG_FILE
        if not config_path.is_file():
            raise RatbenchError(f"{str(run_dir)!r} has no {CONFIG_FILE}; pass a run directory written by `ratbench train`")
        machine = {key: value for key, value in (("steps", steps), ("device", device), ("threads", threads))
                   if value is not None}
        config = load_run_config(config_path, machine)
        lock = RunLock(run_dir)
        try:
            state = load_checkpoint(run_dir, trust=trust_checkpoint)
            trainer = cls(config, run_dir, progress_bar)
            trainer.load_state(state)
        except BaseException:
            lock.release()
            raise
        trainer.lock = lock
        trainer.config_to_write = True  # a larger budget: written once training starts (a finished run is untouched)
        return trainer

    def _write_config(self) -> None:
        """config.yaml, atomically; on failure the trainer closes (releasing its lock) before the error goes on."""
        try:
            atomic_write_text(self.run_dir / CONFIG_FILE, to_yaml(self.config))
        except BaseException:
            self.close()
            raise

    # -- state ---------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything an exact resume needs, copied (safe to keep while training goes on)."""
        return copy.deepcopy({
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "wall_time": self.wall_time(),
            "agent": self.agent.full_state(),
            "algo": self.algo.state_dict(),
            "obs_norm": self.obs_norm.state_dict(),
            "reward_scaler": self.reward_scaler.state_dict(),
            "collector": self.collector.state_dict(),
            "envs": get_vector_state(self.envs),
            "trainer_rng": self.rng.bit_generator.state,
            "rng": rng_state(),
        })

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.iteration, self.env_steps, self.episodes = state["iteration"], state["env_steps"], state["episodes"]
        self.wall_offset = float(state["wall_time"])
        self.agent.load_full_state(state["agent"])
        self.algo.load_state_dict(state["algo"])
        self.obs_norm.load_state_dict(state["obs_norm"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.collector.load_state_dict(state["collector"])
        if not set_vector_state(self.envs, state["envs"]):  # EnvPool: no simulator state to put back
            self.collector.restart_episodes(self.config["seed"] + self.iteration)
        self.rng.bit_generator.state = state["trainer_rng"]
        set_rng_state(state["rng"])
        self.rows = read_progress(self.run_dir / "progress.csv", self.iteration)

    def wall_time(self) -> float:
        start = getattr(self, "_start", None)
        return self.wall_offset + (time.perf_counter() - start if start is not None else 0.0)

    # -- the loop --------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Train until ``steps`` env steps; returns a summary (last eval return, totals)."""
        cfg = self.config
        self._start = time.perf_counter()
        if self.env_steps >= cfg["steps"]:  # a finished run resumed without a larger budget: touch nothing
            self.close()
            return self._summary()
        try:  # the files a resume may fail to write, each before the next is touched
            logger = RunLogger(self.run_dir, self.rows, purge_step=self.env_steps + 1 if self.env_steps else None,
                               total_steps=rounded_steps(cfg), start_steps=self.env_steps, progress_bar=self.progress_bar)
        except BaseException:
            self.close()
            raise
        try:
            provenance.append(self.run_dir, provenance.entry(self.iteration, self.threads, self.threads_reason))
            if self.config_to_write:
                self._write_config()
        except BaseException:
            logger.close()
            self.close()
            raise
        boundary = self.state()
        previous_handler = _stop_on_sigterm()
        try:
            while self.env_steps < cfg["steps"]:
                row = self._iterate()
                logger.log(row, row["train_return"])
                boundary = self.state()
                done = self.env_steps >= cfg["steps"]
                if done or self.iteration % cfg["checkpoint"]["every"] == 0:
                    save_checkpoint(self.run_dir, boundary, cfg["checkpoint"]["keep"])
        except KeyboardInterrupt:
            self.interrupted = True
            save_checkpoint(self.run_dir, boundary, cfg["checkpoint"]["keep"])
            logger.rows[:] = [r for r in logger.rows if int(r["iteration"]) <= boundary["iteration"]]
            logger.rewrite()
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
            logger.close()
            self.close()
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        evals = [float(r["eval_return"]) for r in self.rows if r.get("eval_return") not in ("", None)]
        return {
            "run_dir": str(self.run_dir),
            "iterations": self.iteration,
            "env_steps": self.env_steps,
            "eval_return": evals[-1] if evals else None,
            "interrupted": self.interrupted,
        }

    def _iterate(self) -> dict[str, Any]:
        cfg = self.config
        progress = self.env_steps / cfg["steps"]
        t0 = time.perf_counter()
        with torch_threads(1):
            batch = self.collector.collect()
        synchronize(self.device)
        t1 = time.perf_counter()
        stats = self.algo.update(batch, progress)
        synchronize(self.device)
        t2 = time.perf_counter()
        self.iteration += 1
        self.env_steps += batch.n * steps_per_sample(cfg)
        self.episodes += len(batch.episodes)
        returns = [r for r, _ in batch.episodes]
        row: dict[str, Any] = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "return_mean": float(np.mean(returns)) if returns else None,
            "return_median": float(np.median(returns)) if returns else None,
            "train_return": self._train_return(),
            "length_mean": float(np.mean([n for _, n in batch.episodes])) if returns else None,
            "fps": batch.n / (t2 - t0),
            "time_env": t1 - t0,
            "time_update": t2 - t1,
            **stats,
        }
        eval_step = evaluation_step(cfg, self.iteration, self.env_steps)
        if eval_step is not None:
            seed = cfg["seed"] + EVAL_SEED_OFFSET + self.iteration * cfg["eval"]["episodes"]
            with PHASES("evaluation"):
                evaluation = evaluate(self.eval_envs, self.agent.policy, self.obs_norm, seed, self.device,
                                      cfg["action_squash"], cfg["eval"]["max_episode_steps"])
            row["eval_return"] = float(np.mean(evaluation.returns))
            row["eval_return_std"] = float(np.std(evaluation.returns))
            row["eval_cut"] = evaluation.cut
            row["eval_step"] = eval_step
        row["wall_time"] = self.wall_time()
        return row

    def _train_return(self) -> float | None:
        """Mean return of the last 100 stochastic training episodes (the reference's ``eprewmean``)."""
        recent = self.collector.tracker.recent
        return float(np.mean(recent)) if recent else None

    def close(self) -> None:
        """Close the environments and release the run's lock (once; later calls do nothing)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.envs.close()
            self.eval_envs.close()
        finally:
            if self.lock is not None:
                self.lock.release()
