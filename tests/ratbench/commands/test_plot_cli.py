"""`ratbench plot` on the command line: the three output files, default paths, one-line errors."""

from __future__ import annotations

import csv
import importlib.util
import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratbench.cli import cli
from tests.ratbench.reporting.test_plot import STEPS, curve_rows, write_run


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["plot", *args])


def _sweep(root: Path) -> Path:
    """RAT (3 seeds, with evaluations) and ppo (2 seeds) on cartpole; known final means."""
    for seed, offset in enumerate([0.0, 10.0, 20.0]):
        rows = curve_rows(STEPS, [s / 100 + offset for s in STEPS], eval_return=[None, 50.0 + seed, None, 60.0 + seed])
        write_run(root / "kaczmarz", f"s{seed}", rows, seed=seed)
    for seed in range(2):
        write_run(root / "ppo", f"s{seed}", curve_rows(STEPS, [None, 5.0, 6.0, 7.0 + seed]), algo="ppo", solver=None, seed=seed)
    return root


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_plot_writes_png_html_and_csv(tmp_path):
    runs = _sweep(tmp_path / "runs")
    out = tmp_path / "figures" / "cartpole"
    result = _invoke(str(runs), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _files(out.parent) == ["cartpole.csv", "cartpole.html", "cartpole.png"]  # no temporary files left over
    assert f"wrote {out}.png" in result.stdout and "Plotted 5 runs in 2 groups (PPO, RAT (ratbench settings))" in result.stdout

    width, height = _png_size(Path(f"{out}.png").read_bytes())
    assert width > 1000 and height > 1000  # 2 x 2 panels (two metrics x two x axes) at 150 dpi

    page = Path(f"{out}.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and '<img alt="learning curves' in page and "data:image/png;base64," in page
    assert "<script" not in page and "http" not in page  # self-contained, works offline
    final_table = page[page.index('<table id="final-values">'):page.index("</table>")]
    # kaczmarz return_mean at 4000 steps: mean of 40, 50, 60; ppo: mean of 7, 8; kaczmarz eval: mean of 60, 61, 62
    assert re.search(r"<td>return_mean</td><td>RAT \(ratbench settings\)</td><td class=\"num\">3</td><td class=\"num\">4000</td><td class=\"num\">50</td>", final_table)
    assert re.search(r"<td>return_mean</td><td>PPO</td><td class=\"num\">2</td><td class=\"num\">4000</td><td class=\"num\">7.5</td>", final_table)
    assert re.search(r"<td>eval_return</td><td>RAT \(ratbench settings\)</td><td class=\"num\">3</td><td class=\"num\">4000</td><td class=\"num\">61</td>", final_table)
    assert page.count(str(runs / "kaczmarz" / "s0")) == 1  # runs table

    with open(f"{out}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    last = [r for r in rows if (r["group"], r["metric"], r["x_axis"]) == ("RAT (ratbench settings)", "return_mean", "env_steps")][-1]
    assert (float(last["x"]), float(last["mean"]), last["seeds"]) == (4000.0, 50.0, "3")
    assert float(last["band_low"]) <= 50.0 <= float(last["band_high"])
    assert {r["x_axis"] for r in rows} == {"env_steps", "wall_time"} and {r["metric"] for r in rows} == {"return_mean", "eval_return"}


def test_plot_options_select_metric_axis_grouping_and_band(tmp_path):
    runs = _sweep(tmp_path / "runs")
    out = tmp_path / "fig.png"  # a suffix on --out is dropped: fig.png, fig.html, fig.csv
    result = _invoke(str(runs), "--metric", "return_mean", "--x", "env_steps", "--group-by", "algo", "--band", "sem", "--smooth", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _files(tmp_path) == ["fig.csv", "fig.html", "fig.png", "runs"]
    with open(tmp_path / "fig.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["group"], r["metric"], r["x_axis"]) for r in rows} == {("npg", "return_mean", "env_steps"), ("ppo", "return_mean", "env_steps")}
    page = (tmp_path / "fig.html").read_text()
    assert "mean ± SE" in page and "smoothed over its last 2 logged points" in page
    width, height = _png_size((tmp_path / "fig.png").read_bytes())
    assert width < height * 2  # one panel column


def test_default_output_goes_into_the_single_directory_given_else_the_current_one(tmp_path, monkeypatch):
    runs = _sweep(tmp_path / "runs")
    result = _invoke(str(runs / "kaczmarz"))
    assert result.exit_code == 0, result.output
    assert {"learning_curves.png", "learning_curves.html", "learning_curves.csv"} <= set(_files(runs / "kaczmarz"))
    assert f"wrote {runs / 'kaczmarz' / 'learning_curves.png'}" in result.stdout

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = _invoke(str(runs / "kaczmarz" / "s0"), str(runs / "ppo"))
    assert result.exit_code == 0, result.output
    assert _files(cwd) == ["learning_curves.csv", "learning_curves.html", "learning_curves.png"]

    figures = tmp_path / "figures"
    figures.mkdir()
    assert _invoke(str(runs), "--out", str(figures)).exit_code == 0  # an existing directory as --out
    assert _files(figures) == ["learning_curves.csv", "learning_curves.html", "learning_curves.png"]


def test_skipped_runs_and_truncated_groups_are_reported(tmp_path):
    runs = _sweep(tmp_path / "runs")
    (runs / "crashed").mkdir()
    (runs / "crashed" / "progress.csv").write_text("iteration,env_steps,wall_time\n")
    write_run(runs / "ppo", "s2", curve_rows(STEPS[:2], [5.0, 6.0]), algo="ppo", solver=None, seed=2)
    result = _invoke(str(runs), "--out", str(tmp_path / "fig"))
    assert result.exit_code == 0, result.output
    assert f"Warning: skipping {runs / 'crashed'}: it has no config.yaml" in result.stderr
    assert f"Note: PPO on CartPole-v1: curves stop at env_steps = 2k, where its shortest seed ({runs / 'ppo' / 's2'}) ends" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/nowhere"], "nowhere does not exist"),
        (["{tmp}/empty"], "no run directories under"),
        (["{tmp}/broken"], "no usable runs among 1 candidate directory"),
        (["{tmp}/runs", "--metric", "retrun_mean"], "unknown metric 'retrun_mean' (did you mean 'return_mean'"),
        (["{tmp}/runs", "--metric", "kl"], "metric 'kl' is empty in every run"),
        (["{tmp}/runs", "--group-by", "solverr"], "unknown group-by key 'solverr' (did you mean 'solver'"),
        (["{tmp}/runs", "--smooth", "0"], "Invalid value for '--smooth'"),
        (["{tmp}/runs", "--smooth", "99999999999999999999999"], "Invalid value for '--smooth'"),
    ],
)
def test_errors_are_one_line_and_write_nothing(tmp_path, args, message):
    _sweep(tmp_path / "runs")
    (tmp_path / "empty").mkdir()
    write_run(tmp_path, "broken", curve_rows(STEPS, [1, 2, 3, 4]))
    (tmp_path / "broken" / "progress.csv").write_text("iteration,env_steps,wall_time,return_mean\n1,100,0.5,oops\n")
    out = tmp_path / "out"
    result = _invoke(*[a.format(tmp=tmp_path) for a in args], "--out", str(out / "fig"))
    assert result.exit_code in (1, 2)  # 2: click's own usage errors
    assert message in result.stderr and "Traceback" not in result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [result.stderr.splitlines()[-1]]
    assert not out.exists()


def _trainer_available() -> bool:
    return importlib.util.find_spec("ratbench.training") is not None and importlib.util.find_spec("ratbench.commands.train") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _trainer_available(), reason="ratbench.training / `ratbench train` is not in this tree yet")
def test_plot_real_cartpole_training_runs(tmp_path):
    """Two real 2,048-step CartPole trainings through `ratbench train`, then `ratbench plot` on their parent directory."""
    runner = CliRunner()
    for seed in (0, 1):
        result = runner.invoke(cli, [
            "train", "--env", "cartpole", "--steps", "2048", "--seed", str(seed), "--quiet",
            "--run-dir", str(tmp_path / "runs" / f"cartpole-s{seed}"),
            "--set", "threads=1", "--set", "num_envs=2", "--set", "num_steps=128", "--set", "model.hidden=[16]",
            "--set", "eval.every=2", "--set", "eval.episodes=1",
        ])
        assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["plot", str(tmp_path / "runs"), "--out", str(tmp_path / "fig")])
    assert result.exit_code == 0, result.output
    assert "Plotted 2 runs in 1 group (RAT (ratbench settings))" in result.stdout
    assert "Warning" not in result.stderr  # TensorBoard files and checkpoints are not mistaken for runs
    _png_size((tmp_path / "fig.png").read_bytes())
    with open(tmp_path / "fig.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [r for r in rows if (r["metric"], r["x_axis"]) == ("return_mean", "env_steps")]
    # 2 envs x 128 steps = 256 env steps per iteration, 8 iterations, both seeds log every iteration
    assert [float(r["x"]) for r in steps] == [256.0 * i for i in range(1, 9)]
    assert all(r["seeds"] == "2" and float(r["band_low"]) <= float(r["mean"]) <= float(r["band_high"]) for r in steps)
    assert {r["metric"] for r in rows} == {"return_mean", "eval_return"}
    page = (tmp_path / "fig.html").read_text()
    assert '<td>return_mean</td><td>RAT (ratbench settings)</td><td class="num">2</td><td class="num">2048</td>' in page


def test_same_seed_twice_and_architectures_are_not_merged(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "sep", curve_rows(STEPS, [1.0, 2.0, 3.0, 4.0]), seed=0)
    write_run(runs, "shared", curve_rows(STEPS, [1.0, 2.0, 3.0, 4.0]), seed=0, arch="shared")
    result = _invoke(str(runs), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "in 2 groups (RAT (ratbench settings), RAT (ratbench settings, shared))" in result.stdout
    write_run(runs, "sep-again", curve_rows(STEPS, [1.0, 2.0, 3.0, 4.0]), seed=0)
    result = _invoke(str(runs), "--out", str(tmp_path / "out2"))
    assert result.exit_code == 1 and "2 runs with seed 0" in result.output


def test_runs_without_a_seed_plot_as_one_seed(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "a", curve_rows(STEPS, [1.0, 2.0, 3.0, 4.0]), seed=None)  # seed: null (a hand-made run)
    write_run(runs, "b", curve_rows(STEPS, [1.0, 2.0, 3.0, 4.0]), seed=1)
    result = _invoke(str(runs), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "Plotted 2 runs in 1 group (RAT (ratbench settings))" in result.stdout
