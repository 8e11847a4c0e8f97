"""MinAtar frames: channels first, uint8, and the whole game state saved and restored exactly."""

import numpy as np
import pytest

pytest.importorskip("minatar", reason="minatar is not installed (pip install 'ratbench[minatar]')")

from envs.registry import resolve_env_id  # noqa: E402
from envs.vector import get_vector_state, make_vector_env, set_vector_state  # noqa: E402
from tests.envs.helpers import through_checkpoint  # noqa: E402


@pytest.mark.parametrize("name", ["minatar-breakout", "minatar-space-invaders", "MinAtar/Seaquest-v1"])
def test_frames_are_uint8_channels_first(name):
    envs = make_vector_env(name, 2)
    obs, _ = envs.reset(seed=0)
    c = envs.single_observation_space.shape[0]
    assert obs.shape == (2, c, 10, 10) and obs.dtype == np.uint8 and set(np.unique(obs)) <= {0, 1}
    envs.close()


def test_restored_game_replays_exactly():
    envs = make_vector_env("minatar-seaquest", 3)
    envs.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        envs.step(rng.integers(0, envs.single_action_space.n, 3))
    state = through_checkpoint(get_vector_state(envs))  # the game as attributes, restored onto this run's own
    actions = rng.integers(0, envs.single_action_space.n, (50, 3))
    first = [envs.step(a) for a in actions]
    set_vector_state(envs, state)
    second = [envs.step(a) for a in actions]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    envs.close()


def test_short_names_resolve():
    assert resolve_env_id("minatar-space-invaders") == "MinAtar/SpaceInvaders-v1"
