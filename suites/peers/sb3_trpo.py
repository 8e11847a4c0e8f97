"""sb3-contrib's TRPO with rl-baselines3-zoo's MuJoCo settings, run as a peer of ratbench's TRPO (issue 24).

Not a ratbench method: an outside implementation, run on this machine at ratbench's budget and evaluation marks,
so a reader can see whether ``ratbench train --algo trpo`` is a fair TRPO. The settings are the zoo's
(DLR-RM/rl-baselines3-zoo hyperparams/trpo.yml: ``Hopper-v4: <<: *mujoco-defaults``, i.e. the pybullet defaults:
2 envs x 1024 steps, batch 128, gamma 0.99, GAE 0.95, 25 CG steps, damping 0.1, 20 critic updates, lr 1e-3,
``normalize: true``; exp_manager.py: VecNormalize with the algorithm's gamma, and for evaluation frozen
statistics and raw rewards). Evaluation follows ratbench's protocol (ratbench/training/schedule.py): the
deterministic policy in effect at each 50,000-step mark, 10 episodes, seeds ``seed + 1,000,000 + ...`` as
ratbench's evaluation seeds are offset from training seeds.

The run directory holds what ``ratbench report`` reads (config.yaml with ``label: sb3-contrib peer``, so the page
names it ``TRPO (sb3-contrib peer)``; progress.csv with ratbench's columns; provenance.json in ratbench's format, one
start whose ``code`` is the commit of the checkout this script runs from and ``peer_packages`` sb3's versions), and
never a checkpoint: a killed peer run starts again.

    python suites/peers/sb3_trpo.py --env Hopper-v5 --seed 0 --run-dir runs/peers/Hopper-v5-trpo-sb3-s0
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's ratbench, whatever is installed

from ratbench.training.logger import COLUMNS, EXTRA_COLUMNS  # noqa: E402
from ratbench.training.provenance import append, entry  # noqa: E402
from ratbench.training.schedule import evaluation_mark  # noqa: E402
from ratbench.training.trainer import EVAL_SEED_OFFSET  # noqa: E402

ZOO_MUJOCO = {  # rl-baselines3-zoo hyperparams/trpo.yml, &pybullet-defaults as &mujoco-defaults use them
    "n_envs": 2, "n_steps": 1024, "batch_size": 128, "gamma": 0.99, "gae_lambda": 0.95, "sub_sampling_factor": 1,
    "cg_max_steps": 25, "cg_damping": 0.1, "n_critic_updates": 20, "learning_rate": 1e-3,
}
EVAL_EVERY, EVAL_EPISODES = 50_000, 10  # ratbench's base.yaml eval.every_steps and eval.episodes


def _evaluate(model, train_env, env_id: str, seed: int) -> list[float]:
    """Deterministic returns of ``EVAL_EPISODES`` episodes with the training observation statistics frozen."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), training=False, norm_reward=False,
                       gamma=ZOO_MUJOCO["gamma"])
    env.obs_rms = train_env.obs_rms.copy()
    returns = []
    obs = env.reset()
    while len(returns) < EVAL_EPISODES:
        obs, _, done, info = env.step(model.predict(obs, deterministic=True)[0])
        if done[0]:
            returns.append(float(info[0]["episode"]["r"]))
    env.close()
    return returns


def run(env_id: str, seed: int, steps: int, run_dir: Path, eval_every: int = EVAL_EVERY) -> Path:
    """Train, evaluate at the marks ``eval_every, 2 eval_every, ...`` and at the end; returns ``run_dir``."""
    from sb3_contrib import TRPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    run_dir.mkdir(parents=True, exist_ok=False)
    batch = ZOO_MUJOCO["n_envs"] * ZOO_MUJOCO["n_steps"]
    hyper = {k: v for k, v in ZOO_MUJOCO.items() if k != "n_envs"}
    config = {"env": env_id, "algo": "trpo", "solver": None, "seed": seed, "steps": steps, "label": "sb3-contrib peer",
              "num_envs": ZOO_MUJOCO["n_envs"], "num_steps": ZOO_MUJOCO["n_steps"],
              "model": {"init": "orthogonal"}, "critic": {"adam_eps": 1e-5},  # SB3's ortho_init and Adam eps
              "eval": {"every_steps": eval_every, "every": 0, "episodes": EVAL_EPISODES},
              "peer": {"library": f"sb3-contrib {metadata.version('sb3-contrib')}", "policy": "MlpPolicy (64x64 tanh)",
                       "normalize": "VecNormalize(gamma=0.99), evaluation with frozen statistics and raw rewards",
                       "hyperparameters": ZOO_MUJOCO, "source": "DLR-RM/rl-baselines3-zoo hyperparams/trpo.yml "
                       "(*mujoco-defaults, which Ant-v4 defines and Hopper-v4 merges)"}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    append(run_dir, {**entry(0, 1, "the peer script sets one torch thread"),
                     "command": f"python suites/peers/sb3_trpo.py --env {env_id} --seed {seed} --steps {steps} --run-dir {run_dir}",
                     "peer_packages": {p: metadata.version(p) for p in ("sb3-contrib", "stable-baselines3")}})
    env = VecNormalize(make_vec_env(env_id, n_envs=ZOO_MUJOCO["n_envs"], seed=seed), gamma=ZOO_MUJOCO["gamma"])
    model = TRPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hyper)
    header = list(COLUMNS + EXTRA_COLUMNS)
    out = open(run_dir / "progress.csv", "w", newline="")
    writer = csv.DictWriter(out, header)
    writer.writeheader()
    start = time.perf_counter()

    class Log(BaseCallback):
        """One progress.csv row per update (when the next rollout starts, and at the end), evaluated at marks."""

        iteration = 0

        def _row(self) -> None:
            if self.num_timesteps == 0:
                return
            Log.iteration += 1
            episodes = [e["r"] for e in self.model.ep_info_buffer]
            row: dict[str, Any] = {"iteration": Log.iteration, "env_steps": self.num_timesteps,
                                   "train_return": float(np.mean(episodes)) if episodes else None,
                                   "wall_time": time.perf_counter() - start}
            mark = evaluation_mark(self.num_timesteps, batch, eval_every, steps)
            if mark is not None or self.num_timesteps >= steps:
                returns = _evaluate(self.model, env, env_id, seed + EVAL_SEED_OFFSET + Log.iteration * EVAL_EPISODES)
                row.update(eval_return=float(np.mean(returns)), eval_return_std=float(np.std(returns)), eval_cut=0,
                           eval_step=mark if mark is not None else self.num_timesteps)
            writer.writerow(row)
            out.flush()
            print(f"{env_id} seed {seed}: {self.num_timesteps:,} steps, train {row['train_return']}, "
                  f"eval {row.get('eval_return', '')}", flush=True)

        def _on_rollout_start(self) -> None:
            self._row()

        def _on_training_end(self) -> None:
            self._row()

        def _on_step(self) -> bool:
            return True

    model.learn(total_timesteps=steps, callback=Log())
    out.close()
    env.close()
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    if args.run_dir.exists():
        raise SystemExit(f"{args.run_dir} exists; a peer run does not resume (it keeps no checkpoint): remove it first")
    run(args.env, args.seed, args.steps, args.run_dir)


if __name__ == "__main__":
    main()
