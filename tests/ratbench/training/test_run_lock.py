"""One process per run directory: a second trainer, resume or suite runner is refused or skips the run."""

import socket
import subprocess
import sys
import textwrap

import pytest

from ratbench.training import Trainer
from ratbench.errors import RatbenchError
from ratbench.training import suite as suite_module
from ratbench.training.run_lock import BUSY_EXIT_CODE, LOCK_FILE, RunBusyError, RunLock, is_busy
from ratbench.training.suite import run_suite
from tests.ratbench.training.helpers import read_rows, small_config

HOLD = textwrap.dedent("""
    import sys, time
    from ratbench.training.run_lock import RunLock
    lock = RunLock(sys.argv[1])
    print("held", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def held_elsewhere(tmp_path):
    """A run directory whose lock another process holds (it prints 'held', then sleeps)."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield run_dir, proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_lock_names_the_owner_and_dies_with_it(held_elsewhere):
    run_dir, pid = held_elsewhere
    assert is_busy(run_dir)
    with pytest.raises(RunBusyError, match=f"another process \\({socket.gethostname()}:{pid}\\)"):
        RunLock(run_dir)


def test_killed_owner_leaves_no_stale_lock(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    assert (run_dir / LOCK_FILE).is_file() and not is_busy(run_dir)
    RunLock(run_dir).release()


def test_trainer_holds_the_lock_until_it_closes(tmp_path):
    trainer = Trainer.create(small_config("cartpole", steps=1024), logdir=tmp_path, progress_bar=False)
    with pytest.raises(RunBusyError):
        Trainer.resume(tmp_path, progress_bar=False)
    trainer.train()  # closes, releasing the lock
    assert not is_busy(tmp_path)
    Trainer.resume(tmp_path, steps=2048, progress_bar=False).train()
    assert [int(r["env_steps"]) for r in read_rows(tmp_path)] == [1024, 2048]


def test_resume_of_a_busy_run_is_refused_before_touching_it(tmp_path):
    Trainer.create(small_config("cartpole", steps=1024), logdir=tmp_path, progress_bar=False).train()
    config_before = (tmp_path / "config.yaml").read_text()
    lock = RunLock(tmp_path)
    try:
        with pytest.raises(RunBusyError, match="wait for it to finish"):
            Trainer.resume(tmp_path, steps=2048, progress_bar=False)
    finally:
        lock.release()
    assert (tmp_path / "config.yaml").read_text() == config_before  # the raised budget was not written


def test_create_on_a_busy_young_run_is_busy_not_already_a_run(tmp_path):
    """A run before its first checkpoint has progress.csv only: a second create must see it as busy."""
    lock = RunLock(tmp_path)
    (tmp_path / "progress.csv").write_text("iteration\n1\n")
    try:
        with pytest.raises(RunBusyError):
            Trainer.create(small_config("cartpole", steps=1024), logdir=tmp_path, progress_bar=False)
    finally:
        lock.release()


def test_a_failed_create_leaves_nothing_on_disk(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "progress.csv").write_text("iteration\n1\n")
    with pytest.raises(RatbenchError, match="already holds a run"):
        Trainer.create(small_config("cartpole", steps=1024), logdir=tmp_path / "old", progress_bar=False)
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["progress.csv"]
    claim = RunLock(tmp_path / "new" / "run")
    claim.abandon()
    assert not (tmp_path / "new" / "run").exists()


def test_command_line_resume_of_a_busy_run_is_one_sentence(tmp_path):
    from click.testing import CliRunner

    from ratbench.cli import cli

    Trainer.create(small_config("cartpole", steps=1024), logdir=tmp_path, progress_bar=False).train()
    lock = RunLock(tmp_path)
    try:
        result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path), "--steps", "2048"])
    finally:
        lock.release()
    assert result.exit_code == BUSY_EXIT_CODE and result.output.startswith("Error: ") and "being trained" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("jobs,race", [(1, False), (2, False), (2, True)], ids=["sequential", "jobs", "jobs-race"])
def test_suite_skips_a_run_another_process_trains(tmp_path, monkeypatch, held_elsewhere, capsys, jobs, race):
    """race: the parallel runner's check misses the claim, and its child exits with BUSY_EXIT_CODE."""
    run_dir, _ = held_elsewhere  # tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "suite.yaml"
    suite.write_text("logdir: runs\nenvs: [cartpole]\nseeds: [0, 1]\nsteps: 1024\n"
                     "set: {threads: 1, num_envs: 4, num_steps: 256, eval.episodes: 1}\nruns:\n  - {algo: ppo}\n")
    busy_dir = tmp_path / "runs" / "cartpole-ppo-none-s0"
    busy_dir.parent.mkdir()
    run_dir.rename(busy_dir)  # the holder's open lock file moves with its directory
    assert is_busy(busy_dir)
    if race:
        monkeypatch.setattr(suite_module, "is_busy", lambda run_dir: False)
    run_suite(suite, jobs=jobs, progress_bar=False)
    err = capsys.readouterr().err
    assert "1 run(s) were being trained by other processes" in err
    if jobs == 2 and not race:  # the parallel runner numbers what it starts and counts what it finishes
        assert "[2/2] started runs/cartpole-ppo-none-s1" in err and "(exit 0; 1 of 2 done)" in err
    assert not (busy_dir / "progress.csv").exists()
    assert [int(r["env_steps"]) for r in read_rows(tmp_path / "runs" / "cartpole-ppo-none-s1")] == [1024]
