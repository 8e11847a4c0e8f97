"""The EnvPool backend keeps the vector-env contract of the gymnasium one."""

from __future__ import annotations

import numpy as np
import pytest

from envs.envpool_backend import EnvPoolVectorEnv
from envs.vector import make_vector_env
from ratbench.errors import RatbenchError
from tests.envs.helpers import needs_envpool

pytestmark = needs_envpool


@pytest.mark.parametrize("name", ["hopper", "humanoid", "cartpole", "Humanoid-v4"])
def test_same_spaces_as_gymnasium(name):
    ours, theirs = make_vector_env(name, 2, backend="envpool"), make_vector_env(name, 2, backend="gymnasium")
    try:
        for a, b in ((ours.single_observation_space, theirs.single_observation_space),
                     (ours.single_action_space, theirs.single_action_space)):
            assert type(a) is type(b) and a.shape == b.shape
            if hasattr(a, "low"):
                np.testing.assert_array_equal(a.low, b.low)
                np.testing.assert_array_equal(a.high, b.high)
    finally:
        ours.close()
        theirs.close()


def test_same_step_autoreset_with_final_obs():
    envs = EnvPoolVectorEnv("Hopper-v5", 4)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        obs, reward, term, trunc, info = envs.step(rng.uniform(-1, 1, (4, 3)))
        if (term | trunc).any():
            break
    ended = np.flatnonzero(term | trunc)
    assert ended.size > 0, "no Hopper episode ended within 1,000 random steps"
    assert info["_final_obs"][ended].all() and not info["_final_obs"][~(term | trunc)].any()
    for i in ended:
        assert not np.allclose(info["final_obs"][i], obs[i])  # obs[i] already starts the next episode
        assert abs(obs[i][0] - 1.25) < 0.01  # Hopper's initial torso height (reset noise 5e-3)
    _, reward, _, _, _ = envs.step(np.zeros((4, 3)))
    assert (reward[ended] != 0).all()  # a real step, not EnvPool's reset step (reward 0)
    envs.close()


def test_seed_rule_matches_gymnasium_vector_reset():
    """Sub-env i of reset(seed=s) gets seed s + i, as in gymnasium."""
    a, _ = EnvPoolVectorEnv("Hopper-v5", 3).reset(seed=7)
    b, _ = EnvPoolVectorEnv("Hopper-v5", 1).reset(seed=9)
    np.testing.assert_array_equal(a[2], b[0])


def test_unknown_task_names_the_ones_it_has():
    with pytest.raises(RatbenchError, match="EnvPool has no task 'Hopper-v9'.*Hopper-v5"):
        EnvPoolVectorEnv("Hopper-v9", 2)


def _returns(backend: str, episodes: int = 50, num_envs: int = 10) -> np.ndarray:
    """A fixed seeded policy (linear in the observation, Gaussian noise from its own generator)."""
    envs = make_vector_env("hopper", num_envs, backend=backend)
    weights = np.random.default_rng(123).normal(0, 0.05, (11, 3))
    noise = np.random.default_rng(456)
    obs, _ = envs.reset(seed=1000)
    current, done = np.zeros(num_envs), []
    while len(done) < episodes:
        action = np.clip(np.tanh(obs @ weights) + noise.normal(0, 0.1, (num_envs, 3)), -1, 1)
        obs, reward, term, trunc, _ = envs.step(action)
        current += reward
        for i in np.flatnonzero(term | trunc):
            done.append(current[i])
            current[i] = 0.0
    envs.close()
    return np.array(done[:episodes])


def test_returns_of_a_fixed_policy_agree_within_three_standard_errors():
    """gymnasium (mujoco 4.0.0) and EnvPool 1.2.5 (its MuJoCo 3.6.0 build), 50 Hopper-v5 episodes each;
    the difference of the means must be within 3 combined standard errors. Measured: 10.84 +- 0.27
    (gymnasium) and 10.91 +- 0.30 (EnvPool)."""
    ours, theirs = _returns("envpool"), _returns("gymnasium")
    se = np.sqrt(ours.var(ddof=1) / ours.size + theirs.var(ddof=1) / theirs.size)
    assert abs(ours.mean() - theirs.mean()) <= 3 * se, (ours.mean(), theirs.mean(), se)


def test_training_runs_and_resumes_on_envpool(tmp_path):
    from ratbench.training import Trainer
    from tests.ratbench.training.helpers import small_config

    config = small_config("hopper", steps=1024, extra=["envs.backend=envpool"])
    summary = Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    assert summary["env_steps"] == 1024
    resumed = Trainer.resume(tmp_path, steps=2048, progress_bar=False).train()
    assert resumed["env_steps"] == 2048 and resumed["eval_return"] is not None
