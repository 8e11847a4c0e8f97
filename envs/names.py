"""Task names: short names, their gymnasium ids and the families they belong to (data only).

Every module that needs a name or a family prefix imports it from here, so the registry, which imports
the family modules (envs.dmc, envs.pixels) to register and wrap their tasks, is imported by none of them.
"""

from __future__ import annotations

ENV_IDS: dict[str, str] = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
    "humanoid": "Humanoid-v5",
    "humanoidstandup": "HumanoidStandup-v5",
    "reacher": "Reacher-v5",
    "swimmer": "Swimmer-v5",
    "invertedpendulum": "InvertedPendulum-v5",
    "inverteddoublependulum": "InvertedDoublePendulum-v5",
    "cartpole": "CartPole-v1",
    # MinAtar (pixel tasks: 10x10xC binary images, Discrete actions; extra [minatar])
    "minatar-asterix": "MinAtar/Asterix-v1",
    "minatar-breakout": "MinAtar/Breakout-v1",
    "minatar-freeway": "MinAtar/Freeway-v1",
    "minatar-seaquest": "MinAtar/Seaquest-v1",
    "minatar-space-invaders": "MinAtar/SpaceInvaders-v1",
    # Atari through EnvPool only (envs.backend=envpool; extra [envpool]): its standard preprocessing
    "atari-pong": "Pong-v5",
    "atari-breakout": "Breakout-v5",
}

DMC_PREFIX = "DMC/"
DMC_TASKS: tuple[tuple[str, str, int], ...] = (
    # (domain, task, action repeat): the PlaNet benchmark's six tasks and their standard action repeats (Hafner et
    # al. 2019, PlaNet, appendix; kept by SAC-AE, CURL and DrQ): DeepMind Control from pixels (extra [dmc];
    # envs/dmc.py): 84x84 RGB, 3 frames. Short name dmc-<domain>-<task> (dashes), id DMC/<domain>-<task>-v0.
    ("cartpole", "swingup", 8),
    ("reacher", "easy", 4),
    ("cheetah", "run", 4),
    ("finger", "spin", 2),
    ("ball_in_cup", "catch", 4),
    ("walker", "walk", 2),
)


def dmc_env_id(domain: str, task: str) -> str:
    return f"{DMC_PREFIX}{domain}-{task}-v0"


ENV_IDS.update({f"dmc-{domain.replace('_', '-')}-{task}": dmc_env_id(domain, task) for domain, task, _ in DMC_TASKS})
DMC_ACTION_REPEATS: dict[str, int] = {dmc_env_id(domain, task): repeat for domain, task, repeat in DMC_TASKS}

MUJOCO_IDS = {v for k, v in ENV_IDS.items() if k != "cartpole" and not k.startswith(("minatar-", "atari-", "dmc-"))}
MINATAR_PREFIX = "MinAtar/"
ENVPOOL_ONLY_IDS = {v for k, v in ENV_IDS.items() if k.startswith("atari-")}
