"""Grouping runs into methods: identity by config, one run per seed, unfinished runs set apart."""

import os
import time

import pytest

from ratbench.errors import RatbenchError
from ratbench.reporting.methods import group_by_method, method_label
from ratbench.reporting.runs import load_runs
from tests.ratbench.reporting.helpers import write_run

STEPS = [1000, 2000, 3000]


@pytest.mark.parametrize("config,label", [
    ({"algo": "npg", "solver": "kaczmarz"}, "RAT (ratbench settings)"),
    ({"algo": "npg", "solver": "kaczmarz", "preset": "reference", "npg": {"rat_variant": "original"}}, "RAT"),
    ({"algo": "npg", "solver": "kaczmarz", "preset": "reference", "npg": {"rat_variant": "corrected"}},
     "RAT (corrected rule)"),
    ({"algo": "npg", "solver": "kaczmarz", "npg": {"rat_variant": "original"}}, "RAT (ratbench settings, original rule)"),
    ({"algo": "npg", "solver": "cg", "preset": "reference"}, "NPG-CG (reference preset)"),
    ({"algo": "npg", "solver": "cg", "arch": "shared"}, "NPG-CG (shared)"),
    ({"algo": "ppo", "solver": None, "model": {"init": "orthogonal"}}, "PPO"),
    ({"algo": "ppo", "solver": None}, "PPO (torch init)"),  # a run from before model.init: PyTorch's init, not CleanRL's
    ({"algo": "trpo", "solver": None, "model": {"init": "torch"}}, "TRPO (torch init)"),
    ({"algo": "npg", "solver": "kaczmarz", "model": {"init": "orthogonal"}}, "RAT (ratbench settings, orthogonal init)"),
    ({"algo": "npg", "solver": "kaczmarz", "preset": "reference", "action_squash": "tanh_clip",
      "npg": {"rat_variant": "original"}}, "RAT (tanh_clip actions)"),
    ({"algo": "npg", "solver": "kaczmarz", "preset": "reference", "action_squash": "tanh",
      "npg": {"rat_variant": "original"}}, "RAT"),
    ({"algo": "npg", "solver": "kfac", "model": {"activation": "relu"}}, "K-FAC (relu)"),
    ({"algo": "npg", "solver": "kaczmarz", "npg": {"ent_coef": 0.03}}, "RAT (ratbench settings, entropy 0.03)"),
    ({"algo": "npg", "solver": "kaczmarz", "npg": {"ent_coef": 0.0}}, "RAT (ratbench settings)"),
])
def test_labels(config, label):
    assert method_label(config) == label


def test_arch_and_preset_split_methods_and_seeds_line_up(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, f"sep{seed}", STEPS, [1, 2, 3], seed=seed, preset=None)
        write_run(tmp_path, f"shared{seed}", STEPS, [1, 2, 3], seed=seed, preset=None, arch="shared")
        write_run(tmp_path, f"ref{seed}", STEPS, [1, 2, 3], seed=seed, preset="reference")
    groups = group_by_method(load_runs([tmp_path])[0])
    assert [(g.method, g.seeds) for g in groups] == [
        ("RAT", [0, 1]), ("RAT (ratbench settings)", [0, 1]), ("RAT (ratbench settings, shared)", [0, 1])]


def test_an_entropy_bonus_splits_methods(tmp_path):
    """A suite run that differs only in npg.ent_coef (its name goes into the directory, not the config) is its
    own method, not a second seed 0 of RAT's."""
    write_run(tmp_path, "plain", STEPS, [1, 2, 3], seed=0)
    write_run(tmp_path, "bonus", STEPS, [1, 2, 3], seed=0, npg={"rat_variant": "original", "ent_coef": 0.03})
    groups = group_by_method(load_runs([tmp_path])[0])
    assert [(g.method, g.seeds) for g in groups] == [("RAT", [0]), ("RAT (entropy 0.03)", [0])]


def test_same_seed_twice_is_an_error_unless_keep_latest(tmp_path):
    write_run(tmp_path, "a", STEPS, [1, 2, 3], seed=3)
    later = write_run(tmp_path, "b", STEPS, [4, 5, 6], seed=3)
    past = time.time() - 100
    os.utime(tmp_path / "a" / "progress.csv", (past, past))
    runs = load_runs([tmp_path])[0]
    with pytest.raises(RatbenchError, match="2 runs with seed 3.*--keep-latest"):
        group_by_method(runs)
    (group,) = group_by_method(runs, keep_latest=True)
    assert [r.path for r in group.runs] == [later]


def test_unfinished_runs_are_listed_apart(tmp_path):
    write_run(tmp_path, "done", STEPS, [1, 2, 3], seed=0)
    write_run(tmp_path, "half", STEPS, [1, 2, 3], seed=1, budget=6000)
    (group,) = group_by_method(load_runs([tmp_path])[0])
    assert group.seeds == [0] and [int(r.config["seed"]) for r in group.unfinished] == [1]
    (group,) = group_by_method(load_runs([tmp_path])[0], include_unfinished=True)
    assert group.seeds == [0, 1]


def test_a_label_keeps_an_ablation_its_own_method(tmp_path):
    write_run(tmp_path, "plain", STEPS, [1, 2, 3], seed=0)
    write_run(tmp_path, "l2", STEPS, [1, 2, 3], seed=0, label="l2-clip")
    groups = group_by_method(load_runs([tmp_path])[0])
    assert [g.method for g in groups] == ["RAT", "RAT (l2-clip)"]


@pytest.mark.parametrize("setting", [{"npg": {"step_norm": "l2"}}, {"npg": {"kl_rule": "last_minibatch"}},
                                     {"obs_norm_update": "iteration"}, {"critic": {"max_grad_norm": 5.0}}])
def test_a_preset_setting_splits_methods_even_without_a_label(tmp_path, setting):
    """The defaults ablation's switches are method keys: a run that switches one on is never a second seed of the
    defaults' RAT, and the page names where the two differ."""
    write_run(tmp_path, "plain", STEPS, [1, 2, 3], seed=0, preset=None)
    write_run(tmp_path, "switched", STEPS, [1, 2, 3], seed=0, preset=None, **setting)
    plain, switched = group_by_method(load_runs([tmp_path])[0])
    (key, value), = ((k, v) for k, v in setting.items())
    dotted = key if not isinstance(value, dict) else f"{key}.{next(iter(value))}"
    assert plain.seeds == switched.seeds == [0] and dotted in plain.method + switched.method


def test_labels_name_what_departs_from_todays_defaults(monkeypatch):
    """When a default changes, the run on the new default names no setting (``RAT (ratbench settings)`` without a
    preset) and the old default's run names its setting: labels follow the schema, not hard-coded values."""
    from ratbench.reporting import methods
    from ratbench.training.config import schema

    base = schema()
    changed = {**base, "npg": {**base["npg"], "rat_variant": "original"}, "model": {**base["model"], "activation": "relu"},
               "action_squash": "tanh"}
    monkeypatch.setattr(methods, "_defaults", lambda: changed)
    corrected = {"algo": "npg", "solver": "kaczmarz", "action_squash": "clip",
                 "npg": {"rat_variant": "corrected"}, "model": {"activation": "tanh"}}
    assert method_label(corrected) == "RAT (ratbench settings, corrected rule, tanh, clip actions)"
    assert method_label({"algo": "npg", "solver": "kaczmarz"}) == "RAT (ratbench settings)"
    assert method_label({"algo": "ppo", "solver": None, "model": {"activation": "relu", "init": "orthogonal"}}) == "PPO"
    # the residual rule is Kaczmarz's: the other solvers never name it
    assert method_label({"algo": "npg", "solver": "cg", "npg": {"rat_variant": "corrected"}}) == "NPG-CG"
