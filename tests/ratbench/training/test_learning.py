"""Learning, for real: RAT and PPO solve CartPole and InvertedPendulum with the shipped task configs (TRPO
CartPole),
and learn MinAtar Breakout from pixels (bar and budget at the MinAtar cases below).

Budgets (seed 0, one torch thread, shipped task-<env>[-ppo].yaml: 8 envs x 128 steps,
64x64 MLPs, gamma 0.99), and the bar on the mean return of 10 deterministic evaluation
episodes at the end of the budget:

| task              | algorithm        | budget (env steps) | bar  |
|-------------------|------------------|--------------------|------|
| CartPole-v1       | npg + kaczmarz   | 40,960             | 450  |
| CartPole-v1       | ppo              | 51,200             | 450  |
| InvertedPendulum  | npg + kaczmarz   | 20,480             | 900  |
| InvertedPendulum  | ppo              | 30,720             | 900  |
| CartPole-v1       | trpo             | 30,720             | 450  |

Each takes about a minute on two CPU cores.
"""

import pytest

from ratbench.training import Trainer, resolve_config
from tests.ratbench.training.helpers import read_rows

CASES = [
    ("cartpole", "npg", 40 * 1024, 450.0),
    ("cartpole", "ppo", 50 * 1024, 450.0),
    ("invertedpendulum", "npg", 20 * 1024, 900.0),
    ("invertedpendulum", "ppo", 30 * 1024, 900.0),
    ("cartpole", "trpo", 30 * 1024, 450.0),  # seed 0 evaluated 500 from 15,000 steps on
]


@pytest.mark.slow
@pytest.mark.parametrize("env,algo,steps,bar", CASES, ids=[f"{e}-{a}" for e, a, _, _ in CASES])
def test_reaches_the_bar(tmp_path, env, algo, steps, bar):
    config = resolve_config({"env": env, "algo": algo, "steps": steps, "seed": 0}, sets=["threads=1"])
    summary = Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    evals = [(int(r["env_steps"]), float(r["eval_return"])) for r in read_rows(tmp_path) if r["eval_return"]]
    assert summary["env_steps"] == steps
    assert summary["eval_return"] >= bar, f"evaluation returns (env steps, return): {evals}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_invertedpendulum_stays_up_once_balanced(tmp_path, seed):
    """Issue 8: once an evaluation reaches 1,000, every later one of a 100k-step run stays >= 950.
    Seeds 2 and 3 fell to 347 and 89 with the shipped config's earlier 0.5 step clip (and seed 1 fell
    with the cross-minibatch warm start). About 4 minutes each on one thread beside two training runs (2026-12-07),
    43% of it evaluation: 20 episodes at each of 21 marks."""
    config = resolve_config({"env": "invertedpendulum", "algo": "npg", "steps": 100_000, "seed": seed}, sets=["threads=1"])
    Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    evals = [(int(r["env_steps"]), float(r["eval_return"])) for r in read_rows(tmp_path) if r["eval_return"]]
    first = next(i for i, (_, value) in enumerate(evals) if value >= 1000.0)
    assert min(value for _, value in evals[first:]) >= 950.0, f"evaluation returns (env steps, return): {evals}"



# MinAtar Breakout (pixels, the MinAtar CNN, shipped task-minatar.yaml: 16 envs x 128 steps): a uniformly
# random policy averages 0.38 +- 0.03 per episode (400 episodes, seed 0). Seen with seed 0: RAT's training
# return (last 100 stochastic episodes) 3.0 at 40k steps and 3.5 at 51k; PPO's (task-minatar-ppo.yaml, 4 epochs)
# 2.2 at 35k and 2.7 at 51k. The bar, 2.0 at 51,200 steps, is about 5x random; each run takes about a minute
# on one thread.
MINATAR_CASES = [("npg", 51_200, 2.0), ("ppo", 51_200, 2.0)]


@pytest.mark.slow
@pytest.mark.parametrize("algo,steps,bar", MINATAR_CASES, ids=[a for a, _, _ in MINATAR_CASES])
def test_minatar_breakout_beats_random_by_far(tmp_path, algo, steps, bar):
    pytest.importorskip("minatar", reason="minatar is not installed (pip install 'ratbench[minatar]')")
    config = resolve_config({"env": "minatar-breakout", "algo": algo, "steps": steps, "seed": 0},
                            sets=["threads=1", "eval.every=0"])
    summary = Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    curve = [(int(r["env_steps"]), float(r["train_return"])) for r in read_rows(tmp_path) if r["train_return"]]
    assert summary["env_steps"] == steps
    assert curve[-1][1] >= bar, f"training returns (env steps, return): {curve[::5]}"
