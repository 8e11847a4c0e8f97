"""Loading, grouping, interpolation and aggregation of learning curves.

Fixtures are run directories in the exact format ``ratbench train`` writes
(config.yaml + progress.csv), filled with hand-made curves whose mean and
band are known in closed form.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pytest
import yaml

from ratbench.errors import RatbenchError
from ratbench.reporting import plot as lc
from ratbench.reporting import runs as runs_api
from ratbench.reporting.stats import BOOTSTRAP_REPS
from tests.ratbench.reporting.helpers import algorithm_init

# The progress.csv columns, in the order `ratbench train` writes them.
PROGRESS_COLUMNS = [
    "iteration", "env_steps", "episodes", "return_mean", "return_median", "length_mean", "eval_return",
    "fps", "time_env", "time_update", "wall_time", "kl", "entropy", "policy_loss", "value_loss",
    "step_norm", "lr", "solver_iterations", "solver_residual",
]


def write_run(
    root: Path,
    name: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    env: str = "cartpole",
    algo: str = "npg",
    solver: str | None = "kaczmarz",
    seed: int = 0,
    **extra_config: Any,
) -> Path:
    """A run directory: config.yaml and progress.csv; cells absent from a row stay empty."""
    run = root / name
    run.mkdir(parents=True)
    config = {"env": env, "algo": algo, "solver": solver, "arch": "separate", "seed": seed,
              "model": {"hidden": [64, 64], "init": algorithm_init(algo)}, **extra_config}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    lines = [",".join(PROGRESS_COLUMNS)]
    for row in rows:
        lines.append(",".join("" if row.get(c) is None else repr(row[c]) for c in PROGRESS_COLUMNS))
    (run / "progress.csv").write_text("\n".join(lines) + "\n")
    return run


def curve_rows(env_steps: Sequence[float], returns: Sequence[float | None], seconds_per_step: float = 1e-3, **columns: Sequence[Any]) -> list[dict]:
    """progress rows with the given env_steps and return_mean (None -> empty cell); wall time proportional to steps."""
    rows = []
    for i, (steps, ret) in enumerate(zip(env_steps, returns)):
        row = {"iteration": i + 1, "env_steps": steps, "return_mean": ret, "wall_time": steps * seconds_per_step, "episodes": 2 * i}
        row.update({name: values[i] for name, values in columns.items()})
        rows.append(row)
    return rows


STEPS = [1000, 2000, 3000, 4000]


# ----------------------------------------------------------------------------- loading


def test_find_run_dirs_searches_parents_recursively_and_accepts_run_dirs(tmp_path):
    a = write_run(tmp_path / "sweep" / "kaczmarz", "seed0", curve_rows(STEPS, [1, 2, 3, 4]))
    b = write_run(tmp_path / "sweep" / "cg", "seed0", curve_rows(STEPS, [1, 2, 3, 4]), solver="cg")
    (a / "tb").mkdir()  # TensorBoard folder and checkpoints are ignored
    (a / "checkpoint.pt").write_bytes(b"\0")
    runs, rejected, warnings = runs_api.find_run_dirs([tmp_path / "sweep"])
    assert runs == sorted([a, b]) and rejected == [] and warnings == []
    # A run dir itself, a progress.csv path and a duplicate all name the same run once.
    runs, _, _ = runs_api.find_run_dirs([a, a / "progress.csv", tmp_path / "sweep" / "kaczmarz"])
    assert runs == [a]


def test_a_folder_with_its_own_comparisons_is_a_page_of_its_own(tmp_path):
    results = tmp_path / "results"
    main = write_run(results, "rat-s0", curve_rows(STEPS, [1, 2, 3, 4]))
    ablation = write_run(results / "ablation", "relu-s0", curve_rows(STEPS, [1, 2, 3, 4]))
    (results / "ablation" / "comparisons.yaml").write_text("[]\n")
    pages = []
    runs, _, warnings = runs_api.find_run_dirs([results], pages)
    assert runs == [main] and warnings == [] and pages == [results / "ablation"]  # its run is its page's
    runs, _, warnings = runs_api.find_run_dirs([results])  # without a list to take them, the skipped page is named
    assert runs == [main] and warnings == [f"not searching {results / 'ablation'}: a page of its own (it holds "
                                           f"comparisons.yaml; `ratbench report {results / 'ablation'}`)"]
    pages = []
    runs, _, _ = runs_api.find_run_dirs([results / "ablation"], pages)  # its own page searches it
    assert runs == [ablation] and pages == []
    (results / "rat-s0" / "progress.csv").unlink()
    (results / "rat-s0" / "config.yaml").unlink()
    with pytest.raises(RatbenchError, match=r"no run directories under .*results outside its pages of their own"):
        runs_api.find_run_dirs([results])


def test_find_run_dirs_rejects_incomplete_dirs_and_bad_paths(tmp_path):
    write_run(tmp_path, "good", curve_rows(STEPS, [1, 2, 3, 4]))
    (tmp_path / "no_config").mkdir()
    (tmp_path / "no_config" / "progress.csv").write_text("iteration,env_steps,wall_time\n1,2,3\n")
    runs, rejected, warnings = runs_api.find_run_dirs([tmp_path])
    assert runs == [tmp_path / "good"] and warnings == []
    assert rejected == [f"skipping {tmp_path / 'no_config'}: it has no config.yaml"]

    with pytest.raises(RatbenchError, match="does not exist"):
        runs_api.find_run_dirs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RatbenchError, match=r"no run directories under .*empty"):
        runs_api.find_run_dirs([tmp_path / "empty"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RatbenchError, match="is a file"):
        runs_api.find_run_dirs([tmp_path / "notes.txt"])


def test_load_progress_reads_empty_cells_as_nan(tmp_path):
    rows = curve_rows(STEPS, [None, 2.5, None, 4.0], eval_return=[None, 10.0, None, 20.0])
    columns = runs_api.load_progress(write_run(tmp_path, "r", rows) / "progress.csv")
    assert list(columns)[:3] == ["iteration", "env_steps", "episodes"]
    np.testing.assert_array_equal(columns["env_steps"], STEPS)
    np.testing.assert_array_equal(columns["return_mean"], [np.nan, 2.5, np.nan, 4.0])
    np.testing.assert_array_equal(columns["eval_return"], [np.nan, 10.0, np.nan, 20.0])
    assert np.isnan(columns["kl"]).all()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("iteration,env_steps,wall_time,return_mean\n", "no rows yet"),
        ("iteration,env_steps,return_mean\n1,100,3\n", "no 'wall_time' column"),
        ("iteration,env_steps,wall_time,return_mean\n1,100,1.0,3\n2,200,2.0,abc\n", r"line 3: column 'return_mean' holds 'abc'"),
        ("iteration,env_steps,wall_time,return_mean\n1,100,1.0,3\n2,200,2.0\n", r"line 3 has 3 cells where the header has 4"),
        ("iteration,env_steps,wall_time,return_mean\n1,100,1.0,3,7\n", r"line 2 has 5 cells where the header has 4"),
        ("iteration,env_steps,wall_time,return_mean\n1,200,1.0,3\n2,100,2.0,4\n", "never decreases"),
        ("iteration,env_steps,wall_time,return_mean\n1,100,1.0,3\n2,inf,2.0,4\n", "must be a finite count"),
        ("iteration,env_steps,wall_time,return_mean\n1,,1.0,3\n", "must be a finite count"),
    ],
)
def test_load_progress_errors_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "progress.csv"
    path.write_text(text)
    with pytest.raises(RatbenchError, match=message) as info:
        runs_api.load_progress(path)
    assert str(path) in str(info.value)


def test_load_runs_skips_unreadable_runs_with_a_warning_and_fails_when_none_is_left(tmp_path):
    good = write_run(tmp_path, "good", curve_rows(STEPS, [1, 2, 3, 4]))
    bad_yaml = write_run(tmp_path, "bad_yaml", curve_rows(STEPS, [1, 2, 3, 4]))
    (bad_yaml / "config.yaml").write_text("env: [unclosed\n")
    not_a_run = write_run(tmp_path, "no_env", curve_rows(STEPS, [1, 2, 3, 4]))
    (not_a_run / "config.yaml").write_text("algo: npg\n")
    binary = write_run(tmp_path, "binary", curve_rows(STEPS, [1, 2, 3, 4]))
    (binary / "config.yaml").write_bytes(b"\xff\xfe\x00env")
    binary_log = write_run(tmp_path, "binary_log", curve_rows(STEPS, [1, 2, 3, 4]))
    (binary_log / "progress.csv").write_bytes(b"iteration,env_steps\n\xff\xfe\x00")
    for name, value in (("steps_zero", "steps: 0"), ("solver_list", "solver: [1, 2]"), ("seed_text", "seed: abc")):
        wrong = write_run(tmp_path / "typed", name, curve_rows(STEPS, [1, 2, 3, 4]))
        (wrong / "config.yaml").write_text((wrong / "config.yaml").read_text() + value + "\n")
    runs, warnings = runs_api.load_runs([tmp_path / "typed", good])
    assert [r.path for r in runs] == [good]
    assert [w.split(": ", 1)[0] for w in warnings] == [f"skipping {tmp_path / 'typed' / n}" for n in ("seed_text", "solver_list", "steps_zero")]
    assert "steps must be a positive whole number" in warnings[2] and "solver must be a name or null" in warnings[1]
    runs, warnings = runs_api.load_runs([tmp_path])
    assert [r.path for r in runs] == [good]
    assert len(warnings) == 7
    assert str(bad_yaml) in warnings[0] and "not valid YAML" in warnings[0]
    assert str(binary) in warnings[1] and "not UTF-8 text" in warnings[1]
    assert str(binary_log) in warnings[2] and "not a CSV text file" in warnings[2]
    assert str(not_a_run) in warnings[3] and "'env' key" in warnings[3]
    with pytest.raises(RatbenchError, match="no usable runs among 2 candidate directories"):
        runs_api.load_runs([bad_yaml, not_a_run])


def test_no_usable_runs_counts_only_run_directories_and_names_the_first_reason(tmp_path):
    """The error is raised before any warning is printed, so it carries the reason itself; a page of its own
    below the searched folder is not a candidate run directory."""
    bad_yaml = write_run(tmp_path, "bad_yaml", curve_rows(STEPS, [1, 2, 3, 4]))
    (bad_yaml / "config.yaml").write_text("env: [unclosed\n")
    write_run(tmp_path / "page", "inside", curve_rows(STEPS, [1, 2, 3, 4]))
    (tmp_path / "page" / "comparisons.yaml").write_text("[]\n")
    with pytest.raises(RatbenchError, match=r"among 1 candidate directory under .*: skipping .*bad_yaml.*not valid YAML"):
        runs_api.load_runs([tmp_path])


# ----------------------------------------------------------------------------- grouping


def _run(config: Mapping[str, Any]) -> lc.Run:
    return lc.Run(Path("/x"), config, {})


def test_group_labels_follow_method_and_config_keys():
    kaczmarz = _run({"env": "cartpole", "algo": "npg", "solver": "kaczmarz", "seed": 0, "lr": 0.05, "model": {"hidden": [64, 64]}})
    ppo = _run({"env": "hopper", "algo": "ppo", "solver": None, "seed": 1, "model": {"init": "orthogonal"}})
    assert lc.group_label(kaczmarz.config, ["method"]) == "RAT (ratbench settings)"
    assert lc.group_label(ppo.config, ["method"]) == "PPO"
    assert lc.group_label(kaczmarz.config, ["solver"]) == "kaczmarz"
    assert lc.group_label(ppo.config, ["solver"]) == "null"
    assert lc.group_label(kaczmarz.config, ["env"]) == "cartpole"
    assert lc.group_label(kaczmarz.config, ["method", "lr"]) == "RAT (ratbench settings), lr=0.05"
    assert lc.group_label(kaczmarz.config, ["model.hidden"]) == "model.hidden=[64, 64]"
    assert lc.group_label(ppo.config, ["lr"]) == "lr=n/a"  # key logged by some runs only


def test_parse_group_by_rejects_unknown_keys_listing_valid_ones():
    runs = [_run({"env": "cartpole", "algo": "npg", "solver": "cg", "seed": 0, "model": {"hidden": [8]}})]
    assert lc.parse_group_by("solver, model.hidden", runs) == ["solver", "model.hidden"]
    with pytest.raises(RatbenchError) as info:
        lc.parse_group_by("solvr", runs)
    message = str(info.value)
    assert "unknown group-by key 'solvr'" in message and "did you mean 'solver'" in message
    assert "model.hidden" in message and "method" in message
    with pytest.raises(RatbenchError, match="--group-by is empty"):
        lc.parse_group_by(" , ", runs)


# ----------------------------------------------------------------------------- interpolation


def _seed(x: Sequence[float], y: Sequence[float]) -> lc.SeedCurve:
    return lc.SeedCurve(_run({"env": "e"}), np.asarray(x, float), np.asarray(y, float))


def test_common_grid_spans_only_the_range_every_seed_covers():
    seeds = [_seed([0, 10, 20, 30], [0, 1, 2, 3]), _seed([5, 15, 25], [0, 0, 0])]
    np.testing.assert_array_equal(lc.common_grid(seeds), [5, 10, 15, 20, 25])
    assert lc.common_grid([_seed([0, 1], [0, 0]), _seed([2, 3], [0, 0])]) is None
    dense = [_seed(np.arange(1000.0), np.zeros(1000)), _seed(np.arange(1000.0) + 0.5, np.zeros(1000))]
    grid = lc.common_grid(dense, max_points=50)
    np.testing.assert_allclose(grid, np.linspace(0.5, 999.0, 50))


def test_interpolate_is_linear_between_logged_points():
    seeds = [_seed([0, 10, 20, 30], [0, 1, 2, 3]), _seed([5, 15, 25], [10, 30, 20])]
    values = lc.interpolate(seeds, np.array([5.0, 10.0, 20.0, 25.0]))
    np.testing.assert_allclose(values, [[0.5, 1.0, 2.0, 2.5], [10.0, 20.0, 25.0, 20.0]])


def test_trailing_mean_averages_the_last_window_points():
    np.testing.assert_allclose(lc.trailing_mean(np.array([1.0, 3.0, 5.0, 7.0, 9.0]), 3), [1.0, 2.0, 3.0, 5.0, 7.0])
    np.testing.assert_array_equal(lc.trailing_mean(np.array([4.0, 2.0]), 1), [4.0, 2.0])


# ----------------------------------------------------------------------------- bands


def test_sem_band_is_mean_plus_minus_standard_error():
    values = np.array([[1.0, 0.0], [2.0, 0.0], [6.0, 3.0]])  # (S=3, G=2)
    mean, low, high = lc.mean_and_band(values, "sem")
    # column 0: mean 3, sample std sqrt(((-2)^2 + (-1)^2 + 3^2) / 2) = sqrt(7); column 1: mean 1, std sqrt(3)
    se = np.sqrt([7.0, 3.0]) / np.sqrt(3)
    np.testing.assert_allclose(mean, [3.0, 1.0])
    np.testing.assert_allclose(low, [3.0, 1.0] - se)
    np.testing.assert_allclose(high, [3.0, 1.0] + se)


def test_one_seed_gives_no_band():
    mean, low, high = lc.mean_and_band(np.array([[1.0, 2.0]]), "bootstrap")
    np.testing.assert_array_equal(mean, [1.0, 2.0])
    assert np.isnan(low).all() and np.isnan(high).all()


def test_bootstrap_band_of_identical_seeds_has_zero_width_and_two_seeds_span_min_to_max():
    same = np.tile([[1.0, -2.0, 5.0]], (4, 1))
    mean, low, high = lc.mean_and_band(same)
    np.testing.assert_allclose(low, mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, mean, rtol=0, atol=1e-12)
    # Two seeds a, b: resampled means are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% quantiles sit inside the 25% atoms at a and b.
    mean, low, high = lc.mean_and_band(np.array([[0.0, 10.0], [4.0, 2.0]]))
    np.testing.assert_array_equal(mean, [2.0, 6.0])
    np.testing.assert_array_equal(low, [0.0, 2.0])
    np.testing.assert_array_equal(high, [4.0, 10.0])


def test_bootstrap_band_matches_the_exact_bootstrap_distribution():
    values = np.array([[0.0], [1.0], [5.0], [2.0]])  # S = 4 seeds, one grid point
    exact = np.sort([np.mean(c) for c in itertools.product(values[:, 0], repeat=4)])  # all 4^4 equally likely resamples
    quantile = lambda q: exact[min(max(int(math.floor(q * len(exact))), 0), len(exact) - 1)]  # noqa: E731
    _, low, high = lc.mean_and_band(values)
    # With B = 2,000 resamples the empirical CDF is within eps = 0.045 of the exact one everywhere except
    # with probability 2 exp(-2 B eps^2) < 6e-4 (Dvoretzky-Kiefer-Wolfowitz), so each Monte Carlo quantile
    # lies between the exact quantiles at levels q - eps and q + eps.
    eps = 0.045
    assert BOOTSTRAP_REPS == 2_000
    assert quantile(0.025 - eps) <= low[0] <= quantile(0.025 + eps)
    assert quantile(0.975 - eps) <= high[0] <= quantile(0.975 + eps)
    assert quantile(0.025 + eps) < quantile(0.975 - eps)  # the check is not vacuous: the two intervals are apart


def test_unknown_band_is_rejected():
    with pytest.raises(RatbenchError, match="unknown band 'ci'"):
        lc.mean_and_band(np.zeros((2, 2)), "ci")


# ----------------------------------------------------------------------------- aggregation


def _sweep(tmp_path: Path) -> list[lc.Run]:
    """Two methods x seeds on cartpole, one on hopper; returns are linear in steps with known offsets."""
    for seed, offset in enumerate([-1.0, 1.0, 3.0]):  # mean offset 1, sample std 2
        rows = curve_rows(STEPS, [None] + [s / 1000 + offset for s in STEPS[1:]], eval_return=[None, 10.0 + seed, None, 20.0 + seed])
        write_run(tmp_path, f"kacz{seed}", rows, seed=seed)
    write_run(tmp_path, "cg0", curve_rows(STEPS, [0.0, 1.0, 2.0, 3.0]), solver="cg", seed=0)
    write_run(tmp_path, "cg1", curve_rows(STEPS[:3], [2.0, 3.0, 4.0]), solver="cg", seed=1)  # stopped early
    write_run(tmp_path, "ppo0", curve_rows(STEPS, [5.0, 5.0, 5.0, 5.0]), env="hopper", algo="ppo", solver=None)
    return runs_api.load_runs([tmp_path])[0]


def _find(curves, env, metric, x_axis, group) -> lc.Curve:
    (curve,) = [c for c in curves if (c.env, c.metric, c.x_axis, c.group) == (env, metric, x_axis, group)]
    return curve


def test_aggregate_means_seeds_on_the_common_range_with_empty_cells_dropped(tmp_path):
    runs = _sweep(tmp_path)
    curves, notes = lc.aggregate(runs, ["return_mean", "eval_return"], ["env_steps", "wall_time"], ["method"], band="sem")
    kacz = _find(curves, "CartPole-v1", "return_mean", "env_steps", "RAT (ratbench settings)")
    assert kacz.n_seeds == 3
    np.testing.assert_array_equal(kacz.x, [2000, 3000, 4000])  # first row's return_mean is empty in every seed
    np.testing.assert_allclose(kacz.mean, [3.0, 4.0, 5.0])
    np.testing.assert_allclose(kacz.high - kacz.mean, 2.0 / np.sqrt(3))
    np.testing.assert_allclose(kacz.mean - kacz.low, 2.0 / np.sqrt(3))
    on_time = _find(curves, "CartPole-v1", "return_mean", "wall_time", "RAT (ratbench settings)")
    np.testing.assert_allclose(on_time.x, [2.0, 3.0, 4.0])
    np.testing.assert_allclose(on_time.mean, kacz.mean)

    evals = _find(curves, "CartPole-v1", "eval_return", "env_steps", "RAT (ratbench settings)")
    np.testing.assert_array_equal(evals.x, [2000, 4000])
    np.testing.assert_allclose(evals.mean, [11.0, 21.0])

    cg = _find(curves, "CartPole-v1", "return_mean", "env_steps", "NPG-CG")
    np.testing.assert_array_equal(cg.x, [1000, 2000, 3000])  # cut where the shorter seed stops
    np.testing.assert_allclose(cg.mean, [1.0, 2.0, 3.0])
    assert notes == [f"NPG-CG on CartPole-v1: curves stop at env_steps = 3k, where its shortest seed ({tmp_path / 'cg1'}) ends; the longest reaches 4k"]

    ppo = _find(curves, "Hopper-v5", "return_mean", "env_steps", "PPO")
    assert ppo.n_seeds == 1 and np.isnan(ppo.low).all()
    assert not [c for c in curves if c.group in ("NPG-CG", "PPO") and c.metric == "eval_return"]  # never evaluated


def test_aggregate_groups_by_any_key_and_smooths_each_seed(tmp_path):
    runs = _sweep(tmp_path)
    curves, notes = lc.aggregate(runs, ["return_mean"], ["env_steps"], ["algo"], smooth=2)
    assert notes[0] == "npg on CartPole-v1 averages runs whose configs differ in solver; to split them use --group-by algo,solver"
    assert sorted((c.env, c.group, c.n_seeds) for c in curves) == [("CartPole-v1", "npg", 5), ("Hopper-v5", "ppo", 1)]
    npg = _find(curves, "CartPole-v1", "return_mean", "env_steps", "npg")
    # smoothed seeds at 2000 / 3000: kaczmarz s: (2+o), (2.5+o); cg0: 0.5, 1.5; cg1: 2.5, 3.5. Range ends at cg1's 3000.
    np.testing.assert_array_equal(npg.x, [2000, 3000])
    np.testing.assert_allclose(npg.mean, [(3 * 2.0 + 3.0 + 0.5 + 2.5) / 5, (3 * 2.5 + 3.0 + 1.5 + 3.5) / 5])


def test_mixed_config_note_ignores_per_run_keys_and_names_the_others(tmp_path):
    rows = curve_rows(STEPS, [1, 2, 3, 4])
    write_run(tmp_path, "a", rows, seed=0, steps=4000, device="cpu", npg={"lr": 0.05, "rat_variant": "corrected"})
    write_run(tmp_path, "b", rows, seed=1, steps=8000, device="cuda", npg={"lr": 0.05, "rat_variant": "original"})
    runs = runs_api.load_runs([tmp_path])[0]
    assert lc.mixed_config_note("cartpole", "RAT", runs, ["method"]) == (
        "RAT on cartpole averages runs whose configs differ in npg.rat_variant; "
        "to split them use --group-by method,npg.rat_variant"
    )
    assert lc.mixed_config_note("cartpole", "x", runs, ["method", "npg.rat_variant"]) is None
    assert lc.mixed_config_note("cartpole", "x", runs[:1], ["method"]) is None


def test_a_key_an_older_run_predates_counts_as_its_default(tmp_path):
    """A run written before eval.max_episode_steps existed and one resumed after, with the default: one method;
    a run written before eval.every_steps evaluated on no marks, and says so beside one that did."""
    rows = curve_rows(STEPS, [1, 2, 3, 4])
    write_run(tmp_path, "old", rows, seed=0, eval={"every": 10, "episodes": 10})
    write_run(tmp_path, "new", rows, seed=1, eval={"every": 10, "episodes": 10, "max_episode_steps": 27000})
    runs = runs_api.load_runs([tmp_path])[0]
    assert lc.mixed_config_note("cartpole", "RAT", runs, ["method"]) is None
    write_run(tmp_path, "cut", rows, seed=2, eval={"every": 10, "episodes": 10, "max_episode_steps": 500})
    runs = runs_api.load_runs([tmp_path])[0]
    assert "eval.max_episode_steps" in lc.mixed_config_note("cartpole", "RAT", runs, ["method"])
    (tmp_path / "cut").rename(tmp_path.parent / "cut-aside")
    write_run(tmp_path, "marks", rows, seed=3, eval={"every": 10, "every_steps": 50000, "episodes": 10,
                                                      "max_episode_steps": 27000})
    runs = runs_api.load_runs([tmp_path])[0]
    assert "eval.every_steps" in lc.mixed_config_note("cartpole", "RAT", runs, ["method"])


def test_aggregate_rejects_a_run_whose_x_axis_goes_backwards(tmp_path):
    """env_steps going backwards is refused when the run is loaded (load_progress); another x axis here."""
    write_run(tmp_path, "r", curve_rows([1000, 2000, 3000], [1, 2, 3]))
    runs = runs_api.load_runs([tmp_path])[0]
    runs[0].columns["wall_time"][:] = [3.0, 1.0, 2.0]
    with pytest.raises(RatbenchError, match="wall_time decreases"):
        lc.aggregate(runs, ["return_mean"], ["wall_time"])


def test_default_metrics_add_eval_return_only_when_logged(tmp_path):
    runs = _sweep(tmp_path)
    assert lc.default_metrics(runs) == ["return_mean", "eval_return"]
    assert lc.default_metrics([r for r in runs if r.config["solver"] == "cg"]) == ["return_mean"]


def test_check_metrics_lists_valid_columns_and_rejects_empty_ones(tmp_path):
    runs = _sweep(tmp_path)
    lc.check_metrics(runs, ["return_mean", "eval_return", "episodes"])
    with pytest.raises(RatbenchError) as info:
        lc.check_metrics(runs, ["return"])
    message = str(info.value)
    assert "unknown metric 'return'" in message and "return_mean" in message and "solver_residual" in message
    assert "env_steps" not in message.split("valid metrics:")[1]
    with pytest.raises(RatbenchError, match="metric 'kl' is empty in every run"):
        lc.check_metrics(runs, ["kl"])


# ----------------------------------------------------------------------------- outputs


def test_outputs_hold_the_aggregates(tmp_path):
    runs = _sweep(tmp_path)
    curves, _ = lc.aggregate(runs, ["return_mean"], ["env_steps", "wall_time"], ["method"], band="sem")
    finals = lc.final_rows(curves)
    assert [(r["env"], r["group"], r["seeds"], r["env_steps"]) for r in finals] == [
        ("CartPole-v1", "NPG-CG", 2, 3000.0), ("CartPole-v1", "RAT (ratbench settings)", 3, 4000.0), ("Hopper-v5", "PPO", 1, 4000.0)
    ]
    assert finals[1]["mean"] == pytest.approx(5.0) and finals[1]["ci_high"] == pytest.approx(5.0 + 2 / np.sqrt(3))

    rows = lc.curve_rows(curves)
    assert len(rows) == sum(len(c.x) for c in curves)
    assert rows[0].keys() == {"env", "metric", "x_axis", "group", "seeds", "x", "mean", "band_low", "band_high"}
    assert [r["band_low"] for r in rows if r["group"] == "PPO"] == [""] * 8

    png = lc.draw_png(curves, "sem", 1, dpi=60)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    page = lc.render_html(png, curves, "sem", 1, ["method"])
    assert '<table id="final-values">' in page and "RAT" in page and "mean ± SE" in page
    assert "<script" not in page and "http" not in page  # self-contained: nothing loaded from the network
