"""DMC from pixels (envs/dmc.py): frames, action repeat, episode ends, seeding, resume state, and a couple of
training iterations per algorithm.

dm-control 1.0.52 loads beside mujoco 4 and renders through Mesa's EGL on a CPU, so CI runs the pixel tests
(.ci/run installs the extra); where it cannot render they skip with the reason. With dm-control hidden, one
test checks that ``ratbench train`` says what to install.
A smoke test (CPU-sized: 2 envs, 16-step batches, one evaluation episode); full DMC runs are GPU jobs.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.vector import make_vector_env, worker_start_method
from ratbench.errors import RatbenchError
from tests.devices import DEVICES


def _unavailable() -> str | None:
    from envs.dmc import gl_backend

    try:
        gl_backend()
    except RatbenchError as error:
        return str(error)
    return None


REASON = _unavailable()
needs_dmc = pytest.mark.skipif(REASON is not None, reason=f"DMC cannot run here: {REASON}")


def test_every_dmc_task_has_its_short_name():
    from envs.names import DMC_TASKS, dmc_env_id
    from envs.registry import ENV_IDS, resolve_env_id

    assert {dmc_env_id(domain, task) for domain, task, _ in DMC_TASKS} == {v for k, v in ENV_IDS.items() if k.startswith("dmc-")}
    assert len(DMC_TASKS) == 6 and resolve_env_id("dmc-ball-in-cup-catch") == "DMC/ball_in_cup-catch-v0"


def test_without_dm_control_train_says_what_to_install(tmp_path, monkeypatch):
    """dm_control hidden from the import system (and the DMC ids unregistered): one sentence, nothing written."""
    import importlib.util

    import gymnasium as gym
    from click.testing import CliRunner

    from envs import dmc
    from ratbench.cli import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args, **kwargs: None if name == "dm_control" else real(name, *args, **kwargs))
    for key in [k for k in gym.registry if k.startswith(dmc.DMC_PREFIX)]:
        monkeypatch.delitem(gym.registry, key)
    monkeypatch.chdir(tmp_path)
    dmc._find_backend.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["train", "--env", "dmc-cheetah-run", "--steps", "64"])
    finally:
        dmc._find_backend.cache_clear()
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert "dm-control package, which is not installed" in line and "pip install 'dm-control>=1.0.52'" in line
    assert not any(tmp_path.iterdir())  # nothing written


@needs_dmc
def test_frames_action_repeat_and_time_limit():
    envs = make_vector_env("dmc-cartpole-swingup", 2, mode="sync")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 9, 84, 84) and obs.dtype == np.uint8
        assert (obs[:, :3] == obs[:, 6:]).all()  # the stack starts as three copies of the first frame
        assert envs.single_action_space.shape == (1,) and envs.single_action_space.high[0] == 1.0
        steps, ended = 0, np.zeros(2, bool)
        while not ended.all():
            previous = obs
            obs, reward, terminated, truncated, info = envs.step(np.zeros((2, 1), np.float32))
            steps += 1
            assert ((0.0 <= reward) & (reward <= 8.0)).all()  # 8 repeats of a reward in [0, 1]
            if not truncated.any():
                assert (obs[:, :6] == previous[:, 3:]).all()  # older frames shift towards the front
            assert not terminated.any()
            ended |= truncated
        assert steps == 1000 // 8  # dm_control's 1,000 simulator steps at cartpole's action repeat
        assert "final_obs" in info and info["_final_obs"].all()
    finally:
        envs.close()


@needs_dmc
def test_async_workers_start_fresh_and_match_one_process():
    """Async DMC workers are spawned, not forked (a forked child inherits the parent's GPU driver state,
    which NVIDIA's EGL refuses), register the DMC ids themselves, and step exactly as one process does."""
    assert worker_start_method("DMC/cartpole-swingup-v0") == "spawn" and worker_start_method("Hopper-v5") is None
    actions = np.random.default_rng(0).uniform(-1, 1, (3, 2, 1)).astype(np.float32)
    runs = []
    for mode in ("sync", "async"):
        envs = make_vector_env("dmc-cartpole-swingup", 2, mode=mode)
        try:
            frames = [envs.reset(seed=3)[0]] + [envs.step(a)[0] for a in actions]
        finally:
            envs.close()
        runs.append(np.stack(frames))
    assert np.array_equal(runs[0], runs[1])


@needs_dmc
def test_seeds_fix_initial_states_and_the_checkpoint_state_resumes_exactly():
    from envs.registry import make_env

    first, again, other = (make_env("dmc-cheetah-run", seed=s) for s in (3, 3, 4))
    state = lambda env: env.unwrapped._env.physics.get_state()  # noqa: E731
    assert np.array_equal(state(first), state(again)) and not np.array_equal(state(first), state(other))
    # a checkpoint's state, through a weights-only checkpoint, continues the episode exactly in a fresh env
    # built with another seed (what a resumed run does)
    from tests.envs.helpers import through_checkpoint

    action = np.full((1, 6), 0.3, np.float32)
    envs = [make_vector_env("dmc-walker-walk", 1, mode="sync") for _ in range(2)]
    envs[0].reset(seed=0)
    envs[1].reset(seed=1)
    for _ in range(3):
        envs[0].step(action)
    saved = through_checkpoint(envs[0].envs[0].ratbench_state)
    expected = [envs[0].step(action)[:2] for _ in range(3)]
    envs[1].envs[0].ratbench_state = saved
    for obs, reward in expected:
        again_obs, again_reward = envs[1].step(action)[:2]
        assert np.array_equal(obs, again_obs) and np.array_equal(reward, again_reward)
    for env in envs:
        env.close()


@needs_dmc
@pytest.mark.parametrize("algo,solver,preset", [("npg", "kaczmarz", "null"), ("ppo", None, "null"),
                                               ("npg", "kaczmarz", "reference")])
@pytest.mark.parametrize("device", DEVICES)
def test_two_iterations_train_and_evaluate(tmp_path, algo, solver, preset, device):
    from ratbench.training import Trainer
    from ratbench.training.config import resolve_config
    from tests.ratbench.training.helpers import read_rows

    config = resolve_config({"env": "dmc-cartpole-swingup", "algo": algo, "solver": solver, "steps": 512, "device": device}, sets=[
        "num_envs=2", "num_steps=16", "eval.episodes=1", "eval.every_steps=256", "threads=1", "model.hidden=[32]",
        f"{algo}.minibatches=2", f"{algo}.epochs=1", f"preset={preset}"])
    assert config["steps_unit"] == "environment"  # task-dmc.yaml: the literature's unit
    trainer = Trainer.create(config, logdir=tmp_path, progress_bar=False)
    assert trainer.agent.policy.body[0][1].kernel_size == (8, 8)  # auto picked the Nature CNN for 84x84 frames
    summary = trainer.train()
    rows = read_rows(tmp_path)
    # 32 samples per iteration at cartpole's action repeat 8: 256 environment steps each
    assert summary["iterations"] == 2 and [int(r["env_steps"]) for r in rows] == [256, 512]
    assert [int(r["eval_step"]) for r in rows] == [256, 512]
    assert 0.0 <= float(rows[-1]["eval_return"]) <= 1000.0  # one full episode of rewards in [0, 1] per sim step


@needs_dmc
@pytest.mark.parametrize("renderer", ["standard", "fast"])
def test_the_reused_camera_renders_what_physics_render_does(renderer):
    """Every frame equals dm_control's own ``physics.render`` (a fresh camera per call) of the same state, over
    steps, a reset and a restored checkpoint state."""
    from envs.dmc import RENDERERS, DMCPixels

    env = DMCPixels("cheetah", "run", 4, renderer=renderer)

    def fresh() -> np.ndarray:
        frame = env._env.physics.render(84, 84, camera_id=0, render_flag_overrides=RENDERERS[renderer])
        return frame.transpose(2, 0, 1)

    try:
        obs, _ = env.reset(seed=1)
        assert np.array_equal(obs[6:], fresh())
        action = np.full(env.action_space.shape, 0.5, np.float32)
        for _ in range(3):
            obs, *_ = env.step(action)
            assert np.array_equal(obs[6:], fresh())
        state = env.simulator_state()
        env.step(-action)
        obs, _ = env.reset(seed=2)
        assert np.array_equal(obs[6:], fresh())
        env.restore_simulator_state(state)
        obs, *_ = env.step(action)
        assert np.array_equal(obs[6:], fresh())
    finally:
        env.close()


@needs_dmc
def test_the_fast_renderer_changes_only_the_frames():
    """Shadows and reflections off: the same simulation (rewards, states), other pixels; refused off DMC."""
    from envs.dmc import DMCPixels
    from ratbench.training import resolve_config

    standard, fast = DMCPixels("cheetah", "run", 4), DMCPixels("cheetah", "run", 4, renderer="fast")
    try:
        obs_s, _ = standard.reset(seed=3)
        obs_f, _ = fast.reset(seed=3)
        assert obs_s.shape == obs_f.shape == (9, 84, 84) and not np.array_equal(obs_s, obs_f)
        action = np.full(standard.action_space.shape, 0.3, np.float32)
        for _ in range(5):
            _, reward_s, *_ = standard.step(action)
            _, reward_f, *_ = fast.step(action)
            assert reward_s == reward_f
    finally:
        standard.close()
        fast.close()
    with pytest.raises(RatbenchError, match="valid renderers: standard, fast"):
        DMCPixels("cheetah", "run", 4, renderer="cheap")
    with pytest.raises(RatbenchError, match="applies to the DMC pixel tasks only"):
        resolve_config({"env": "hopper"}, sets=["envs.dmc_renderer=fast"])
    config = resolve_config({"env": "dmc-cheetah-run"}, sets=["envs.dmc_renderer=fast"])
    from ratbench.reporting.methods import method_label

    assert "fast renderer, non-standard frames" in method_label(config)


@needs_dmc
def test_random_scores_simulate_without_frames_and_the_same_rewards():
    """A uniform-random score never looks at a frame: DMC tasks run unrendered (zero frames), rewards unchanged."""
    from envs.dmc import DMCPixels
    from ratbench.training.random_score import random_score

    seen, blind = DMCPixels("walker", "walk", 2), DMCPixels("walker", "walk", 2, frames=False)
    try:
        obs_seen, _ = seen.reset(seed=1)
        obs_blind, _ = blind.reset(seed=1)
        assert obs_seen.any() and not obs_blind.any()
        rng = np.random.default_rng(0)
        for _ in range(5):
            action = rng.uniform(-1, 1, seen.action_space.shape)
            assert seen.step(action)[1] == blind.step(action)[1]
    finally:
        seen.close()
        blind.close()
    score = random_score("dmc-cartpole-swingup", episodes=2, seed=0)
    assert score.env == "DMC/cartpole-swingup-v0" and 0 <= score.mean <= 1000 and score.cut == 0
