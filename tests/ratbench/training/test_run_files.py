"""Every algorithm runs real CartPole and Hopper steps and leaves a complete run directory."""

import pytest
import torch
import yaml

from ratbench.training import Trainer
from ratbench.training.logger import COLUMNS
from tests.ratbench.training.helpers import header, read_rows, small_config

CASES = [
    ("npg", {"solver": "kaczmarz"}),
    ("npg", {"solver": "woodbury", "arch": "shared"}),
    ("ppo", {}),
    ("pg", {}),
    ("trpo", {}),
]


@pytest.mark.parametrize("env", ["cartpole", "hopper"])
@pytest.mark.parametrize("algo,explicit", CASES, ids=["rat", "woodbury-shared", "ppo", "pg", "trpo"])
def test_run_writes_every_file(tmp_path, env, algo, explicit):
    config = small_config(env, algo, steps=2048, **explicit)
    summary = Trainer.create(config, logdir=tmp_path / "run", progress_bar=False).train()
    run = tmp_path / "run"
    assert summary["env_steps"] == 2048 and summary["iterations"] == 2 and not summary["interrupted"]
    assert header(run)[: len(COLUMNS)] == list(COLUMNS)
    rows = read_rows(run)
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    assert [int(r["env_steps"]) for r in rows] == [1024, 2048]
    for row in rows:
        assert row["eval_return"] != "" and float(row["fps"]) > 0 and float(row["wall_time"]) > 0
        assert row["eval_cut"] == "0"  # every evaluation episode of these tasks ends long before the cap
        assert row["kl"] != "" and row["lr"] != "" and row["value_loss"] != ""
        # solver columns for the natural gradient and TRPO
        assert (row["solver_iterations"] != "") == (algo in ("npg", "trpo"))  # TRPO logs its CG steps
    assert float(rows[1]["wall_time"]) > float(rows[0]["wall_time"])
    assert list(run.glob("events.out.tfevents.*"))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    for key in ("env", "algo", "solver", "seed", "arch"):
        assert key in saved
    assert saved["env"] == env and saved["algo"] == algo and saved["solver"] == explicit.get("solver")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 2 and state["env_steps"] == 2048
    for part in ("agent", "algo", "obs_norm", "envs", "rng", "collector"):
        assert part in state
    assert (run / "checkpoints" / "iter_000002.pt").is_file()


def test_eval_scalars_reach_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer.create(small_config("cartpole", steps=1024), logdir=tmp_path, progress_bar=False).train()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "eval/return" in tags and "train/return_mean" in tags and "solver/iterations" in tags
    assert [e.step for e in events.Scalars("eval/return")] == [1024]
