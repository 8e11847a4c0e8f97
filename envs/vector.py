"""Vectorised environments with same-step autoreset and saveable state.

``make_vector_env`` builds a gymnasium vector env (sync or async workers)
whose sub-envs reset in the same step they end (``AutoresetMode.SAME_STEP``):
the returned observation is already the next episode's first one and
``info["final_obs"]`` (masked by ``info["_final_obs"]``) holds the last
observation of the episode that ended, for bootstrapping on truncation.

Every sub-env is wrapped in :class:`StatefulEnv`, so the whole vector env's
state (MuJoCo integration state, classic-control state, the env's RNG and
the TimeLimit counter) can be read with :func:`get_vector_state` and put
back with :func:`set_vector_state`; restoring it and stepping with the same
actions reproduces the same trajectory bit for bit.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from envs.pixels import wrap_observations
from envs.registry import DMC_PREFIX, ENVPOOL_ONLY_IDS, check_mujoco, resolve_env_id
from ratbench.errors import RatbenchError
from ratbench.safe_state import ObjectState, restore_into

VECTOR_MODES = ("auto", "sync", "async")
BACKENDS = ("gymnasium", "envpool")

# Wrapper attributes that change while stepping (TimeLimit, OrderEnforcing).
_WRAPPER_STATE = ("_elapsed_steps", "_has_reset")
# Plain values of a non-MuJoCo env worth restoring (CartPole's state, counters).
_PLAIN_TYPES = (np.ndarray, int, float, bool, type(None), np.number)

# Tasks whose step costs enough that worker processes beat their IPC overhead;
# measured on a 2-core box, Hopper ran faster in one process (see README "Training").
# DMC from pixels too (a render per step): on a 16-core H200 machine with EGL, 16 envs trained at
# 607 steps/s in spawned workers against 211 in one process (8 envs: 414 against 200).
_HEAVY_TASKS = {"Humanoid-v5", "HumanoidStandup-v5", "Ant-v5"}


class StatefulEnv(gym.Wrapper):
    """Outermost wrapper exposing ``get_state()`` and the settable ``ratbench_state``."""

    def get_state(self) -> dict[str, Any]:
        base = self.env.unwrapped
        state: dict[str, Any] = {"rng": copy.deepcopy(base.np_random.bit_generator.state)}
        if _is_mujoco(base):
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            buf = np.empty(mujoco.mj_stateSize(base.model, spec), dtype=np.float64)
            mujoco.mj_getState(base.model, base.data, buf, spec)
            state["mujoco"] = buf
        elif hasattr(base, "simulator_state"):  # envs.dmc: dm_control's physics, task RNG and step counter
            state["simulator"] = base.simulator_state()
        else:
            state["attrs"] = {
                k: copy.deepcopy(v) for k, v in vars(base).items() if isinstance(v, _PLAIN_TYPES) and "np_random" not in k
            }
            if hasattr(base, "game"):  # MinAtar: the whole game (board, counters, its own RNG) is one Python object
                state["game"] = copy.deepcopy(base.game)
        state["wrappers"] = [
            {k: getattr(w, k) for k in _WRAPPER_STATE if k in vars(w)} for w in _wrapper_chain(self.env)
        ]
        return state

    @property
    def ratbench_state(self) -> dict[str, Any]:
        return self.get_state()

    @ratbench_state.setter
    def ratbench_state(self, state: dict[str, Any]) -> None:
        base = self.env.unwrapped
        base.np_random.bit_generator.state = copy.deepcopy(state["rng"])
        if "mujoco" in state:
            import mujoco

            mujoco.mj_setState(base.model, base.data, np.asarray(state["mujoco"], dtype=np.float64),
                               mujoco.mjtState.mjSTATE_INTEGRATION)
        elif "simulator" in state:
            base.restore_simulator_state(state["simulator"])
        else:
            for k, v in state["attrs"].items():
                setattr(base, k, copy.deepcopy(v))
            if "game" in state:  # restored into this run's own game object: nothing is built from the file
                saved = state["game"]
                if isinstance(saved, ObjectState):
                    restore_into(base.game, saved)
                else:  # a trusted checkpoint of an earlier version holds the game object itself
                    base.game = copy.deepcopy(saved)
        for wrapper, attrs in zip(_wrapper_chain(self.env), state["wrappers"]):
            for k, v in attrs.items():
                setattr(wrapper, k, v)


def _is_mujoco(base: gym.Env) -> bool:
    return hasattr(base, "model") and hasattr(base, "data")


def _wrapper_chain(env: gym.Env) -> list[gym.Env]:
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain


def _renders_with_gl(env_id: str) -> bool:
    """Tasks whose observations are OpenGL renders (DMC from pixels): a render per step, a GPU driver in use."""
    return env_id.startswith(DMC_PREFIX)


def choose_vector_mode(env_id: str, num_envs: int, cpu_count: int | None = None) -> str:
    """The ``auto`` rule: async workers only for heavy tasks, several envs and at least 4 cores."""
    cpu_count = cpu_count or os.cpu_count() or 1
    if num_envs >= 2 and cpu_count >= 4 and (env_id in _HEAVY_TASKS or _renders_with_gl(env_id)):
        return "async"
    return "sync"


def _env_factory(env_id: str, kwargs: dict[str, Any]) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        resolve_env_id(env_id)  # a spawned worker registers the task's family (MinAtar, DMC) itself
        return StatefulEnv(wrap_observations(env_id, gym.make(env_id, **kwargs)))

    return make


def worker_start_method(env_id: str) -> str | None:
    """How async workers start: fresh interpreters (``spawn``) for tasks that render with OpenGL, since a
    forked child inherits the parent's GPU driver state, which NVIDIA's EGL does not support (on an H200
    every forked DMC worker failed, and its error could not even be sent back); the platform default
    (fork on Linux) otherwise."""
    return "spawn" if _renders_with_gl(env_id) else None


def make_vector_env(
    name: str,
    num_envs: int,
    mode: str = "auto",
    backend: str = "gymnasium",
    **env_kwargs: Any,
) -> VectorEnv:
    """``num_envs`` copies of ``name`` (short name or gymnasium id), same-step autoreset.

    mode:
    ``sync`` (one process), ``async`` (one worker process per env) or
    ``auto`` (:func:`choose_vector_mode`). Call ``reset(seed=...)`` before stepping.
    backend: ``gymnasium`` or ``envpool`` (:mod:`envs.envpool_backend`, and :mod:`envs.envpool_dmc` for the DMC
    pixel tasks; same contract; ``mode`` and ``env_kwargs`` do not apply).
    """
    if backend not in BACKENDS:
        raise RatbenchError(f"unknown env backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    if int(num_envs) < 1:
        raise RatbenchError(f"num_envs must be a positive integer, got {num_envs!r}")
    env_id = resolve_env_id(name)
    if env_id in ENVPOOL_ONLY_IDS and backend != "envpool":
        raise RatbenchError(f"{env_id} runs on the EnvPool backend only (ratbench ships no ALE install); "
                            "set envs.backend=envpool (the atari task config does)")
    if backend == "envpool":
        if env_id.startswith(DMC_PREFIX):
            from envs.envpool_dmc import EnvPoolDMCVectorEnv

            return EnvPoolDMCVectorEnv(env_id, int(num_envs))
        from envs.envpool_backend import EnvPoolVectorEnv

        return EnvPoolVectorEnv(env_id, int(num_envs))
    if mode not in VECTOR_MODES:
        raise RatbenchError(f"unknown vector mode {mode!r}; valid modes: {', '.join(VECTOR_MODES)}")
    check_mujoco(env_id)
    if mode == "auto":
        mode = choose_vector_mode(env_id, num_envs)
    fns = [_env_factory(env_id, env_kwargs) for _ in range(int(num_envs))]
    if mode == "async":
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP, context=worker_start_method(env_id))
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


def get_vector_state(envs: VectorEnv) -> list[dict[str, Any]] | None:
    """Every sub-env's state, in order (picklable); None for EnvPool, which exposes no simulator state."""
    from envs.envpool_backend import EnvPoolVectorEnv

    if isinstance(envs, EnvPoolVectorEnv):
        return None
    return list(envs.call("get_state"))


def set_vector_state(envs: VectorEnv, states: list[dict[str, Any]] | None) -> bool:
    """Restore states from :func:`get_vector_state` (one per sub-env); False when there are none to
    restore (an EnvPool run: the caller starts fresh episodes)."""
    if states is None:
        return False
    if len(states) != envs.num_envs:
        raise RatbenchError(
            f"the checkpoint holds {len(states)} environment states but the run has {envs.num_envs} envs; "
            "resume with the run's own config"
        )
    envs.set_attr("ratbench_state", list(states))
    return True
