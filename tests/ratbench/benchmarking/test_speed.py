"""ratbench.benchmarking.speed (workloads, baselines, solver configs, ratios) and the `ratbench speed` command.

No wall-clock value is asserted anywhere: only that every method runs, that
the baselines compute what they claim, and that ratios and verdicts follow
from the measured numbers.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from ratbench import RatbenchError
from ratbench.benchmarking import speed as sp
from ratbench.cli import cli
from ratbench.curvature import capture
from ratbench.commands.speed import format_table
from solvers import make_solver
from solvers.base import vanilla_gradient
from tests.dense import EPS32, dense, exact_rtol, rel_err
from tests.devices import DEVICES


@pytest.fixture(scope="module")
def small_problem():
    return sp.build_problem(64, 16, "mlp-gaussian", seed=3)


@pytest.mark.parametrize("policy", sp.POLICIES)
def test_build_problem_shapes_and_advantages(policy):
    problem = sp.build_problem(32, 8, policy, seed=1)
    assert problem.obs.shape == (32, *sp.obs_shape(policy))
    assert problem.obs.dtype == (torch.uint8 if policy in sp.FRAME_POLICIES else torch.float32)
    advantages = problem.advantages
    if policy == sp.JOINT_POLICY:  # right-hand sides [A, 1] and the value term over every parameter
        assert advantages.shape == (32, 2) and bool((advantages[:, 1] == 1).all())
        assert problem.value is not None and problem.value.noise.shape == (32,)
        assert problem.num_params == sum(p.numel() for p in problem.value.module.parameters()) + sp.HUMANOID_ACT * 9 + sp.HUMANOID_ACT
        advantages = advantages[:, 0]
    else:
        assert advantages.shape == (32,)
    # Advantages are centred to unit RMS in float32: mean ~ 0 and RMS ~ 1 up to rounding (1e-5).
    assert abs(float(advantages.mean())) < 1e-5
    assert abs(float(advantages.square().mean()) - 1.0) < 1e-5
    assert problem.policy.log_prob(problem.obs, problem.actions).shape == (32,)
    assert problem.damping == sp.DAMPING


def test_humanoid_policy_sizes():
    problem = sp.build_problem(8, 256, "mlp-gaussian")
    # 348 -> 256 -> 256 -> 17 with biases, plus the 17-entry log-std.
    assert problem.num_params == 348 * 256 + 256 + 256 * 256 + 256 + 256 * 17 + 17 + 17
    assert sp.jacobian_bytes(problem) == 8 * problem.num_params * 4


def test_unknown_policy_lists_valid_names():
    with pytest.raises(RatbenchError, match="mlp-gaussian"):
        sp.build_policy("mlp-gausian", 8)


def test_vanilla_backward_is_the_policy_gradient(small_problem):
    """The vanilla baseline's gradient and g = S^T b / N from the curvature layer, both in float32, are the
    float64 SciPy reference's g of the same (float32-representable) minibatch up to float32 rounding:
    c eps32 times the cancellation in the sum S^T b (product_condition); c = 64 as in tests/solvers."""
    reference = dense(sp.float64_copy(small_problem))
    rtol = 64 * EPS32 * reference.product_condition()
    grads = sp.vanilla_backward(small_problem)
    assert rel_err(torch.cat([g.reshape(-1) for g in grads]), reference.gradient) <= rtol
    assert rel_err(vanilla_gradient(capture(small_problem), small_problem), reference.gradient) <= rtol


def test_per_sample_route_matches_the_hooked_woodbury_solver(small_problem):
    """The materialised route (torch.func J, dense Gram) and the woodbury solver (hooked layer factors,
    no J) are independent paths to d*: in float64 each is the SciPy reference's d* within the exact
    solvers' float64 allowance, 4 (N + P) eps64 kappa c (tests/solvers/test_woodbury.py); d* by the
    64 x 64 sample-space SciPy solve (P = 6,162 makes the parameter-space one slow)."""
    problem64 = sp.float64_copy(small_problem)
    reference = dense(problem64)
    rtol = exact_rtol(problem64, reference)
    assert rel_err(sp.per_sample_direction(problem64), reference.npg_from_dual()) <= rtol
    assert rel_err(make_solver("woodbury").solve(problem64).direction, reference.npg_from_dual()) <= rtol


def test_per_sample_route_refuses_what_would_not_fit():
    problem = sp.build_problem(4096, 1024, "mlp-gaussian")
    assert not sp.per_sample_feasible(problem)
    with pytest.raises(RatbenchError, match="GiB"):
        sp.per_sample_direction(problem)


def test_float64_copy_keeps_the_problem(small_problem):
    """The float64 copy is the float32 minibatch cast up: woodbury on the float32 original lands on the
    copy's dense d* within float32 rounding, 64 eps32 kappa times the cancellation in S^T u (as in
    tests/solvers/test_registry.py, with tests/dense.py's product_condition)."""
    problem64 = sp.float64_copy(small_problem)
    assert problem64.dtype == torch.float64 and small_problem.dtype == torch.float32
    reference = dense(problem64)
    d32 = make_solver("woodbury").solve(small_problem).direction
    assert rel_err(d32.double(), reference.npg_from_dual()) <= 64 * EPS32 * reference.kappa() * reference.product_condition()


def test_solver_configs_follow_the_targets():
    assert sp.solver_options("kaczmarz", 1024) == ("kaczmarz", {"block_size": 1024, "sweeps": 1})
    assert sp.solver_options("kaczmarz-sweep", 1024) == ("kaczmarz", {"block_size": 256, "sweeps": 1})
    assert sp.solver_options("kaczmarz-sweep", 100)[1]["block_size"] == 100
    assert sp.solver_options("cg", 1024) == ("cg", {"iterations": 10, "tol": 0.0})
    with pytest.raises(RatbenchError, match="woodbury"):
        sp.solver_options("lbfgs", 8)


def _solver(method, n):
    name, options = sp.solver_options(method, n)
    return make_solver(name, **options)


def test_kaczmarz_method_is_one_block_step(small_problem):
    assert _solver("kaczmarz", small_problem.n).solve(small_problem).stats.iterations == 1
    assert _solver("kaczmarz-sweep", 200).solve(sp.build_problem(200, 8)).stats.iterations == 1  # 200 <= 256: one block
    assert _solver("kaczmarz-sweep", 600).solve(sp.build_problem(600, 8)).stats.iterations == 3  # 256 + 256 + 88
    assert _solver("cg", small_problem.n).solve(small_problem).stats.iterations == 10


def test_every_method_runs(small_problem):
    for method in sp.METHODS:
        value = sp.run_once(method, small_problem)
        flat = torch.cat([v.reshape(-1) for v in value]) if isinstance(value, list) else value
        assert flat.shape == (small_problem.num_params,)
        assert bool(torch.isfinite(flat).all())


def test_relative_error_vs_woodbury_matches_a_direct_computation(small_problem):
    expected_ref = make_solver("woodbury").solve(sp.float64_copy(small_problem)).direction
    d = make_solver("cg", iterations=10, tol=0.0).solve(small_problem).direction.double()
    expected = float(torch.linalg.vector_norm(d - expected_ref) / torch.linalg.vector_norm(expected_ref))
    assert sp.relative_error_vs_woodbury(small_problem, "cg") == pytest.approx(expected, rel=1e-6)
    with pytest.raises(RatbenchError):
        sp.relative_error_vs_woodbury(small_problem, "diagonal")


def test_measure_methods_interleaves_and_summarises(small_problem):
    calls = []
    timings = sp.measure_methods(["vanilla", "diagonal"], small_problem, repeat=3, warmup=1, on_run=calls.append)
    assert len(calls) == 8 and calls.count("vanilla") == 4
    assert calls[:2] == ["vanilla", "diagonal"] and calls[2:4] == ["diagonal", "vanilla"]  # rotating order
    for method, t in timings.items():
        assert t.method == method and len(t.seconds) == 3
        assert t.minimum <= t.q1 <= t.median <= t.q3 <= t.maximum
        assert t.peak_bytes >= 0


def _timing(method, seconds, peak=0):
    return sp.Timing(method, [seconds], seconds, seconds, seconds, seconds, seconds, peak)


def test_speed_rows_ratios_and_verdicts():
    timings = {
        "vanilla": _timing("vanilla", 0.010),
        "per-sample": _timing("per-sample", 2.0),
        "woodbury": _timing("woodbury", 0.050, peak=3 * 2**30),
        "cg": _timing("cg", 0.300),
        "kaczmarz-sweep": _timing("kaczmarz-sweep", 0.1),
        "kaczmarz": sp.skipped_timing("kaczmarz", "not run"),
    }
    rows = {row.timing.method: row for row in sp.speed_rows(timings, memory_targets=True)}
    wood = rows["woodbury"]
    assert wood.vs_vanilla.value == pytest.approx(5.0) and wood.vs_vanilla.target == 8.0 and wood.vs_vanilla.met
    assert wood.per_sample_speedup.value == pytest.approx(40.0) and wood.per_sample_speedup.met
    assert wood.memory_target_met is False  # 3 GiB >= 2 GiB
    assert rows["cg"].vs_vanilla.value == pytest.approx(30.0) and rows["cg"].vs_vanilla.met is False
    assert rows["cg"].per_sample_speedup.met is None  # no per-sample target for cg
    assert rows["kaczmarz-sweep"].vs_vanilla.met is None  # no target
    assert rows["kaczmarz"].memory_target_met is None and math.isnan(rows["kaczmarz"].vs_vanilla.value)
    table = format_table(list(rows.values()))
    assert "skipped" in table and "NO" in table and "<= 8x" in table and ">= 30x" in table


def test_unmeasured_peaks_read_not_available():
    for memory_targets in (False, True):
        timings = {"vanilla": _timing("vanilla", 0.01), "woodbury": _timing("woodbury", 0.05)}
        table = format_table(sp.speed_rows(timings, memory_targets=memory_targets), peak_measured=False)
        assert "n/a" in table and "GiB" not in table


def test_memory_targets_apply_up_to_the_size_they_are_stated_for():
    assert sp.memory_target_applies("nature-cnn", 1024) and not sp.memory_target_applies("nature-cnn", 4096)
    assert all(sp.memory_target_applies("mlp-gaussian", size.n) for size in sp.SIZES.values())


def test_check_device():
    assert sp.check_device("cpu") == torch.device("cpu")
    with pytest.raises(RatbenchError, match="valid devices"):
        sp.check_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RatbenchError, match="no CUDA"):
        sp.check_device("cuda")


# -- the command ---------------------------------------------------------------


def test_speed_command_prints_the_ratio_table(tmp_path):
    out = tmp_path / "speed.json"
    result = CliRunner().invoke(
        cli,
        ["speed", "--size", "small", "--solver", "woodbury", "--solver", "kaczmarz", "--repeat", "2", "--warmup", "0",
         "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("method") and "x vanilla" in line and "per-sample / it" in line for line in lines)
    methods = [line.split()[0] for line in lines if line.split() and line.split()[0] in sp.METHODS]
    assert methods == ["vanilla", "per-sample", "woodbury", "kaczmarz"]
    assert "<= 8x" in result.output and "<= 6x" in result.output and ">= 30x" in result.output
    assert "Note: the speed targets are stated for --size default (N=1,024, width 256)" in result.output
    saved = json.loads(out.read_text())
    assert saved["n"] == 256 and saved["width"] == 64 and saved["repeat"] == 2
    assert saved["targets_stated_for_size"] == "default"
    assert [row["timing"]["method"] for row in saved["rows"]] == methods
    assert all(len(row["timing"]["seconds"]) == 2 for row in saved["rows"])


@pytest.mark.parametrize("policy", ["mlp-gaussian", "minatar-cnn"])
@pytest.mark.parametrize("device", DEVICES)
def test_speed_command_times_every_method_on_each_device(tmp_path, device, policy):
    out = tmp_path / "speed.json"
    result = CliRunner().invoke(
        cli, ["speed", "--size", "small", "--policy", policy, "--device", device, "--repeat", "1", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["device"] == device
    assert [row["timing"]["method"] for row in saved["rows"]][:2] == ["vanilla", "per-sample"]
    assert {row["timing"]["method"] for row in saved["rows"]} >= {"woodbury", "kaczmarz", "cg", "diagonal", "kfac"}
    assert all(s > 0 for row in saved["rows"] for s in row["timing"]["seconds"])


def test_speed_command_threads_and_load_are_recorded(tmp_path):
    out = tmp_path / "speed.json"
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(
            cli, ["speed", "--size", "small", "--solver", "diagonal", "--repeat", "1", "--warmup", "0", "--threads", "1", "--json", str(out)]
        )
    finally:
        torch.set_num_threads(threads)  # the option sets a process-wide torch setting
    assert result.exit_code == 0, result.output
    assert "(1 torch threads" in result.output and "load average" in result.output
    saved = json.loads(out.read_text())
    assert saved["threads"] == 1 and saved["load_average"] >= 0 and saved["cores"] >= 1


def test_speed_command_notes_a_skipped_per_sample_route(monkeypatch):
    monkeypatch.setattr(sp, "PER_SAMPLE_MAX_BYTES", 0)
    result = CliRunner().invoke(cli, ["speed", "--size", "small", "--solver", "diagonal", "--repeat", "1", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    assert "per-sample route is skipped" in result.output
    assert any(line.split()[:2] == ["per-sample", "skipped"] for line in result.output.splitlines())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--solver", "wodbury"], "unknown solver method 'wodbury'"),
        (["--size", "huge"], "valid sizes: default, large, small"),
        (["--policy", "rnn"], "valid policy names"),
        (["--device", "tpu"], "valid devices: cpu, cuda"),
    ],
)
def test_speed_command_user_errors(args, message):
    result = CliRunner().invoke(cli, ["speed", *args])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1"])
def test_speed_command_refuses_a_seed_out_of_range(seed):
    result = CliRunner().invoke(cli, ["speed", "--size", "small", "--seed", seed])
    assert result.exit_code == 2 and "'--seed': " in result.output and "not in the range 0<=x<=4294967295" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args,message", [
    (["--set", "threads=1"], "add --training ENV"),
    (["--iterations", "2"], "add --training ENV"),
    (["--training", "cartpole", "--repeat", "3"], "give --iterations instead"),
    (["--training", "cartpole", "--size", "small"], "give --iterations instead"),
])
def test_options_of_the_other_report_are_refused_not_ignored(args, message):
    result = CliRunner().invoke(cli, ["speed", *args])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output


def test_speed_command_rejects_zero_repeats():
    result = CliRunner().invoke(cli, ["speed", "--repeat", "0"])
    assert result.exit_code == 2 and "--repeat" in result.output
