"""Config layering, --set parsing and clear errors for bad keys, values and names."""

import pytest
import yaml

from ratbench.errors import RatbenchError
from ratbench.training.config import load_run_config, parse_set, resolve_config


def test_reference_defaults_for_rat_on_mujoco():
    config = resolve_config({"env": "Humanoid-v5"})
    assert (config["env"], config["algo"], config["solver"], config["arch"]) == ("humanoid", "npg", "kaczmarz", "separate")
    assert (config["num_envs"], config["num_steps"], config["gamma"], config["gae_lambda"]) == (32, 256, 0.999, 0.95)
    npg = config["npg"]
    assert (npg["epochs"], npg["minibatches"], npg["damping"], npg["lr"], npg["target_kl"]) == (4, 8, 0.1, 0.05, 0.008)
    assert (npg["lr_min"], npg["lr_max"], npg["max_step_norm"], npg["ratio_clip"]) == (1e-4, 0.05, 0.5, [0.1, 10.0])
    assert config["model"]["hidden"] == [256, 256] and config["value_norm"] == "popart" and config["obs_norm"]
    assert (config["critic"]["lr"], config["critic"]["epochs"], config["critic"]["minibatches"]) == (1e-3, 4, 8)
    assert config["steps"] == 10_000_000  # task-humanoid.yaml
    assert "ppo" not in config and "pg" not in config  # inactive sections are pruned


def test_ppo_defaults_and_layer_order(tmp_path):
    config = resolve_config({"env": "hopper", "algo": "ppo"})
    assert config["solver"] is None and (config["num_envs"], config["num_steps"]) == (1, 2048)
    ppo = config["ppo"]
    assert (ppo["epochs"], ppo["minibatches"], ppo["lr"], ppo["clip"]) == (10, 32, 3e-4, 0.2)
    assert (config["gamma"], config["gae_lambda"]) == (0.99, 0.95)
    user = tmp_path / "mine.yaml"
    user.write_text("ppo:\n  lr: 0.01\nseed: 4\n")
    config = resolve_config({"env": "hopper", "algo": "ppo", "seed": 9}, config_file=user, sets=["ppo.lr=2e-3"])
    assert config["ppo"]["lr"] == 0.002 and config["seed"] == 9  # --set beats the file, the command line beats both


def test_pixel_families_carry_their_own_ppo_layer():
    minatar = resolve_config({"env": "minatar-breakout", "algo": "ppo"})["ppo"]  # gymnax-blines' MinAtar PPO
    assert (minatar["epochs"], minatar["minibatches"], minatar["lr"], minatar["anneal_lr"]) == (4, 8, 5e-4, False)
    assert (minatar["clip"], minatar["ent_coef"]) == (0.2, 0.01)
    atari = resolve_config({"env": "atari-pong", "algo": "ppo"})  # CleanRL's ppo_atari.py
    assert (atari["num_envs"], atari["num_steps"]) == (8, 128)
    assert (atari["ppo"]["epochs"], atari["ppo"]["minibatches"], atari["ppo"]["lr"], atari["ppo"]["clip"]) == (4, 4, 2.5e-4, 0.1)
    assert resolve_config({"env": "minatar-breakout", "algo": "ppo"}, sets=["ppo.epochs=10"])["ppo"]["epochs"] == 10
    assert "ppo" not in resolve_config({"env": "minatar-breakout", "algo": "npg"})


def test_set_parses_yaml_scalars_and_nested_keys():
    assert parse_set(["a.b=3", "c=[64, 64]", "d=true", "e=null", "f=hello"]) == {
        "a": {"b": 3}, "c": [64, 64], "d": True, "e": None, "f": "hello"}
    config = resolve_config({"env": "cartpole"}, sets=["steps=1e5", "model.hidden=[16]", "npg.solver_options={sweeps: 2}"])
    assert config["steps"] == 100000 and config["model"]["hidden"] == [16]
    assert config["npg"]["solver_options"] == {"sweeps": 2}


@pytest.mark.parametrize(
    "sets,message",
    [
        (["npg.dampin=0.2"], "unknown config key 'npg.dampin'.*did you mean npg.damping"),
        (["gama=0.9"], "unknown config key 'gama'.*did you mean gamma"),
        (["npg.lr=fast"], "npg.lr expects a number"),
        (["obs_norm=3"], "obs_norm expects true or false"),
        (["num_envs=2.5"], "num_envs expects an integer"),
        (["num_envs=0"], "num_envs must be a positive integer"),
        (["vector=threads"], "unknown vector value 'threads'"),
        (["npg"], "--set expects key=value"),
        (["npg=3"], "npg is a section"),
        (["npg.solver_options={blok_size: 3}"], "has no option 'blok_size'"),
        (["npg.ratio_clip=[2, 10]"], "ratio_clip"),
        (["npg.ratio_clip=[1]"], r"npg.ratio_clip must be two numbers \[low, high\]"),
        (["npg.ratio_clip=[0.1, 1, 10]"], r"npg.ratio_clip must be two numbers \[low, high\]"),
        (["npg.ratio_clip=[a, b]"], r"npg.ratio_clip must be two numbers \[low, high\]"),
        (["npg.ratio_clip=[true, 2]"], r"npg.ratio_clip must be two numbers \[low, high\]"),
        (["npg.solver_options={1: 2}"], "npg.solver_options names must be strings"),
        (["model.hidden=[true]"], "model.hidden must be a non-empty list of positive layer widths"),
        (["seed=99999999999999999999"], r"seed must be in \[0, 4294967295\]"),
        (["steps=99999999999999999"], r"steps must be in \[1, 1000000000000\]"),
        (["solver=cg", "npg.rat_variant=original"], "use it with --solver kaczmarz"),
    ],
)
def test_bad_overrides_are_clear_errors(sets, message):
    with pytest.raises(RatbenchError, match=message):
        resolve_config({"env": "cartpole"}, sets=sets)


def test_trpo_takes_the_zoo_mujoco_settings():
    """rl-baselines3-zoo hyperparams/trpo.yml (MuJoCo defaults; HalfCheetah's target_kl 0.04)."""
    config = resolve_config({"env": "hopper", "algo": "trpo"})
    assert (config["num_envs"], config["num_steps"], config["gamma"], config["solver"]) == (2, 1024, 0.99, None)
    assert config["trpo"]["cg_steps"] == 25 and config["trpo"]["target_kl"] == 0.01 and config["reward_norm"]
    assert (config["critic"]["epochs"], config["critic"]["minibatches"], config["critic"]["lr"]) == (20, 16, 1e-3)
    assert resolve_config({"env": "halfcheetah", "algo": "trpo"})["trpo"]["target_kl"] == 0.04
    assert "npg" not in config and "ppo" not in config


def test_bad_names_are_clear_errors(tmp_path):
    with pytest.raises(RatbenchError, match="did you mean 'hopper'"):
        resolve_config({"env": "hoper"})
    with pytest.raises(RatbenchError, match="did you mean 'kaczmarz'"):
        resolve_config({"env": "hopper", "solver": "kaczmar"})
    with pytest.raises(RatbenchError, match="unknown algorithm 'trpp'.*did you mean 'trpo'"):
        resolve_config({"env": "hopper", "algo": "trpp"})
    with pytest.raises(RatbenchError, match="trpo uses no natural-gradient solver"):
        resolve_config({"env": "hopper", "algo": "trpo", "solver": "cg"})
    with pytest.raises(RatbenchError, match="ppo uses no natural-gradient solver"):
        resolve_config({"env": "hopper", "algo": "ppo", "solver": "cg"})
    with pytest.raises(RatbenchError, match="does not exist"):
        resolve_config({"env": "hopper"}, config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("npg: [1, 2\n")
    with pytest.raises(RatbenchError, match="not valid YAML"):
        resolve_config({"env": "hopper"}, config_file=bad)


def test_every_registered_solver_is_accepted():
    from solvers import solver_names

    for name in solver_names():
        assert resolve_config({"env": "hopper", "solver": name})["solver"] == name


def test_resolved_config_round_trips_through_yaml():
    config = resolve_config({"env": "cartpole", "algo": "pg"})
    assert yaml.safe_load(yaml.safe_dump(config)) == config


def test_preset_applies_after_the_task_layers_and_before_user_overrides():
    config = resolve_config({"env": "invertedpendulum", "preset": "reference"}, sets=["npg.lr=0.01"])
    assert (config["num_envs"], config["num_steps"], config["gamma"]) == (32, 256, 0.999)  # over task-invertedpendulum
    assert config["npg"]["max_step_norm"] == 0.5 and config["npg"]["lr"] == 0.01
    assert resolve_config({"env": "hopper"}, sets=["preset=reference"])["npg"]["rat_variant"] == "original"


def test_the_preset_on_dmc_keeps_the_familys_batch_and_the_rest_of_its_own():
    """32 x 256 agent steps is 32,768+ environment steps an iteration at DMC's repeats: the 500k budget would hold
    8-16 updates. MinAtar keeps the preset's shape (its committed preset runs have it)."""
    for solver in ("kaczmarz", "cg"):
        config = resolve_config({"env": "dmc-cheetah-run", "preset": "reference", "solver": solver})
        assert (config["num_envs"], config["num_steps"]) == (8, 128) and config["steps_unit"] == "environment"
        assert (config["gamma"], config["obs_norm"], config["model"]["activation"]) == (0.999, True, "relu")
    config = resolve_config({"env": "minatar-breakout", "preset": "reference"})
    assert (config["num_envs"], config["num_steps"]) == (32, 256)


@pytest.mark.parametrize("env", ["hopper", "Walker2d-v5", "halfcheetah", "Ant-v4", "ant"])
def test_rats_default_is_the_preset_on_the_tasks_that_chose_it(env):
    """docs/defaults.md: the ablation on Hopper, Walker2d, HalfCheetah and Ant chose the reference preset as RAT's
    default there: ``preset: auto`` resolves to exactly the config that --preset reference gives."""
    default = resolve_config({"env": env})
    assert default["preset"] == "reference"
    assert default == resolve_config({"env": env, "preset": "reference"})
    assert (default["npg"]["rat_variant"], default["npg"]["step_norm"], default["model"]["activation"],
            default["action_squash"], default["obs_norm_update"], default["npg"]["kl_rule"],
            default["critic"]["max_grad_norm"]) == ("original", "l2", "relu", "tanh", "iteration", "last_minibatch", 5.0)


@pytest.mark.parametrize("explicit", [
    {"env": "humanoid"}, {"env": "invertedpendulum"}, {"env": "cartpole"}, {"env": "minatar-breakout"},
    {"env": "hopper", "solver": "cg"}, {"env": "hopper", "algo": "ppo"}, {"env": "hopper", "arch": "shared"},
    {"env": "hopper", "preset": "none"},
])
def test_elsewhere_rats_default_stays_ratbenchs_own_settings(explicit):
    """No run compared the preset with ratbench's settings off those four tasks, nor for the other solvers, the
    other algorithms or shared networks: there ``auto`` is no preset, and ``none`` asks for that anywhere."""
    config = resolve_config(explicit)
    assert config["preset"] is None
    if config["algo"] == "npg":
        assert (config["npg"]["rat_variant"], config["model"]["activation"]) == ("corrected", "tanh")


def test_no_preset_reads_alike_as_none_null_or_a_saved_config_that_predates_the_key(tmp_path):
    none = resolve_config({"env": "hopper", "preset": "none"})
    assert resolve_config({"env": "hopper"}, sets=["preset=null"]) == none
    saved = {k: v for k, v in none.items() if k != "preset"}  # a run written before `preset` existed
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_run_config(tmp_path / "config.yaml") == none


@pytest.mark.parametrize("explicit,message", [
    ({"preset": "paper"}, "unknown preset 'paper'; valid presets: auto, none, reference"),
    ({"preset": "reference", "algo": "ppo"}, "reference's code: use it with --algo npg"),
    ({"preset": "reference", "solver": "woodbury"}, "--solver kaczmarz \\(RAT\\), cg, diagonal or kfac"),
])
def test_bad_presets_are_one_line_errors(explicit, message):
    with pytest.raises(RatbenchError, match=message):
        resolve_config({"env": "hopper", **explicit})


def test_retired_warm_start_key_says_why():
    with pytest.raises(RatbenchError, match="npg.warm_start.*never carries a direction across minibatches"):
        resolve_config({"env": "hopper"}, sets=["npg.warm_start=true"])


@pytest.mark.parametrize("item,message", [
    ("npg.lr=nan", "npg.lr must be a finite number"),
    ("npg.damping=.inf", "npg.damping must be a finite number"),
    ("npg.max_step_norm=nan", "npg.max_step_norm must be a finite number"),
    ("npg.ratio_clip=[0.1, .nan]", "npg.ratio_clip must be a finite number"),
    ("npg.lr=0", "npg.lr must be positive"),
    ("critic.max_grad_norm=-1", "critic.max_grad_norm must be positive"),
    ("ppo.ent_coef=-0.1", "ppo.ent_coef must be non-negative"),
    ("gamma=1.5", r"gamma must be in \(0, 1\]"),
    ("popart_beta=1", r"popart_beta must be in \(0, 1\)"),
    ("npg.momentum=1", r"npg.momentum must be in \[0, 1\)"),
    ("num_envs=100000", r"num_envs must be in \[1, 4096\]"),
    ("num_steps=400000", "exceeds 10,000,000"),
    ("npg.lr_min=0.5", "npg.lr_min .* exceeds npg.lr_max"),
])
def test_numbers_are_checked_before_anything_runs(item, message):
    algo = "ppo" if item.startswith("ppo.") else "npg"
    with pytest.raises(RatbenchError, match=message):
        resolve_config({"env": "hopper", "algo": algo}, sets=[item])


def test_binary_config_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(RatbenchError, match="not UTF-8 text"):
        resolve_config({"env": "hopper"}, config_file=path)
