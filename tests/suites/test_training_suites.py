"""Every shipped training suite (suites/training/*.yaml) expands and every run's config validates."""

import importlib.util
from pathlib import Path

import gymnasium as gym
import pytest

from ratbench.training.suite import load_suite

SUITES = sorted((Path(__file__).resolve().parents[2] / "suites" / "training").glob("*.yaml"))
NEEDS = {"minatar": "minatar", "atari": "envpool", "envpool": "envpool"}


@pytest.fixture
def dmc_ids_without_a_renderer(monkeypatch):
    """DMC's gymnasium ids registered as if a GL backend worked (validating a suite renders nothing, and
    needs neither dm-control nor GL), and removed afterwards so that later tests see this machine as it is."""
    monkeypatch.setattr("envs.dmc.gl_backend", lambda: "egl")
    before = set(gym.registry)
    yield
    for env_id in set(gym.registry) - before:
        del gym.registry[env_id]


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_suite_expands_into_valid_runs(path, dmc_ids_without_a_renderer):
    text = path.read_text()
    for word, package in NEEDS.items():
        if word in text and importlib.util.find_spec(package) is None:  # found, not imported (envpool after EGL)
            pytest.skip(f"{path.name} uses {package}, which is not installed")
    runs = load_suite(path)
    assert runs and len({run.logdir for run in runs}) == len(runs)  # no two runs share a directory


def test_the_benchmark_suite_is_the_issues_grid():
    """Issue 10: five methods on four -v5 tasks, five seeds, 1M steps each."""
    runs = load_suite(Path(__file__).resolve().parents[2] / "suites" / "training" / "benchmark-mujoco.yaml")
    assert {r.env for r in runs} == {"hopper", "walker2d", "halfcheetah", "ant"}
    assert len(runs) == 4 * 5 * 5 and {r.seed for r in runs} == set(range(5)) and {r.steps for r in runs} == {1_000_000}


def test_the_visual_dmc_suites_run_the_planet_benchmark_at_500k_environment_steps(dmc_ids_without_a_renderer):
    """Issue 25: six tasks x 5 seeds on a GPU; the two tasks x 3 seeds that fit the CPU; RAT, the preset, PPO."""
    from ratbench.training.config import resolve_config

    root = Path(__file__).resolve().parents[2] / "suites" / "training"
    gpu, cpu = load_suite(root / "visual-dmc.yaml"), load_suite(root / "visual-dmc-cpu.yaml")
    assert len({r.env for r in gpu}) == 6 and {r.seed for r in gpu} == set(range(5)) and len(gpu) == 6 * 5 * 3
    assert {r.env for r in cpu} == {"dmc-cartpole-swingup", "dmc-cheetah-run"} and len(cpu) == 2 * 3 * 3
    for run in gpu + cpu:
        config = resolve_config({"env": run.env, "algo": run.algo, "solver": run.solver})
        assert (config["steps"], config["steps_unit"]) == (500_000, "environment") and run.steps is None
