"""Speed measurements shared by ``ratbench speed`` and the asv suite (suites/speed).

A *workload* is a policy plus one synthetic on-policy minibatch (an
:class:`~ratbench.problem.NPGProblem`); a *method* is something timed on it:
a solver's direction (capture pass included) or one of two baselines,

- ``vanilla``: one forward and one backward of the policy-gradient surrogate
  ``(1/N) sum_i w_i A_i log pi(a_i | s_i)``, what a first-order method pays;
- ``per-sample``: the materialised route, J from ``torch.func`` per-sample
  gradients (:func:`ratbench.per_sample.per_sample_grads`), the dense Gram
  ``J J^T``, an N x N Cholesky solve and ``J^T u / N``.

Solver methods are configured as in the speed targets: ``kaczmarz`` is one
block step over the whole minibatch (block_size = N, one sweep: RAT's
training-loop step), ``kaczmarz-sweep`` a full sweep in blocks of 256,
``cg`` exactly 10 iterations.
"""

from __future__ import annotations

import copy
import functools
import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from ratbench.actor_critic import ActorCritic
from ratbench.errors import RatbenchError, unknown_name
from ratbench.benchmarking.measure import measure, synchronize
from ratbench.per_sample import per_sample_grads
from ratbench.policies import CategoricalPolicy, GaussianPolicy, Policy, categorical_mlp, gaussian_mlp
from ratbench.problem import NPGProblem, ValueTerm
from ratbench.reference import dense_jacobian
from ratbench.trunks import image_trunk
from solvers import Solver, make_solver

HUMANOID_OBS, HUMANOID_ACT = 348, 17  # Humanoid-v5 observation and action sizes
IMAGE_SHAPE, IMAGE_ACTIONS = (3, 32, 32), 6  # the CNN workload: small RGB frames, Atari-like action set
DAMPING = 0.1  # the reference RAT configuration's damping
SWEEP_BLOCK = 256  # block size of the ``kaczmarz-sweep`` method


@dataclass(frozen=True)
class FrameWorkload:
    """A pixel policy on uint8 frames: a trunk of :mod:`ratbench.trunks` at its published width and a
    categorical head over ``actions``; ``--size`` sets only N."""

    shape: tuple[int, int, int]
    trunk: str
    width: int
    actions: int = 6


FRAME_POLICIES = {
    "nature-cnn": FrameWorkload((4, 84, 84), "nature", 512),  # Atari: 84x84 grey, 4 stacked frames
    "minatar-cnn": FrameWorkload((4, 10, 10), "minatar", 128),  # MinAtar Breakout's 4 channels
}
JOINT_POLICY = "mlp-shared-joint"
"""train_shared.py's joint problem: a shared-trunk Gaussian actor-critic at Humanoid size, scores of log pi plus
the value term (N(0, 1) noise), every parameter, right-hand sides [A, 1] (:class:`ratbench.problem.ValueTerm`)."""
POLICIES = ("mlp-gaussian", "mlp-categorical", "cnn-categorical", "cnn-gaussian", *FRAME_POLICIES, JOINT_POLICY)
BASELINES = ("vanilla", "per-sample")
SOLVER_METHODS = ("woodbury", "kaczmarz", "kaczmarz-sweep", "cg", "diagonal", "kfac")
METHODS = SOLVER_METHODS + BASELINES
PRECISION_METHODS = ("woodbury-refined", "woodbury-float64")
"""Timed on request, beside ``woodbury`` in the workload's float32: its Gram and factor in float32 refined with
float64 residuals (``woodbury.refine``), and the whole solve on a float64 copy of the policy."""

# The materialised route is skipped where J and its copies would not fit comfortably:
# per_sample_grads holds the per-parameter gradients and their concatenation (2 N P floats).
PER_SAMPLE_MAX_BYTES = 4 * 2**30


@dataclass(frozen=True)
class Size:
    """Minibatch size N and hidden width of the two-layer policy body."""

    n: int
    width: int


SIZES = {"small": Size(256, 64), "default": Size(1024, 256), "large": Size(4096, 1024)}


@dataclass(frozen=True)
class Target:
    """A speed target: at most ``vanilla_max`` x a vanilla backward, at least
    ``per_sample_min`` x faster than the per-sample route (None: no target)."""

    vanilla_max: Optional[float] = None
    per_sample_min: Optional[float] = None


TARGETS = {
    "woodbury": Target(vanilla_max=8.0, per_sample_min=30.0),
    "kaczmarz": Target(vanilla_max=6.0),
    "cg": Target(vanilla_max=25.0),
    "diagonal": Target(vanilla_max=3.0),
    "kfac": Target(vanilla_max=6.0),
}
# Pixel workloads replace these targets by their own (issue 12: woodbury <= 10x on the Nature CNN).
POLICY_TARGETS = {"nature-cnn": {"woodbury": Target(vanilla_max=10.0)}, "minatar-cnn": {}}
# Peak-memory target: these never materialise the N x P Jacobian (stated at the large size; the
# Nature CNN's at N = 1,024, where its unfolded first-layer patches alone take about 0.4 GiB). A target
# is checked at sizes up to the N it is stated for: memory grows with N.
MEMORY_TARGET_BYTES = 2 * 2**30
POLICY_MEMORY_TARGET_BYTES = {"nature-cnn": 4 * 2**30}
POLICY_MEMORY_TARGET_MAX_N = {"nature-cnn": 1024}
MEMORY_TARGET_METHODS = ("woodbury", "kaczmarz")


def targets_for(policy: str) -> dict[str, Target]:
    """The speed targets that apply to ``policy``'s workload."""
    return POLICY_TARGETS.get(policy, TARGETS)


def memory_target_bytes(policy: str) -> int:
    return POLICY_MEMORY_TARGET_BYTES.get(policy, MEMORY_TARGET_BYTES)


def memory_target_applies(policy: str, n: int) -> bool:
    """Whether ``policy``'s peak-memory target is stated for a minibatch of ``n`` samples."""
    return n <= POLICY_MEMORY_TARGET_MAX_N.get(policy, SIZES["large"].n)


def obs_shape(policy: str) -> tuple[int, ...]:
    """The observation shape of ``policy``'s workload."""
    if policy in FRAME_POLICIES:
        return FRAME_POLICIES[policy].shape
    return IMAGE_SHAPE if policy.startswith("cnn") else (HUMANOID_OBS,)


def check_device(device: str) -> torch.device:
    """The torch device for ``cpu``/``cuda``; a clear error when CUDA is asked for and absent."""
    if device not in ("cpu", "cuda"):
        raise RatbenchError(f"unknown device {device!r}; valid devices: cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise RatbenchError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu")
    return torch.device(device)


def _cnn_body(width: int, n_out: int) -> nn.Sequential:
    """Two strided convolutions and a hidden Linear: (N, 3, 32, 32) -> (N, n_out)."""
    return nn.Sequential(
        nn.Conv2d(IMAGE_SHAPE[0], 16, kernel_size=5, stride=2),  # -> 16 x 14 x 14
        nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=3, stride=2),  # -> 32 x 6 x 6
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 6 * 6, width),
        nn.Tanh(),
        nn.Linear(width, n_out),
    )


def build_policy(kind: str, width: int) -> Policy:
    """A benchmark policy: ``mlp-*`` take Humanoid-sized (348,) observations with two
    hidden layers of ``width``; ``cnn-*`` take (3, 32, 32) images. Gaussian heads have a
    state-independent log-std (17 actions for MLPs, 6 for CNNs); categorical heads
    choose among 17 (MLP) or 6 (CNN) actions. ``nature-cnn`` and ``minatar-cnn`` (:data:`FRAME_POLICIES`)
    take uint8 frames, keep their published widths and ignore ``width``."""
    if kind == "mlp-gaussian":
        return gaussian_mlp(HUMANOID_OBS, HUMANOID_ACT, (width, width))
    if kind == "mlp-categorical":
        return categorical_mlp(HUMANOID_OBS, HUMANOID_ACT, (width, width))
    if kind == "cnn-categorical":
        return CategoricalPolicy(_cnn_body(width, IMAGE_ACTIONS))
    if kind == "cnn-gaussian":
        return GaussianPolicy(_cnn_body(width, IMAGE_ACTIONS), IMAGE_ACTIONS)
    if kind == JOINT_POLICY:
        return ActorCritic(HUMANOID_OBS, HUMANOID_ACT, hidden=(width, width), shared=True).policy
    if kind in FRAME_POLICIES:
        frames = FRAME_POLICIES[kind]
        trunk = image_trunk(frames.trunk, frames.shape, frames.width, scale=1.0 / 255)
        return CategoricalPolicy(nn.Sequential(trunk, nn.Linear(frames.width, frames.actions)))
    raise unknown_name("policy name", kind, POLICIES)


def build_problem(
    n: int, width: int, policy: str = "mlp-gaussian", device: str | torch.device = "cpu", seed: int = 0
) -> NPGProblem:
    """A synthetic on-policy minibatch: standard-normal observations, actions sampled
    from the policy, advantages centred to unit RMS, unit weights, damping 0.1 (for :data:`JOINT_POLICY`:
    right-hand sides [A, 1], the value term's noise N(0, 1), every parameter of the actor-critic)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if policy == JOINT_POLICY:
        return _joint_problem(n, width, device, generator)
    model = build_policy(policy, width)
    if policy in FRAME_POLICIES:
        obs = torch.randint(0, 256, (n, *obs_shape(policy)), generator=generator, dtype=torch.uint8)
    else:
        obs = torch.randn(n, *obs_shape(policy), generator=generator)
    with torch.no_grad():
        actions = model.act(obs)
    advantages = _unit_rms_advantages(n, generator)
    model = model.to(device)
    return NPGProblem(model, obs.to(device), actions.to(device), advantages.to(device), DAMPING, name=policy)


def _unit_rms_advantages(n: int, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) advantages (n,), centred and scaled to unit RMS."""
    advantages = torch.randn(n, generator=generator)
    advantages = advantages - advantages.mean()
    return advantages / advantages.square().mean().sqrt()


def _joint_problem(n: int, width: int, device: str | torch.device, generator: torch.Generator) -> NPGProblem:
    model = ActorCritic(HUMANOID_OBS, HUMANOID_ACT, hidden=(width, width), shared=True)
    obs = torch.randn(n, HUMANOID_OBS, generator=generator)
    with torch.no_grad():
        actions = model.policy.act(obs)
    rhs = torch.stack([_unit_rms_advantages(n, generator), torch.ones(n)], dim=1)
    noise = torch.randn(n, generator=generator)
    model = model.to(device)
    return NPGProblem(model.policy, obs.to(device), actions.to(device), rhs.to(device), DAMPING,
                      value=ValueTerm(model.value_function(), noise.to(device)), name=JOINT_POLICY)


def jacobian_bytes(problem: NPGProblem) -> int:
    """Bytes of the materialised N x P score matrix in the problem's dtype."""
    return problem.n * problem.num_params * problem.dtype.itemsize


def per_sample_feasible(problem: NPGProblem) -> bool:
    """Whether the per-sample route fits under :data:`PER_SAMPLE_MAX_BYTES`."""
    return 2 * jacobian_bytes(problem) <= PER_SAMPLE_MAX_BYTES


def solver_options(method: str, n: int) -> tuple[str, dict[str, Any]]:
    """(registry name, options) of a solver method for a minibatch of ``n``."""
    configs: dict[str, tuple[str, dict[str, Any]]] = {
        "woodbury": ("woodbury", {}),
        "woodbury-refined": ("woodbury", {"refine": True}),
        "woodbury-float64": ("woodbury", {}),  # on float64_copy(problem): method_runner
        "kaczmarz": ("kaczmarz", {"block_size": n, "sweeps": 1}),
        "kaczmarz-sweep": ("kaczmarz", {"block_size": min(SWEEP_BLOCK, n), "sweeps": 1}),
        "cg": ("cg", {"iterations": 10, "tol": 0.0}),
        "diagonal": ("diagonal", {}),
        "kfac": ("kfac", {}),
    }
    if method not in configs:
        raise unknown_name("solver method", method, configs)
    return configs[method]


def vanilla_backward(problem: NPGProblem) -> list[torch.Tensor]:
    """Gradient of the surrogate (1/N) sum_i w_i A_i log pi_i: one forward, one backward. For a joint problem
    the joint loss's: (1/N) sum_i (w_i y_pi,i log pi_i + y_v,i V_i), policy and value heads in one backward."""
    with torch.enable_grad():
        logp = problem.policy.log_prob(problem.obs, problem.actions)
        rhs = problem.rhs()
        if problem.value is None:
            surrogate = (problem.sqrt_weights() * rhs * logp).mean()
        else:
            values = problem.value.module(problem.obs)
            surrogate = (problem.sqrt_weights() * rhs[:, 0] * logp + rhs[:, 1] * values).mean()
        return list(torch.autograd.grad(surrogate, problem.params))


def per_sample_direction(problem: NPGProblem) -> torch.Tensor:
    """d* by the materialised route: J (N x P) by torch.func, K = J J^T, Cholesky, J^T u / N."""
    if not per_sample_feasible(problem):
        raise RatbenchError(
            f"the per-sample route needs about {2 * jacobian_bytes(problem) / 2**30:.1f} GiB for J "
            f"(N={problem.n}, P={problem.num_params}), over the {PER_SAMPLE_MAX_BYTES / 2**30:.0f} GiB limit; "
            "use a smaller size"
        )
    if problem.value is None:
        scores = per_sample_grads(problem.policy, problem.params, problem.obs, problem.actions)
        scores = scores * problem.sqrt_weights()[:, None]
    else:  # the value term too, by torch.func like the line above
        scores = dense_jacobian(problem, problem.dtype)
    gram = scores @ scores.T / problem.n
    gram.diagonal().add_(problem.damping)
    chol = torch.linalg.cholesky(gram)
    rhs = problem.rhs()
    u = torch.cholesky_solve(rhs if rhs.dim() == 2 else rhs[:, None], chol)
    direction = scores.T @ u / problem.n
    return direction if rhs.dim() == 2 else direction[:, 0]


def _solver_direction(solver: Solver, problem: NPGProblem) -> torch.Tensor:
    return solver.solve(problem).direction


def method_runner(method: str, problem: NPGProblem) -> Callable[[], Any]:
    """A zero-argument callable that runs ``method`` once on ``problem`` and waits for
    the device (CUDA kernels are asynchronous), so a clock read after it is honest."""
    if method in BASELINES:
        baseline = vanilla_backward if method == "vanilla" else per_sample_direction
        compute: Callable[[], Any] = functools.partial(baseline, problem)
    else:
        name, options = solver_options(method, problem.n)
        target = float64_copy(problem) if method == "woodbury-float64" else problem
        compute = functools.partial(_solver_direction, make_solver(name, **options), target)

    def run() -> Any:
        value = compute()
        synchronize(problem.device)
        return value

    return run


def run_once(method: str, problem: NPGProblem) -> Any:
    """Run ``method`` once on ``problem`` (synchronised)."""
    return method_runner(method, problem)()


def accuracy_options(method: str, n: int) -> dict[str, Any]:
    """The fixed budget of the asv accuracy tracks: kaczmarz two sweeps in four blocks,
    cg 10 iterations."""
    if method == "kaczmarz":
        return {"block_size": max(1, n // 4), "sweeps": 2, "seed": 0}
    if method == "cg":
        return {"iterations": 10, "tol": 0.0}
    raise unknown_name("iterative solver", method, ("kaczmarz", "cg"))


def float64_copy(problem: NPGProblem) -> NPGProblem:
    """The same minibatch on a float64 deep copy of the policy (not for a joint problem's value term)."""
    if problem.value is not None:
        raise RatbenchError("the float64 copy covers the policy alone; time woodbury-float64 on another policy than "
                            f"{JOINT_POLICY}")
    actions = problem.actions.double() if problem.actions.is_floating_point() else problem.actions
    weights = None if problem.weights is None else problem.weights.double()
    return NPGProblem(
        copy.deepcopy(problem.policy).double(),
        problem.obs.double(),
        actions,
        problem.advantages.double(),
        problem.damping,
        weights=weights,
        name=problem.name,
    )


def relative_error_vs_woodbury(problem: NPGProblem, method: str) -> float:
    """||d - d_ref|| / ||d_ref||: ``method`` at its fixed budget in the problem's dtype,
    d_ref = woodbury on a float64 copy of the same problem."""
    d_ref = make_solver("woodbury").solve(float64_copy(problem)).direction
    d = make_solver(method, **accuracy_options(method, problem.n)).solve(problem).direction.double()
    return float(torch.linalg.vector_norm(d - d_ref) / torch.linalg.vector_norm(d_ref))


# -- the `ratbench speed` measurement -------------------------------------------


@dataclass
class Timing:
    """Seconds of ``repeat`` runs after warm-up, their median, quartiles and range,
    and the largest peak memory seen (bytes; see :mod:`ratbench.benchmarking.measure`)."""

    method: str
    seconds: list[float]
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    peak_bytes: int
    skipped: str = ""


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def measure_methods(
    methods: list[str],
    problem: NPGProblem,
    repeat: int,
    warmup: int = 1,
    on_run: Optional[Callable[[str], None]] = None,
) -> dict[str, Timing]:
    """Warm up, then time ``repeat`` rounds in which every method runs once.

    Rounds interleave the methods (in a rotating order), so load from other
    processes falls on all of them alike and the ratios stay meaningful on a
    busy machine. CUDA is synchronised before every clock read
    (:func:`ratbench.benchmarking.measure.measure`). ``on_run(method)`` is called after each run.
    """
    runners = {m: method_runner(m, problem) for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    peaks: dict[str, list[int]] = {m: [] for m in methods}
    for round_index in range(warmup + repeat):
        shift = round_index % len(methods)
        for method in methods[shift:] + methods[:shift]:
            m = measure(runners[method], problem.device)
            if round_index >= warmup:
                seconds[method].append(m.seconds)
                peaks[method].append(m.peak_bytes)
            if on_run:
                on_run(method)
    timings = {}
    for method in methods:
        s = seconds[method]
        q1, q3 = _quartiles(s)
        timings[method] = Timing(method, s, statistics.median(s), q1, q3, min(s), max(s), max(peaks[method]))
    return timings


def skipped_timing(method: str, reason: str) -> Timing:
    nan = math.nan
    return Timing(method, [], nan, nan, nan, nan, nan, 0, skipped=reason)


@dataclass
class Ratio:
    """One speed ratio with its target (None: no target) and whether it is met."""

    value: float
    target: Optional[float]
    met: Optional[bool]


@dataclass
class SpeedRow:
    timing: Timing
    vs_vanilla: Ratio  # method time / vanilla time (lower is better)
    per_sample_speedup: Ratio  # per-sample time / method time (higher is better)
    memory_target_met: Optional[bool]


def _ratio(value: float, target: Optional[float], at_most: bool) -> Ratio:
    if target is None or not math.isfinite(value):
        return Ratio(value, target, None)
    return Ratio(value, target, value <= target if at_most else value >= target)


def speed_rows(timings: dict[str, Timing], memory_targets: bool, policy: str = "mlp-gaussian") -> list[SpeedRow]:
    """Ratios of every solver method to the baselines measured in the same run, against ``policy``'s targets."""
    vanilla = timings["vanilla"].median if "vanilla" in timings else math.nan
    per_sample = timings["per-sample"].median if "per-sample" in timings else math.nan
    rows = []
    for method, timing in timings.items():
        target = targets_for(policy).get(method, Target())
        mem_met = None
        if memory_targets and method in MEMORY_TARGET_METHODS and not timing.skipped:
            mem_met = timing.peak_bytes < memory_target_bytes(policy)
        rows.append(
            SpeedRow(
                timing,
                _ratio(timing.median / vanilla, target.vanilla_max, at_most=True),
                _ratio(per_sample / timing.median, target.per_sample_min, at_most=False),
                mem_met,
            )
        )
    return rows


def rows_as_dicts(rows: Iterable[SpeedRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
