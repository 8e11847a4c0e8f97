"""``ratbench accuracy`` through click's CliRunner, and once as the installed command."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest
import torch
from click.testing import CliRunner

from ratbench.cli import cli
from solvers import solver_names
from suites.accuracy.families import family_names
from tests.devices import requires_cuda

TINY = ["--problem", "kfac-exact-small", "--problem", "diagonal-exact-small"]


def invoke(*args: str):
    return CliRunner().invoke(cli, ["accuracy", *args])


def test_list_shows_problems_sizes_modes_and_solvers():
    result = invoke("--list")
    assert result.exit_code == 0, result.output
    for name in family_names() + solver_names():
        assert name in result.output
    assert "N=1024" in result.output and "P=159,522" in result.output
    assert "parameter-space reference" in result.output and "sample-space reference" in result.output
    assert "block_size=256" in result.output  # solver options with their defaults


def test_small_run_writes_json_csv_and_plot(tmp_path):
    json_path, csv_path, plot_path = tmp_path / "out" / "acc.json", tmp_path / "acc.csv", tmp_path / "acc.png"
    result = invoke(*TINY, "--solver", "woodbury", "--solver", "kaczmarz", "--solver", "kfac",
                    "--option", "kaczmarz.block_size=64", "--json", str(json_path), "--csv", str(csv_path),
                    "--plot", str(plot_path))
    assert result.exit_code == 0, result.output
    assert "kfac-exact-small" in result.output and "rel err" in result.output

    data = json.loads(json_path.read_text())
    records = data["records"]
    assert [(r["problem"], r["solver"]) for r in records] == [
        (p, s) for p in ("kfac-exact-small", "diagonal-exact-small") for s in ("woodbury", "kaczmarz", "kfac")
    ]
    assert [p["name"] for p in data["problems"]] == ["kfac-exact-small", "diagonal-exact-small"]
    assert data["check"]["passed"] is True and set(data["contracts"]) == set(solver_names())
    for record in records:
        assert record["reference_mode"] == "parameter" and record["dtype"] == "float64"
        if record["solver"] in ("woodbury", "kaczmarz"):  # exact on every family: scored against their contract
            assert record["contract"] == "pass" and record["backward_space"] == "sample"
            assert record["backward_error"] <= record["backward_tolerance"]
            assert record["relative_error"] <= record["forward_tolerance"] < 1e-2  # kappa 32: the forward part is checked
    kaczmarz = next(r for r in records if r["solver"] == "kaczmarz" and r["problem"] == "kfac-exact-small")
    assert kaczmarz["options"]["block_size"] == 64 and kaczmarz["options"]["sweeps"] == 200
    assert kaczmarz["iterations"] > 4 and len(kaczmarz["curve"]) == kaczmarz["iterations"]  # N=256, blocks of 64
    assert kaczmarz["relative_error"] < 1e-8
    kfac_exact = next(r for r in records if r["solver"] == "kfac" and r["problem"] == "kfac-exact-small")
    assert kfac_exact["contract"] == "pass" and kfac_exact["backward_space"] == "parameter"
    assert kfac_exact["backward_tolerance"] == pytest.approx(8 * 256**0.5 * 2.0**-52)
    kfac_other = next(r for r in records if r["solver"] == "kfac" and r["problem"] == "diagonal-exact-small")
    assert kfac_other["contract"] == "none" and kfac_other["backward_tolerance"] is None

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records) and "curve" not in rows[0]
    assert float(rows[0]["relative_error"]) == pytest.approx(records[0]["relative_error"])
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_passes_on_the_quick_set_in_float64():
    result = invoke("--check", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    for name in ("gaussian-mlp-small", "cnn-small", "hopper-rollout-small", "shared-ac-small"):
        assert name in result.output
    assert re.search(r"contracts: (\d+) of \1 met", result.output)


def test_check_fails_when_a_solver_misses_its_contract(tmp_path):
    """One Kaczmarz sweep in blocks of 8 cannot reach 1e-8 on a 256-sample problem: exit 1."""
    json_path = tmp_path / "acc.json"
    result = invoke("--problem", "kfac-exact-small", "--solver", "kaczmarz", "--option", "kaczmarz.block_size=8",
                    "--option", "kaczmarz.sweeps=1", "--check", "--json", str(json_path))
    assert result.exit_code == 1
    assert "contract missed: kaczmarz on kfac-exact-small" in result.output
    assert json.loads(json_path.read_text())["check"]["passed"] is False  # the report is still written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--solver", "kaczmarc"], "unknown solver 'kaczmarc' (did you mean 'kaczmarz'"),
        (["--solver", "kaczmarc"], "valid solvers: cg, diagonal, kaczmarz, kfac, woodbury"),
        (["--problem", "hopper-small"], "unknown problem 'hopper-small'"),
        (["--damping", "0"], "--damping must be a positive finite number"),
        (["--damping", "-1"], "--damping must be a positive finite number"),
        (["--damping", "nan"], "--damping must be a positive finite number"),
        (["--option", "kaczmarz.blocksize=64"], "solver 'kaczmarz' has no option 'blocksize'; its options: block_size"),
        (["--option", "kaczmarz.block_size=-3"], "kaczmarz block_size must be a positive integer"),
        (["--option", "kaczmarz=3"], "is not SOLVER.KEY=VALUE"),
        (["--option", "nope.x=1"], "unknown solver 'nope'"),
        (["--plot", "conv.jpeg"], "must end in one of: .png, .svg, .pdf"),
    ],
)
def test_user_errors_are_one_line_and_write_nothing(tmp_path, args, message):
    outputs = [tmp_path / "a.json", tmp_path / "a.csv"]
    result = invoke(*TINY, *args, "--json", str(outputs[0]), "--csv", str(outputs[1]))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not any(p.exists() for p in outputs) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1"])
def test_a_seed_out_of_range_is_refused_before_any_work(seed):
    result = invoke(*TINY, "--seed", seed)
    assert result.exit_code == 2 and "'--seed': " in result.output and "not in the range 0<=x<=4294967295" in result.output
    assert "Traceback" not in result.output


def test_two_outputs_on_one_path_are_refused_before_any_work(tmp_path):
    result = invoke(*TINY, "--json", str(tmp_path / "out"), "--csv", str(tmp_path / ".." / tmp_path.name / "out"))
    assert result.exit_code == 1 and "name the same file" in result.output and not (tmp_path / "out").exists()


def test_unwritable_output_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = invoke(*TINY, "--json", str(blocker / "acc.json"))
    assert result.exit_code == 1 and "is a file, not a directory" in result.output
    assert len(result.output.strip().splitlines()) == 1 and sorted(tmp_path.iterdir()) == [blocker]


def test_float32_contracts_bound_the_backward_error_and_check_the_forward_error_only_where_it_means_something(tmp_path):
    """The backward bound is 8 sqrt(N) eps32 whatever kappa; the forward error is checked at kappa 32 and
    reported, unchecked, at kappa ~3e10 (damping 1e-10), where 2 kappa eta would exceed 1 (contracts.py)."""
    for damping, forward_checked in (("0.1", True), ("1e-10", False)):
        json_path = tmp_path / f"acc-{damping}.json"
        result = invoke("--problem", "kfac-exact-small", "--solver", "cg", "--solver", "kfac", "--dtype", "float32",
                        "--damping", damping, "--check", "--json", str(json_path))
        assert result.exit_code == 0, result.output
        for record in json.loads(json_path.read_text())["records"]:
            assert record["dtype"] == "float32" and record["contract"] == "pass"
            tol = 1e-6 if record["solver"] == "cg" else 0.0
            assert record["backward_tolerance"] == pytest.approx(8 * 256**0.5 * 2.0**-23 + tol)
            assert (record["forward_tolerance"] is not None) == forward_checked
            assert 0 < record["relative_error"]  # float32 rounding is visible against the float64 reference


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_cuda_without_a_gpu_is_a_clear_error():
    result = invoke(*TINY, "--device", "cuda")
    assert result.exit_code == 1 and "use --device cpu" in result.output


@requires_cuda
def test_check_on_cuda(tmp_path):
    result = invoke(*TINY, "--device", "cuda", "--check", "--json", str(tmp_path / "acc.json"))
    assert result.exit_code == 0, result.output
    assert {r["device"] for r in json.loads((tmp_path / "acc.json").read_text())["records"]} == {"cuda:0"}


def test_installed_command(tmp_path):
    """The console script, end to end, on the smallest problem."""
    exe = shutil.which("ratbench")
    assert exe is not None, "the ratbench console script is not installed (pip install -e .)"
    json_path = tmp_path / "acc.json"
    done = subprocess.run([exe, "accuracy", "--problem", "diagonal-exact-small", "--check", "--json", str(json_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "diagonal-exact-small" in done.stdout and "contracts: 4 of 4 met" in done.stdout
    assert {r["solver"] for r in json.loads(json_path.read_text())["records"]} == set(solver_names())


def test_conditioning_sweep_writes_every_damping_in_both_dtypes_and_its_plot(tmp_path):
    csv_path, plot_path = tmp_path / "sweep.csv", tmp_path / "sweep.svg"
    result = invoke("--sweep", "--problem", "diagonal-exact-small", "--solver", "woodbury", "--solver", "diagonal",
                    "--csv", str(csv_path), "--plot", str(plot_path), "--check")
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 14 * 2  # dtypes x dampings 1e-10..1e3 x solvers
    assert {float(r["damping"]) for r in rows} == {10.0**k for k in range(-10, 4)}
    kappas = sorted(float(r["condition_number"]) for r in rows)
    assert kappas[0] == pytest.approx(1.0, abs=1e-3) and kappas[-1] > 1e4
    failed = [r for r in rows if r["contract"] == "fail"]
    # plain float32 Cholesky at the smallest damping is the one expected miss, and it says why
    assert all(r["dtype"] == "float32" and r["solver"] == "woodbury" and "refine" in r["error"] for r in failed)
    assert result.exit_code == (1 if failed else 0)
    assert plot_path.read_text().lstrip().startswith("<?xml")
    refused = invoke("--sweep", "--damping", "0.5", "--problem", "diagonal-exact-small")
    assert refused.exit_code == 1 and "drop --damping" in refused.output
