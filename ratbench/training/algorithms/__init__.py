"""Policy-update algorithms: ``npg`` (any natural-gradient solver; with ``npg.value_update: joint`` the
shared network's joint policy-and-value solve; with ``npg.kfac_variant: reference`` the reference's K-FAC
optimiser, for separate or shared networks), ``ppo``, ``pg`` and ``trpo``.

Each takes an :class:`~ratbench.training.agent.Agent`, its config and a
numpy Generator, and exposes ``update(batch, progress) -> dict`` (the
progress.csv statistics it owns) plus ``state_dict`` / ``load_state_dict``.
``progress`` is the fraction of the step budget already used before this
update (for schedules).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ratbench.training.agent import Agent
from ratbench.training.algorithms.joint import JointNPG
from ratbench.training.algorithms.npg import NPG
from ratbench.training.algorithms.pg import PG
from ratbench.training.algorithms.ppo import PPO
from ratbench.training.algorithms.reference_kfac import ReferenceKFAC
from ratbench.training.algorithms.trpo import TRPO

ALGORITHMS = {"npg": NPG, "ppo": PPO, "pg": PG, "trpo": TRPO}


def make_algorithm(config: Mapping[str, Any], agent: Agent, rng: np.random.Generator):
    if config["algo"] == "npg" and config["npg"]["kfac_variant"] == "reference":  # separate or joint
        return ReferenceKFAC(agent, config, rng)
    if config["algo"] == "npg" and config["npg"]["value_update"] == "joint":
        return JointNPG(agent, config, rng)
    return ALGORITHMS[config["algo"]](agent, config, rng)


__all__ = ["ALGORITHMS", "JointNPG", "NPG", "PG", "PPO", "ReferenceKFAC", "TRPO", "make_algorithm"]
