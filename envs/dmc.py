"""DeepMind Control Suite from pixels (extra ``[dmc]``): dm_control tasks as gymnasium envs of uint8 frames.

The setting of the pixel-DMC literature (PlaNet, Hafner et al. 2019; SAC-AE; CURL; DrQ): the PlaNet benchmark's
six tasks (envs.names.DMC_TASKS), 84x84 RGB renders from camera 0, an action repeat per task (PlaNet's:
cartpole 8, finger and walker 2, the others 4), rewards summed over the repeat, the last 3 frames stacked on the channel axis, so observations are (9, 84, 84) uint8
(scaled to floats inside the network), actions in [-1, 1]. An episode is dm_control's 1,000 simulator
steps (1000 / repeat agent steps) and ends by time limit: ``truncated``, never ``terminated``.

Rendering needs an OpenGL backend. :func:`gl_backend` picks one by rendering a frame in a subprocess:
``MUJOCO_GL`` when the user set it, else EGL (a GPU's, or Mesa's software EGL on a CPU), then OSMesa,
and says which one it uses. Measured on the project's 2-core CPU machine with Mesa EGL: 20-40
frames/s of 84x84 while two training runs shared the cores, so CPU runs are smoke tests.

Versions: dm-control 1.0.52 loads beside mujoco 4.0.1 and gymnasium 1.4 (the extra ``[dmc]``, which .ci/run
installs; 1.0.50 did not load on mujoco 4: ``MjModel`` has no ``flex_vertedge``), so DMC runs in the default
environment.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np

from envs.names import DMC_PREFIX, DMC_TASKS, dmc_env_id
from ratbench.errors import RatbenchError

FRAME_SIZE = 84
FRAME_STACK = 3
GL_BACKENDS = ("egl", "osmesa")  # tried in this order when MUJOCO_GL is not set
RENDERERS = {"standard": None, "fast": {"shadow": False, "reflection": False}}
"""dm_control render flag overrides: ``standard`` is the literature's frames; ``fast`` turns off shadows and
reflections, which is where a software renderer spends its time (cheetah-run at 84x84 on this 2-core CPU with
Mesa EGL, two training runs beside it: 18.8 frames/s standard, 41.5 without shadows, 128.9 without reflections
too). Frames differ, so ``fast`` runs are a different, non-standard setting (their method label says so)."""
INSTALL_HINT = "pip install 'dm-control>=1.0.52' (or, in a ratbench checkout, pip install -e '.[dmc]')"

_PROBE = """
import os, sys
os.environ["MUJOCO_GL"] = sys.argv[1]
from dm_control import suite
env = suite.load("cartpole", "balance", task_kwargs={"random": 0})
env.reset()
assert env.physics.render(8, 8, camera_id=0).shape == (8, 8, 3)
"""


# Set beside MUJOCO_GL once a frame rendered with it; child processes inherit both and skip the probe.
_PROBED = "RATBENCH_MUJOCO_GL_PROBED"


def start_stack(stack: np.ndarray, frame: np.ndarray) -> None:
    """Fill frame stacks ``stack`` (..., 3 * k, H, W) with copies of their first ``frame`` (..., 3, H, W)."""
    stack[...] = np.tile(frame, (stack.shape[-3] // 3, 1, 1))


def push_frame(stack: np.ndarray, frame: np.ndarray) -> None:
    """Shift frame stacks ``stack`` (..., 3 * k, H, W) one frame older and put ``frame`` (..., 3, H, W) last."""
    stack[..., :-3, :, :] = stack[..., 3:, :, :]
    stack[..., -3:, :, :] = frame


def renderer_kwargs(env_id: str, renderer: str) -> dict[str, Any]:
    """The env kwargs that select ``renderer`` for a DMC task: none for the standard one or another task."""
    return {"renderer": renderer} if env_id.startswith(DMC_PREFIX) and renderer != "standard" else {}


def _probe(backend: str) -> str | None:
    """None when dm_control renders a frame with ``backend``; else the error's last line."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, backend], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "rendering one frame took over 300 s"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


@lru_cache(maxsize=None)
def _find_backend() -> tuple[str | None, str]:
    """(backend, "") when one renders, else (None, the one-line reason); computed once per process."""
    if importlib.util.find_spec("dm_control") is None:
        return None, f"DMC tasks need the dm-control package, which is not installed; {INSTALL_HINT}"
    asked = os.environ.get("MUJOCO_GL")
    if asked and os.environ.get(_PROBED) == asked:
        return asked, ""  # a child of a process that probed (an async env worker): no second probe or message
    errors = []
    for backend in ([asked] if asked else GL_BACKENDS):
        error = _probe(backend)
        if error is None:
            os.environ["MUJOCO_GL"] = backend  # read by dm_control at import, here and in child processes
            os.environ[_PROBED] = backend
            print(f"dm_control renders with MUJOCO_GL={backend}", file=sys.stderr)
            return backend, ""
        errors.append(f"MUJOCO_GL={backend}: {error}")
    from importlib import metadata

    return None, (f"dm_control cannot render a frame here (dm-control {metadata.version('dm-control')}, mujoco "
                  f"{metadata.version('mujoco')}; " + "; ".join(errors) + f"); {INSTALL_HINT}, and a GL library "
                  "(EGL or OSMesa)")


def gl_backend() -> str:
    """The OpenGL backend dm_control renders with here (``MUJOCO_GL`` is set to it for this process and
    its children). Raises a one-line error naming what failed when none works."""
    backend, reason = _find_backend()
    if backend is None:
        raise RatbenchError(reason)
    return backend


def register_dmc() -> None:
    """Register the DMC pixel tasks' gymnasium ids once the renderer works (clear error when it does not)."""
    if any(k.startswith(DMC_PREFIX) for k in gym.registry):
        return
    gl_backend()
    for domain, task, repeat in DMC_TASKS:
        gym.register(dmc_env_id(domain, task), entry_point="envs.dmc:DMCPixels",
                     kwargs={"domain": domain, "task": task, "action_repeat": repeat})


class DMCPixels(gym.Env):
    """One dm_control task from pixels: observations (3 * frame_stack, size, size) uint8, newest frame last."""

    metadata = {"render_modes": []}

    def __init__(self, domain: str, task: str, action_repeat: int, size: int = FRAME_SIZE,
                 frame_stack: int = FRAME_STACK, camera_id: int = 0, renderer: str = "standard", frames: bool = True):
        """``frames=False``: observations stay zero and nothing is rendered, for measurements that never look at
        them (uniform-random scores: :mod:`ratbench.training.random_score`); the simulation is unchanged."""
        from dm_control import suite

        if renderer not in RENDERERS:
            raise RatbenchError(f"unknown DMC renderer {renderer!r}; valid renderers: {', '.join(RENDERERS)}")
        self.action_repeat, self.size, self.camera_id = int(action_repeat), int(size), int(camera_id)
        self._flags, self._frames_on = RENDERERS[renderer], bool(frames)
        self._env = suite.load(domain, task)
        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)
        self._low, self._high = spec.minimum, spec.maximum
        self.observation_space = gym.spaces.Box(0, 255, (3 * frame_stack, self.size, self.size), np.uint8)
        self._frames = np.zeros(self.observation_space.shape, np.uint8)
        self._camera = None  # made at the first frame, then reused

    def _render(self) -> np.ndarray:
        """The frame ``physics.render(size, size, camera_id)`` gives, from one reused camera: physics.render
        builds a Camera (and its MjvScene) per call and frees it after, about 3 ms a frame on this CPU. The
        suite's physics object lives as long as the environment, resets included."""
        if not self._frames_on:
            return np.zeros((3, self.size, self.size), np.uint8)
        if self._camera is None:
            from dm_control.mujoco import Camera

            self._camera = Camera(self._env.physics, self.size, self.size, self.camera_id)
        frame = self._camera.render(render_flag_overrides=self._flags)
        return np.ascontiguousarray(frame.transpose(2, 0, 1))  # (H, W, 3) -> (3, H, W)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:  # dm_control draws initial states from the task's RandomState (private attribute)
            self._env.task._random = np.random.RandomState(int(seed))
        self._env.reset()
        start_stack(self._frames, self._render())
        return self._frames.copy(), {}

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        action = self._low + (action + 1.0) * 0.5 * (self._high - self._low)
        reward = 0.0
        for _ in range(self.action_repeat):
            step = self._env.step(action)
            reward += float(step.reward or 0.0)
            if step.last():
                break
        push_frame(self._frames, self._render())
        ended = step.last()
        terminated = bool(ended and step.discount == 0.0)
        return self._frames.copy(), reward, terminated, bool(ended and not terminated), {}

    def close(self) -> None:
        self._camera = None  # its scene before the model it was built from
        self._env.physics.free()  # MuJoCo's model, data and GL context

    # checkpoints (envs.vector.StatefulEnv): everything a resumed run needs to continue this episode exactly:
    # MuJoCo's full integration state (warm starts included, as for the gymnasium tasks), the task's
    # RandomState, and dm_control's step counter (private attributes of its control.Environment)
    def simulator_state(self) -> dict[str, Any]:
        import mujoco

        model, data = self._env.physics.model.ptr, self._env.physics.data.ptr
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(model, spec), dtype=np.float64)
        mujoco.mj_getState(model, data, physics, spec)
        return {"physics": physics, "random": self._env.task.random.get_state(),
                "step_count": self._env._step_count, "reset_next_step": self._env._reset_next_step,
                "frames": self._frames.copy()}

    def restore_simulator_state(self, state: dict[str, Any]) -> None:
        import mujoco

        mujoco.mj_setState(self._env.physics.model.ptr, self._env.physics.data.ptr,
                           np.asarray(state["physics"], dtype=np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
        self._env.physics.forward()  # dm_control steps as mj_step2 then mj_step1: recompute what step2 reads
        self._env.task.random.set_state(state["random"])
        self._env._step_count, self._env._reset_next_step = state["step_count"], state["reset_next_step"]
        self._frames[:] = state["frames"]
