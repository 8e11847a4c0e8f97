"""An output nobody can create ends every command in one sentence, exit 1, before any work and with nothing written.

Root passes ``os.access`` for /proc and /sys, where nothing can be created: outputs are checked by trying.
"""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratbench.cli import cli

RESULTS = Path(__file__).resolve().parents[3] / "results" / "minatar"
UNWRITABLE = [p for p in ("/proc/ratbench-x", "/sys/ratbench-x") if os.path.isdir(os.path.dirname(p))]

COMMANDS = {
    "train --logdir": ["train", "--env", "cartpole", "--steps", "1000", "--logdir", "{out}"],
    "train --run-dir": ["train", "--env", "cartpole", "--steps", "1000", "--run-dir", "{out}/run"],
    "plot": ["plot", str(RESULTS), "--out", "{out}/plot"],
    "report": ["report", str(RESULTS), "--out", "{out}"],
    "speed": ["speed", "--size", "small", "--json", "{out}/speed.json"],
    "accuracy": ["accuracy", "--json", "{out}/accuracy.json"],
    "random-score": ["random-score", "cartpole", "--out", "{out}/scores.yaml"],
}


@pytest.mark.skipif(not UNWRITABLE, reason="no /proc or /sys on this system")
@pytest.mark.parametrize("where", UNWRITABLE)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_output_that_cannot_be_created_is_one_sentence(name, where, tmp_path):
    args = [a.replace("{out}", where) for a in COMMANDS[name]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.startswith("Error: cannot write")
    assert len(result.output.strip().splitlines()) == 1 and where.split("/")[1] in result.output


def test_a_file_where_a_folder_is_meant_is_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["random-score", "cartpole", "--out", str(blocker / "scores.yaml")])
    assert result.exit_code == 1 and "is a file, not a directory" in result.output and "Traceback" not in result.output


def test_a_failure_after_the_checks_is_one_sentence_too(tmp_path, monkeypatch):
    """A disk that fills up mid-run: the OSError from the write becomes one line, exit 1."""
    import ratbench.io

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "scores.yaml"))

    monkeypatch.setattr(ratbench.io.tempfile, "mkstemp", full)
    result = CliRunner().invoke(cli, ["random-score", "cartpole", "--episodes", "2", "--out", str(tmp_path / "scores.yaml")])
    assert result.exit_code == 1 and "No space left on device" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "scores.yaml").exists()
