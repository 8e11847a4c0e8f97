"""Property: any bad override or damaged input to `ratbench train` ends in one short error line,
exit status 1 or 2, no traceback, and nothing left on disk by the failed command."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ratbench.cli import cli
from ratbench.training.config import POSITIVE_INTS, RANGES, _all_keys, schema
from tests.strategies import property_settings

NUMERIC = sorted((set(RANGES) | set(POSITIVE_INTS)) - {"steps"})  # --steps is given on the command line, which wins
# Values that are wrong for every numeric key: not finite, or not a number at all.
NEVER_NUMBERS = [".nan", ".inf", "-.inf", "abc", "[1, 2]", "{a: 1}", "true", "''"]
BELOW_RANGE = {k: ["-1"] + (["0"] if not RANGES.get(k, (1, None, True, False))[2] or k in POSITIVE_INTS else [])
               for k in NUMERIC}
SIZES = ["num_envs", "num_steps", "eval.episodes", "threads"]

bad_override = st.one_of(
    st.tuples(st.sampled_from(NUMERIC), st.sampled_from(NEVER_NUMBERS)),
    st.sampled_from(NUMERIC).flatmap(lambda k: st.tuples(st.just(k), st.sampled_from(BELOW_RANGE[k]))),
    st.tuples(st.sampled_from(SIZES), st.sampled_from(["1e13", "123456789012345"])),
    st.tuples(st.text("abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=12).filter(lambda k: k not in _all_keys(schema())
                                                                                          and not k.startswith(".") and not k.endswith(".") and ".." not in k),
              st.sampled_from(["1", "0.5", "x"])),
)

bad_config_file = st.sampled_from([
    b"",                                  # empty
    b"# only a comment\n",                # empty of keys
    bytes(range(256)),                    # binary
    b"npg:\n  lr: [0.1,\n",               # truncated YAML
    b"- just\n- a list\n",                # not a mapping
    b"npg: 3\n",                          # a section given a value
    b"\x00\x01\x02",                      # binary, short
])


def _files(root: Path) -> set[Path]:
    return {Path(d) / f for d, _, files in os.walk(root) for f in files} | {Path(d) for d, _, _ in os.walk(root)}


def _assert_clean_failure(result, root: Path, before: set[Path]) -> None:
    assert result.exit_code in (1, 2), result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output and lines, result.output
    assert lines[-1].startswith("Error") and len(lines[-1]) < 400 and len(lines) <= 4, result.output
    assert _files(root) == before, sorted(map(str, _files(root) - before))


@property_settings(60)
@given(override=bad_override)
def test_bad_overrides_fail_cleanly(tmp_path_factory, override):
    root = tmp_path_factory.mktemp("run")
    before = _files(root)
    key, value = override
    result = CliRunner().invoke(cli, ["train", "--env", "cartpole", "--steps", "1024", "--quiet",
                                      "--run-dir", str(root / "run"), "--set", f"{key}={value}"])
    _assert_clean_failure(result, root, before)


@property_settings(10)
@given(content=bad_config_file)
def test_bad_config_files_fail_cleanly(tmp_path_factory, content):
    root = tmp_path_factory.mktemp("run")
    (root / "config.yaml").write_bytes(content)
    before = _files(root)
    result = CliRunner().invoke(cli, ["train", "--env", "cartpole", "--quiet", "--config", str(root / "config.yaml"),
                                      "--run-dir", str(root / "run")])
    _assert_clean_failure(result, root, before)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished 512-step CartPole run, copied by each example that damages a file of it."""
    run = tmp_path_factory.mktemp("trained") / "run"
    args = ["train", "--env", "cartpole", "--steps", "512", "--quiet", "--set", "num_envs=2", "--set", "num_steps=256",
            "--set", "threads=1", "--run-dir", str(run)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    return run


def _resume_copy(finished_run: Path, root: Path) -> tuple[Path, list[str]]:
    run = root / "run"
    shutil.copytree(finished_run, run)
    return run, ["train", "--resume", str(run), "--steps", "1024", "--quiet"]


@property_settings(8)
@given(cut=st.integers(0, 2000))
def test_damaged_checkpoint_without_copies_fails_cleanly(tmp_path_factory, finished_run, cut):
    """checkpoint.pt cut to ``cut`` bytes and every periodic copy gone: one line, nothing written."""
    root = tmp_path_factory.mktemp("run")
    run, resume = _resume_copy(finished_run, root)
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[:cut])
    for copy in (run / "checkpoints").glob("*.pt"):
        copy.unlink()
    before = _files(root)
    _assert_clean_failure(CliRunner().invoke(cli, resume), root, before)


@property_settings(7)
@given(content=bad_config_file)
def test_damaged_saved_config_fails_cleanly(tmp_path_factory, finished_run, content):
    """The run's own config.yaml damaged (the same bad files as --config's): one line naming it, nothing written."""
    root = tmp_path_factory.mktemp("run")
    run, resume = _resume_copy(finished_run, root)
    (run / "config.yaml").write_bytes(content)
    before = _files(root)
    result = CliRunner().invoke(cli, resume)
    _assert_clean_failure(result, root, before)
    assert "config.yaml" in result.output


@property_settings(10)
@given(data=st.data())
def test_damaged_progress_fails_cleanly_and_leaves_the_run_as_it_was(tmp_path_factory, finished_run, data):
    """progress.csv cut short, emptied of its header, or with an iteration that is not a number: one line, and the
    run's files (config.yaml's budget included) exactly as they were; the old resume rewrote the file without
    the lost row, or kept a cut row as if whole, and raised the budget before failing."""
    root = tmp_path_factory.mktemp("run")
    run, resume = _resume_copy(finished_run, root)
    text = (run / "progress.csv").read_text()
    header, row = text.splitlines()[:2]
    damaged = data.draw(st.one_of(
        st.integers(0, len(text) - 2).map(lambda cut: text[:cut]),  # the last character is the row's newline
        st.just(row + "\n"),
        st.just(text.replace(f"\n{row.split(',')[0]},", "\nx,", 1)),
    ))
    (run / "progress.csv").write_text(damaged)
    names, before = _files(root), _contents(run)
    result = CliRunner().invoke(cli, resume)
    _assert_clean_failure(result, root, names)
    assert "progress.csv is damaged" in result.output and _contents(run) == before


def test_a_resume_that_cannot_record_its_start_leaves_the_budget_as_it_was(tmp_path, finished_run):
    """provenance.json replaced by a folder: the resume fails in one line before config.yaml's budget is raised
    (it used to be written when the resume was set up, before the first file failed)."""
    run, resume = _resume_copy(finished_run, tmp_path)
    (run / "provenance.json").unlink()
    (run / "provenance.json").mkdir()
    before = _contents(run)
    result = CliRunner().invoke(cli, resume)
    assert result.exit_code == 1 and "provenance.json': Is a directory" in result.output, result.output
    after = _contents(run)  # a new TensorBoard file, empty of scalars, is the one trace left
    assert {path: after[path] for path in before} == before and all("tfevents" in p.name for p in set(after) - set(before))


def _contents(run: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
