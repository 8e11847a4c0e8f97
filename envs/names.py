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
    # DeepMind Control Suite from pixels (extra [dmc]; envs/dmc.py): 84x84 RGB, action repeat, 3 frames
    "dmc-cartpole-swingup": "DMC/cartpole-swingup-v0",
    "dmc-cheetah-run": "DMC/cheetah-run-v0",
    "dmc-walker-walk": "DMC/walker-walk-v0",
}

MUJOCO_IDS = {v for k, v in ENV_IDS.items() if k != "cartpole" and not k.startswith(("minatar-", "atari-", "dmc-"))}
MINATAR_PREFIX = "MinAtar/"
DMC_PREFIX = "DMC/"
ENVPOOL_ONLY_IDS = {v for k, v in ENV_IDS.items() if k.startswith("atari-")}
