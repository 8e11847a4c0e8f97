"""Training configs: shipped YAML layers, user files, ``--set`` overrides, validation.

A config is a nested dict whose keys and default values are those of
``configs/base.yaml`` (the schema). :func:`resolve_config` layers, in order:
base.yaml, algo-<algo>.yaml, arch-<arch>.yaml, for pixel families
task-<family>.yaml and task-<family>-<algo>.yaml (minatar, atari, dmc),
task-<env>.yaml, task-<env>-<algo>.yaml (the task layers when shipped), preset-<preset>.yaml and its
solver, arch and pixel-family layers (when ``preset`` is set: a preset overrides the task layers), the user's ``--config``
file, ``--set key=value`` overrides (dotted keys, values parsed as YAML
scalars), and finally the explicit command-line options. Unknown keys and
values of the wrong type raise :class:`~ratbench.errors.RatbenchError`
naming close valid keys.
"""

from __future__ import annotations

import copy
import difflib
import math
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml
from gymnasium.envs.registration import parse_env_id

from envs.names import DMC_PREFIX
from envs.registry import ENV_IDS, resolve_env_id
from ratbench.errors import RatbenchError, unknown_name
from ratbench.io import read_yaml
from ratbench.values import SEED_MAX, is_int
from ratbench.trunks import TRUNKS

ALGOS = ("npg", "ppo", "pg", "trpo")
ARCHS = ("separate", "shared")
DEVICES = ("cpu", "cuda")
PRESETS = ("reference",)
PRESET_CHOICES = ("auto", "none") + PRESETS
"""What ``preset`` takes: auto (:func:`default_preset`), none (ratbench's own settings) or a preset; a resolved config
holds the preset in effect, or null."""
DEFAULT_PRESET_TASKS = ("Hopper", "Walker2d", "HalfCheetah", "Ant")
"""The tasks where ``preset: auto`` gives RAT the reference preset: the four MuJoCo tasks of the defaults ablation
that chose it (docs/defaults.md), any version."""
PRESET_SOLVERS = ("kaczmarz", "cg", "diagonal", "kfac")
"""Solvers the reference preset reproduces: RAT (kaczmarz) and the reference's fvp (cg), diag and K-FAC baselines."""
JOINT_SOLVERS = ("kaczmarz", "woodbury", "diagonal")
"""Solvers of the joint update: the sample-space ones (transformed advantages) and train_shared.py's diagonal twin
(its K-FAC twin is the reference's optimiser, `npg.kfac_variant: reference`)."""
CHOICES = {
    "steps_unit": ("agent", "environment"),
    "vector": ("auto", "sync", "async"),
    "obs_norm_update": ("step", "iteration"),
    "envs.backend": ("gymnasium", "envpool"),
    "envs.dmc_renderer": ("standard", "fast"),
    "action_squash": ("clip", "tanh", "tanh_clip"),
    "npg.kl_rule": ("batch", "last_minibatch", "last_minibatch_after_step"),
    "npg.value_update": ("critic", "joint"),
    "npg.kfac_variant": ("exact", "reference"),
    "value_norm": ("popart", "none"),
    "model.activation": ("tanh", "relu"),
    "model.init": ("torch", "orthogonal"),
    "model.trunk": TRUNKS,
    "npg.step_norm": ("fisher", "l2", "kl_quadratic"),
    "npg.rat_variant": ("corrected", "original"),
    "npg.clipped_ratio": ("weight", "drop"),
}
FREE_FORM = {"npg.solver_options"}  # dicts whose keys the schema does not fix
NULLABLE = {"solver", "preset"}  # keys with a non-null default that may still be set to null
STRING_OR_NULL = {"label"}  # null defaults that only take strings
NULL_DEFAULT_NUMBERS = {"threads": 1, "critic.max_grad_norm": 1.0, "ppo.target_kl": 1.0}  # null defaults that take numbers (type shown by the value)
RETIRED = {
    "npg.warm_start": "it was removed: the corrected variant never carries a direction across minibatches "
                      "(a carried direction survives in the minibatch Fisher's null space); drop the key",
}
# Keys added with a default that changes behaviour: the value a run written before the key existed had (a
# resumed run keeps it; reports read it for such runs). Every other key was added with a default that keeps
# the old behaviour.
PREDATED_VALUES = {"eval.every_steps": 0, "preset": None}
# Numeric keys and the ranges they must lie in: (low, high, low inclusive, high inclusive); None: unbounded.
# Every float anywhere in a config must also be finite (NaN and inf are refused before anything runs).
RANGES = {
    "npg.damping": (0, None, False, False), "npg.lr": (0, None, False, False), "npg.target_kl": (0, None, False, False),
    "npg.lr_min": (0, None, False, False), "npg.lr_max": (0, None, False, False),
    "npg.max_step_norm": (0, None, False, False), "npg.momentum": (0, 1, True, False), "npg.vf_coef": (0, None, True, False),
    "ppo.lr": (0, None, False, False), "ppo.clip": (0, None, False, False), "ppo.vf_coef": (0, None, True, False),
    "ppo.ent_coef": (0, None, True, False), "ppo.max_grad_norm": (0, None, False, False), "ppo.target_kl": (0, None, False, False),
    "pg.lr": (0, None, False, False), "pg.max_grad_norm": (0, None, False, False),
    "trpo.cg_damping": (0, None, True, False), "trpo.target_kl": (0, None, False, False),
    "trpo.line_search_shrink": (0, 1, False, False),
    "critic.lr": (0, None, False, False), "critic.adam_eps": (0, None, False, False), "critic.max_grad_norm": (0, None, False, False),
    "gamma": (0, 1, False, True), "gae_lambda": (0, 1, True, True), "popart_beta": (0, 1, False, False),
    "obs_clip": (0, None, False, False), "obs_eps": (0, None, False, False), "reward_clip": (0, None, False, False),
    "seed": (0, SEED_MAX, True, True), "eval.every": (0, None, True, False), "eval.every_steps": (0, None, True, False), "checkpoint.keep": (0, None, True, False),
    # sizes past these exhaust memory or time on any machine ratbench targets: refused up front
    "num_envs": (1, 4096, True, True), "num_steps": (1, 1_000_000, True, True), "eval.episodes": (1, 10_000, True, True),
    "eval.max_episode_steps": (1, 10**9, True, True),
    "steps": (1, 10**12, True, True), "threads": (1, 4096, True, True),
}
MAX_BATCH = 10_000_000  # num_envs * num_steps samples held in memory at once
POSITIVE_INTS = (
    "steps", "num_envs", "num_steps", "npg.epochs", "npg.minibatches", "ppo.epochs", "ppo.minibatches",
    "pg.epochs", "pg.minibatches", "trpo.cg_steps", "trpo.line_search_steps", "critic.epochs", "critic.minibatches", "eval.episodes", "eval.max_episode_steps", "checkpoint.every",
)


def shipped_config(name: str) -> dict[str, Any] | None:
    """A shipped YAML layer by file stem (``base``, ``algo-ppo``, ``task-cartpole``), None when absent."""
    path = resources.files("ratbench.training.configs") / f"{name}.yaml"
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) or {}


def schema() -> dict[str, Any]:
    return shipped_config("base")  # type: ignore[return-value]


def load_yaml_file(path: str | Path, what: str = "config file", remedy: str | None = None) -> dict[str, Any]:
    """A YAML file holding a mapping, as a dict; a missing or malformed one is a one-sentence RatbenchError naming
    ``what`` it is and ending in ``remedy`` (None: the advice for a file given to ``--config``)."""
    path = Path(path)
    if not path.is_file():
        raise RatbenchError(f"{what} {str(path)!r} does not exist; {remedy or 'pass an existing YAML file to --config'}")
    data = read_yaml(path, what, remedy or "pass a YAML file to --config")
    if data is None:
        raise RatbenchError(f"{what} {str(path)!r} is empty (no keys); {remedy or 'put overrides in it or drop --config'}")
    if not isinstance(data, dict):
        raise RatbenchError(f"{what} {str(path)!r} must hold a mapping of keys to values, not {type(data).__name__}"
                            + (f"; {remedy}" if remedy else ""))
    return data


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["npg.lr=0.01", "model.hidden=[64, 64]"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RatbenchError(f"--set expects key=value (e.g. npg.lr=0.01), got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RatbenchError(f"--set {key}: {part!r} is given both as a value and as a section")
        node[parts[-1]] = value
    return out


def _all_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in tree.items():
        full = prefix + k
        keys.append(full)
        if isinstance(v, dict) and full not in FREE_FORM:
            keys.extend(_all_keys(v, full + "."))
    return keys


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """Check ``value`` against the schema default's type; numbers given as strings ('1e6') are parsed."""
    def bad(kind: str) -> RatbenchError:
        return RatbenchError(f"{key} expects {kind}, got {value!r} (from {source})")

    if value is None:
        if default is None or key in NULLABLE:
            return None
        raise bad(f"a value like {default!r}, not null")
    if default is None:
        if key in NULL_DEFAULT_NUMBERS:  # null by default, a number when set: check it as one
            return _coerce(key, NULL_DEFAULT_NUMBERS[key], value, source)
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():  # an int is exact, however large: RANGES bound it
                raise bad("an integer")
            return int(value)
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise bad("a list")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise bad("a mapping")
        return value
    return value


def merge(config: dict[str, Any], layer: Mapping[str, Any], source: str, base: Mapping[str, Any] | None = None,
          prefix: str = "") -> dict[str, Any]:
    """Merge ``layer`` into ``config`` in place, validating every key against the schema."""
    base = schema() if base is None else base
    for key, value in layer.items():
        full = prefix + str(key)
        if full in RETIRED:
            raise RatbenchError(f"config key {full!r} (from {source}): {RETIRED[full]}")
        if not isinstance(key, str) or key not in base:
            valid = _all_keys(schema())
            close = difflib.get_close_matches(full, valid, n=3, cutoff=0.6)
            if close:
                hint = f"did you mean {', '.join(close)}?"
            else:  # the keys of the section it was looked up in: one short line, not the whole schema
                hint = (f"valid keys under {prefix.rstrip('.')}: " if prefix else "valid top-level keys: ") + ", ".join(
                    prefix + str(k) for k in base)
            raise RatbenchError(f"unknown config key {full!r} (from {source}); {hint}")
        default = base[key]
        if isinstance(default, dict) and full not in FREE_FORM:
            if not isinstance(value, dict):
                raise RatbenchError(f"{full} is a section; set its keys, e.g. {full}.{next(iter(default))}=... (from {source})")
            merge(config[key], value, source, default, full + ".")
        else:
            config[key] = copy.deepcopy(_coerce(full, default, value, source))
    return config


def _fill_predated(saved: dict[str, Any]) -> dict[str, Any]:
    """Give a saved run config the :data:`PREDATED_VALUES` of the keys it predates (in place; returned)."""
    for dotted, value in PREDATED_VALUES.items():
        *sections, key = dotted.split(".")
        node = saved
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):  # a section the run never wrote is filled from the schema as usual
            node.setdefault(key, value)
    return saved


SAVED_CONFIG_REMEDY = ("it is the run's record of its settings: restore it (from results/ or a backup) "
                       "or train the run again in a new directory")


def load_run_config(path: str | Path, machine: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A run's saved config.yaml as today's code reads it (resolved, validated, pruned): a key the run predates takes
    its :data:`PREDATED_VALUES` value, else its schema default (keys are added with defaults that keep the old
    behaviour); ``machine`` (steps, device, threads) replaces the saved values. A damaged file is one sentence."""
    saved = load_yaml_file(path, "saved run config", SAVED_CONFIG_REMEDY)
    config = copy.deepcopy(schema())
    merge(config, _fill_predated(copy.deepcopy(saved)), str(path))
    if machine:
        merge(config, machine, "the command line")
    validate(config)
    return prune(config)


def get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def canonical_env_name(name: str) -> str:
    """The short name when there is one (``Hopper-v5`` -> ``hopper``), else the id; unknown names raise."""
    env_id = resolve_env_id(name)
    for short, full in ENV_IDS.items():
        if full == env_id:
            return short
    return env_id


def resolve_config(
    explicit: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    origin: str | None = None,
) -> dict[str, Any]:
    """The fully resolved config. ``explicit``: command-line options (env, algo, solver, arch, seed,
    steps, device), None values meaning "not given". ``origin`` names where ``explicit`` and ``sets`` came from in
    error messages when not the command line (a suite file)."""
    explicit, overrides, user = _given_layers(explicit, config_file, sets)
    base = schema()

    def choice(key: str) -> Any:
        for layer in (explicit, overrides, user):
            if key in layer:
                return layer[key]
        return base[key]

    algo, arch, preset = choice("algo"), choice("arch"), choice("preset")
    with _named(origin):
        if algo not in ALGOS:
            raise unknown_name("algorithm", str(algo), ALGOS)
        if arch not in ARCHS:
            raise unknown_name("architecture", str(arch), ARCHS)
        if preset is not None and preset not in PRESET_CHOICES:
            raise unknown_name("preset", str(preset), PRESET_CHOICES)
        env = canonical_env_name(str(choice("env")))
    preset = default_preset(algo, choice("solver"), arch, env) if preset == "auto" else None if preset == "none" else preset

    config = copy.deepcopy(base)
    stems = [f"algo-{algo}", f"arch-{arch}"]
    family = next((f for f in ("minatar", "atari", "dmc") if env.startswith(f"{f}-")), None)
    if family:  # the family's layers, then the game's own (when shipped)
        stems += [f"task-{family}", f"task-{family}-{algo}"]
    stems += [f"task-{env.lower()}", f"task-{env.lower()}-{algo}"]
    if preset in PRESETS:  # an unknown preset is refused by validate, naming the valid ones
        solver = choice("solver")
        stems += [f"preset-{preset}", f"preset-{preset}-{solver}", f"preset-{preset}-{arch}", f"preset-{preset}-{arch}-{solver}"]
        if family:  # what the preset's MuJoCo settings cannot keep on the family's frames and budget
            stems.append(f"preset-{preset}-{family}")
    for stem in stems:
        layer = shipped_config(stem)
        if layer is not None:
            merge(config, layer, f"shipped {stem}.yaml")
    if user:
        merge(config, user, str(config_file))
    if overrides:
        merge(config, overrides, origin or "--set")
    if explicit:
        merge(config, explicit, origin or "the command line")
    config["env"], config["preset"] = env, preset
    with _named(origin):
        validate(config, solver_given="solver" in explicit)
    return prune(config)


def _given_layers(explicit: Mapping[str, Any] | None, config_file: str | Path | None,
                  sets: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The layers the user gives, in :func:`resolve_config`'s order of precedence: the explicit options (None
    values dropped: not given), the ``--set`` overrides, the ``--config`` file (read first, as before)."""
    user = load_yaml_file(config_file) if config_file else {}
    return {k: v for k, v in (explicit or {}).items() if v is not None}, parse_set(sets), user


def preset_given(explicit: Mapping[str, Any] | None, config_file: str | Path | None, sets: Iterable[str]) -> bool:
    """Whether any layer the user gives names ``preset`` (else ``auto`` chose it)."""
    return any("preset" in layer for layer in _given_layers(explicit, config_file, sets))


def default_preset(algo: str, solver: str | None, arch: str, env: str) -> str | None:
    """``preset: auto``: ``reference`` for RAT (npg, kaczmarz, separate networks) on :data:`DEFAULT_PRESET_TASKS`,
    where docs/defaults.md's ablation chose it as RAT's default; None (ratbench's own settings) elsewhere, where no
    run has compared them."""
    namespace, name, _ = parse_env_id(resolve_env_id(env))
    rat = algo == "npg" and solver == "kaczmarz" and arch == "separate"
    return "reference" if rat and namespace is None and name in DEFAULT_PRESET_TASKS else None


@contextmanager
def _named(origin: str | None) -> Iterator[None]:
    """Name ``origin`` (a suite file's run) in a refusal raised inside, as ``merge`` names a layer's source."""
    try:
        yield
    except RatbenchError as error:
        if origin is None:
            raise
        raise RatbenchError(f"{error} (from {origin})") from None


def prune(config: dict[str, Any]) -> dict[str, Any]:
    """Drop the sections of algorithms that are not selected (and the critic's for ppo)."""
    config = copy.deepcopy(config)
    for algo in ALGOS:
        if algo != config["algo"]:
            config.pop(algo, None)
    if config["algo"] == "ppo":
        config.pop("critic", None)
    return config


def validate(config: Mapping[str, Any], solver_given: bool = False) -> None:
    """Semantic checks beyond types: choices, positive counts, the solver name."""
    from solvers import make_solver, solver_names

    for key, valid in CHOICES.items():
        try:
            value = get(config, key)
        except KeyError:
            continue
        if value not in valid:
            raise unknown_name(f"{key} value", str(value), valid)
    for key in STRING_OR_NULL:
        if config.get(key) is not None and not isinstance(config[key], str):
            raise RatbenchError(f"{key} must be a string or null, got {config[key]!r}")
    if config.get("preset") is not None:
        if config["preset"] not in PRESETS:
            raise unknown_name("preset", str(config["preset"]), PRESETS)
        if config["algo"] != "npg" or config["solver"] not in PRESET_SOLVERS:
            raise RatbenchError(f"preset {config['preset']!r} is the reference's code: use it with --algo npg and "
                                f"--solver kaczmarz (RAT), cg, diagonal or kfac (its baselines)")
    if config["envs"]["dmc_renderer"] != "standard" and not resolve_env_id(config["env"]).startswith(DMC_PREFIX):
        raise RatbenchError(f"envs.dmc_renderer={config['envs']['dmc_renderer']} applies to the DMC pixel tasks only, "
                            f"not {config['env']}")
    if config["envs"]["dmc_renderer"] != "standard" and config["envs"]["backend"] == "envpool":
        raise RatbenchError(f"envs.dmc_renderer={config['envs']['dmc_renderer']} needs envs.backend=gymnasium (EnvPool's "
                            "renderer has no switch for shadows or reflections)")
    if config["device"] not in DEVICES:
        raise unknown_name("device", str(config["device"]), DEVICES)
    for key in POSITIVE_INTS:
        try:
            value = get(config, key)
        except KeyError:
            continue
        if value < 1:
            raise RatbenchError(f"{key} must be a positive integer, got {value}")
    _check_numbers(config)
    hidden = config["model"]["hidden"]
    if not hidden or not all(is_int(h) and h > 0 for h in hidden):
        raise RatbenchError(f"model.hidden must be a non-empty list of positive layer widths, got {hidden!r}")
    algo = config["algo"]
    batch = config["num_envs"] * config["num_steps"]
    if batch > MAX_BATCH:
        raise RatbenchError(f"num_envs x num_steps = {batch:,} samples per iteration exceeds {MAX_BATCH:,}; lower either")
    if any(h > 65_536 for h in config["model"]["hidden"]):
        raise RatbenchError(f"model.hidden widths above 65,536 would not fit in memory, got {config['model']['hidden']!r}")
    section = config.get(algo, {})
    if section.get("minibatches", 1) > batch:
        raise RatbenchError(f"{algo}.minibatches ({section['minibatches']}) exceeds the batch of {batch} samples; lower it")
    if algo == "npg":
        if config["solver"] is None:
            raise RatbenchError("npg needs a solver; pass --solver with one of: " + ", ".join(solver_names()))
        options = config["npg"]["solver_options"]
        if not all(isinstance(name, str) for name in options):
            raise RatbenchError(f"npg.solver_options names must be strings (e.g. block_size: 64), got {options!r}")
        make_solver(config["solver"], **options)  # validates name and options
        clip = config["npg"]["ratio_clip"]
        if not (len(clip) == 2 and all(is_int(c) or isinstance(c, float) for c in clip) and 0 < clip[0] <= 1 <= clip[1]):
            raise RatbenchError(f"npg.ratio_clip must be two numbers [low, high] with 0 < low <= 1 <= high, got {clip!r}")
        if config["npg"]["rat_variant"] == "original" and config["solver"] != "kaczmarz":
            raise RatbenchError("npg.rat_variant=original is the reference's Kaczmarz rule; use it with --solver kaczmarz")
        if config["npg"]["value_update"] == "joint":
            if config["arch"] != "shared":
                raise RatbenchError("npg.value_update=joint solves for one network's policy and value together; "
                                    "use it with --arch shared")
            if config["solver"] not in JOINT_SOLVERS and config["npg"]["kfac_variant"] != "reference":
                raise RatbenchError(f"the joint update runs with the solvers {', '.join(JOINT_SOLVERS)}, or with kfac as "
                                    f"the reference's K-FAC optimiser (npg.kfac_variant=reference), not {config['solver']!r}")
        if config["npg"]["kfac_variant"] == "reference":
            if config["solver"] != "kfac":
                raise RatbenchError("npg.kfac_variant=reference is the reference's K-FAC optimiser; use it with --solver kfac")
            if config["arch"] == "shared" and config["npg"]["value_update"] != "joint":
                raise RatbenchError("the reference's K-FAC on a shared network trains policy and value together; "
                                    "set npg.value_update=joint or use --arch separate")
            if config["npg"]["kl_rule"] != "last_minibatch":
                raise RatbenchError("the reference's K-FAC moves its step size on the last minibatch's KL before its "
                                    f"step; npg.kl_rule must be last_minibatch, got {config['npg']['kl_rule']!r}")
        if config["npg"]["lr_min"] > config["npg"]["lr_max"]:
            raise RatbenchError(f"npg.lr_min ({config['npg']['lr_min']}) exceeds npg.lr_max ({config['npg']['lr_max']}); swap them")
    elif config.get("npg", {}).get("value_update") == "joint":
        raise RatbenchError(f"npg.value_update=joint is the NPG joint solve; {algo} trains its value function its own way")
    elif algo == "trpo" and config["arch"] == "shared":  # sb3-contrib's trpo.py zeroes the actor's gradients for its value steps
        raise RatbenchError("TRPO fits its value function with Adam after the KL-checked step; on a shared network that Adam "
                            "would move the policy out of the trust region: use --arch separate")
    elif config["solver"] is not None:
        if solver_given:
            raise RatbenchError(f"{algo} uses no natural-gradient solver; drop --solver or use --algo npg")
        raise RatbenchError(f"{algo} uses no natural-gradient solver; set solver to null")


def _interval(low, high, low_in, high_in) -> str:
    left = "[" if low_in else "("
    right = "]" if high_in else ")"
    if high is None:
        return {"(0": "positive", "[0": "non-negative"}.get(f"{left}{low}", f"in {left}{low}, inf)")
    return f"in {left}{low}, {high}{right}"


def _check_numbers(config: Mapping[str, Any], prefix: str = "") -> None:
    """Every float is finite; every key of :data:`RANGES` present lies in its range."""
    for key, value in config.items():
        full = prefix + key
        if isinstance(value, dict) and full not in FREE_FORM:
            _check_numbers(value, full + ".")
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise RatbenchError(f"{full} must be a finite number, got {value!r}")
        if full in RANGES and value is not None and not isinstance(value, bool):
            low, high, low_in, high_in = RANGES[full]
            ok = (value >= low if low_in else value > low) and (high is None or (value <= high if high_in else value < high))
            if not ok:
                raise RatbenchError(f"{full} must be {_interval(low, high, low_in, high_in)}, got {value!r}")


def to_yaml(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=None)
