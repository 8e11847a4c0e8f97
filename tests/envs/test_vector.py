"""Vector envs: same-step autoreset, exact state save/restore, the auto mode rule, name errors."""

import numpy as np
import pytest

from envs.registry import make_env, resolve_env_id
from envs.vector import choose_vector_mode, get_vector_state, make_vector_env, set_vector_state
from tests.envs.helpers import through_checkpoint
from ratbench.errors import RatbenchError


def _rollout(envs, actions):
    out = []
    for a in actions:
        obs, reward, term, trunc, _ = envs.step(a)
        out.append((obs.copy(), reward.copy(), term.copy(), trunc.copy()))
    return out


@pytest.mark.parametrize("name", ["hopper", "cartpole"])
def test_restored_state_replays_exactly(name):
    envs = make_vector_env(name, 3, mode="sync")
    envs.reset(seed=7)
    envs.action_space.seed(7)
    actions = [envs.action_space.sample() for _ in range(400)]
    _rollout(envs, actions[:150])  # mid-episode for some envs, after resets for others
    state = through_checkpoint(get_vector_state(envs))
    first = _rollout(envs, actions[150:])
    assert sum(t.sum() + u.sum() for _, _, t, u in first) > 0  # episodes end (and reset) in the replayed part
    fresh = make_vector_env(name, 3, mode="sync")
    fresh.reset(seed=123)  # a different history, overwritten by the saved state
    set_vector_state(fresh, state)
    second = _rollout(fresh, actions[150:])
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)  # bit-for-bit: same MuJoCo state, RNG and time-limit counters


def test_async_workers_restore_sync_state():
    sync = make_vector_env("hopper", 2, mode="sync")
    sync.reset(seed=1)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, size=(2, 3)) for _ in range(60)]
    _rollout(sync, actions[:20])
    state = through_checkpoint(get_vector_state(sync))
    expected = _rollout(sync, actions[20:])
    workers = make_vector_env("hopper", 2, mode="async")
    try:
        workers.reset(seed=99)
        set_vector_state(workers, state)
        got = _rollout(workers, actions[20:])
    finally:
        workers.close()
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_same_step_autoreset_reports_final_obs():
    envs = make_vector_env("cartpole", 2, mode="sync", max_episode_steps=5)
    obs, _ = envs.reset(seed=0)
    for _ in range(4):
        obs, _, term, trunc, info = envs.step(np.zeros(2, dtype=np.int64))
        assert not (term | trunc).any()
    obs, _, term, trunc, info = envs.step(np.zeros(2, dtype=np.int64))
    assert trunc.all() and info["_final_obs"].all()
    for i in range(2):
        # the returned observation is already the next episode's first one (|x| <= 0.05 after reset)
        assert np.abs(obs[i]).max() <= 0.05
        assert not np.array_equal(info["final_obs"][i], obs[i])


def test_state_count_mismatch_is_a_clear_error():
    envs = make_vector_env("cartpole", 2, mode="sync")
    envs.reset(seed=0)
    with pytest.raises(RatbenchError, match="2 envs"):
        set_vector_state(envs, get_vector_state(envs)[:1])


def test_auto_mode_rule():
    assert choose_vector_mode("Hopper-v5", 32, cpu_count=2) == "sync"
    assert choose_vector_mode("Humanoid-v5", 32, cpu_count=2) == "sync"
    assert choose_vector_mode("Humanoid-v5", 32, cpu_count=16) == "async"
    assert choose_vector_mode("Humanoid-v5", 1, cpu_count=16) == "sync"
    assert choose_vector_mode("DMC/cartpole-swingup-v0", 8, cpu_count=16) == "async"  # a render per step
    assert choose_vector_mode("DMC/cartpole-swingup-v0", 8, cpu_count=2) == "sync"


def test_bad_vector_arguments():
    with pytest.raises(RatbenchError, match="valid modes"):
        make_vector_env("hopper", 2, mode="threads")
    with pytest.raises(RatbenchError, match="num_envs"):
        make_vector_env("hopper", 0)


def test_names_resolve_and_unknown_names_suggest():
    assert resolve_env_id("hopper") == "Hopper-v5"
    assert resolve_env_id("Walker2d-v5") == "Walker2d-v5"
    assert resolve_env_id("Inverted_Pendulum") == "InvertedPendulum-v5"
    with pytest.raises(RatbenchError, match="did you mean 'hopper'"):
        resolve_env_id("hoper")
    env = make_env("cartpole", seed=3)
    assert env.observation_space.shape == (4,)
