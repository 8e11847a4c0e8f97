"""EnvPool's DMC pixel tasks (envs/envpool_dmc.py) against the dm_control path (envs/dmc.py): the same observation
layout, camera, action repeat with summed rewards, episode ends and, for a fixed policy, the same returns within
noise. Real renders on both (Mesa's EGL on a CPU); skipped where either backend cannot render. EnvPool runs in
a fresh process each time (tests.envs.helpers.in_fresh_process): this one has dm_control's EGL contexts, beside
which EnvPool's renderer crashed Mesa here (envs/envpool_dmc.py)."""

from __future__ import annotations

import numpy as np
import pytest

from envs.envpool_backend import import_envpool, load_egl
from envs.vector import make_vector_env
from ratbench.errors import RatbenchError
from tests.envs.helpers import in_fresh_process, needs_envpool
from tests.envs.test_dmc import REASON

EGL_REASON = load_egl()
pytestmark = [needs_envpool, pytest.mark.skipif(REASON is not None or EGL_REASON is not None,
                                                reason=f"DMC cannot render here: {REASON or EGL_REASON}")]


def _open_loop(t: int) -> float:
    """A fixed policy: a slow sine in the agent step (no observation), the same on both backends."""
    return float(np.sin(t / 4.0))


def _returns(backend: str, seeds: int) -> np.ndarray:
    """One cartpole-swingup episode per sub-env under :func:`_open_loop`; 125 agent steps at repeat 8."""
    envs = make_vector_env("dmc-cartpole-swingup", seeds, mode="sync", backend=backend)
    try:
        envs.reset(seed=0)
        total, steps = np.zeros(seeds), 0
        while True:
            _, reward, terminated, truncated, info = envs.step(np.full((seeds, 1), _open_loop(steps), np.float32))
            total, steps = total + reward, steps + 1
            if (terminated | truncated).any():
                assert truncated.all() and not terminated.any() and steps == 1000 // 8  # the time limit, all at once
                assert info["_final_obs"].all() and info["final_obs"][0].shape == (9, 84, 84)
                return total
    finally:
        envs.close()


def _envpool_views() -> dict:
    """EnvPool's spaces, first stacks and stacks after one step on camera 0, and its free camera's first frame."""
    envs = make_vector_env("dmc-cartpole-swingup", 1, mode="sync", backend="envpool")
    free = import_envpool().make_gymnasium("CartpoleSwingup-v1", num_envs=1, seed=0, from_pixels=True,
                                           render_width=84, render_height=84)
    try:
        first = envs.reset(seed=0)[0]
        after = envs.step(np.full((1, 1), 0.5, np.float32))[0]
        return {"spaces": (envs.single_observation_space, envs.single_action_space), "first": first, "after": after,
                "free": free.reset()[0][0]}
    finally:
        envs.close()
        free.close()


def test_same_layout_and_camera_as_the_dm_control_path():
    """Stacked (9, 84, 84) uint8 frames starting as three copies; camera 0's view: cartpole's first frame (its
    initial state varies by 1e-2 around the same pose) within a pixel level of dm_control's on average, where
    EnvPool's own default free camera is about 30 levels away."""
    ours = in_fresh_process(_envpool_views)
    theirs = make_vector_env("dmc-cartpole-swingup", 1, mode="sync", backend="gymnasium")
    try:
        assert ours["spaces"] == (theirs.single_observation_space, theirs.single_action_space)
        reference = theirs.reset(seed=0)[0]
    finally:
        theirs.close()
    frames, after = ours["first"], ours["after"]
    assert frames.shape == (1, 9, 84, 84) and frames.dtype == np.uint8 and (frames[:, :3] == frames[:, 6:]).all()
    distance = lambda x: np.abs(x.astype(float) - reference[0, -3:].astype(float)).mean()  # noqa: E731
    assert distance(frames[0, -3:]) < 1.0 < 10.0 < distance(ours["free"])
    assert np.array_equal(after[:, :6], frames[:, 3:]) and not np.array_equal(after[:, 6:], frames[:, 6:])


def _repeat_against_control_steps() -> dict:
    """334 agent steps at a repeat of 3 on the pixel pool, beside its state twin stepped one control step at a time
    with the same seed and actions: each agent step's reward and end flags, its control steps' rewards, and the
    stacks around the episode's end."""
    from envs.envpool_dmc import EnvPoolDMCVectorEnv

    envs = EnvPoolDMCVectorEnv("DMC/cartpole-swingup-v0", 1)
    raw = import_envpool().make_gymnasium("CartpoleSwingup-v1", num_envs=1, seed=5)
    rewards, control, ends = [], [], []
    try:
        envs.action_repeat = 3
        previous = envs.reset(seed=5)[0]
        raw.reset()
        for t in range(334):
            action = np.full((1, 1), _open_loop(t), np.float32)
            obs, reward, terminated, truncated, info = envs.step(action)
            control.append([float(raw.step(action.astype(np.float64))[1][0]) for _ in range(3 if t < 333 else 1)])
            rewards.append(float(reward[0]))
            ends.append((bool(terminated[0]), bool(truncated[0])))
            if t < 333:
                previous = obs
        return {"rewards": rewards, "control": control, "ends": ends, "previous": previous, "last": obs,
                "final": info["final_obs"][0]}
    finally:
        envs.close()
        raw.close()


def test_rewards_are_summed_over_the_repeat_and_an_episode_may_end_mid_repeat():
    """Against EnvPool's state-observation twin stepped one control step at a time with the same seed and actions
    (its pixel and state pools simulate alike): each agent step's reward is the sum of its control steps' (not
    the last one's), and at a repeat of 3 the 1,000-step episode ends one control step into the 334th agent step,
    whose final stack holds the episode's last frames, and the next episode's stack starts afresh."""
    run = in_fresh_process(_repeat_against_control_steps)
    for t, (reward, control, (terminated, truncated)) in enumerate(zip(run["rewards"], run["control"], run["ends"])):
        assert reward == pytest.approx(sum(control), rel=1e-6)
        assert truncated == (t == 333) and not terminated
    assert np.array_equal(run["final"][:6], run["previous"][0][3:])  # the ended episode's stack, shifted once
    assert (run["last"][:, :3] == run["last"][:, 6:]).all() and not np.array_equal(run["last"][0], run["final"])


def test_a_fixed_policy_returns_the_same_within_noise_on_both_backends():
    """Four episodes each (initial states drawn by each backend's own RNG; returns about 200 +- 25 here): the
    means differ by less than four standard errors of their difference (Welch's t at about 5 degrees of freedom:
    a 1% chance of a false alarm on a platform whose fixed seeds land badly). A reward taken from the last
    control step only (returns / 8) or the repeat left out (1,000 agent steps) fails it."""
    ours, theirs = in_fresh_process(_returns, "envpool", 4), _returns("gymnasium", 4)
    standard_error = np.sqrt(ours.var(ddof=1) / ours.size + theirs.var(ddof=1) / theirs.size)
    assert abs(ours.mean() - theirs.mean()) <= 4 * standard_error, (ours, theirs)
    assert ours.mean() > 50  # the policy moves the pole: returns well above a hanging pole's


def _train_two_iterations(logdir) -> tuple[dict, list[dict]]:
    """Two iterations of RAT on EnvPool's cartpole-swingup (CPU-sized): the summary and progress.csv's rows."""
    from ratbench.training import Trainer
    from ratbench.training.config import resolve_config
    from tests.ratbench.training.helpers import read_rows

    config = resolve_config({"env": "dmc-cartpole-swingup", "algo": "npg", "solver": "kaczmarz", "steps": 512}, sets=[
        "envs.backend=envpool", "num_envs=2", "num_steps=16", "eval.episodes=1", "eval.max_episode_steps=4",
        "threads=1", "model.hidden=[32]", "npg.minibatches=2", "npg.epochs=1"])
    summary = Trainer.create(config, logdir=logdir, progress_bar=False).train()
    return summary, read_rows(logdir)


def test_train_on_envpool_dmc_and_refuse_the_fast_renderer(tmp_path):
    from ratbench.training.config import resolve_config

    with pytest.raises(RatbenchError, match="needs envs.backend=gymnasium"):
        resolve_config({"env": "dmc-cartpole-swingup"}, sets=["envs.backend=envpool", "envs.dmc_renderer=fast"])
    summary, rows = in_fresh_process(_train_two_iterations, tmp_path)
    assert summary["iterations"] == 2 and [int(r["env_steps"]) for r in rows] == [256, 512]
    assert rows[-1]["eval_return"] != ""
