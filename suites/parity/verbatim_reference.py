"""The reference's own updates, run verbatim from train_detach.py and train_shared.py beside ``--preset reference``.

ratbench's parity tests (tests/ratbench/training/test_reference_preset.py, tests/ratbench/training/algorithms/
test_joint.py and test_reference_kfac.py, docs/reference-preset.md) check the preset against restatements of
agent-lab/ICML2026-RAT's updates written for the tests. This tool runs the reference's code itself, taken from a
checkout, for both of its programs (``--arch``, ratbench's own option). ratbench follows the reference's main
branch at c49b552, and every file:line citation below is to that commit; where the checkout is a git work tree the
tool prints the commit it ran against (the countsketch-fisher-kernel branch, 5839c35, fails the kaczmarz comparison
by design: docs/reference-preset.md).

- ``separate`` (train_detach.py, a policy network and a critic): for each solver the config the README runs it
  with (``kaczmarz``: configs/rat_mlp.yaml, ``cg``: fvp_mlp.yaml, ``diagonal``: diag_mlp.yaml, ``kfac``:
  kfac_mlp.yaml), whose ``algo`` selects in ``learn()``'s ``if algo in {...}: update_actor = ...`` chain rat ->
  RAT_ActorUpdate, fvp -> TrustRegion_ActorUpdate, diag -> diag_ActorUpdate, kfac -> KFAC_ActorUpdate; against
  ``--preset reference --solver <solver>``.
- ``shared`` (train_shared.py, one network for policy and value, updated by one joint step): rat_mlp_shared.yaml,
  diag_mlp_shared.yaml, kfac_mlp_shared.yaml, whose ``algo`` selects in the ``update_actor_critic = ...`` chain
  rat -> RAT_Update, diag -> diag_Update, kfac -> KFAC_Update; against ``--preset reference --arch shared
  --solver <solver>`` (``npg.value_update: joint``, ratbench/training/algorithms/joint.py and, for kfac,
  reference_kfac.py). train_shared.py has no fvp update and ratbench refuses the joint update with cg, so
  ``--arch shared --solver cg`` is refused; ``--arch both --solver cg`` compares train_detach.py's only.

From the script, compiled from the parsed source (so tracebacks carry its line numbers), unchanged:

- the module's import statements that bind a name the statements below use (so utils/cg.py, utils/utils.py and
  kfac/kfac.py are the checkout's own);
- from ``train_fn``: ``build_mlp`` and the ``actor_critic = ActorCritic(...)`` / ``SharedActorCritic(...)``
  statement, the reference's networks;
- from ``learn``: the set-up of the update functions (train_detach.py: ``params_pi``, ``dict_params``,
  ``dict_buffers``, the ``pi_optimizer`` block, ``pi_scheduler``, ``make_flat``, ``get_flat_grad``;
  train_shared.py: ``dict_params``, ``dict_buffers``, the ``ac_optimizer`` block, ``lr_scheduler``,
  ``get_flat_grad``: SGD with momentum 1e-6, or kfac/kfac.py's KFACOptimizer), the selected update function, the
  selection chain itself, the minibatch loop's body after ``mbinds = inds[start:end]`` (the minibatch's slices,
  train_shared.py's ``ac_optimizer.zero_grad()`` (:458) and the update's call), run once per minibatch with
  ``mbinds`` ratbench's, and after each rollout the ``if algo_config.use_kl_adaptive_lr:`` block.

A checkout the tool cannot read (a script or config missing, not UTF-8, not YAML, a config whose ``algo`` is not
a string or whose ``algo_config`` / ``nets_config`` is not a mapping, a selection chain whose sets are not
literals, a statement it needs missing) is refused in one sentence, exit status 2; so is any exception the
checkout's code raises while the tool runs it (the sentence names the script, the line of the script and, where
deeper, of the checkout's module the traceback ends in, and the exception).

Written here, not taken from the reference: the data and the loop around the minibatch body. Each rollout draws
observations ~ N(0, 1) (batch x 5), actions from ratbench's policy, advantages ~ 1 + 3 N(0, 1) and, for
``shared``, value targets ~ 0.1 N(0, 1) (torch generator seed 1; targets of the scale of the value head's output
at initialisation, so the value loss does not swamp the clipped step and the KL rule moves RAT's step size), gives
ratbench a :class:`~ratbench.training.rollout.Batch` (returns = the targets) and the reference its ``obs``,
``act``, ``adv``, ``ret`` and ``outputs_old``: the policy's outputs at the update's start (what
train_detach.py:504-507 and train_shared.py:443-446 recompute after normalising the observations). Both start
from ratbench's initial weights (``torch.manual_seed(seed)``), copied into the reference's network layer by layer
(MuSigmaNet; SharedActorCritic's trunk, policy head, log-std and value head). For ``separate`` everything outside
the actor update (observation statistics, PopArt, the critic) is left out: ratbench's critic runs but is not
compared. For ``shared`` the whole network is compared, and PopArt is off on both sides through their own
configs (``with_popart: False``; ``value_norm=none``): train_shared.py:433-437 would move PopArt's statistics and
rescale the value head before the minibatches, and utils/popart.py departs from ratbench's PopArt at the first
update (its variance starts clamped at 1e-6, so the head is rescaled by 1e-3 / sigma where ratbench's std starts
at 1; docs/reference-preset.md), so exact parity is impossible with it on; with it off both heads are
``nn.Linear`` and the targets and advantages reach both updates unnormalised. ``--ratbench-set KEY=VALUE``
(repeatable) adds ratbench ``--set`` overrides to its side only, after the tool's own: a probe of what the
comparison catches (``npg.momentum=0`` must fail; tests/suites/test_verbatim_reference.py).

The minibatch indices: ratbench's updates (``NPG.update``, ``JointNPG.update``, ``ReferenceKFAC.update``) draw
each epoch's partition with the public ``ratbench.training.algorithms.minibatch.minibatches(n, count, rng)`` from
the generator handed to ``make_algorithm``. The tool keeps that generator, copies it before each update, and
replays ``minibatches`` on the copy epoch by epoch; nothing of ratbench is patched. Were the order of the draws
to change, the reference would see other minibatches and the gap would show it. The batch must be a multiple of
the minibatch count, where ratbench's ``np.array_split`` and the reference's slices of ``batch // minibatches``
make the same minibatches.

The value likelihood's noise (``shared``): the joint score is that of ``log pi - (V - (V + eps).detach())^2``
with eps ~ N(0, 1) per sample, drawn by the reference from torch's global generator (``torch.randn`` inside
``vmap(..., randomness='different')`` for RAT_Update and diag_Update, train_shared.py:128, :152, :258, :283;
directly for KFAC_Update's statistics backward, :360) and by ratbench from the numpy generator it is handed
(``value_noise``: ``rng.standard_normal(n)``, once per minibatch, or per statistics step for K-FAC). The eps
change the kernel, so both must see the same. The tool hands ratbench a :class:`TorchNormals`: a numpy Generator
on the PCG64 stream of ``np.random.default_rng(seed)`` (the same permutations) whose ``standard_normal(n)``
returns ``torch.randn(n)`` from a torch generator of its own (seed 3); before the reference's minibatches of a
rollout it sets torch's global generator to the state that generator had before ratbench's update. Under
``randomness='different'`` ``torch.randn(size)`` draws ``torch.randn((N, *size))`` from the global generator
(checked with torch 2.13), so both updates get the same eps in the same order; the reference's code is not
touched, and ratbench's ``value_noise`` runs as in a run, on other numbers. Were either to draw its noise
otherwise (another count, order or shape), the gap would show it.

Two variants of the old log-probs (``--variant``, both by default):

- ``fresh``: the rollout policy's, as in a run; the ratios start at 1 and the KL step-size rule is on
  (train_detach.py:524-530: the last minibatch's exact KL before its step, target 0.008; train_shared.py:461-467:
  the last minibatch's KL after its step for RAT_Update and diag_Update, before it for KFAC_Update, target 0.01,
  capped at the config's lr; against ``npg.kl_rule``, ``target_kl``, ``lr_max``);
- ``clamped``: every 5th old log-prob lowered by 3 and every 7th (from the 2nd) raised by 3, so those ratios start
  near e^3 ~ 20 and e^-3 ~ 0.05, outside the clamp [0.1, 10]. The reference reads old log-probs only through
  ``outputs_old``, so it gets, per sample, the mean ``act`` and the log-std whose Gaussian log-density of ``act``
  is the shifted old log-prob. Its KL, measured from those outputs, then no longer is the KL from the policy at
  the update's start that ratbench's rule reads (in the scripts the two coincide, as outputs_old is always
  recomputed from the current policy), so this variant turns the KL rule off on both sides, through their own
  configs (``use_kl_adaptive_lr: False``; ``npg.kl_adaptive=false``).

Each line gives, after a rollout, ||theta_ref - theta_ratbench|| / ||theta_ref|| over the compared parameters
(``separate``: the policy's log-std and every Linear layer; ``shared``: the whole network, 421 parameters at
the defaults), the two step sizes' relative difference, and how far the reference's parameters have moved from
the start, ||theta_end - theta_0|| / ||theta_0||. The verdict fails where the reference's parameters did not move
over a run (neither side moving would otherwise give a gap of 0 and pass), and where either gap exceeds

    tol = kappa * c * u * steps,  c = 1e3, u = 2^-53, steps = epochs x minibatches x rollouts,
    kappa = 1e4 for train_shared.py's RAT_Update, 1e3 for every other update,

1.07e-8 at the defaults (96 steps; 1.07e-7 for the joint RAT). Why: everything runs in float64
(``torch.set_default_dtype``, so the tensors the reference creates itself, such as RAT's ``torch.eye``, are
float64 too: a float32 ``0.1 * eye`` would move its damping by 1.5e-8 relative). The two programs compute the same
quantities in exact arithmetic but in other orders (ratbench solves RAT's system in its symmetric form where the
reference calls ``torch.linalg.solve`` on ``K diag(r) + lambda I``; its CG multiplies by a KL-Hessian operator of
its own where the reference double-backpropagates ``_ent_kl``; its K-FAC is a port of kfac.py; its joint scores
come from its curvature layer where the reference's come from ``vmap(grad(compute_logp))``), so one step's
results differ by rounding: at most the condition number kappa of what the step solves times the relative error
c u of the sums and products that build the system and its right-hand side.

- kappa bounds the systems here. Measured at the defaults: 21 for cg's H + 0.1 I and at most
  (10 x 2.02 + 0.1) / 0.1 = 203 for RAT's K diag(r) + 0.1 I (r <= 10) on the first minibatch; 6.6 for the
  diagonal's F + 0.1; 2 to 10 for K-FAC's d_g d_a^T + 1e-3 after the first rollout, 206 after the third (A's
  smallest eigenvalues decay from the identity by 0.95 a step): kappa = 1e3. The joint system of
  train_shared.py's RAT_Update is worse conditioned: its scores carry 2 eps grad V, so ||K|| reaches 18 to 32
  (seeds 0 to 4) where the policy's alone reaches 2, and cond(K diag(r) + 0.1 I) over every minibatch measured
  146 fresh / 909 clamped at seed 0 and up to 210 / 2358 over seeds 0 to 4 (the symmetric form's bound
  (10 x 32.5 + 0.1) / 0.1 = 3.3e3): kappa = 1e4 for it. The shared diagonal's (F + 0.1) / 0.1 reaches 108,
  the shared K-FAC's 9, 50 and 209 after the three rollouts: within 1e3.
- c = 1e3 bounds the n u of a sum of n terms (Higham's gamma_n) over the 404 (separate) or 421 (shared)
  parameters and the minibatch of 12, chained through CG's 10 iterations.
- A step moves theta by about lr x clip (0.05 x 0.5 in L2; cg's d^T (H + 0.1 I) d <= 0.5 allows 0.11), less
  than ||theta|| (3.4 at the start, 3.5 for the shared network), so its error relative to ||theta|| is at most
  kappa c u.
- The steps' errors add rather than grow: ``--perturb 1e-13`` (ratbench's initial weights moved by 1e-13
  relative) ends 96 steps later at 0.9e-13 to 1.6e-13 for every solver and both architectures, cg's own
  rounding aside.

Other sizes. The tolerance is derived at the defaults (4 epochs x 8 minibatches x 3 rollouts, batch 96, hidden
16 x 16) and the tool keeps its formula at any size, warning (on stderr, and in the verdict) when ``--epochs``,
``--minibatches``, ``--rollouts``, ``--batch`` or ``--hidden`` differ from them. It does not rescale c by
Higham's gamma_n (n u, n the longest inner product: the parameter count for K = H H^T, CG's products and the
scores, the minibatch for H^T v and K-FAC's factors), because c is not the factor that sizes move: kappa is, and
it has no formula. ||K|| grows with the score norms and so with the parameter count, the minibatch sets the size
of RAT's system, more steps let K-FAC's factors decay further (its kappa went from 2 to 206 over three
rollouts), and kappa was measured at these sizes, not bounded. A c scaled by gamma_n under an unscaled kappa would
present as derived a tolerance that is not; at other sizes the verdict is indicative, and a gap near the
tolerance calls for measuring kappa there.

docs/reference-preset.md ("The reference's code, run verbatim") gives the measurements against this tolerance:
the gaps at the defaults, what the tool catches (and by how much), the run time, and 5839c35's gap.

Not from the checkout: ``gym``. utils/convnet.py imports it at the top and never uses it for MLPs; where it is not
installed (ratbench uses gymnasium), an empty module stands in for it. Not covered: train_shared.py's discrete
(``log_softmax``) branches, PopArt (above), and the K-FAC optimiser's treatment of the PopArt head (not an
``nn.Linear``, so kfac.py leaves it unpreconditioned; ratbench skips it likewise, unchecked here).

    python suites/parity/verbatim_reference.py --reference /path/to/ICML2026-RAT [--arch both] [--solver all]
        [--variant both] [--ratbench-set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.util
import io
import math
import subprocess
import sys
import time
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Union

if TYPE_CHECKING:
    from ratbench.actor_critic import ActorCritic
    from ratbench.policies import GaussianPolicy
    from ratbench.training.agent import Agent
    from ratbench.training.algorithms import NPG, JointNPG, ReferenceKFAC

import numpy as np
import torch
import yaml

REPOSITORY = "agent-lab/ICML2026-RAT"
REFERENCE_COMMIT = "c49b552"  # the reference's main branch, which ratbench follows (module docstring)
VARIANTS = ("fresh", "clamped")
OBS_DIM, ACT_DIM = 5, 2
UNIT_ROUNDOFF = 2.0 ** -53
CONDITION, ROUNDING = 1e3, 1e3  # kappa and c of the module docstring's tolerance
JOINT_CONDITION = 1e4  # kappa of train_shared.py's RAT_Update system (module docstring)
KL_RULE = "algo_config.use_kl_adaptive_lr"
DATA_SEED, NOISE_SEED = 1, 3  # torch generators of the rollouts' data and of the value likelihood's noise


@dataclass(frozen=True)
class Program:
    """One of the reference's two training scripts, as the tool reads it."""

    script: str
    configs: dict[str, str]  # ratbench solver -> the config the README runs the script with
    setup: tuple[str, ...]  # what learn() sets up before the update functions, by the names its statements bind
    select: str  # the name learn()'s ``if algo in {...}:`` chain binds to the selected update
    optimizer: str  # the optimiser whose step size the KL rule moves


PROGRAMS = {
    "separate": Program("train_detach.py",
                        {"kaczmarz": "rat_mlp.yaml", "cg": "fvp_mlp.yaml", "diagonal": "diag_mlp.yaml",
                         "kfac": "kfac_mlp.yaml"},
                        ("params_pi", "dict_params", "dict_buffers", "pi_optimizer", "pi_scheduler", "make_flat",
                         "get_flat_grad"), "update_actor", "pi_optimizer"),
    "shared": Program("train_shared.py",
                      {"kaczmarz": "rat_mlp_shared.yaml", "diagonal": "diag_mlp_shared.yaml",
                       "kfac": "kfac_mlp_shared.yaml"},
                      ("dict_params", "dict_buffers", "ac_optimizer", "lr_scheduler", "get_flat_grad"),
                      "update_actor_critic", "ac_optimizer"),
}
ARCHS = tuple(PROGRAMS)
CONFIGS = PROGRAMS["separate"].configs
SOLVERS = tuple(CONFIGS)


def condition(arch: str, solver: str) -> float:
    """kappa of the module docstring's tolerance: the bound on the condition number of what a step solves."""
    return JOINT_CONDITION if (arch, solver) == ("shared", "kaczmarz") else CONDITION


def tolerance(steps: int, kappa: float = CONDITION) -> float:
    """The largest relative gap accepted after ``steps`` optimiser steps (module docstring)."""
    return kappa * ROUNDING * UNIT_ROUNDOFF * steps


class NotAReference(Exception):
    """A --reference path that is not a usable checkout; the message is one sentence."""

    @classmethod
    def unusable(cls, root: Path, reason: str) -> "NotAReference":
        return cls(f"--reference {root} is not a usable checkout of {REPOSITORY}: {reason}")


@dataclass
class Sizes:
    """What one comparison runs (the command line's options)."""

    epochs: int  # passes over each rollout's batch
    minibatches: int  # minibatches per epoch
    rollouts: int  # batches, each followed by the step-size rule
    batch: int  # samples per rollout
    hidden: int  # width of both hidden layers
    seed: int  # torch seed of ratbench's initial weights and its minibatch generator's seed
    perturb: float = 0.0  # relative perturbation of ratbench's initial weights (a sensitivity probe), 0 for none
    ratbench_sets: tuple[str, ...] = ()  # --ratbench-set: ratbench --set overrides of its side only


# the sizes the tolerance was derived at (module docstring, "Other sizes"): option -> default
DEFAULT_SIZES = {"epochs": 4, "minibatches": 8, "rollouts": 3, "batch": 96, "hidden": 16}


# ---------------------------------------------------------------------------------------------------------------
# reading the checkout

def _binds(node: ast.AST) -> set[str]:
    """The names a statement assigns or defines (anywhere inside it)."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
            names.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in sub.names)
    return names


def _reads(nodes: list[ast.AST]) -> set[str]:
    """Every name the statements mention."""
    return {sub.id for node in nodes for sub in ast.walk(node) if isinstance(sub, ast.Name)}


class Checkout:
    """A reference checkout: its training scripts for ``arches``, parsed (:class:`Script`)."""

    def __init__(self, root: Path, arches: tuple[str, ...] = ARCHS):
        self.root = root
        if not root.exists():
            raise NotAReference(f"--reference {root} does not exist")
        if not root.is_dir():
            raise NotAReference(f"--reference {root} is a file, not a checkout of {REPOSITORY}")
        for needed in (*(PROGRAMS[a].script for a in arches), "utils/cg.py", "utils/utils.py", "kfac/kfac.py",
                       *(f"configs/{c}" for a in arches for c in PROGRAMS[a].configs.values())):
            if not (root / needed).is_file():
                raise NotAReference(f"--reference {root} is not a checkout of {REPOSITORY}: no {needed}")
        self.scripts = {arch: Script(root, PROGRAMS[arch]) for arch in arches}


class Script:
    """One training script of a reference checkout, parsed; its statements compiled where they stand."""

    def __init__(self, root: Path, program: Program):
        self.root, self.program, self.name = root, program, program.script
        self.path = root / program.script
        try:
            self.tree = ast.parse(self.path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise NotAReference.unusable(root, f"{self.name} is not UTF-8 ({exc.reason} at byte {exc.start})"
                                         ) from None
        except OSError as exc:
            raise NotAReference.unusable(root, f"{self.name} cannot be read ({exc.strerror or exc})") from None
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes, before Python 3.12
            raise NotAReference.unusable(root, f"{self.name} does not parse ({exc})") from None
        self.learn = self._function(self.tree.body, "learn", self.name)
        self.train_fn = self._function(self.tree.body, "train_fn", self.name)
        self.configs, self.updates, self.phases = {}, {}, {}
        for solver, name in program.configs.items():
            self.configs[solver] = config = self._config(name)
            self.updates[solver] = self._selected_update(config["algo"])
            self.phases[solver] = self._statements(self.updates[solver])

    def _config(self, name: str) -> dict[str, Any]:
        """configs/<name>, read and checked: ``algo`` a string, ``algo_config`` and ``nets_config`` mappings with
        string keys (they become SimpleNamespaces)."""
        where = f"configs/{name}"
        try:
            config = yaml.safe_load((self.root / "configs" / name).read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise NotAReference.unusable(self.root, f"{where} is not UTF-8 ({exc.reason} at byte {exc.start})"
                                         ) from None
        except OSError as exc:
            raise NotAReference.unusable(self.root, f"{where} cannot be read ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            problem = str(getattr(exc, "problem", None) or type(exc).__name__)
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise NotAReference.unusable(self.root, f"{where} is not YAML ({problem}{at})") from None
        if not isinstance(config, dict) or not {"algo", "algo_config", "nets_config"} <= config.keys():
            raise NotAReference.unusable(self.root, f"{where} does not set algo, algo_config and nets_config")
        if not isinstance(config["algo"], str):
            raise NotAReference.unusable(self.root, f"{where}'s algo is {config['algo']!r}, not a string")
        for key in ("algo_config", "nets_config"):
            value = config[key]
            if not isinstance(value, dict):
                raise NotAReference.unusable(self.root, f"{where}'s {key} is "
                                                        f"{'empty (null)' if value is None else type(value).__name__}, "
                                                        f"not a mapping")
            if not all(isinstance(k, str) for k in value):
                odd = next(k for k in value if not isinstance(k, str))
                raise NotAReference.unusable(self.root, f"{where}'s {key} has a key that is not a string ({odd!r})")
        return config

    def _function(self, body: list[ast.stmt], name: str, where: str) -> ast.FunctionDef:
        found = [n for n in body if isinstance(n, ast.FunctionDef) and n.name == name]
        if not found:
            raise NotAReference.unusable(self.root, f"{where} has no {name}()")
        return found[0]

    def _binding(self, body: list[ast.stmt], names: set[str], where: str) -> list[ast.stmt]:
        found = [n for n in body if _binds(n) & names and not isinstance(n, ast.FunctionDef)]
        missing = names - set().union(*(_binds(n) for n in found)) if found else names
        if missing:
            raise NotAReference.unusable(self.root, f"{where} never sets {', '.join(sorted(missing))}")
        return found

    def _selected_update(self, algo: str) -> str:
        """The update function learn()'s ``if algo in {...}: <select> = ...`` chain picks for ``algo``."""
        select = self.program.select
        chain = self._binding(self.learn.body, {select}, f"{self.name}'s learn()")[0]
        while isinstance(chain, ast.If):
            test, first = chain.test, chain.body[0]
            if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "algo"
                    and isinstance(test.ops[0], ast.In) and isinstance(test.comparators[0], ast.Set)
                    and algo in self._literal_set(test.comparators[0])
                    and isinstance(first, ast.Assign) and isinstance(first.value, ast.Name)):
                return first.value.id
            chain = chain.orelse[0] if chain.orelse else None
        raise NotAReference.unusable(self.root, f"{self.name}'s learn() selects no update for algo {algo!r}")

    def _literal_set(self, node: ast.Set) -> set[Any]:
        """The selection chain's ``{...}``, which must be a literal (the tool reads it, never runs it)."""
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            raise NotAReference.unusable(self.root, f"{self.name}:{node.lineno}'s selection chain tests algo against "
                                                    f"{ast.unparse(node)}, not a literal set") from None

    def _minibatch_body(self) -> list[ast.stmt]:
        """The statements of learn()'s minibatch loop after ``mbinds = inds[start:end]``: the minibatch's slices,
        (train_shared.py) ``ac_optimizer.zero_grad()``, and the call of the selected update."""
        select = self.program.select
        for loop in ast.walk(self.learn):
            if isinstance(loop, ast.For) and select in _reads(loop.body):
                at = [i for i, node in enumerate(loop.body)
                      if isinstance(node, ast.Assign) and "mbinds" in _binds(node)]
                if at:
                    return loop.body[at[0] + 1:]
        raise NotAReference.unusable(self.root, f"{self.name}'s learn() has no minibatch loop that sets mbinds "
                                                f"and calls {select}")

    def _statements(self, update: str) -> dict[str, list[ast.stmt]]:
        """The statements the tool executes, by phase (module docstring)."""
        where = f"{self.name}'s learn()"
        network = self._binding(self.train_fn.body, {"fn_neural_nets", "actor_critic"}, f"{self.name}'s train_fn()")
        setup = self._binding(self.learn.body, set(self.program.setup), where)
        update_def = self._function(self.learn.body, update, where)
        select = self._binding(self.learn.body, {self.program.select}, where)
        kl_rule = [n for n in ast.walk(self.learn) if isinstance(n, ast.If) and ast.unparse(n.test) == KL_RULE]
        if not kl_rule:
            raise NotAReference.unusable(self.root, f"{where} has no `if {KL_RULE}:` step-size rule")
        return {"network": network, "setup": setup + [update_def] + select, "minibatch": self._minibatch_body(),
                "kl_rule": kl_rule[:1]}

    def imports(self, nodes: list[ast.stmt]) -> list[ast.stmt]:
        """The module's import statements that bind a name ``nodes`` read."""
        wanted = _reads(nodes)
        return [n for n in self.tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and _binds(n) & wanted]

    def run(self, nodes: list[ast.stmt], namespace: dict[str, Any], what: str) -> None:
        """Executes ``nodes`` as they stand in the script (line numbers kept) in ``namespace``; an exception they
        raise becomes a one-sentence :class:`NotAReference` naming ``what`` they are (:meth:`running`)."""
        code = compile(ast.Module(body=list(nodes), type_ignores=[]), str(self.path), "exec")
        with self.running(what):
            exec(code, namespace)  # noqa: S102 - the point of the tool: the reference's own statements

    @contextlib.contextmanager
    def running(self, what: str) -> Iterator[None]:
        """Around anything that runs or reads the checkout's code: an exception becomes one sentence naming the
        script, the line of it and of the checkout's module the traceback ends in, and the exception."""
        try:
            yield
        except NotAReference:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the checkout's code raises, reported in one sentence
            raise NotAReference(f"--reference {self.root}: {self.name}'s {what} failed{self._where(exc)}: "
                                f"{_one_line(exc)}") from None

    def _where(self, exc: BaseException) -> str:
        """`` at <script>:<line>`` (and ``, in <module>:<line>``) from the traceback's frames in the checkout."""
        frames = []
        for frame in traceback.extract_tb(exc.__traceback__):
            try:
                frames.append((Path(frame.filename).resolve().relative_to(self.root), frame))
            except ValueError:
                continue  # not the checkout's: the tool, torch, ratbench

        def line(rel: Path, frame: traceback.FrameSummary) -> str:  # the statements run as a module: no name
            return f"{rel}:{frame.lineno}" + (f" ({frame.name})" if frame.name != "<module>" else "")

        own = [line(rel, frame) for rel, frame in frames if rel == Path(self.name)]
        where = f" at {own[-1]}" if own else ""
        if frames and frames[-1][0] != Path(self.name):
            where += f"{',' if where else ''} in {line(*frames[-1])}"
        return where


def _one_line(exc: BaseException) -> str:
    """``Type: the message's first line`` (torch's messages run over several lines)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def reference_commit(root: Path) -> Optional[str]:
    """The short commit of ``root`` where it is the top of a git work tree (`` with local changes`` appended where
    tracked files differ from it); None otherwise, or where git is missing or fails."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return None  # a folder inside some other repository: its HEAD is not the checkout's
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + (" with local changes" if dirty else "")


def stub_gym() -> None:
    """utils/convnet.py's ``import gym`` (unused for MLPs): an empty module where gym is not installed."""
    if "gym" not in sys.modules and importlib.util.find_spec("gym") is None:
        sys.modules["gym"] = types.ModuleType("gym")


# ---------------------------------------------------------------------------------------------------------------
# the two sides

class TorchNormals(np.random.Generator):
    """The generator handed to ratbench for ``--arch shared``: numpy's PCG64 stream for everything (so the same
    minibatch partitions as ``np.random.default_rng(seed)``), except ``standard_normal``, ratbench's one draw of
    the value likelihood's noise (``value_noise``), which comes from a torch generator: the stream that
    train_shared.py's ``torch.randn`` noise comes from (module docstring). Its copies are plain Generators."""

    def __init__(self, seed: int, noise: torch.Generator):
        super().__init__(np.random.PCG64(seed))
        self.noise = noise

    def standard_normal(self, size: Union[int, tuple[int, ...], None] = None, dtype: Any = np.float64,
                        out: Optional[np.ndarray] = None) -> np.ndarray:  # noqa: D102 - numpy's signature
        if not isinstance(size, (int, np.integer)) or dtype is not np.float64 or out is not None:
            raise NotImplementedError(f"the tool replays standard_normal(n) only, not standard_normal({size!r}, "
                                      f"{dtype!r}, out={out!r})")
        return torch.randn(int(size), generator=self.noise, dtype=torch.float64).numpy()


def _ratbench_config(arch: str, solver: str, variant: str, sizes: Sizes) -> dict[str, Any]:
    """ratbench's config for one comparison: ``--env hopper --preset reference [--arch shared] --solver <solver>``
    at ``sizes`` (a batch of 2 envs x batch / 2 steps, so the solver's block is the minibatch); for ``shared``
    PopArt off (``value_norm=none``, module docstring), for ``clamped`` the KL rule off, then ``--ratbench-set``'s
    overrides. Raises ratbench's RatbenchError (one sentence) for an override it refuses."""
    from ratbench.training import resolve_config

    sets = [f"model.hidden=[{sizes.hidden}, {sizes.hidden}]", f"npg.epochs={sizes.epochs}",
            f"npg.minibatches={sizes.minibatches}", "num_envs=2", f"num_steps={sizes.batch // 2}"]
    if variant == "clamped":
        sets.append("npg.kl_adaptive=false")
    explicit = {"env": "hopper", "preset": "reference", "solver": solver, "seed": sizes.seed}
    if arch == "shared":
        explicit["arch"] = "shared"
        sets.append("value_norm=none")
    return resolve_config(explicit, sets=[*sets, *sizes.ratbench_sets])


def _ratbench_agent(arch: str, solver: str, variant: str, sizes: Sizes
                    ) -> tuple[dict[str, Any], Agent, np.random.Generator, Union[NPG, JointNPG, ReferenceKFAC]]:
    """ratbench's side (:func:`_ratbench_config`), on a 5-dimensional observation and a 2-dimensional action, the
    generator a :class:`TorchNormals` for ``shared``; returns (config, agent, the generator handed to
    make_algorithm, the algorithm)."""
    import gymnasium

    from ratbench.training.agent import Agent
    from ratbench.training.algorithms import make_algorithm

    config = _ratbench_config(arch, solver, variant, sizes)
    torch.manual_seed(sizes.seed)
    spaces = gymnasium.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gymnasium.spaces.Box(-1.0, 1.0, (ACT_DIM,))
    agent = Agent(config, *spaces)
    rng: np.random.Generator
    if arch == "shared":
        rng = TorchNormals(sizes.seed, torch.Generator().manual_seed(NOISE_SEED))
    else:
        rng = np.random.default_rng(sizes.seed)
    return config, agent, rng, make_algorithm(config, agent, rng)


def _linear_pairs(ours: list[torch.nn.Linear], theirs: list[torch.nn.Linear]
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ratbench, reference) weight and bias of each Linear, in order; the shapes must agree."""
    if [m.weight.shape for m in ours] != [m.weight.shape for m in theirs]:
        raise ValueError(f"layer shapes differ: ratbench {[tuple(m.weight.shape) for m in ours]}, "
                         f"reference {[tuple(m.weight.shape) for m in theirs]}")
    return [pair for a, b in zip(ours, theirs) for pair in ((a.weight, b.weight), (a.bias, b.bias))]


def _linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _pairs(policy: GaussianPolicy, pi_net: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ratbench tensor, reference tensor) for every policy parameter: the log-std, then each Linear's weight and
    bias in order (ratbench's body against MuSigmaNet's mu_net and mu_linear)."""
    return [(policy.log_std, pi_net.shared_sigma[0]),
            *_linear_pairs(_linears(policy.body), [*_linears(pi_net.mu_net), pi_net.mu_linear])]


def _shared_pairs(model: ActorCritic, actor_critic: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same for the whole shared network: the log-std, the trunk's Linears, the policy head (ratbench's policy
    body, trunk then head, against SharedActorCritic's backbone_net and pi_head), then the value head (ratbench's
    last critic layer against last_v_layer, an nn.Linear with PopArt off)."""
    if not isinstance(actor_critic.last_v_layer, torch.nn.Linear):
        raise TypeError(f"the value head is a {type(actor_critic.last_v_layer).__name__}, not the nn.Linear of "
                        f"with_popart: False")
    ours = [*_linears(model.policy.body), model.critic[-1]]
    theirs = [*_linears(actor_critic.backbone_net), actor_critic.pi_head, actor_critic.last_v_layer]
    return [(model.policy.log_std, actor_critic.shared_sigma[0]), *_linear_pairs(ours, theirs)]


def _flat(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """The tensors, detached and flattened into one vector."""
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _relative(a: float, b: float) -> float:
    """|a - b| / |a| (|b| where a is 0)."""
    return abs(a - b) / abs(a) if a else abs(b)


@dataclass(frozen=True)
class Row:
    """One rollout's comparison."""

    steps: int  # optimiser steps so far
    gap: float  # ||theta_ref - theta_ratbench|| / ||theta_ref||
    lr_gap: float  # the step sizes' relative difference
    ref_lr: float
    our_lr: float
    moved: float  # ||theta_ref - theta_ref at the start|| / ||theta_ref at the start||: the reference's own motion


def _reference_configs(script: Script, arch: str, solver: str, variant: str, sizes: Sizes
                       ) -> tuple[types.SimpleNamespace, types.SimpleNamespace]:
    """(algo_config, nets_config) of the solver's config file at ``sizes`` (mappings with string keys, checked by
    :class:`Script`); for ``shared`` PopArt off (``with_popart: False``); for ``clamped`` the KL rule off."""
    ref_config = script.configs[solver]
    algo_config = types.SimpleNamespace(**ref_config["algo_config"])
    nets_config = types.SimpleNamespace(**ref_config["nets_config"])
    if arch == "separate":
        algo_config.pi_epochs, algo_config.pi_minibatches = sizes.epochs, sizes.minibatches
        nets_config.a_hidden_size = nets_config.c_hidden_size = sizes.hidden
        nets_config.a_num_layers = nets_config.c_num_layers = 2
    else:
        algo_config.epochs, algo_config.minibatches = sizes.epochs, sizes.minibatches
        algo_config.with_popart = False
        nets_config.hidden_size, nets_config.num_layers = sizes.hidden, 2
    if variant == "clamped":
        algo_config.use_kl_adaptive_lr = False
    return algo_config, nets_config


def compare(checkout: Checkout, arch: str, solver: str, variant: str, sizes: Sizes) -> list[Row]:
    """Runs both sides through ``sizes.rollouts`` rollouts; one :class:`Row` per rollout. Expects the process
    prepared by :func:`prepare` (float64 default dtype, the checkout importable). Whatever the checkout's code
    raises, and a network or optimiser of it that the tool cannot read, becomes a one-sentence
    :class:`NotAReference` (:meth:`Script.running`); ratbench's side is not wrapped (its errors are ratbench's)."""
    from ratbench.training.algorithms.minibatch import minibatches
    from ratbench.training.rollout import Batch

    script = checkout.scripts[arch]
    update_name, statements, program = script.updates[solver], script.phases[solver], script.program
    algo_config, nets_config = _reference_configs(script, arch, solver, variant, sizes)
    _, agent, rng, algorithm = _ratbench_agent(arch, solver, variant, sizes)
    policy = agent.policy
    ns: dict[str, Any] = {"__name__": f"{Path(script.name).stem}_verbatim", "algo": script.configs[solver]["algo"],
                          "algo_config": algo_config, "nets_config": nets_config, "device": "cpu", "act_num": None,
                          "act_dim": ACT_DIM, "obs_space": types.SimpleNamespace(shape=(OBS_DIM,))}
    phases = [*statements["network"], *statements["setup"], *statements["minibatch"], *statements["kl_rule"]]
    with contextlib.redirect_stdout(io.StringIO()):  # RunningMeanStd and KFACOptimizer print as they are built
        script.run(script.imports(phases), ns, "imports")
        script.run(statements["network"], ns, "network (train_fn()'s actor_critic)")
    with script.running("network (its parameters, against ratbench's)"):
        actor_critic = ns["actor_critic"]
        if arch == "separate":
            pairs, old_outputs = _pairs(policy, actor_critic.pi_net), actor_critic.pi_net
        else:
            pairs, old_outputs = _shared_pairs(agent.model, actor_critic), actor_critic.forward_pi
        with torch.no_grad():
            for ours, theirs in pairs:
                theirs.copy_(ours.reshape(theirs.shape))
    if sizes.perturb:  # the dynamics' amplification of a tiny difference (module docstring)
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for ours, _ in pairs:
                ours.mul_(1 + sizes.perturb * torch.randn(ours.shape, generator=gen))
    start = _flat(t for _, t in pairs).clone()
    with contextlib.redirect_stdout(io.StringIO()):
        script.run(statements["setup"], ns, "learn() set-up")
    with script.running(f"learn() selection of {program.select}"):
        selected = getattr(ns[program.select], "__name__", repr(ns[program.select]))
    if selected != update_name:
        raise NotAReference.unusable(checkout.root, f"{script.name}'s learn() bound {program.select} to {selected}, "
                                                    f"expected {update_name}")

    gen = torch.Generator().manual_seed(DATA_SEED)
    n, rows, steps = sizes.batch, [], 0
    for _ in range(sizes.rollouts):
        obs = torch.randn(n, OBS_DIM, generator=gen)
        with torch.no_grad():
            dist = policy.distribution(obs)
            act = dist.mean + dist.stddev * torch.randn(n, ACT_DIM, generator=gen)
            old_log_probs = dist.log_prob(act)
            with script.running("policy network (its forward pass, for outputs_old)"):
                outputs_old = old_outputs(obs)
        if variant == "clamped":
            old_log_probs = old_log_probs.clone()
            old_log_probs[::5] -= 3.0
            old_log_probs[1::7] += 3.0
            log_std = (-old_log_probs - ACT_DIM * 0.5 * math.log(2 * math.pi)) / ACT_DIM
            outputs_old = torch.cat([act, log_std[:, None].expand(-1, ACT_DIM)], dim=-1)
        adv = 1.0 + 3.0 * torch.randn(n, generator=gen)
        ret = 0.1 * torch.randn(n, generator=gen) if arch == "shared" else adv.clone()
        replay = copy.deepcopy(rng)  # the generator the update is about to draw its minibatches from
        indices = [idx for _ in range(sizes.epochs) for idx in minibatches(n, sizes.minibatches, replay)]
        noise = rng.noise.get_state() if isinstance(rng, TorchNormals) else None
        algorithm.update(Batch(obs=obs, actions=act, log_probs=old_log_probs, values=torch.zeros(n),
                               advantages=adv, returns=ret), 0.0)
        if noise is not None:  # the reference's torch.randn noise: the draws ratbench's standard_normal just made
            torch.set_rng_state(noise)
        ns.update(obs=obs, act=act, adv=adv, ret=ret, outputs_old=outputs_old)
        for idx in indices:
            ns["mbinds"] = idx
            script.run(statements["minibatch"], ns, f"minibatch step ({update_name})")
        script.run(statements["kl_rule"], ns, "KL step-size rule")
        steps += len(indices)
        ref, ours = _flat(t for _, t in pairs), _flat(t for t, _ in pairs)
        with script.running(f"optimiser ({program.optimizer}'s step size)"):
            ref_lr = float(ns[program.optimizer].param_groups[0]["lr"])
        our_lr = float(algorithm.lr)
        rows.append(Row(steps, float((ref - ours).norm() / ref.norm()), _relative(ref_lr, our_lr), ref_lr, our_lr,
                        float((ref - start).norm() / start.norm())))
    return rows


def prepare(checkout: Checkout) -> None:
    """float64 by default, one thread, the checkout first on sys.path, gym stubbed where absent, and kfac.py's
    deprecation warnings (``p.data.add_(-lr, d_p)``, ``register_backward_hook``) silenced."""
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    stub_gym()
    for name in ("utils", "kfac"):
        module = sys.modules.get(name)
        if module is not None and not str(getattr(module, "__file__", "")).startswith(str(checkout.root)):
            raise NotAReference(f"a module named {name} is already imported from elsewhere "
                                f"({getattr(module, '__file__', None)}); run the tool in a fresh process")
    sys.path.insert(0, str(checkout.root))
    warnings.filterwarnings("ignore", message=r"This overload of add_ is deprecated")
    warnings.filterwarnings("ignore", message=r"Using a non-full backward hook")


# ---------------------------------------------------------------------------------------------------------------

def _size_warning(args: argparse.Namespace) -> Optional[str]:
    """One sentence where a sizes option differs from the defaults the tolerance was derived at; None otherwise."""
    changed = [f"--{name} {getattr(args, name)}" for name, default in DEFAULT_SIZES.items()
               if getattr(args, name) != default]
    if not changed:
        return None
    defaults = ", ".join(f"--{name} {default}" for name, default in DEFAULT_SIZES.items())
    return (f"warning: the tolerance was derived at the default sizes ({defaults}), not at {', '.join(changed)}: "
            f"its kappa was measured there, so at these sizes the verdict is indicative (module docstring, "
            f"\"Other sizes\")")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help=f"a checkout of {REPOSITORY}")
    parser.add_argument("--arch", choices=[*ARCHS, "both"], default="both",
                        help="separate: train_detach.py; shared: train_shared.py (ratbench's --arch shared)")
    parser.add_argument("--solver", choices=[*SOLVERS, "all"], default="all",
                        help="all: every solver the architecture has (shared: no cg)")
    parser.add_argument("--variant", choices=[*VARIANTS, "both"], default="both")
    parser.add_argument("--epochs", type=int, default=DEFAULT_SIZES["epochs"])
    parser.add_argument("--minibatches", type=int, default=DEFAULT_SIZES["minibatches"])
    parser.add_argument("--rollouts", type=int, default=DEFAULT_SIZES["rollouts"])
    parser.add_argument("--batch", type=int, default=DEFAULT_SIZES["batch"],
                        help="samples per rollout, a multiple of --minibatches")
    parser.add_argument("--hidden", type=int, default=DEFAULT_SIZES["hidden"], help="width of the two hidden layers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--perturb", type=float, default=0.0,
                        help="perturb ratbench's initial weights by this relative amount (a sensitivity probe)")
    parser.add_argument("--ratbench-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a ratbench --set override of ratbench's side only, after the tool's own (repeatable; "
                             "a probe: --ratbench-set npg.momentum=0 must fail)")
    args = parser.parse_args(argv)
    for name in DEFAULT_SIZES:
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be positive")
    if args.batch % args.minibatches or args.batch % 2:
        parser.error(f"--batch {args.batch} must be even and a multiple of --minibatches {args.minibatches}")
    arches = ARCHS if args.arch == "both" else (args.arch,)
    runs = [(arch, solver) for arch in arches for solver in PROGRAMS[arch].configs
            if args.solver in ("all", solver)]
    if not runs:
        print("--arch shared --solver cg: train_shared.py has no fvp update (its learn() selects rat, diag or kfac), "
              "and ratbench refuses the joint update with cg.", file=sys.stderr)
        return 2
    sizes = Sizes(args.epochs, args.minibatches, args.rollouts, args.batch, args.hidden, args.seed, args.perturb,
                  tuple(args.ratbench_set))
    variants = list(VARIANTS) if args.variant == "both" else [args.variant]
    if sizes.ratbench_sets:
        from ratbench.errors import RatbenchError

        try:
            for arch, solver in runs:
                for variant in variants:
                    _ratbench_config(arch, solver, variant, sizes)
        except RatbenchError as exc:
            print(f"--ratbench-set: {exc}", file=sys.stderr)
            return 2
    steps = args.epochs * args.minibatches * args.rollouts
    worst: tuple[float, float, float, str] = (0.0, 0.0, tolerance(steps), "")  # gap / tolerance, gap, tolerance, run
    still: list[str] = []  # runs over which the reference's parameters did not move
    size_warning = _size_warning(args)
    try:
        checkout = Checkout(args.reference.expanduser().resolve(), tuple(sorted({a for a, _ in runs}, key=ARCHS.index)))
        commit = reference_commit(checkout.root)
        if commit is not None:
            print(f"reference: {checkout.root} at commit {commit} (ratbench follows {REPOSITORY}'s main branch at "
                  f"{REFERENCE_COMMIT})", flush=True)
        if size_warning:
            print(size_warning, file=sys.stderr, flush=True)
        prepare(checkout)
        if args.arch == "both" and args.solver == "cg":
            print("shared   cg: train_shared.py has no fvp update; only train_detach.py's is compared", flush=True)
        for arch, solver in runs:
            script, tol = checkout.scripts[arch], tolerance(steps, condition(arch, solver))
            for variant in variants:
                start = time.perf_counter()
                rows = compare(checkout, arch, solver, variant, sizes)
                for r, row in enumerate(rows, 1):
                    print(f"{arch:<8} {solver:<8} {variant:<7} rollout {r}/{len(rows)} ({row.steps:>3} steps): "
                          f"parameters rel gap {row.gap:.1e}, step size {row.ref_lr:.6g} vs {row.our_lr:.6g} "
                          f"(rel gap {row.lr_gap:.1e}), reference moved {row.moved:.1e}", flush=True)
                    gaps = (row.gap, row.lr_gap)
                    worse = max(gaps) if all(math.isfinite(g) for g in gaps) else math.inf
                    worst = max(worst, (worse / tol, worse, tol, f"{arch} {solver} {variant} rollout {r}"))
                if rows[-1].moved == 0:  # a gap of 0 would prove nothing (NaN fails through the gap's inf)
                    still.append(f"{arch} {solver} {variant}")
                flag = " --arch shared" if arch == "shared" else ""
                print(f"{arch:<8} {solver:<8} {variant:<7} {script.name} {script.updates[solver]} "
                      f"({PROGRAMS[arch].configs[solver]}) against ratbench --preset reference{flag} "
                      f"--solver {solver}: {time.perf_counter() - start:.1f} s, tolerance {tol:.1e}", flush=True)
    except NotAReference as exc:
        print(exc, file=sys.stderr)
        return 2
    caveat = " (tolerance derived at the default sizes, not these: see the warning)" if size_warning else ""
    if still:
        print(f"verdict: FAIL: the reference's parameters did not move over {', '.join(still)} "
              f"(||theta_end - theta_0|| = 0): its update ran but changed nothing, so there is nothing to compare")
        return 1
    ratio, gap, tol, where = worst
    ok = ratio <= 1
    kappa = f"kappa {tol / tolerance(steps, 1.0):.0e}".replace("e+0", "e")
    print(f"verdict: {'PASS' if ok else 'FAIL'}: largest gap against its tolerance {gap:.1e} ({where}) "
          f"{'<=' if ok else '>'} {tol:.1e} ({kappa} x 1e3 u x {steps} steps){caveat}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
