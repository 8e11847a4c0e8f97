"""EnvPool's DeepMind Control pixel tasks with the episodes, frames and rewards of :mod:`envs.dmc`.

EnvPool's ``<Domain><Task>-v1`` with ``from_pixels=True`` renders an 84x84 frame of camera 0 (its default,
``render_camera_id=-1``, is a free camera, not the DMC view) at every *control* step: its ``frame_skip`` is
dm_control's own physics sub-steps per control step (1 on cartpole, 2 on finger), and a larger one would take
one reward after the skip and count ``max_episode_steps`` in skipped steps, neither of which is the
literature's action repeat. So this adapter repeats the action itself, as :class:`envs.dmc.DMCPixels` does:
``repeat`` control steps per agent step, rewards summed over them, a sub-env whose episode ends mid-repeat
left alone for the rest of it, the last frame of each agent step pushed onto a stack of 3 (observations
``(9, 84, 84)`` uint8, newest last; a new episode's stack starts as three copies of its first frame), 1,000
control steps per episode ending as ``truncated``. The cost of faithfulness: EnvPool renders every control
step, ``repeat`` frames per agent step where the dm_control path renders one (README: frames/s of each).

EnvPool's renderer needs a GL platform library in the process before envpool is imported
(:func:`envs.envpool_backend.load_egl` loads the system's libEGL globally; here its failure is an error).
Simulation: EnvPool's bundled MuJoCo and its port of the DMC tasks; initial states come from its
own RNG, so a seed gives other episodes than on the dm_control path (returns agree within noise:
tests/envs/test_envpool_dmc.py).

Render threads: at most :data:`RENDER_THREADS` per pool. EnvPool's default (one thread per sub-env, up to
the cores it sees) crashed inside Mesa's software renderer (``swrast_dri.so``, a segfault in an EnvPool worker
thread) on this CPU: 8 sub-envs on 8 threads in 3 of 3 tries (or hung at the first reset), 4 on 4 threads in
3 of 3 tries once a dm_control EGL context had been made in the same process. With 2 threads and no
dm_control context, 8 and 4 sub-envs passed every try at first; beside a dm_control context even 2 threads crashed
once in 2 tries (8 sub-envs), and later 2 threads crashed alone in a fresh process: once in the full test suite
and once in 6 tries of 125 agent steps of 4 sub-envs through this adapter (1,000 control-step frames each),
where one thread passed 6 of 6. One thread renders with one GL context at a time, which is what Mesa survives;
with two training runs beside, those tries took 108-146 s on one thread against 111-124 s (and the crash at 86 s)
on two. So never render with this backend and with dm_control in one process: training does not
(its evaluation episodes use the training backend, and envs.dmc probes dm_control in a subprocess), and
tests/envs/test_envpool_dmc.py runs EnvPool in a fresh process.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.dmc import FRAME_SIZE, FRAME_STACK, push_frame, start_stack
from envs.envpool_backend import EGL_LIBRARY, EnvPoolVectorEnv, final_observations, load_egl
from envs.names import DMC_TASKS, dmc_env_id
from ratbench.errors import RatbenchError

RENDER_THREADS = 1
"""EnvPool worker threads per DMC pixel pool: more crashed Mesa's software renderer here (module docstring).
Unmeasured with a GPU's EGL, where more threads may pay."""


def pool_task_name(domain: str, task: str) -> str:
    """EnvPool's id of a DMC task: ``ball_in_cup``/``catch`` -> ``BallInCupCatch-v1``."""
    title = lambda name: "".join(part[:1].upper() + part[1:] for part in name.split("_"))  # noqa: E731
    return f"{title(domain)}{title(task)}-v1"


class EnvPoolDMCVectorEnv(EnvPoolVectorEnv):
    """``num_envs`` copies of a DMC pixel task (``DMC/<domain>-<task>-v0``) on EnvPool, same-step autoreset."""

    def __init__(self, env_id: str, num_envs: int, seed: int = 0):
        tasks = {dmc_env_id(domain, task): (domain, task, repeat) for domain, task, repeat in DMC_TASKS}
        if env_id not in tasks:
            raise RatbenchError(f"{env_id} is not one of ratbench's DMC pixel tasks: {', '.join(tasks)}")
        self.domain, self.task, self.action_repeat = tasks[env_id]
        reason = load_egl()
        if reason is not None:
            raise RatbenchError(f"EnvPool renders DMC frames with EGL, and {EGL_LIBRARY} does not load here ({reason}); "
                                "install an EGL library (Mesa's libegl1, or a GPU driver's) or use envs.backend=gymnasium")
        super().__init__(env_id, num_envs, seed)
        self._frames = np.zeros((self.num_envs, *self.single_observation_space.shape), np.uint8)

    @property
    def pool_task(self) -> str:
        return pool_task_name(self.domain, self.task)

    def _pool_kwargs(self) -> dict[str, Any]:
        return {"num_threads": min(self.num_envs, RENDER_THREADS), "from_pixels": True, "render_camera_id": 0,
                "render_width": FRAME_SIZE, "render_height": FRAME_SIZE}

    def _observation_space(self) -> gym.Space:
        return gym.spaces.Box(0, 255, (3 * FRAME_STACK, FRAME_SIZE, FRAME_SIZE), np.uint8)

    def _start_stacks(self, order: np.ndarray, first: np.ndarray) -> None:
        stacks = self._frames[order]  # a copy (fancy indexing): filled, then put back
        start_stack(stacks, np.asarray(first))
        self._frames[order] = stacks

    def reset(self, seed: int | None = None, options: Any = None):
        obs, _ = super().reset(seed=seed)
        self._start_stacks(np.arange(self.num_envs), obs)
        return self._frames.copy(), {}

    def step(self, actions: np.ndarray):
        actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        reward = np.zeros(self.num_envs)
        term, trunc = np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool)
        last = np.empty((self.num_envs, 3, FRAME_SIZE, FRAME_SIZE), np.uint8)
        running = np.ones(self.num_envs, bool)
        for _ in range(self.action_repeat):
            ids = np.flatnonzero(running).astype(np.int32)
            obs, r, te, tr, info = self._pool.step(actions[ids], env_id=ids)
            order = np.asarray(info["env_id"])
            reward[order] += r
            last[order], term[order], trunc[order] = obs, te, tr
            running[order[np.asarray(te | tr, bool)]] = False
            if not running.any():
                break
        push_frame(self._frames, last)
        ended = term | trunc
        out_info: dict[str, Any] = {}
        if ended.any():
            out_info = final_observations(self._frames, ended)
            self._start_stacks(*self._reset_ended(ended))
        return self._frames.copy(), reward, term, trunc, out_info
