"""Evaluation marks: every mark evaluated once, at the boundary whose policy it stands for, whatever the batch."""

import pytest
import yaml
from hypothesis import given, strategies as st

from ratbench.training import Trainer, resolve_config
from envs.names import DMC_TASKS, dmc_env_id
from ratbench.training.schedule import evaluation_mark, evaluation_step, evaluations_per_iteration, steps_per_iteration
from tests.ratbench.training.helpers import read_rows, small_config


def _schedule(config) -> dict[int, int]:
    """{recorded eval step: boundary evaluated at} over a whole run of ``config``, without training."""
    batch = steps_per_iteration(config)
    out, iteration, env_steps = {}, 0, 0
    while env_steps < config["steps"]:
        iteration, env_steps = iteration + 1, env_steps + batch
        step = evaluation_step(config, iteration, env_steps)
        if step is not None:
            assert step not in out
            out[step] = env_steps
    return out


@given(batch=st.integers(1, 5000), every_steps=st.integers(1, 100_000), budget=st.integers(1, 200_000))
def test_every_mark_is_evaluated_once_at_the_boundary_of_its_policy(batch, every_steps, budget):
    marks, env_steps = [], 0
    while env_steps < budget:
        env_steps += batch
        mark = evaluation_mark(env_steps, batch, every_steps, budget)
        if mark is not None:
            assert env_steps <= mark < env_steps + batch  # the last update made with at most `mark` steps
            marks.append(mark)
    expected = [m for m in range(every_steps, budget + 1, every_steps) if m >= batch]
    if every_steps >= batch:  # a mark inside the first batch is the initial policy's: no boundary stands for it
        assert marks == expected
    else:  # one evaluation per boundary, recording the largest mark in its batch
        largest = {}
        for m in expected:
            largest[m // batch] = m  # expected is increasing: the last mark seen in a batch is its largest
        assert marks == sorted(largest.values())


def test_no_mark_without_spacing():
    assert evaluation_mark(8192, 8192, 0, 10**6) is None


def test_shipped_ppo_and_npg_configs_evaluate_at_the_same_marks():
    """Hopper: PPO's 2,048-step batches and the NPG methods' 8,192 give the same marks, then each run's end."""
    ppo = resolve_config({"env": "hopper", "algo": "ppo"})
    npg = resolve_config({"env": "hopper", "algo": "npg", "solver": "kaczmarz"})
    preset = resolve_config({"env": "hopper", "algo": "npg", "solver": "kaczmarz", "preset": "reference"})
    schedules = [_schedule(c) for c in (ppo, npg, preset)]
    marks = [sorted(s)[:-1] for s in schedules]  # the last is the run's end, at its own step count
    assert marks[0] == marks[1] == marks[2] == list(range(50_000, 1_000_001, 50_000))
    assert ppo["num_envs"] * ppo["num_steps"] != npg["num_envs"] * npg["num_steps"]  # the case that matters


@pytest.mark.parametrize("domain,task,repeat", DMC_TASKS)
def test_environment_steps_count_the_action_repeat_and_keep_the_marks(domain, task, repeat):
    """The pixel-DMC protocol: 500k environment steps whatever the repeat (cartpole's 1,024-sample batches are
    8,192 environment steps), evaluated at the same 50k marks; in agent steps the same run is `repeat` x longer."""
    config = resolve_config({"env": "hopper"})  # the schedule needs no renderer: DMC's keys set by hand
    config.update(env=dmc_env_id(domain, task), steps=500_000, num_envs=8, num_steps=128, steps_unit="environment")
    assert steps_per_iteration(config) == 1024 * repeat
    assert sorted(_schedule(config))[:10] == list(range(50_000, 500_001, 50_000))
    agent = {**config, "steps_unit": "agent"}
    assert steps_per_iteration(agent) == 1024
    assert config["steps"] // steps_per_iteration(config) < agent["steps"] // steps_per_iteration(agent) or repeat == 1


def test_ppo_and_npg_runs_log_the_same_marks(tmp_path):
    """Real CartPole runs with batches of 1,024 (PPO) and 2,048 (NPG): marks 3,000 and 6,000, then the end."""
    logged = {}
    for algo, envs, explicit in (("ppo", 4, {}), ("npg", 8, {"solver": "kaczmarz"})):
        config = small_config("cartpole", algo, 6000, [f"num_envs={envs}", "eval.every=0", "eval.every_steps=3000"],
                              **explicit)
        Trainer.create(config, logdir=tmp_path / algo, progress_bar=False).train()
        rows = [r for r in read_rows(tmp_path / algo) if r["eval_return"] != ""]
        batch = envs * 256
        for row in rows[:-1]:
            assert int(row["env_steps"]) <= int(row["eval_step"]) < int(row["env_steps"]) + batch
        logged[algo] = [int(r["eval_step"]) for r in rows]
    assert logged["ppo"] == logged["npg"] == [3000, 6000, 6144]


def test_evaluations_per_iteration():
    config = resolve_config({"env": "hopper", "algo": "npg", "solver": "kaczmarz"})
    assert evaluations_per_iteration(config) == pytest.approx(8192 / 50_000)
    config["eval"].update(every_steps=0, every=4)
    assert evaluations_per_iteration(config) == 0.25


def test_a_run_made_before_marks_keeps_its_iteration_schedule(tmp_path):
    config = small_config("cartpole", "ppo", 1024, ["eval.every=2"])
    Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del saved["eval"]["every_steps"]  # as written before the key existed
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    resumed = Trainer.resume(tmp_path, steps=3072, progress_bar=False)
    assert resumed.config["eval"]["every_steps"] == 0
    resumed.train()
    rows = read_rows(tmp_path)
    assert [r["iteration"] for r in rows if r["eval_return"] != ""] == ["1", "2", "3"]  # 1: the old end
