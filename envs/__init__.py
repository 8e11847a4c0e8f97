"""Environment names -> gymnasium environments (MuJoCo -v5 tasks and CartPole)."""

from envs.registry import ENV_IDS, env_names, make_env, resolve_env_id

__all__ = ["ENV_IDS", "env_names", "make_env", "resolve_env_id"]
