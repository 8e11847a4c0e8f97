"""Which runs are one method: grouping by everything that defines a method, one run per seed.

A method is defined by the config keys in :data:`METHOD_KEYS` (algorithm, solver, preset, RAT's
residual rule, the natural gradient's entropy bonus, how the value is trained, the reference preset's step clip, KL rule,
observation statistics (update, clip, epsilon), critic clip and Adam epsilon, architecture, activation, layer init, action
squashing): two
runs that differ in any of them are different methods, whatever their names. Within one (task, method) group every seed appears once;
two runs with the same seed are an error unless ``keep_latest`` (the most recently written one is
kept). A run whose last logged step is below its config's ``steps`` is *unfinished*; it is reported
as such and left out of the statistics unless the caller asks for it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ratbench.errors import RatbenchError
from ratbench.reporting.runs import MISSING, PROGRESS_FILE, Run, lookup

METHOD_KEYS = ("algo", "solver", "preset", "npg.rat_variant", "npg.ent_coef", "npg.value_update", "npg.step_norm", "npg.kl_rule",
               "obs_norm_update", "obs_clip", "obs_eps", "critic.max_grad_norm", "critic.adam_eps", "arch", "model.activation",
               "model.init", "model.trunk", "action_squash", "envs.backend", "envs.dmc_renderer", "label")
SOLVER_NAMES = {"kaczmarz": "RAT", "woodbury": "NPG-Woodbury", "cg": "NPG-CG", "diagonal": "NPG-diag", "kfac": "K-FAC"}


def value_or_default(config: Mapping[str, Any], dotted: str) -> Any:
    """``config[dotted]``; a key the run's config predates takes today's default (keys are added with
    defaults that keep the old behaviour: no preset, clipped actions, gymnasium) or, for the few that
    were not, the value such a run had (``PREDATED_VALUES``), and a key foreign to the schema (a
    ppo-only run's npg section) is None."""
    value = lookup(config, dotted)
    if value is not MISSING:
        return value
    from ratbench.training.config import PREDATED_VALUES

    if dotted in PREDATED_VALUES:
        return PREDATED_VALUES[dotted]

    default = lookup(_defaults(), dotted)
    if default is MISSING or (dotted.startswith("npg.") and config.get("algo") != "npg"):
        return None
    return default


def method_key(config: Mapping[str, Any]) -> tuple:
    """The values of :data:`METHOD_KEYS` (None where absent): runs with equal keys are one method."""
    return tuple(str(value_or_default(config, k)) for k in METHOD_KEYS)


def method_label(config: Mapping[str, Any]) -> str:
    """A readable name: ``RAT`` (the reference preset, RAT's default: docs/defaults.md), ``RAT (ratbench settings)``
    (no preset), ``RAT (ratbench settings, original rule)``, ``NPG-CG (reference preset)``, ``PPO``, ``NPG-CG``,
    with the rule when it is not the preset's (or the settings') own, ``entropy C`` for an NPG entropy bonus,
    ``shared`` for a shared actor-critic (``shared, joint solve`` with train_shared.py's joint policy-and-value
    solve), the activation / squashing when they are not the settings' own and the layer init when it is not the
    algorithm's (``PPO (torch init)``), so that different methods never share a label. Labels do not depend on the
    task: ``RAT (ratbench settings)`` is also the default RAT's run where ``preset: auto`` gives no preset."""
    algo, solver, preset = config.get("algo"), config.get("solver"), config.get("preset")
    name = SOLVER_NAMES.get(solver, f"NPG-{solver}") if algo == "npg" else str(algo).upper()
    rat = algo == "npg" and solver == "kaczmarz"
    preset_layer = _shipped_layer(f"preset-{preset}") if preset else None
    notes = []
    if preset and not rat:
        notes.append(f"{preset} preset")
    elif rat and not preset:  # RAT's default is the reference preset (docs/defaults.md): say when a run is not it
        notes.append("ratbench settings")
    if rat and _departs(config, "npg.rat_variant", preset_layer):  # the rule is Kaczmarz's
        notes.append(f"{value_or_default(config, 'npg.rat_variant')} rule")
    ent_coef = value_or_default(config, "npg.ent_coef")
    if ent_coef:
        notes.append(f"entropy {ent_coef:g}")
    if config.get("arch") == "shared":
        notes.append("shared, joint solve" if value_or_default(config, "npg.value_update") == "joint" else "shared")
    if not preset and _departs(config, "model.activation"):
        notes.append(str(value_or_default(config, "model.activation")))
    # against the preset's own squashing for a preset run, and only where its config states one
    if (not preset or lookup(config, "action_squash") is not MISSING) and _departs(config, "action_squash", preset_layer):
        notes.append(f"{value_or_default(config, 'action_squash')} actions")
    if _departs(config, "model.init", _shipped_layer(f"algo-{algo}")):
        notes.append(f"{value_or_default(config, 'model.init')} init")
    if _departs(config, "model.trunk"):
        notes.append(f"{value_or_default(config, 'model.trunk')} CNN")
    if _departs(config, "envs.backend"):
        notes.append(str(value_or_default(config, "envs.backend")))
    if _departs(config, "envs.dmc_renderer"):
        notes.append(f"{value_or_default(config, 'envs.dmc_renderer')} renderer, non-standard frames")
    if config.get("label"):
        notes.append(str(config["label"]))
    return f"{name} ({', '.join(notes)})" if notes else name


def _departs(config: Mapping[str, Any], dotted: str, layer: Mapping[str, Any] | None = None) -> bool:
    """Whether the run's ``dotted`` is set and differs from today's default: the shipped ``layer``'s (an
    algorithm's, where it sets the key) or else the schema's."""
    value = value_or_default(config, dotted)
    default = lookup(layer, dotted) if layer is not None else MISSING
    return value is not None and value != (lookup(_defaults(), dotted) if default is MISSING else default)


@functools.cache
def _shipped_layer(stem: str) -> dict[str, Any]:
    """The shipped ``<stem>.yaml`` layer (an algorithm's or a preset's; empty when none), parsed once per
    process; read-only."""
    from ratbench.training.config import shipped_config

    return shipped_config(stem) or {}


@functools.cache
def _defaults() -> dict[str, Any]:
    """Today's defaults (the shipped base layer), parsed once per process; read-only."""
    from ratbench.training.config import schema

    return schema()


@dataclass
class Group:
    """The runs of one method on one task, one per seed (sorted by seed)."""

    env: str
    method: str
    runs: list[Run]
    unfinished: list[Run] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [int(r.config["seed"]) for r in self.runs]


def last_step(run: Run) -> float:
    steps = run.columns["env_steps"]
    return float(np.nanmax(steps)) if steps.size else 0.0


def is_finished(run: Run) -> bool:
    return last_step(run) >= float(run.config.get("steps", 0))


def one_run_per_seed(env: str, label: str, members: Sequence[Run], keep_latest: bool, fix: str) -> list[Run]:
    """``members`` (one group's runs on ``env``) with one run per seed, sorted by seed: two runs with one seed
    would count as two seeds, so they raise (naming them and ``fix``) unless ``keep_latest`` keeps the run
    whose progress.csv was written last."""
    by_seed: dict[Any, list[Run]] = {}
    for run in members:
        by_seed.setdefault(run.config.get("seed"), []).append(run)  # a config without a seed is one "seed"
    chosen = []
    for seed, same in sorted(by_seed.items(), key=lambda item: (not isinstance(item[0], int), item[0] if isinstance(item[0], int) else 0, str(item[0]))):
        if len(same) > 1 and not keep_latest:
            raise RatbenchError(f"{label} on {env} has {len(same)} runs with seed {seed} "
                                f"({', '.join(str(r.path) for r in same)}); {fix}")
        chosen.append(max(same, key=lambda r: (r.path / PROGRESS_FILE).stat().st_mtime))
    return chosen


def group_by_method(runs: Sequence[Run], keep_latest: bool = False, include_unfinished: bool = False) -> list[Group]:
    """(env, method) groups, sorted; duplicate seeds raise unless ``keep_latest``."""
    buckets: dict[tuple[str, tuple], list[Run]] = {}
    for run in runs:
        buckets.setdefault((run.env, method_key(run.config)), []).append(run)
    labels = {key: method_label(members[0].config) for (_, key), members in buckets.items()}
    for key, label in list(labels.items()):
        clashing = [k for k, v in labels.items() if v == label and k != key]
        if clashing:  # two methods one name: spell out where they differ
            differ = [i for i, value in enumerate(key) if any(value != other[i] for other in clashing)]
            labels[key] = f"{label} [{', '.join(f'{METHOD_KEYS[i]}={key[i]}' for i in differ)}]"
    groups = []
    for (env, key), members in buckets.items():
        label = labels[key]
        chosen = one_run_per_seed(env, label, members, keep_latest, "remove the extra ones or pass --keep-latest to use the most recent")
        finished = [r for r in chosen if is_finished(r)]
        unfinished = [r for r in chosen if not is_finished(r)]
        kept = chosen if include_unfinished else finished
        groups.append(Group(env, label, kept, unfinished))
    return sorted(groups, key=lambda g: (g.env, g.method))
