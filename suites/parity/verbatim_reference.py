"""The reference's own actor updates, run verbatim from its train_detach.py beside ratbench's ``--preset reference``.

ratbench's parity tests (tests/ratbench/training/test_reference_preset.py, docs/reference-preset.md) check the
preset against restatements of agent-lab/ICML2026-RAT's updates written for the tests. This tool runs the
reference's code itself, taken from a checkout: for each solver it reads the config train_detach.py is run with
(``kaczmarz``: configs/rat_mlp.yaml, ``cg``: fvp_mlp.yaml, ``diagonal``: diag_mlp.yaml, ``kfac``: kfac_mlp.yaml),
finds which update that config's ``algo`` selects in ``learn()``'s ``if algo in {...}: update_actor = ...`` chain
(rat -> RAT_ActorUpdate, fvp -> TrustRegion_ActorUpdate, diag -> diag_ActorUpdate, kfac -> KFAC_ActorUpdate),
and executes, compiled from the parsed source (so tracebacks carry train_detach.py's line numbers), unchanged:

- the module's import statements that bind a name the statements below use (so utils/cg.py, utils/utils.py and
  kfac/kfac.py are the checkout's own);
- from ``train_fn``: ``build_mlp`` and the ``actor_critic = ActorCritic(...)`` statement, the reference's networks;
- from ``learn``: ``params_pi``, ``dict_params``, ``dict_buffers``, the ``pi_optimizer`` block (SGD with momentum
  1e-6, or kfac/kfac.py's KFACOptimizer), ``pi_scheduler``, ``make_flat``, ``get_flat_grad``, the selected update
  function, the selection chain itself, and after each rollout the ``if algo_config.use_kl_adaptive_lr:`` block.

Written here, not taken from the reference: the data and the loop around the update calls. Each rollout draws
observations ~ N(0, 1) (batch x 5), actions from ratbench's policy, advantages ~ 1 + 3 N(0, 1) (generator seed 1),
gives ratbench a :class:`~ratbench.training.rollout.Batch` and the reference ``update_actor(obs[idx], act[idx],
adv[idx], outputs_old[idx])`` for ratbench's minibatches ``idx``, with ``outputs_old`` the policy's outputs at the
update's start (what train_detach.py:517-519 recomputes after normalising the observations). Both start from
ratbench's initial weights (``torch.manual_seed(seed)``), copied into the reference's MuSigmaNet layer by layer.
Everything outside the actor update (observation statistics, PopArt, the critic) is left out: ratbench's critic
runs but is not compared.

The minibatch indices: ratbench's updates (``NPG.update``, ``ReferenceKFAC.update``) draw each epoch's partition
with the public ``ratbench.training.algorithms.minibatch.minibatches(n, count, rng)`` from the generator handed to
``make_algorithm``, before anything else in the update draws from it. The tool keeps that generator, copies it
before each update, and replays ``minibatches`` on the copy epoch by epoch; nothing of ratbench is patched. Were
the order of the draws to change, the reference would see other minibatches and the gap would show it. The batch
must be a multiple of the minibatch count, where ratbench's ``np.array_split`` and the reference's slices of
``pi_minibatch_size = batch // pi_minibatches`` make the same minibatches.

Two variants of the old log-probs (``--variant``, both by default):

- ``fresh``: the rollout policy's, as in a run; the ratios start at 1 and the KL step-size rule is on (the last
  minibatch's exact KL before its step, target 0.008, train_detach.py:524-530 against ``npg.kl_rule``);
- ``clamped``: every 5th old log-prob lowered by 3 and every 7th (from the 2nd) raised by 3, so those ratios start
  near e^3 ~ 20 and e^-3 ~ 0.05, outside the clamp [0.1, 10]. The reference reads old log-probs only through
  ``outputs_old``, so it gets, per sample, the mean ``act`` and the log-std whose Gaussian log-density of ``act``
  is the shifted old log-prob. Its KL, measured from those outputs, then no longer is the KL from the policy at
  the update's start that ratbench's rule reads (in train_detach.py the two coincide, as outputs_old is always
  recomputed from the current policy), so this variant turns the KL rule off on both sides, through their own
  configs (``use_kl_adaptive_lr: False``; ``npg.kl_adaptive=false``).

Each line gives, after a rollout, ||theta_ref - theta_ratbench|| / ||theta_ref|| over the policy's parameters (the
log-std and every Linear layer) and the two step sizes' relative difference. The verdict fails when either exceeds

    tol = kappa * c * u * steps,  kappa = 1e3, c = 1e3, u = 2^-53, steps = epochs x minibatches x rollouts,

1.07e-8 at the defaults (96 steps). Why: everything runs in float64 (``torch.set_default_dtype``, so the tensors
the reference creates itself, such as RAT's ``torch.eye``, are float64 too: a float32 ``0.1 * eye`` would move
its damping by 1.5e-8 relative). The two programs compute the same quantities in exact arithmetic but in other
orders (ratbench solves RAT's system in its symmetric form where the reference calls ``torch.linalg.solve`` on
``K diag(r) + lambda I``; its CG multiplies by a KL-Hessian operator of its own where the reference
double-backpropagates ``_ent_kl``; its K-FAC is a port of kfac.py), so one step's results differ by rounding: at
most the condition number kappa of what the step solves times the relative error c u of the sums and products
that build the system and its right-hand side.

- kappa = 1e3 bounds the systems here. Measured at the defaults: 21 for cg's H + 0.1 I and at most
  (10 x 2.02 + 0.1) / 0.1 = 203 for RAT's K diag(r) + 0.1 I (r <= 10) on the first minibatch; 6.6 for the
  diagonal's F + 0.1; 2 to 10 for K-FAC's d_g d_a^T + 1e-3 after the first rollout, 206 after the third (A's
  smallest eigenvalues decay from the identity by 0.95 a step).
- c = 1e3 bounds the n u of a sum of n terms (Higham's gamma_n) over the ~400 parameters and the minibatch,
  chained through CG's 10 iterations.
- A step moves theta by about lr x clip (0.05 x 0.5 in L2; cg's d^T (H + 0.1 I) d <= 0.5 allows 0.11), less
  than ||theta|| (3.4 at the start), so its error relative to ||theta|| is at most kappa c u.
- The steps' errors add rather than grow: ``--perturb 1e-13`` (ratbench's initial weights moved by 1e-13
  relative) ends 96 steps later at 0.9e-13 to 1.6e-13 for every solver, cg's own rounding aside.

Measured against it: the largest one-step jump is 3e4 u (cg), the largest gap after 96 steps 1.7e-11 (cg), 600x
below the tolerance. What it catches: dropping the reference's SGD momentum of 1e-6 on ratbench's side
(``npg.momentum=0``: g_k becomes the plain clipped step) moves RAT's parameters by 1.2e-7; a damping 1e-5
larger (relative) by 2.8e-7; ratbench's corrected RAT, or the fvp clip in the Fisher norm, by 2e-2 to 7e-2 and
the step size by half. A constant off by 1e-8 relative passes unseen (the gap is 0.03 to 0.5 times a constant's
relative change); the dense parity tests in tests/ratbench/training hold the preset to 1e-8 over two rollouts
of two minibatches.

Not from the checkout: ``gym``. utils/convnet.py imports it at the top and never uses it for MLPs; where it is not
installed (ratbench uses gymnasium), an empty module stands in for it.

    python suites/parity/verbatim_reference.py --reference /path/to/ICML2026-RAT [--solver all] [--variant both]

Measured with the defaults (4 epochs x 8 minibatches x 3 rollouts, batch 96, hidden 16 x 16, seed 0; float64,
one CPU thread, about 3 s per solver and variant), the largest gap over the three rollouts, fresh / clamped:
kaczmarz (RAT_ActorUpdate) 2.8e-16 / 3.5e-16, cg (TrustRegion_ActorUpdate) 9.6e-12 / 1.7e-11, diagonal
(diag_ActorUpdate) 1.4e-16 / 1.2e-16, kfac (KFAC_ActorUpdate) 1.3e-15 / 2.4e-15; the step sizes agree exactly.
docs/reference-preset.md ("The reference's code, run verbatim") says the same.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.util
import io
import math
import sys
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import yaml

REPOSITORY = "agent-lab/ICML2026-RAT"
CONFIGS = {"kaczmarz": "rat_mlp.yaml", "cg": "fvp_mlp.yaml", "diagonal": "diag_mlp.yaml", "kfac": "kfac_mlp.yaml"}
VARIANTS = ("fresh", "clamped")
OBS_DIM, ACT_DIM = 5, 2
UNIT_ROUNDOFF = 2.0 ** -53
CONDITION, ROUNDING = 1e3, 1e3  # kappa and c of the module docstring's tolerance
# what learn() sets up before the update functions, by the names its statements bind
SETUP = ("params_pi", "dict_params", "dict_buffers", "pi_optimizer", "pi_scheduler", "make_flat", "get_flat_grad")
KL_RULE = "algo_config.use_kl_adaptive_lr"


def tolerance(steps: int) -> float:
    """The largest relative gap accepted after ``steps`` optimiser steps (module docstring)."""
    return CONDITION * ROUNDING * UNIT_ROUNDOFF * steps


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
    """train_detach.py of a reference checkout, parsed; its statements compiled where they stand."""

    def __init__(self, root: Path):
        self.root = root
        if not root.exists():
            raise NotAReference(f"--reference {root} does not exist")
        if not root.is_dir():
            raise NotAReference(f"--reference {root} is a file, not a checkout of {REPOSITORY}")
        for needed in ("train_detach.py", "utils/cg.py", "utils/utils.py", "kfac/kfac.py",
                       *(f"configs/{c}" for c in CONFIGS.values())):
            if not (root / needed).is_file():
                raise NotAReference(f"--reference {root} is not a checkout of {REPOSITORY}: no {needed}")
        self.path = root / "train_detach.py"
        try:
            self.tree = ast.parse(self.path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError) as exc:
            raise NotAReference.unusable(root, f"train_detach.py does not parse ({exc})") from None
        self.learn = self._function(self.tree.body, "learn", "train_detach.py")
        self.train_fn = self._function(self.tree.body, "train_fn", "train_detach.py")
        self.configs, self.updates, self.phases = {}, {}, {}
        for solver, name in CONFIGS.items():
            try:
                config = yaml.safe_load((root / "configs" / name).read_text(encoding="utf-8"))
            except yaml.YAMLError:
                config = None
            if not isinstance(config, dict) or not {"algo", "algo_config", "nets_config"} <= config.keys():
                raise NotAReference.unusable(root, f"configs/{name} does not set algo, algo_config and nets_config")
            self.configs[solver] = config
            self.updates[solver] = self._selected_update(config["algo"])
            self.phases[solver] = self._statements(self.updates[solver])

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
        """The update function learn()'s ``if algo in {...}: update_actor = ...`` chain picks for ``algo``."""
        chain = self._binding(self.learn.body, {"update_actor"}, "learn()")[0]
        while isinstance(chain, ast.If):
            test, first = chain.test, chain.body[0]
            if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "algo"
                    and isinstance(test.ops[0], ast.In) and isinstance(test.comparators[0], ast.Set)
                    and algo in ast.literal_eval(test.comparators[0])
                    and isinstance(first, ast.Assign) and isinstance(first.value, ast.Name)):
                return first.value.id
            chain = chain.orelse[0] if chain.orelse else None
        raise NotAReference.unusable(self.root, f"learn() selects no update for algo {algo!r}")

    def _statements(self, update: str) -> dict[str, list[ast.stmt]]:
        """The statements the tool executes, by phase (module docstring)."""
        network = self._binding(self.train_fn.body, {"fn_neural_nets", "actor_critic"}, "train_fn()")
        setup = self._binding(self.learn.body, set(SETUP), "learn()")
        update_def = self._function(self.learn.body, update, "learn()")
        select = self._binding(self.learn.body, {"update_actor"}, "learn()")
        kl_rule = [n for n in ast.walk(self.learn) if isinstance(n, ast.If) and ast.unparse(n.test) == KL_RULE]
        if not kl_rule:
            raise NotAReference.unusable(self.root, f"learn() has no `if {KL_RULE}:` step-size rule")
        return {"network": network, "setup": setup + [update_def] + select, "kl_rule": kl_rule[:1]}

    def imports(self, nodes: list[ast.stmt]) -> list[ast.stmt]:
        """The module's import statements that bind a name ``nodes`` read."""
        wanted = _reads(nodes)
        return [n for n in self.tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and _binds(n) & wanted]

    def run(self, nodes: list[ast.stmt], namespace: dict[str, Any]) -> None:
        """Executes ``nodes`` as they stand in train_detach.py (line numbers kept) in ``namespace``."""
        code = compile(ast.Module(body=list(nodes), type_ignores=[]), str(self.path), "exec")
        exec(code, namespace)  # noqa: S102 - the point of the tool: the reference's own statements


def stub_gym() -> None:
    """utils/convnet.py's ``import gym`` (unused for MLPs): an empty module where gym is not installed."""
    if "gym" not in sys.modules and importlib.util.find_spec("gym") is None:
        sys.modules["gym"] = types.ModuleType("gym")


# ---------------------------------------------------------------------------------------------------------------
# the two sides

def _ratbench_agent(solver: str, variant: str, sizes: Sizes):
    """ratbench's side: ``--env hopper --preset reference --solver <solver>`` at ``sizes`` (a batch of
    2 envs x batch / 2 steps, so the solver's block is the minibatch), on a 5-dimensional observation and a
    2-dimensional action; returns (config, agent, the generator handed to make_algorithm, the algorithm)."""
    import gymnasium

    from ratbench.training import resolve_config
    from ratbench.training.agent import Agent
    from ratbench.training.algorithms import make_algorithm

    sets = [f"model.hidden=[{sizes.hidden}, {sizes.hidden}]", f"npg.epochs={sizes.epochs}",
            f"npg.minibatches={sizes.minibatches}", "num_envs=2", f"num_steps={sizes.batch // 2}"]
    if variant == "clamped":
        sets.append("npg.kl_adaptive=false")
    config = resolve_config({"env": "hopper", "preset": "reference", "solver": solver, "seed": sizes.seed}, sets=sets)
    torch.manual_seed(sizes.seed)
    spaces = gymnasium.spaces.Box(-np.inf, np.inf, (OBS_DIM,)), gymnasium.spaces.Box(-1.0, 1.0, (ACT_DIM,))
    agent = Agent(config, *spaces)
    rng = np.random.default_rng(sizes.seed)
    return config, agent, rng, make_algorithm(config, agent, rng)


def _pairs(policy, pi_net) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ratbench tensor, reference tensor) for every policy parameter: the log-std, then each Linear's weight and
    bias in order (ratbench's body against MuSigmaNet's mu_net and mu_linear)."""
    ours = [m for m in policy.body.modules() if isinstance(m, torch.nn.Linear)]
    theirs = [m for m in pi_net.mu_net.modules() if isinstance(m, torch.nn.Linear)] + [pi_net.mu_linear]
    if [m.weight.shape for m in ours] != [m.weight.shape for m in theirs]:
        raise RuntimeError(f"layer shapes differ: ratbench {[tuple(m.weight.shape) for m in ours]}, "
                           f"reference {[tuple(m.weight.shape) for m in theirs]}")
    pairs = [(policy.log_std, pi_net.shared_sigma[0])]
    for a, b in zip(ours, theirs):
        pairs += [(a.weight, b.weight), (a.bias, b.bias)]
    return pairs


def _flat(tensors) -> torch.Tensor:
    """The tensors, detached and flattened into one vector."""
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _relative(a: float, b: float) -> float:
    """|a - b| / |a| (|b| where a is 0)."""
    return abs(a - b) / abs(a) if a else abs(b)


Row = tuple[int, float, float, float, float]  # steps so far, parameter gap, step-size gap, step size ref, ratbench


def compare(checkout: Checkout, solver: str, variant: str, sizes: Sizes) -> list[Row]:
    """Runs both sides through ``sizes.rollouts`` rollouts; one :data:`Row` per rollout. Expects the process
    prepared by :func:`prepare` (float64 default dtype, the checkout importable)."""
    from ratbench.training.algorithms.minibatch import minibatches
    from ratbench.training.rollout import Batch

    ref_config, update_name, statements = checkout.configs[solver], checkout.updates[solver], checkout.phases[solver]
    algo_config = types.SimpleNamespace(**ref_config["algo_config"])
    algo_config.pi_epochs, algo_config.pi_minibatches = sizes.epochs, sizes.minibatches
    if variant == "clamped":
        algo_config.use_kl_adaptive_lr = False
    nets_config = types.SimpleNamespace(**ref_config["nets_config"])
    nets_config.a_hidden_size = nets_config.c_hidden_size = sizes.hidden
    nets_config.a_num_layers = nets_config.c_num_layers = 2

    _, agent, rng, algorithm = _ratbench_agent(solver, variant, sizes)
    policy = agent.policy
    ns: dict[str, Any] = {"__name__": "train_detach_verbatim", "algo": ref_config["algo"], "algo_config": algo_config,
                          "nets_config": nets_config, "device": "cpu", "act_num": None, "act_dim": ACT_DIM,
                          "obs_space": types.SimpleNamespace(shape=(OBS_DIM,))}
    phases = [*statements["network"], *statements["setup"], *statements["kl_rule"]]
    with contextlib.redirect_stdout(io.StringIO()):  # RunningMeanStd and KFACOptimizer print as they are built
        try:
            checkout.run(checkout.imports(phases), ns)
        except ImportError as exc:
            raise NotAReference(f"--reference {checkout.root}: train_detach.py's imports fail here ({exc})") from None
        checkout.run(statements["network"], ns)
    pi_net = ns["actor_critic"].pi_net
    pairs = _pairs(policy, pi_net)
    with torch.no_grad():
        for ours, theirs in pairs:
            theirs.copy_(ours.reshape(theirs.shape))
        if sizes.perturb:  # the dynamics' amplification of a tiny difference (module docstring)
            gen = torch.Generator().manual_seed(2)
            for ours, _ in pairs:
                ours.mul_(1 + sizes.perturb * torch.randn(ours.shape, generator=gen))
    with contextlib.redirect_stdout(io.StringIO()):
        checkout.run(statements["setup"], ns)
    update_actor = ns["update_actor"]
    if update_actor.__name__ != update_name:
        raise RuntimeError(f"learn() bound update_actor to {update_actor.__name__}, expected {update_name}")

    gen = torch.Generator().manual_seed(1)
    n, rows, steps = sizes.batch, [], 0
    for _ in range(sizes.rollouts):
        obs = torch.randn(n, OBS_DIM, generator=gen)
        with torch.no_grad():
            dist = policy.distribution(obs)
            act = dist.mean + dist.stddev * torch.randn(n, ACT_DIM, generator=gen)
            old_log_probs = dist.log_prob(act)
            outputs_old = pi_net(obs)
        if variant == "clamped":
            old_log_probs = old_log_probs.clone()
            old_log_probs[::5] -= 3.0
            old_log_probs[1::7] += 3.0
            log_std = (-old_log_probs - ACT_DIM * 0.5 * math.log(2 * math.pi)) / ACT_DIM
            outputs_old = torch.cat([act, log_std[:, None].expand(-1, ACT_DIM)], dim=-1)
        adv = 1.0 + 3.0 * torch.randn(n, generator=gen)
        replay = copy.deepcopy(rng)  # the generator the update is about to draw its minibatches from
        indices = [idx for _ in range(sizes.epochs) for idx in minibatches(n, sizes.minibatches, replay)]
        algorithm.update(Batch(obs=obs, actions=act, log_probs=old_log_probs, values=torch.zeros(n),
                               advantages=adv, returns=adv.clone()), 0.0)
        for idx in indices:
            _, _, pi_info = update_actor(obs[idx], act[idx], adv[idx], outputs_old[idx])
        ns["pi_info"] = pi_info
        checkout.run(statements["kl_rule"], ns)
        steps += len(indices)
        ref, ours = _flat(t for _, t in pairs), _flat(t for t, _ in pairs)
        ref_lr, our_lr = ns["pi_optimizer"].param_groups[0]["lr"], algorithm.lr
        rows.append((steps, float((ref - ours).norm() / ref.norm()), _relative(ref_lr, our_lr), ref_lr, our_lr))
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

def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help=f"a checkout of {REPOSITORY}")
    parser.add_argument("--solver", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--variant", choices=[*VARIANTS, "both"], default="both")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--minibatches", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=3)
    parser.add_argument("--batch", type=int, default=96, help="samples per rollout, a multiple of --minibatches")
    parser.add_argument("--hidden", type=int, default=16, help="width of the two hidden layers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--perturb", type=float, default=0.0,
                        help="perturb ratbench's initial weights by this relative amount (a sensitivity probe)")
    args = parser.parse_args(argv)
    for name in ("epochs", "minibatches", "rollouts", "batch", "hidden"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be positive")
    if args.batch % args.minibatches or args.batch % 2:
        parser.error(f"--batch {args.batch} must be even and a multiple of --minibatches {args.minibatches}")
    sizes = Sizes(args.epochs, args.minibatches, args.rollouts, args.batch, args.hidden, args.seed, args.perturb)
    tol = tolerance(args.epochs * args.minibatches * args.rollouts)
    solvers = list(CONFIGS) if args.solver == "all" else [args.solver]
    variants = list(VARIANTS) if args.variant == "both" else [args.variant]
    worst: tuple[float, str] = (0.0, "")
    try:
        checkout = Checkout(args.reference.expanduser().resolve())
        prepare(checkout)
        for solver in solvers:
            for variant in variants:
                start = time.perf_counter()
                rows = compare(checkout, solver, variant, sizes)
                for r, (steps, gap, lr_gap, ref_lr, our_lr) in enumerate(rows, 1):
                    print(f"{solver:<8} {variant:<7} rollout {r}/{len(rows)} ({steps:>3} steps): parameters rel gap "
                          f"{gap:.1e}, step size {ref_lr:.6g} vs {our_lr:.6g} (rel gap {lr_gap:.1e})", flush=True)
                    worse = max(gap, lr_gap) if math.isfinite(gap) and math.isfinite(lr_gap) else math.inf
                    worst = max(worst, (worse, f"{solver} {variant} rollout {r}"))
                print(f"{solver:<8} {variant:<7} {checkout.updates[solver]} ({CONFIGS[solver]}) against ratbench "
                      f"--preset reference --solver {solver}: {time.perf_counter() - start:.1f} s", flush=True)
    except NotAReference as exc:
        print(exc, file=sys.stderr)
        return 2
    ok = worst[0] <= tol
    print(f"verdict: {'PASS' if ok else 'FAIL'}: largest gap {worst[0]:.1e} ({worst[1]}) {'<=' if ok else '>'} "
          f"tolerance {tol:.1e} (1e6 u x {sizes.epochs * sizes.minibatches * sizes.rollouts} steps)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
