"""`ratbench train` on the command line: runs, clear one-line errors, suites."""

import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from ratbench.cli import cli
from ratbench.training.config import resolve_config, to_yaml
from ratbench.training.run_lock import LOCK_FILE
from tests.devices import DEVICES
from tests.ratbench.training.helpers import read_rows


def _invoke(*args):
    return CliRunner().invoke(cli, ["train", *args])


def test_train_cartpole_from_the_command_line(tmp_path):
    result = _invoke("--env", "cartpole", "--steps", "512", "--quiet", "--run-dir", str(tmp_path / "run"),
                     "--set", "threads=1", "--set", "num_envs=2", "--set", "num_steps=128",
                     "--set", "model.hidden=[16]", "--set", "eval.episodes=1")
    assert result.exit_code == 0, result.output
    assert "done: 512 steps" in result.output
    assert len(read_rows(tmp_path / "run")) == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--env", "hoper"], "did you mean 'hopper'"),
        (["--env", "hopper", "--solver", "kacz"], "unknown solver 'kacz'"),
        (["--env", "hopper", "--algo", "sac"], "unknown algorithm 'sac'"),
        (["--env", "hopper", "--set", "npg.lrr=1"], "did you mean npg.lr"),
        (["--resume", "/nonexistent/run"], "has no config.yaml"),
        (["--suite", "/nonexistent/suite.yaml"], "suite file '/nonexistent/suite.yaml' does not exist; give --suite"),
        (["--config", "/nonexistent/c.yaml", "--env", "hopper"], "does not exist; pass an existing YAML file to --config"),
        (["--print-commands"], "need --suite"),
        (["--collected", "results"], "need --suite"),
        (["--task-major"], "need --suite"),
        (["--env", "cartpole", "--jobs", "2"], "need --suite"),
        (["--env", "cartpole", "--executor", "ray"], "need --suite"),
        (["--env", "cartpole", "--seed", "99999999999999999999"], "seed must be in [0, 4294967295]"),
        (["--env", "cartpole", "--steps", "99999999999999999"], "steps must be in [1, 1000000000000]"),
        (["--env", "cartpole", "--set", "npg.ratio_clip=[1]"], "npg.ratio_clip must be two numbers [low, high]"),
        (["--env", "cartpole", "--set", "npg.solver_options={1: 2}"], "npg.solver_options names must be strings"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message):
    result = _invoke(*args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    result = _invoke("--env", "cartpole", "--device", "cuda", "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 1 and "no CUDA device" in result.output


@pytest.mark.parametrize(
    "env,algo",
    [("cartpole", "npg"), ("minatar-breakout", "npg"), ("minatar-breakout", "ppo")],
    ids=["cartpole-npg", "minatar-cnn-npg", "minatar-cnn-ppo"],
)
@pytest.mark.parametrize("device", DEVICES)
def test_train_then_resume_on_the_cpu(tmp_path, env, algo, device):
    """A run trains on ``device`` (on CUDA: rollout on the CPU, update on the GPU, so the CNN capture, Gram and
    solve run there), and its checkpoint resumes on the CPU (--device is one of the settings a resume may change)."""
    if env.startswith("minatar"):
        pytest.importorskip("minatar", reason="minatar is not installed (pip install 'ratbench[minatar]')")
    run = tmp_path / "run"
    result = _invoke("--env", env, "--algo", algo, "--steps", "256", "--device", device, "--run-dir", str(run), "--quiet",
                     "--threads", "1", "--set", "num_envs=2", "--set", "num_steps=64", "--set", "eval.episodes=1")
    assert result.exit_code == 0, result.output
    assert f"device: {device}" in (run / "config.yaml").read_text()
    result = _invoke("--resume", str(run), "--steps", "512", "--device", "cpu", "--threads", "1", "--quiet")
    assert result.exit_code == 0, result.output
    rows = read_rows(run)
    assert [int(r["env_steps"]) for r in rows] == [128, 256, 384, 512]
    assert np.isfinite(float(rows[-1]["eval_return"]))


def test_resume_refuses_a_different_config(tmp_path):
    result = _invoke("--resume", str(tmp_path), "--algo", "ppo")
    assert result.exit_code == 1 and "only --steps, --device and --threads" in result.output


def test_suite_prints_one_command_per_run(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "logdir: %s\nenvs: [cartpole, hopper]\nseeds: [0, 1]\nsteps: 512\nset: {threads: 1}\n"
        "runs:\n  - {algo: npg, solver: kaczmarz}\n  - {algo: npg, solver: kaczmarz, name: orig, set: {npg.rat_variant: original}}\n"
        "  - {algo: ppo}\n" % (tmp_path / "runs"))
    result = _invoke("--suite", str(suite), "--print-commands")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 * 3 * 2
    assert lines[0].startswith("ratbench train --env cartpole --algo npg --seed 0 --solver kaczmarz --steps 512")
    assert "--set npg.rat_variant=original" in lines[2] and "cartpole-npg-kaczmarz-orig-s0" in lines[2]
    assert "hopper-ppo-none-s1" in lines[-1]


def test_a_suite_run_may_name_a_subset_of_the_envs(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("logdir: %s\nenvs: [cartpole, hopper]\nruns:\n  - {algo: ppo}\n"
                     "  - {algo: npg, name: relu, envs: [Hopper-v5], set: {model.activation: relu}}\n" % (tmp_path / "runs"))
    result = _invoke("--suite", str(suite), "--print-commands")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3 and sum("relu" in line for line in lines) == 1 and "hopper-npg-kaczmarz-relu-s0" in lines[-1]
    suite.write_text("envs: [cartpole]\nruns:\n  - {algo: npg, envs: [hopper]}\n")
    result = _invoke("--suite", str(suite), "--print-commands")
    assert result.exit_code == 1 and "must be among the suite's (cartpole); not: hopper" in result.output


def test_only_keeps_the_runs_whose_directory_name_matches_and_refuses_a_pattern_that_matches_none(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("logdir: %s\nenvs: [cartpole, hopper]\nseeds: [0, 1, 4]\nruns:\n  - {algo: ppo}\n  - {algo: npg}\n"
                     % (tmp_path / "runs"))
    result = _invoke("--suite", str(suite), "--only", "*-s4", "--only", "hopper-ppo-*", "--print-commands")
    assert result.exit_code == 0, result.output
    names = [line.rsplit("/", 1)[1] for line in result.output.strip().splitlines()]
    assert names == ["cartpole-ppo-none-s4", "cartpole-npg-kaczmarz-s4", "hopper-ppo-none-s0", "hopper-ppo-none-s1",
                     "hopper-ppo-none-s4", "hopper-npg-kaczmarz-s4"]
    result = _invoke("--suite", str(suite), "--only", "*-s2", "--print-commands")
    assert result.exit_code == 1 and "--only '*-s2' matches none of the suite's runs" in result.output
    assert "cartpole-ppo-none-s0" in result.output and "Traceback" not in result.output
    result = _invoke("--env", "cartpole", "--only", "*-s4")
    assert result.exit_code == 1 and "need --suite FILE" in result.output


def test_several_suites_form_one_queue_and_a_run_queued_twice_is_refused(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("logdir: %s\nenvs: [cartpole]\nruns:\n  - {algo: ppo}\n" % (tmp_path / "runs"))
    second.write_text("logdir: %s\nenvs: [hopper, cartpole]\nruns:\n  - {algo: npg}\n" % (tmp_path / "runs"))
    result = _invoke("--suite", str(first), "--suite", str(second), "--print-commands")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert ["cartpole-ppo" in lines[0], "hopper-npg" in lines[1], "cartpole-npg" in lines[2]] == [True] * 3
    result = _invoke("--suite", str(first), "--suite", str(first), "--print-commands")
    assert result.exit_code == 1 and "name the same run directory" in result.output and "Traceback" not in result.output


def test_suite_runs_and_rerun_resumes(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "logdir: %s\nenvs: [cartpole]\nseeds: [0]\nsteps: 512\n"
        "set: {threads: 1, num_envs: 2, num_steps: 128, model.hidden: [16], eval.episodes: 1}\n"
        "runs:\n  - {algo: npg, solver: diagonal}\n" % (tmp_path / "runs"))
    assert _invoke("--suite", str(suite), "--quiet").exit_code == 0
    run = tmp_path / "runs" / "cartpole-npg-diagonal-s0"
    assert len(read_rows(run)) == 2
    again = _invoke("--suite", str(suite), "--quiet")  # finished runs are resumed and return at once
    assert again.exit_code == 0 and len(read_rows(run)) == 2


def test_a_suite_leaves_out_the_runs_collected_as_finished_and_refuses_another_runs_copy(tmp_path):
    """After a machine loses its run directories, --collected trains only what the results folder lacks."""
    suite, runs, results = tmp_path / "suite.yaml", tmp_path / "runs", tmp_path / "results"
    suite.write_text(
        "logdir: %s\nenvs: [cartpole]\nseeds: [0, 1]\nsteps: 256\n"
        "set: {threads: 1, num_envs: 2, num_steps: 128, model.hidden: [16], eval.episodes: 1}\n"
        "runs:\n  - {algo: npg, solver: diagonal}\n" % runs)
    assert _invoke("--suite", str(suite), "--quiet").exit_code == 0
    collect = CliRunner().invoke(cli, ["report", str(runs), "--collect", str(results), "--out", str(tmp_path / "page")])
    assert collect.exit_code == 0, collect.output
    shutil.rmtree(runs)
    result = _invoke("--suite", str(suite), "--collected", str(results), "--print-commands")
    assert result.exit_code == 0, result.output
    assert "2 run(s) already collected as finished, 0 to train" in result.output
    assert "ratbench train" not in result.output

    summary = results / "cartpole-npg-diagonal-s1" / "summary.json"
    summary.write_text(summary.read_text().replace('"finished": true', '"finished": false'))
    result = _invoke("--suite", str(suite), "--collected", str(results), "--print-commands")
    assert result.exit_code == 0 and "1 to train" in result.output
    assert [line for line in result.output.splitlines() if line.startswith("ratbench train")] == [
        line for line in result.output.splitlines() if "cartpole-npg-diagonal-s1" in line]

    # a run collected before a key existed reads as a resume reads it: a key added with the old behaviour as its
    # default matches, and one whose old behaviour differs from today's default (PREDATED_VALUES) does not
    config = results / "cartpole-npg-diagonal-s0" / "config.yaml"
    saved = yaml.safe_load(config.read_text())
    del saved["model"]["init"]  # added with PyTorch's init, the behaviour before it
    config.write_text(yaml.safe_dump(saved))
    result = _invoke("--suite", str(suite), "--collected", str(results), "--print-commands")
    assert result.exit_code == 0 and "1 to train" in result.output, result.output
    del saved["eval"]["every_steps"]  # added with a default that changed the schedule: such a run had 0
    config.write_text(yaml.safe_dump(saved))
    result = _invoke("--suite", str(suite), "--collected", str(results), "--print-commands")
    assert result.exit_code == 1 and "differs in eval.every_steps)" in result.output, result.output
    config.write_text("model: [16\n")  # a damaged copy: one sentence naming it
    result = _invoke("--suite", str(suite), "--collected", str(results), "--print-commands")
    assert result.exit_code == 1 and f"saved run config '{config}' is not valid YAML" in result.output, result.output
    config.write_text(yaml.safe_dump(saved))

    suite.write_text(suite.read_text().replace("model.hidden: [16]", "model.hidden: [8]"))
    result = _invoke("--suite", str(suite), "--collected", str(results), "--print-commands")
    assert result.exit_code == 1 and "collected from another config" in result.output and "model.hidden" in result.output
    assert "Traceback" not in result.output
    result = _invoke("--suite", str(suite), "--collected", str(tmp_path / "nowhere"), "--print-commands")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_task_major_runs_every_suites_runs_on_a_task_before_the_next(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("logdir: %s\nenvs: [hopper, cartpole]\nruns:\n  - {algo: ppo}\n" % (tmp_path / "a"))
    second.write_text("logdir: %s\nenvs: [cartpole, hopper]\nruns:\n  - {algo: npg}\n  - {algo: pg}\n" % (tmp_path / "b"))
    result = _invoke("--suite", str(first), "--suite", str(second), "--task-major", "--print-commands")
    assert result.exit_code == 0, result.output
    names = [line.rsplit("/", 1)[1] for line in result.output.strip().splitlines()]
    assert names == ["hopper-ppo-none-s0", "hopper-npg-kaczmarz-s0", "hopper-pg-none-s0",
                     "cartpole-ppo-none-s0", "cartpole-npg-kaczmarz-s0", "cartpole-pg-none-s0"]
    # the task order is the full queue's: a collected first run leaves its task first
    copy = tmp_path / "results" / "hopper-ppo-none-s0"
    copy.mkdir(parents=True)
    (copy / "config.yaml").write_text(to_yaml(resolve_config({"env": "hopper", "algo": "ppo"})))
    (copy / "summary.json").write_text('{"finished": true}')
    result = _invoke("--suite", str(first), "--suite", str(second), "--task-major", "--collected",
                     str(tmp_path / "results"), "--print-commands")
    assert result.exit_code == 0, result.output
    assert [line.rsplit("/", 1)[1] for line in result.output.strip().splitlines()[1:]] == names[1:]


def test_bad_suite_keys_are_clear(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("envs: [cartpole]\nrunz: []\n")
    result = _invoke("--suite", str(suite))
    assert result.exit_code == 1 and "unknown key(s) runz" in result.output


@pytest.mark.parametrize(
    "text,message",
    [
        ("envs: [cartpole]\nruns: 5\n", "suite '{}': runs must be a list of runs"),
        ("envs: 5\nruns: [{algo: ppo}]\n", "suite '{}': envs must be a list of env names"),
        ("envs: [cartpole]\nseeds: 5\nruns: [{algo: ppo}]\n", "suite '{}': seeds must be a list of seeds"),
        ("envs: [cartpole]\nseeds: [abc]\nruns: [{algo: ppo}]\n", "suite '{}': seeds must be a list of seeds"),
        ("envs: [cartpole]\nseeds: [1.5]\nruns: [{algo: ppo}]\n", "suite '{}': seeds must be a list of seeds"),
        ("envs: [cartpole]\nseeds: [true]\nruns: [{algo: ppo}]\n", "suite '{}': seeds must be a list of seeds"),
        ("envs: [cartpole]\nset: [1, 2]\nruns: [{algo: ppo}]\n", "suite '{}': set must be a mapping"),
        ("envs: [cartpole]\nlogdir: 5\nruns: [{algo: ppo}]\n", "suite '{}': logdir must be a directory path"),
        ("envs: [cartpole]\nruns: [{algo: ppo, set: 5}]\n", "a run of suite '{}': set must be a mapping"),
        ("envs: [cartpole]\nruns: [{algo: ppo, envs: 5}]\n", "a run of suite '{}': envs must be a list of env names"),
        ("envs: [cartpole]\nruns: [{algo: ppo, seeds: [-1]}]\n", "a run of suite '{}': seeds must be a list of seeds"),
        ("envs: [cartpole]\nruns: [5]\n", "suite '{}': each run must be a mapping"),
        ("envs: [cartpole]\nsteps: abc\nruns: [{algo: ppo}]\n", "steps expects a number, got 'abc' (from suite '{}', run cartpole-ppo-none-s0)"),
        ("envs: [cartpole]\nruns: [{algo: ppo, set: {ppo.lr: abc}}]\n", "ppo.lr expects a number, got 'abc' (from suite '{}', run cartpole-ppo-none-s0)"),
        ("envs: [cartpole]\nruns: [{algo: ppo, set: {ppo.lr: -1}}]\n", "ppo.lr must be positive, got -1.0 (from suite '{}', run cartpole-ppo-none-s0)"),
        ("envs: [cartpole]\nruns: [{algo: ppo, arch: nope}]\n", "valid architectures: separate, shared (from suite '{}', run cartpole-ppo-none-s0)"),
        ("envs: [nope]\nruns: [{algo: ppo}]\n", "suite '{}': unknown environment 'nope'"),
        ("envs: [cartpole]\nruns: [{algo: ppo, envs: [nope]}]\n", "a run of suite '{}': unknown environment 'nope'"),
        ("envs: [cartpole]\nruns: [{algo: nope}]\n", "valid algorithms: npg, pg, ppo, trpo (from suite '{}', run cartpole-nope-none-s0)"),
        ("envs: [cartpole]\nruns: [{algo: npg, solver: cg, set: {npg.rat_variant: original}}]\n",
         "use it with --solver kaczmarz (from suite '{}', run cartpole-npg-cg-s0)"),
    ],
)
def test_suite_mistakes_are_one_sentence_naming_the_suite(tmp_path, text, message):
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    result = _invoke("--suite", str(suite), "--print-commands")
    assert result.exit_code == 1 and result.output.startswith("Error: ") and message.format(suite) in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_suite_runs_that_would_share_a_directory_are_refused(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("envs: [cartpole]\nruns:\n  - {algo: npg, arch: separate}\n  - {algo: npg, arch: shared}\n")
    result = _invoke("--suite", str(suite), "--print-commands")
    assert result.exit_code == 1 and "share the directory" in result.output and "name" in result.output
    assert "Traceback" not in result.output


def test_logdir_is_a_parent_and_run_dir_is_exact(tmp_path):
    common = ("--env", "cartpole", "--steps", "1000", "--quiet", "--set", "num_envs=2", "--set", "num_steps=256")
    result = _invoke(*common, "--logdir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("cartpole-npg-kaczmarz-s0-") and (run / "progress.csv").is_file()
    assert "steps round up to whole iterations of 512 agent steps: 1,000 -> 1,024" in result.output
    result = _invoke(*common, "--logdir", str(tmp_path / "runs"), "--run-dir", str(tmp_path / "x"))
    assert result.exit_code == 1 and "not both" in result.output
    result = _invoke("--resume", str(run), "--steps", "1500", "--quiet")  # a resume rounds as a fresh run does
    assert result.exit_code == 0 and "1,500 -> 1,536" in result.output


def test_rat_on_hopper_says_it_runs_its_default_the_reference_preset(tmp_path):
    """``preset: auto`` (docs/defaults.md): the run says which preset it got, and its config.yaml records it."""
    common = ("--env", "hopper", "--steps", "64", "--quiet", "--threads", "1", "--set", "num_envs=2",
              "--set", "num_steps=32", "--set", "eval.episodes=1")
    result = _invoke(*common, "--run-dir", str(tmp_path / "auto"))
    assert result.exit_code == 0, result.output
    assert "RAT on hopper runs the reference preset, its default there" in result.output
    assert yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())["preset"] == "reference"
    result = _invoke(*common, "--preset", "none", "--run-dir", str(tmp_path / "none"))
    assert result.exit_code == 0 and "preset" not in result.output, result.output
    assert yaml.safe_load((tmp_path / "none" / "config.yaml").read_text())["preset"] is None
    result = _invoke(*common, "--set", "preset=reference", "--run-dir", str(tmp_path / "asked"))  # asked, not `auto`
    assert result.exit_code == 0 and "its default there" not in result.output, result.output


def test_progress_goes_to_a_log_file_as_status_lines(tmp_path):
    """stderr not a terminal (a batch job): no bar, but status lines, the last at the rounded budget."""
    import subprocess
    import sys

    log = tmp_path / "train.log"
    with open(log, "w") as stderr:
        subprocess.run([sys.executable, "-m", "ratbench", "train", "--env", "cartpole", "--steps", "1000",
                        "--run-dir", str(tmp_path / "run"), "--set", "num_envs=2", "--set", "num_steps=256",
                        "--set", "threads=1"], stderr=stderr, stdout=subprocess.DEVNULL, check=True, timeout=300)
    lines = log.read_text().splitlines()
    assert "step 1,024 of 1,024 (100%): it 2" in "\n".join(lines)  # the total is what the run reaches
    assert not any("\r" in line for line in lines)  # no bar redraws in the file


def test_unwritable_output_fails_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _invoke("--env", "cartpole", "--run-dir", str(blocker / "run"))
    assert result.exit_code == 1 and "is a file, not a directory" in result.output and "Traceback" not in result.output


def test_resuming_a_finished_run_touches_nothing(tmp_path):
    run = tmp_path / "run"
    assert _invoke("--env", "cartpole", "--steps", "512", "--quiet", "--set", "num_envs=2", "--set", "num_steps=256",
                   "--run-dir", str(run)).exit_code == 0
    def outputs():  # the lock file is bookkeeping: every claim writes its owner's pid there
        return sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir() if p.name != LOCK_FILE)

    before = outputs()
    result = _invoke("--resume", str(run), "--quiet")
    assert result.exit_code == 0 and "done: 512 steps" in result.output
    assert outputs() == before


def test_help_lists_the_valid_values():
    text = " ".join(_invoke("--help").output.split())  # click wraps lines
    for name in ("hopper", "humanoid", "cartpole", "npg, ppo, pg", "woodbury, kaczmarz, cg", "separate, shared", "cpu, cuda", "reference"):
        assert name in text, name


def test_float32_training_at_tiny_damping_fails_in_one_sentence_and_trains_with_refinement(tmp_path):
    """Damping 1e-10 in float32: the Gram is not numerically positive definite; woodbury's refine trains."""
    common = ["--env", "cartpole", "--solver", "woodbury", "--steps", "512", "--quiet", "--threads", "1",
              "--set", "npg.damping=1e-10", "--set", "num_envs=2", "--set", "num_steps=256"]
    plain = _invoke(*common, "--run-dir", str(tmp_path / "plain"))
    assert plain.exit_code == 1 and "npg.solver_options.refine=true" in plain.output
    assert "Traceback" not in plain.output
    refined = _invoke(*common, "--run-dir", str(tmp_path / "refined"), "--set", "npg.solver_options={refine: true}")
    assert refined.exit_code == 0, refined.output
    rows = read_rows(tmp_path / "refined")
    assert len(rows) == 1 and np.isfinite(float(rows[0]["kl"]))
