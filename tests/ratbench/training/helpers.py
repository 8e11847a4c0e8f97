"""Small real training configs shared by the training tests (threads pinned for determinism)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch

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


class _Payload:
    """Unpickling it would create ``path``: the code a pickled checkpoint can run."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def plant_payload(run_dir: Path, name: str, marker: Path) -> Path:
    """Replace checkpoint ``name`` of a run directory by a pickle whose loading would create ``marker``."""
    target = Path(run_dir) / name
    torch.save({"iteration": 1, "env_steps": 1024, "x": _Payload(marker)}, target)
    return target


def record_minibatches(monkeypatch, *modules) -> list[torch.Tensor]:
    """Patch ``minibatches`` in each of ``modules`` to record the index tensors it yields, in order; returns the
    list the records go to (parity tests replay an update's minibatches in a re-statement)."""
    used: list[torch.Tensor] = []
    real = modules[0].minibatches

    def recorded(n, count, rng):
        for idx in real(n, count, rng):
            used.append(idx)
            yield idx

    for module in modules:
        monkeypatch.setattr(module, "minibatches", recorded)
    return used


def synthetic_batches(policy, generator: torch.Generator, n: int, obs_dim: int, rollouts: int = 2,
                      noisy_returns: bool = False):
    """``rollouts`` float64 on-policy batches for parity tests: N(0, 1) observations, actions sampled from
    ``policy``, advantages N(1, 9), returns equal to them (plus N(0, 1) with ``noisy_returns``)."""
    from ratbench.training.rollout import Batch

    for _ in range(rollouts):
        obs = torch.randn(n, obs_dim, generator=generator, dtype=torch.float64)
        with torch.no_grad():
            dist = policy.distribution(obs)
            act = dist.sample()
            old_logp = dist.log_prob(act)
        adv = torch.randn(n, generator=generator, dtype=torch.float64) * 3 + 1
        returns = adv + torch.randn(n, generator=generator, dtype=torch.float64) if noisy_returns else adv.clone()
        yield Batch(obs=obs, actions=act, log_probs=old_logp, values=torch.zeros(n, dtype=torch.float64),
                    advantages=adv, returns=returns)


def record_value_noise(monkeypatch, module) -> list[torch.Tensor]:
    """Patch ``value_noise`` in ``module`` to record every draw, in order; returns the list the records go to
    (the joint parity tests feed the same eps to their re-statements)."""
    noises: list[torch.Tensor] = []
    real = module.value_noise

    def recorded(rng, n, like):
        noises.append(real(rng, n, like))
        return noises[-1]

    monkeypatch.setattr(module, "value_noise", recorded)
    return noises
