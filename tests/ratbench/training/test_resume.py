"""A run stopped and resumed matches an uninterrupted run with the same seed, exactly (CPU)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ratbench.training import Trainer
from tests.ratbench.training.helpers import TIMING_COLUMNS, plant_payload, read_rows, small_config


def _assert_same_run(dir_a, dir_b):
    rows_a, rows_b = read_rows(dir_a), read_rows(dir_b)
    assert [r["iteration"] for r in rows_a] == [r["iteration"] for r in rows_b]
    for a, b in zip(rows_a, rows_b):
        for key in a:
            if key not in TIMING_COLUMNS:
                assert a[key] == b[key], (key, a["iteration"], a[key], b[key])
    state_a = torch.load(dir_a / "checkpoint.pt", weights_only=True)
    state_b = torch.load(dir_b / "checkpoint.pt", weights_only=True)
    for part in ("model",):
        for name, tensor in state_a["agent"][part].items():
            assert torch.equal(tensor, state_b["agent"][part][name]), name
    assert state_a["agent"]["popart"] == state_b["agent"]["popart"]


CASES = [
    ("hopper", "npg", {"solver": "kaczmarz"}, []),
    ("hopper", "npg", {"solver": "kaczmarz"}, ["npg.rat_variant=original"]),  # direction carried across rollouts
    ("cartpole", "ppo", {}, ["reward_norm=true", "ppo.anneal_lr=false"]),
    ("hopper", "trpo", {}, []),
    ("minatar-breakout", "npg", {"solver": "kaczmarz"}, []),  # frames, a CNN, the whole game state restored
    ("hopper", "npg", {"solver": "kaczmarz", "arch": "shared"}, ["preset=reference"]),  # joint solve: noise, g_k
    ("hopper", "npg", {"solver": "kfac"}, ["preset=reference"]),  # the reference's K-FAC: running factors, eigen
]


@pytest.mark.parametrize("env,algo,explicit,extra", CASES, ids=["rat-hopper", "rat-original-hopper", "ppo-cartpole", "trpo-hopper", "rat-minatar",
                                                               "rat-joint-hopper", "reference-kfac-hopper"])
def test_resume_matches_uninterrupted_run(tmp_path, env, algo, explicit, extra):
    full, split = tmp_path / "full", tmp_path / "split"
    extra = ["num_envs=2", "num_steps=128", "eval.episodes=1", *extra]  # 256 samples per iteration
    Trainer.create(small_config(env, algo, 1024, extra, **explicit), logdir=full, progress_bar=False).train()
    Trainer.create(small_config(env, algo, 512, extra, **explicit), logdir=split, progress_bar=False).train()
    resumed = Trainer.resume(split, steps=1024, progress_bar=False)
    assert resumed.iteration == 2
    resumed.train()
    _assert_same_run(full, split)
    rows = read_rows(split)
    assert float(rows[2]["wall_time"]) > float(rows[1]["wall_time"])  # cumulative across the resume


def _train_command(logdir, steps):
    return [sys.executable, "-m", "ratbench", "train", "--env", "cartpole", "--steps", str(steps), "--quiet",
            "--run-dir", str(logdir), "--set", "threads=1", "--set", "num_envs=2", "--set", "num_steps=128",
            "--set", "model.hidden=[32, 32]", "--set", "eval.every=5", "--set", "eval.episodes=1",
            "--set", "checkpoint.every=100"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_ctrl_c_leaves_a_resumable_run(tmp_path, stop):
    """SIGINT (Ctrl-C) or SIGTERM to a real `ratbench train` process, resume from the CLI, compare with
    an uninterrupted in-process run."""
    steps = 16 * 256
    stopped, full = tmp_path / "stopped", tmp_path / "full"
    # Default SIGINT in the child: a shell without job control starts background jobs (`pytest &`) with
    # SIGINT ignored, which the child would inherit, and Python installs no KeyboardInterrupt handler then.
    proc = subprocess.Popen(_train_command(stopped, steps), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        progress = stopped / "progress.csv"
        if progress.is_file() and len(progress.read_text().splitlines()) >= 3:  # header + 2 iterations
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err.decode()
    assert b"--resume" in err
    state = torch.load(stopped / "checkpoint.pt", weights_only=True)
    # The signal can land between logging iteration 2 and recording it as the boundary; the run then
    # rolls back to iteration 1 consistently (checkpoint and progress.csv agree), which is still resumable.
    assert 1 <= state["iteration"] < 16
    assert [int(r["iteration"]) for r in read_rows(stopped)] == list(range(1, state["iteration"] + 1))
    if stop == signal.SIGTERM:
        return  # same handling as SIGINT from here on; the exact-resume comparison runs once, for SIGINT
    resume = subprocess.run([sys.executable, "-m", "ratbench", "train", "--resume", str(stopped), "--quiet"],
                            capture_output=True, timeout=600, env=os.environ.copy())
    assert resume.returncode == 0, resume.stderr.decode()
    sets = ["num_envs=2", "num_steps=128", "eval.every=5", "eval.episodes=1", "checkpoint.every=100"]
    Trainer.create(small_config("cartpole", "npg", steps, sets), logdir=full, progress_bar=False).train()
    _assert_same_run(full, stopped)


@pytest.mark.parametrize("damage", ["truncated", "empty", "missing"])
def test_damaged_checkpoint_falls_back_to_the_newest_intact_copy(tmp_path, capsys, damage):
    """A killed or cut-short checkpoint.pt: resume says so in one line and continues from the newest
    intact checkpoints/iter_*.pt (rows past it are dropped and redone)."""
    config = small_config("cartpole", steps=3 * 1024)
    Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    latest = tmp_path / "checkpoint.pt"
    if damage == "truncated":
        latest.write_bytes(latest.read_bytes()[:1000])
    elif damage == "empty":
        latest.write_bytes(b"")
    else:
        latest.unlink()
    (tmp_path / "checkpoints" / "iter_000003.pt").write_bytes(b"\x80\x02garbage")  # the newest copy is damaged too
    trainer = Trainer.resume(tmp_path, steps=4 * 1024, progress_bar=False)
    assert trainer.iteration == 2
    err = capsys.readouterr().err
    assert "resuming from" in err and "iter_000002.pt" in err
    trainer.train()
    assert [int(r["iteration"]) for r in read_rows(tmp_path)] == [1, 2, 3, 4]


def test_no_intact_checkpoint_is_a_one_line_error(tmp_path):
    from ratbench.errors import RatbenchError

    config = small_config("cartpole", steps=1024)
    Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    for copy in (tmp_path / "checkpoints").glob("iter_*.pt"):
        copy.write_bytes(b"")
    with pytest.raises(RatbenchError, match="damaged .* no intact checkpoints"):
        Trainer.resume(tmp_path, progress_bar=False)


@pytest.mark.parametrize("name", ["checkpoint.pt", "checkpoints/iter_000001.pt"])
def test_a_checkpoint_that_would_run_code_is_refused_in_one_sentence(tmp_path, name):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    Trainer.create(small_config("cartpole", steps=2048), logdir=run, progress_bar=False).train()
    if name != "checkpoint.pt":  # the resume point is damaged, so resuming reaches the periodic copies
        (run / "checkpoint.pt").write_bytes(b"")
        (run / "checkpoints" / "iter_000002.pt").write_bytes(b"")
    target = plant_payload(run, name, marker)
    result = subprocess.run([sys.executable, "-m", "ratbench", "train", "--resume", str(run), "--steps", "3072",
                             "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and not marker.exists(), result.stderr
    assert "Traceback" not in result.stderr and str(target) in result.stderr and "--trust-checkpoint" in result.stderr
    assert "posix.system" in result.stderr  # the reason: the global the file would call


def test_a_suite_runner_refuses_it_too(tmp_path):
    marker = tmp_path / "pwned"
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"logdir: {tmp_path / 'runs'}\nenvs: [cartpole]\nseeds: [0]\nsteps: 2048\n"
                     "set: {threads: 1, num_envs: 4, model.hidden: [32, 32]}\nruns:\n  - {algo: ppo}\n")
    first = subprocess.run([sys.executable, "-m", "ratbench", "train", "--suite", str(suite), "--quiet"],
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "runs").iterdir()
    plant_payload(run, "checkpoint.pt", marker)
    suite.write_text(suite.read_text().replace("steps: 2048", "steps: 3072"))
    result = subprocess.run([sys.executable, "-m", "ratbench", "train", "--suite", str(suite), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and not marker.exists() and "Traceback" not in result.stderr, result.stderr


def test_missing_entries_fall_back_like_a_damaged_file(tmp_path, capsys):
    Trainer.create(small_config("cartpole", steps=2048), logdir=tmp_path, progress_bar=False).train()
    torch.save({"iteration": 2, "agent": {}}, tmp_path / "checkpoint.pt")  # plain data, but no env_steps
    trainer = Trainer.resume(tmp_path, steps=3072, progress_bar=False)
    assert trainer.iteration == 2 and "iter_000002.pt" in capsys.readouterr().err
    trainer.close()


def test_an_earlier_versions_checkpoint_resumes_only_when_trusted(tmp_path):
    """A checkpoint pickled whole (numpy arrays and generator states as objects), as before safe checkpoints."""
    from ratbench.errors import RatbenchError
    from ratbench.safe_state import decode

    run = tmp_path / "run"
    Trainer.create(small_config("cartpole", steps=2048), logdir=run, progress_bar=False).train()
    state = decode(torch.load(run / "checkpoint.pt", weights_only=True))
    torch.save(state, run / "checkpoint.pt")  # numpy inside: what earlier versions wrote
    with pytest.raises(RatbenchError, match="--trust-checkpoint"):
        Trainer.resume(run, steps=3072, progress_bar=False)
    trainer = Trainer.resume(run, steps=3072, progress_bar=False, trust_checkpoint=True)
    assert trainer.iteration == 2
    trainer.train()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["iteration"] == 3  # written safely from now on
