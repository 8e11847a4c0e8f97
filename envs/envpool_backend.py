"""EnvPool as a vector-env backend with the contract of :func:`envs.vector.make_vector_env`.

EnvPool (optional extra ``ratbench[envpool]``) steps its environments in C++ threads, 2-3x faster
than gymnasium's sync vector env on the MuJoCo tasks here. Its own autoreset is next-step (the step
after an episode ends returns the reset observation and ignores the action); this adapter turns it
into gymnasium's same-step autoreset: when sub-envs end, it steps just those (``env_id``) once more
to reset them, returns the new episode's first observations in their place, and puts the last
observation of the ended episode in ``info["final_obs"]`` (masked by ``info["_final_obs"]``), as
gymnasium does, for the time-limit bootstrap.

Seeding: ``reset(seed=s)`` (re)builds the pool with seed ``s``; EnvPool seeds sub-env ``i`` with
``s + i``, the same rule as gymnasium's vector reset. Simulation: EnvPool bundles its own MuJoCo
build (3.6.0 in EnvPool 1.2.5), gymnasium simulates with the ``mujoco`` Python package (4.0.0
here); the README gives the measured difference. EnvPool exposes no simulator state, so a run on
this backend resumes with fresh episodes instead of exactly where it stopped.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np

from ratbench.errors import RatbenchError

INSTALL_HINT = "pip install envpool (or, in a ratbench checkout, pip install -e '.[envpool]')"


EGL_LIBRARY = "libEGL.so.1"


@lru_cache(maxsize=None)
def load_egl() -> str | None:
    """Load the system's EGL library into this process globally, once; None when it loaded, else why not.

    EnvPool's DMC renderer binds to the GL platform library present when envpool is first imported: without
    one it fails at the first reset ("an OpenGL platform library has not been loaded into this process"), and
    with one loaded only after that import, dm_control's renderer in the same process then fails ("gladLoadGL
    error"). So :func:`import_envpool` calls this first; tasks that do not render do not need it to succeed.
    """
    try:
        ctypes.CDLL(EGL_LIBRARY, mode=ctypes.RTLD_GLOBAL)
    except OSError as error:
        return str(error)
    return None


def import_envpool():
    """The envpool module (EGL loaded before it, :func:`load_egl`); a one-line error when it is not installed."""
    load_egl()
    try:
        import envpool
    except ImportError:
        raise RatbenchError(f"envs.backend=envpool needs the envpool package, which is not installed; run: {INSTALL_HINT}") from None
    return envpool


def envpool_tasks() -> list[str]:
    """The gymnasium-style task ids EnvPool provides (MuJoCo, classic control, ...)."""
    return sorted(import_envpool().list_all_envs())


def check_envpool_task(env_id: str) -> None:
    tasks = envpool_tasks()
    if env_id not in tasks:
        comparable = [t for t in tasks if "-v" in t and "/" not in t and t.split("-v")[0] in {
            "Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
            "InvertedPendulum", "Reacher", "Swimmer", "Walker2d", "CartPole", "Pendulum"}]
        raise RatbenchError(f"EnvPool has no task {env_id!r}; use envs.backend=gymnasium for it, or one of EnvPool's: "
                            + ", ".join(comparable))


class EnvPoolVectorEnv:
    """The subset of gymnasium's ``VectorEnv`` that ratbench's collector and evaluation use."""

    def __init__(self, env_id: str, num_envs: int, seed: int = 0):
        self.env_id, self.num_envs = env_id, int(num_envs)
        check_envpool_task(self.pool_task)
        self._pool = None
        self._build(seed)
        space = self._pool.action_space  # float64 in EnvPool; float32, as gymnasium's MuJoCo tasks declare it
        self.single_action_space = gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                                                  space.shape, np.float32) if isinstance(space, gym.spaces.Box) else space
        self.single_observation_space = self._observation_space()
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)

    @property
    def pool_task(self) -> str:
        """EnvPool's name for the task."""
        return self.env_id

    def _pool_kwargs(self) -> dict[str, Any]:
        """Options of ``envpool.make_gymnasium`` beyond the task, the number of envs and the seed."""
        return {}

    def _observation_space(self) -> gym.Space:
        return self._pool.observation_space

    def _build(self, seed: int) -> None:
        if self._pool is not None:
            self._pool.close()
        self._pool = import_envpool().make_gymnasium(self.pool_task, num_envs=self.num_envs, seed=int(seed),
                                               **self._pool_kwargs())

    def reset(self, seed: int | None = None, options: Any = None):
        if seed is not None:
            self._build(seed)
        obs, info = self._pool.reset()
        return obs, {}

    def _reset_ended(self, ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start new episodes in the sub-envs where ``ended`` (EnvPool resets them on their next step, whose
        action it ignores): (their indices, their first observations), in matching order."""
        ids = np.flatnonzero(ended).astype(np.int32)
        dummy = np.zeros((ids.size, *self.single_action_space.shape), dtype=np.float64) \
            if isinstance(self.single_action_space, gym.spaces.Box) else np.zeros(ids.size, dtype=np.int64)
        first, _, _, _, info = self._pool.step(dummy, env_id=ids)
        return np.asarray(info["env_id"]), first

    def step(self, actions: np.ndarray):
        obs, reward, term, trunc, info = self._pool.step(np.asarray(actions))
        obs = np.array(obs)
        ended = np.asarray(term | trunc, dtype=bool)
        out_info: dict[str, Any] = {}
        if ended.any():
            out_info = final_observations(obs, ended)
            order, first = self._reset_ended(ended)
            obs[order] = first
        return obs, np.asarray(reward, dtype=np.float64), np.asarray(term, dtype=bool), np.asarray(trunc, dtype=bool), out_info

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def final_observations(obs: np.ndarray, ended: np.ndarray) -> dict[str, Any]:
    """gymnasium's same-step autoreset info: copies of the ended sub-envs' last observations (object array)."""
    final = np.empty(len(obs), dtype=object)
    for i in np.flatnonzero(ended):
        final[i] = obs[i].copy()
    return {"final_obs": final, "_final_obs": ended}
