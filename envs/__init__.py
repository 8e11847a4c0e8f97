"""Environment names -> gymnasium environments (MuJoCo -v5 tasks and CartPole), vectorised with saveable state."""

from envs.registry import ENV_IDS, env_names, make_env, resolve_env_id
from envs.vector import get_vector_state, make_vector_env, set_vector_state

__all__ = ["ENV_IDS", "env_names", "get_vector_state", "make_env", "make_vector_env", "resolve_env_id", "set_vector_state"]
