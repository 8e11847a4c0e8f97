"""Hypothesis strategies that build small random natural-gradient problems.

Every problem is tiny (N <= 24, P <= ~2000) and float64, so that
exactness checks can use tolerances derived from float64 eps. Each
architecture exercises a different route through the curvature layer:

- ``gaussian_mlp``: tanh MLP mean (Linear fast path) + log-std vector (torch.func fallback).
- ``state_gaussian``: mean and log-std both from the body.
- ``categorical``: logits from an MLP.
- ``cnn``: Conv2d layers (stride/padding/dilation, with or without bias), then a Linear head.
- ``shared_actor_critic``: the policy of a shared-trunk ActorCritic (value head excluded).
- ``layernorm``: a LayerNorm between Linear layers (fallback for its affine parameters).
- ``custom_module``: a custom parameterised module (fallback).
- ``tied``: one Linear layer applied twice (weight sharing: positions of two calls).
- ``sequence``: Linear layers on inputs with extra sequence dims (positions), optionally
  on a flattened (N*T, d) view that the fast path must reject (fallback).

``freeze`` optionally turns ``requires_grad`` off for some parameter tensors, or
passes an explicit ``params`` list (a random subset in a random order), so that
the Fisher is over a subset (a Linear whose bias is not solved for leaves the fast path).
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import nn

from ratbench.actor_critic import ActorCritic
from ratbench.policies import CategoricalPolicy, GaussianPolicy, Policy, StateGaussianPolicy, mlp
from ratbench.problem import NPGProblem, ValueTerm

Draw = Callable[[st.SearchStrategy], object]

DAMPINGS = st.floats(-4.0, 2.0).map(lambda e: 10.0**e)
"""Tikhonov lambda, log-uniform on [1e-4, 1e2]."""


class ScaleShift(nn.Module):
    """A custom parameterised module (no fast rule covers it): x * scale + shift."""

    def __init__(self, width: int):
        super().__init__()
        self.scale = nn.Parameter(1.0 + 0.3 * torch.randn(width))
        self.shift = nn.Parameter(0.3 * torch.randn(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class TiedBody(nn.Module):
    """inp -> tanh -> shared -> tanh -> shared -> tanh -> out: ``shared`` is used twice."""

    def __init__(self, obs_dim: int, width: int, out_dim: int, bias: bool):
        super().__init__()
        self.inp = nn.Linear(obs_dim, width)
        self.shared = nn.Linear(width, width, bias=bias)
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        h = torch.tanh(self.shared(h))
        h = torch.tanh(self.shared(h))
        return self.out(h)


class SequenceBody(nn.Module):
    """obs (N, *seq, d) -> Linear per position -> tanh -> mean over positions -> Linear head.

    flatten_batch applies the per-position layer to a (N * T, d) view, whose
    leading dim is not the batch: the fast path must reject it and fall back.
    """

    def __init__(self, d: int, width: int, out_dim: int, bias: bool, flatten_batch: bool):
        super().__init__()
        self.per_position = nn.Linear(d, width, bias=bias)
        self.head = nn.Linear(width, out_dim)
        self.flatten_batch = flatten_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if self.flatten_batch:
            h = self.per_position(x.reshape(-1, x.shape[-1])).reshape(n, -1, self.per_position.out_features)
        else:
            h = self.per_position(x).reshape(n, -1, self.per_position.out_features)
        return self.head(torch.tanh(h).mean(1))


def _hidden(draw: Draw, max_layers: int = 2, max_width: int = 32) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, max_width), min_size=0, max_size=max_layers)))


def _head(draw: Draw, body_factory: Callable[[int], nn.Module]) -> Policy:
    """Wrap a body (built for a given output width) in a Gaussian, state-Gaussian or categorical head."""
    kind = draw(st.sampled_from(["gaussian", "state_gaussian", "categorical"]))
    if kind == "categorical":
        return CategoricalPolicy(body_factory(draw(st.integers(2, 4))))
    act_dim = draw(st.integers(1, 3))
    if kind == "gaussian":
        return GaussianPolicy(body_factory(act_dim), act_dim, log_std_init=draw(st.floats(-1.0, 0.5)))
    return StateGaussianPolicy(body_factory(2 * act_dim), act_dim)


def _gaussian_mlp(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    obs_dim, act_dim = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    policy = GaussianPolicy(mlp([obs_dim, *_hidden(draw), act_dim]), act_dim, log_std_init=draw(st.floats(-1.0, 0.5)))
    return policy, (obs_dim,)


def _state_gaussian(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    obs_dim, act_dim = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    return StateGaussianPolicy(mlp([obs_dim, *_hidden(draw), 2 * act_dim]), act_dim), (obs_dim,)


def _categorical(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    obs_dim = draw(st.integers(1, 6))
    return CategoricalPolicy(mlp([obs_dim, *_hidden(draw), draw(st.integers(2, 5))])), (obs_dim,)


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@st.composite
def conv_layers(draw: Draw, in_channels: int, height: int, width: int) -> tuple[nn.Conv2d, int, int]:
    """A Conv2d with random kernel/stride/dilation/bias and enough padding for an output of at least 1 x 1."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(
        max(0, -(-(dil * (k - 1) + 1 - size) // 2)) + draw(st.integers(0, 1))
        for k, dil, size in zip(kernel, dilation, (height, width))
    )
    conv = nn.Conv2d(in_channels, draw(st.integers(1, 3)), kernel, stride, padding, dilation, bias=draw(st.booleans()))
    out_h = conv_output_size(height, kernel[0], stride[0], padding[0], dilation[0])
    out_w = conv_output_size(width, kernel[1], stride[1], padding[1], dilation[1])
    return conv, out_h, out_w


def _cnn(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    channels, height, width = draw(st.integers(1, 2)), draw(st.integers(3, 7)), draw(st.integers(3, 7))
    first, h, w = draw(conv_layers(channels, height, width))
    layers: list[nn.Module] = [first, nn.Tanh()]
    out_channels = first.out_channels
    if draw(st.booleans()):
        second, h, w = draw(conv_layers(out_channels, h, w))
        layers += [second, nn.Tanh()]
        out_channels = second.out_channels
    flat = out_channels * h * w

    def body(out_dim: int) -> nn.Module:
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, out_dim))

    return _head(draw, body), (channels, height, width)


def _shared_actor_critic(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    obs_dim, act_dim = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    hidden = tuple(draw(st.lists(st.integers(1, 10), min_size=1, max_size=2)))
    model = ActorCritic(obs_dim, act_dim, discrete=draw(st.booleans()), hidden=hidden, shared=True)
    return model.policy, (obs_dim,)


def _layernorm(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    """Width 3 or more: a LayerNorm over 2 features maps every input to (+-1, -+1) up to its eps, so its
    Jacobian is O(eps / |d|^3) (d the half-difference of the two inputs), and its backward forms it by cancelling
    terms of size 1 / |d|: every score behind it is the rounding residue of a cancellation by d^2 / eps (1.4e-10
    relative between two float64 paths was found). Over w >= 3 features the Jacobian has rank w - 2 and the
    scores are well conditioned; the tolerance stays what float64 products earn."""
    obs_dim, width = draw(st.integers(1, 6)), draw(st.integers(3, 10))

    def body(out_dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(obs_dim, width), nn.LayerNorm(width), nn.Tanh(), nn.Linear(width, out_dim))

    return _head(draw, body), (obs_dim,)


def _custom_module(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    obs_dim, width = draw(st.integers(1, 6)), draw(st.integers(1, 10))

    def body(out_dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(obs_dim, width), ScaleShift(width), nn.Tanh(), nn.Linear(width, out_dim))

    return _head(draw, body), (obs_dim,)


def _tied(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    obs_dim, width, bias = draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.booleans())
    return _head(draw, lambda out_dim: TiedBody(obs_dim, width, out_dim, bias)), (obs_dim,)


def _sequence(draw: Draw) -> tuple[Policy, tuple[int, ...]]:
    seq = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    d, width = draw(st.integers(1, 5)), draw(st.integers(1, 8))
    bias, flatten_batch = draw(st.booleans()), draw(st.booleans())
    return _head(draw, lambda out_dim: SequenceBody(d, width, out_dim, bias, flatten_batch)), (*seq, d)


BUILDERS: dict[str, Callable[[Draw], tuple[Policy, tuple[int, ...]]]] = {
    "gaussian_mlp": _gaussian_mlp,
    "state_gaussian": _state_gaussian,
    "categorical": _categorical,
    "cnn": _cnn,
    "shared_actor_critic": _shared_actor_critic,
    "layernorm": _layernorm,
    "custom_module": _custom_module,
    "tied": _tied,
    "sequence": _sequence,
}
ARCHITECTURES = tuple(BUILDERS)


def _data(draw: Draw, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """N(0, 1) advantages and optional weights in [0.1, 3] (float64), from the current torch seed."""
    advantages = torch.randn(n, dtype=torch.float64)
    weights = 0.1 + 2.9 * torch.rand(n, dtype=torch.float64) if draw(st.booleans()) else None
    return advantages, weights


@st.composite
def problems(
    draw: Draw,
    architectures: Sequence[str] = ARCHITECTURES,
    n: st.SearchStrategy[int] = st.integers(1, 24),
    dampings: st.SearchStrategy[float] = DAMPINGS,
    freeze: bool = True,
) -> NPGProblem:
    """A random float64 NPGProblem: policy, sampled actions, N(0, 1) advantages, optional weights in [0.1, 3]."""
    arch = draw(st.sampled_from(list(architectures)))
    batch = draw(n)
    seed = draw(st.integers(0, 2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy, obs_shape = BUILDERS[arch](draw)
        policy = policy.double()
        params: list = []
        if freeze:
            tensors = list(policy.parameters())
            mode = draw(st.sampled_from(["all", "frozen", "subset"]))
            if mode == "frozen":
                frozen = draw(st.lists(st.booleans(), min_size=len(tensors), max_size=len(tensors)))
                if not all(frozen):
                    for p, off in zip(tensors, frozen):
                        p.requires_grad_(not off)
            elif mode == "subset":
                picked = draw(st.permutations(range(len(tensors))))[: draw(st.integers(1, len(tensors)))]
                params = [tensors[i] for i in picked]
        obs = torch.randn(batch, *obs_shape, dtype=torch.float64)
        with torch.no_grad():
            actions = policy.act(obs)
        advantages, weights = _data(draw, batch)
    damping = draw(dampings)
    return NPGProblem(policy, obs, actions, advantages, damping, weights=weights, params=params, name=f"{arch}(N={batch})")


@st.composite
def joint_problems(
    draw: Draw,
    n: st.SearchStrategy[int] = st.integers(1, 16),
    dampings: st.SearchStrategy[float] = DAMPINGS,
    columns: st.SearchStrategy[int] = st.integers(1, 3),
) -> NPGProblem:
    """A float64 joint problem of a shared-trunk ActorCritic (train_shared.py's scores: log pi + the value
    term with N(0, 1) noise), over every parameter, with k right-hand sides (N, k) and optional weights."""
    batch, k = draw(n), draw(columns)
    seed = draw(st.integers(0, 2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        obs_dim, act_dim = draw(st.integers(1, 6)), draw(st.integers(1, 3))
        hidden = tuple(draw(st.lists(st.integers(1, 10), min_size=1, max_size=2)))
        model = ActorCritic(obs_dim, act_dim, discrete=draw(st.booleans()), hidden=hidden, shared=True).double()
        obs = torch.randn(batch, obs_dim, dtype=torch.float64)
        with torch.no_grad():
            actions = model.policy.act(obs)
        _, weights = _data(draw, batch)
        advantages = torch.randn(batch, k, dtype=torch.float64)
        noise = torch.randn(batch, dtype=torch.float64)
    return NPGProblem(model.policy, obs, actions, advantages, draw(dampings), weights=weights,
                      value=ValueTerm(model.value_function(), noise), name=f"joint(N={batch}, k={k})")


@st.composite
def linear_gaussian_problems(
    draw: Draw,
    n: st.SearchStrategy[int] = st.integers(1, 24),
    dampings: st.SearchStrategy[float] = DAMPINGS,
    learn_log_std: Optional[bool] = None,
    max_obs_dim: int = 5,
    max_act_dim: int = 3,
) -> NPGProblem:
    """mean = W s + c (one nn.Linear), state-independent log-std, frozen or learned: S has a closed form."""
    obs_dim, act_dim, batch = draw(st.integers(1, max_obs_dim)), draw(st.integers(1, max_act_dim)), draw(n)
    learn = draw(st.booleans()) if learn_log_std is None else learn_log_std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
        policy = GaussianPolicy(nn.Linear(obs_dim, act_dim), act_dim, log_std_init=draw(st.floats(-1.0, 0.5))).double()
        policy.log_std.requires_grad_(learn)
        obs = torch.randn(batch, obs_dim, dtype=torch.float64)
        with torch.no_grad():
            actions = policy.act(obs)
        advantages, weights = _data(draw, batch)
    return NPGProblem(policy, obs, actions, advantages, draw(dampings), weights=weights, name="linear_gaussian")


@st.composite
def diagonal_fisher_problems(draw: Draw, dampings: st.SearchStrategy[float] = DAMPINGS) -> NPGProblem:
    """F exactly diagonal: one Linear (one output, no bias, frozen log-std) on scaled one-hot inputs,
    a different hot coordinate per sample, so the per-sample scores have disjoint supports."""
    batch = draw(st.integers(1, 16))
    obs_dim = batch + draw(st.integers(0, 4))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
        policy = GaussianPolicy(nn.Linear(obs_dim, 1, bias=False), 1, log_std_init=draw(st.floats(-1.0, 0.5))).double()
        policy.log_std.requires_grad_(False)
        hot = torch.randperm(obs_dim)[:batch]
        scale = (0.5 + torch.rand(batch, dtype=torch.float64)) * torch.where(torch.rand(batch) < 0.5, -1.0, 1.0).double()
        obs = torch.zeros(batch, obs_dim, dtype=torch.float64)
        obs[torch.arange(batch), hot] = scale
        with torch.no_grad():
            actions = policy.act(obs)
        advantages, weights = _data(draw, batch)
    return NPGProblem(policy, obs, actions, advantages, draw(dampings), weights=weights, name="diagonal_fisher")


@st.composite
def kronecker_exact_problems(draw: Draw, dampings: st.SearchStrategy[float] = DAMPINGS) -> NPGProblem:
    """F exactly block diagonal with a Kronecker layer block: one Linear layer whose input is the
    same for every sample, so A = a a^T exactly and F_layer = G (x) A. Heads:

    - gaussian_frozen: state-independent log-std not learned;
    - gaussian_mirrored: log-std learned; actions come in mirrored pairs (a, 2 mu - a) with equal
      weights, so the cross terms E[z (z^2 - 1)] between mean and log-std scores cancel exactly;
    - categorical: logits from the layer.
    """
    head = draw(st.sampled_from(["gaussian_frozen", "gaussian_mirrored", "categorical"]))
    obs_dim, bias = draw(st.integers(1, 5)), draw(st.booleans())
    pairs = draw(st.integers(1, 12))
    batch = 2 * pairs if head == "gaussian_mirrored" else draw(st.integers(1, 24))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
        if head == "categorical":
            policy: Policy = CategoricalPolicy(nn.Linear(obs_dim, draw(st.integers(2, 5)), bias=bias))
        else:
            act_dim = draw(st.integers(1, 3))
            policy = GaussianPolicy(nn.Linear(obs_dim, act_dim, bias=bias), act_dim, draw(st.floats(-1.0, 0.5)))
            policy.log_std.requires_grad_(head == "gaussian_mirrored")
        policy = policy.double()
        obs = torch.randn(1, obs_dim, dtype=torch.float64).expand(batch, obs_dim).clone()
        with torch.no_grad():
            actions = policy.act(obs)
            if head == "gaussian_mirrored":
                mean = policy.body(obs[:pairs])
                actions = torch.cat([actions[:pairs], 2 * mean - actions[:pairs]])
        advantages, weights = _data(draw, batch)
        if head == "gaussian_mirrored" and weights is not None:
            weights = weights[:pairs].repeat(2)
    return NPGProblem(policy, obs, actions, advantages, draw(dampings), weights=weights, name=f"kronecker_exact({head})")


PROPERTY_SCALE = float(os.environ.get("RATBENCH_PROPERTY_SCALE", "1"))
"""Multiplies every property test's example count (e.g. RATBENCH_PROPERTY_SCALE=10 for a deep run)."""


def property_settings(max_examples: int) -> settings:
    """Hypothesis settings for these tests: no deadline (first calls compile vmap), few examples."""
    scaled = max(1, round(max_examples * PROPERTY_SCALE))
    return settings(max_examples=scaled, deadline=None, suppress_health_check=[HealthCheck.too_slow])
