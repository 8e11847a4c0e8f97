"""Suites on a local Ray instance give the same runs as the local executor."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest.importorskip("ray", reason="ray is not installed (pip install 'ratbench[ray]')")

from ratbench.cli import cli  # noqa: E402
from ratbench.training.ray_executor import pack, unpack  # noqa: E402
from ratbench.training.run_lock import LOCK_FILE, RunLock  # noqa: E402
from tests.ratbench.training.helpers import TIMING_COLUMNS, plant_payload, read_rows  # noqa: E402

SUITE = """
logdir: {logdir}
envs: [cartpole]
seeds: [0, 1]
steps: 2048
set: {{threads: 1, num_envs: 2, num_steps: 256, model.hidden: [16, 16], eval.every: 2, eval.episodes: 2}}
runs:
  - {{algo: npg, solver: kaczmarz}}
"""


def _suite(tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(SUITE.format(logdir=tmp_path / name))
    return path


def _rows(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in read_rows(run_dir)]


@pytest.mark.slow
def test_ray_runs_match_local_runs_and_rerun_resumes(tmp_path):
    local = CliRunner().invoke(cli, ["train", "--suite", str(_suite(tmp_path, "local")), "--quiet"])
    assert local.exit_code == 0, local.output
    remote = CliRunner().invoke(cli, ["train", "--suite", str(_suite(tmp_path, "ray")), "--executor", "ray", "--quiet"])
    assert remote.exit_code == 0, remote.output
    for seed in (0, 1):
        name = f"cartpole-npg-kaczmarz-s{seed}"
        assert (tmp_path / "ray" / name / "checkpoint.pt").is_file()
        assert _rows(tmp_path / "ray" / name) == _rows(tmp_path / "local" / name)
    held = RunLock(tmp_path / "ray" / "cartpole-npg-kaczmarz-s1")  # as if another runner were training seed 1
    try:
        again = CliRunner().invoke(cli, ["train", "--suite", str(_suite(tmp_path, "ray")), "--executor", "ray", "--quiet"])
    finally:
        held.release()
    assert again.exit_code == 0, again.output  # finished runs come back at once, unchanged
    assert "1 run(s) were being trained by other processes" in again.output
    assert _rows(tmp_path / "ray" / "cartpole-npg-kaczmarz-s0") == _rows(tmp_path / "local" / "cartpole-npg-kaczmarz-s0")


@pytest.mark.slow
def test_a_shipped_checkpoint_that_would_run_code_fails_its_run_on_the_worker(tmp_path):
    suite = _suite(tmp_path, "ray")
    first = CliRunner().invoke(cli, ["train", "--suite", str(suite), "--quiet"])  # local: two finished runs
    assert first.exit_code == 0, first.output
    marker = tmp_path / "pwned"
    plant_payload(tmp_path / "ray" / "cartpole-npg-kaczmarz-s0", "checkpoint.pt", marker)
    suite.write_text(suite.read_text().replace("steps: 2048", "steps: 3072"))  # both resume
    result = CliRunner().invoke(cli, ["train", "--suite", str(suite), "--executor", "ray", "--quiet"])
    assert result.exit_code == 1 and not marker.exists(), result.output
    assert "1 run(s) failed on Ray" in result.output and "--trust-checkpoint" in result.output
    assert "Traceback" not in result.output


def test_pack_round_trip(tmp_path):
    src = tmp_path / "run"
    (src / "checkpoints").mkdir(parents=True)
    (src / "progress.csv").write_text("a,b\n1,2\n")
    (src / "checkpoints" / "iter_000001.pt").write_bytes(b"\x00\x01")
    (src / LOCK_FILE).write_text("driver:1")
    dest = tmp_path / "copy"
    unpack(pack(src), dest)
    assert not (dest / LOCK_FILE).exists()  # a lock belongs to the machine that holds it
    assert (dest / "progress.csv").read_text() == "a,b\n1,2\n"
    assert (dest / "checkpoints" / "iter_000001.pt").read_bytes() == b"\x00\x01"
    unpack(pack(tmp_path / "missing"), tmp_path / "empty")  # a new run: nothing to send
