"""Resolving task names (:mod:`envs.names`) to registered gymnasium ids, and making single envs.

``resolve_env_id`` accepts a short name (``humanoid``, case-insensitive) or
a full registered gymnasium id (``Humanoid-v5``). Unknown names raise a
:class:`~ratbench.errors.RatbenchError` listing close matches; a missing
MuJoCo install says how to install it.
"""

from __future__ import annotations

import gymnasium as gym

from envs.names import (DMC_ACTION_REPEATS, DMC_PREFIX, ENV_IDS, ENVPOOL_ONLY_IDS, MINATAR_PREFIX,  # noqa: F401
                         MUJOCO_IDS)  # (re-exported)
from ratbench.errors import RatbenchError, unknown_name


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


def register_minatar() -> None:
    """Register MinAtar's gymnasium ids (the package does not do it on import); clear error without it."""
    if any(k.startswith(MINATAR_PREFIX) for k in gym.registry):
        return
    try:
        import minatar.gym
    except ImportError:
        raise RatbenchError("MinAtar tasks need the minatar package, which is not installed; "
                            "run: pip install minatar (or, in a ratbench checkout, pip install -e '.[minatar]')") from None
    minatar.gym.register_envs()


def _register_family(env_id: str) -> None:
    """Register the gymnasium ids of the families whose packages do not (MinAtar, DMC) on first use."""
    if env_id.startswith(MINATAR_PREFIX):
        register_minatar()
    elif env_id.startswith(DMC_PREFIX):
        from envs.dmc import register_dmc

        register_dmc()


def env_names() -> list[str]:
    return list(ENV_IDS)


def _short_name_id(name: str) -> str | None:
    """The gymnasium id of a short name (any case, dashes and underscores ignored); None for other names."""
    return {_normal(short): full for short, full in ENV_IDS.items()}.get(_normal(name))


def action_repeat(name: str) -> int:
    """Environment steps per agent step for a short name or id: the task's action repeat (DMC), else 1.
    Registers nothing (so it is safe where no renderer is wanted, e.g. while resolving a config)."""
    return DMC_ACTION_REPEATS.get(_short_name_id(name) or name, 1)


def resolve_env_id(name: str) -> str:
    """Short name or full gymnasium id -> gymnasium id."""
    env_id = _short_name_id(name)
    if env_id is not None:
        _register_family(env_id)
        return env_id
    _register_family(name)
    if name in gym.registry or name in ENVPOOL_ONLY_IDS:
        return name
    raise unknown_name("environment", name, list(ENV_IDS) + sorted(ENV_IDS.values()))


def check_mujoco(env_id: str) -> None:
    """Raise a clear error when a MuJoCo task is asked for without MuJoCo installed."""
    if env_id not in MUJOCO_IDS and "mujoco" not in str(gym.spec(env_id).entry_point):
        return
    try:
        import mujoco  # noqa: F401
    except ImportError:
        raise RatbenchError(
            f"{env_id} needs MuJoCo, which is not installed; run: pip install 'gymnasium[mujoco]'"
        ) from None


def make_env(name: str, seed: int | None = None, **kwargs) -> gym.Env:
    """One gymnasium env by short name or id, reset with ``seed`` when given."""
    from envs.pixels import wrap_observations

    env_id = resolve_env_id(name)
    check_mujoco(env_id)
    env = wrap_observations(env_id, gym.make(env_id, **kwargs))
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env
