"""Named, seeded problem families for the accuracy suite.

Each family builds an :class:`~ratbench.problem.NPGProblem` from
``(dtype, device, seed)``: the policy is initialised and the batch drawn in
float64 on the CPU under ``torch.manual_seed(seed)`` (inside a forked RNG,
so the caller's random state is untouched), then cast to ``dtype`` and moved
to ``device``. The same seed gives the same problem; a float32 problem is
the float64 one rounded.

Conventions: weights w_i = 1; actions are sampled from the policy itself
(on-policy); advantages are centred and scaled to unit RMS here, by the
family (the problem object never normalises). Synthetic families draw raw
advantages from N(0, 1); rollout families compute them by GAE (gamma 0.99,
lambda 0.95) with a freshly initialised critic on real MuJoCo steps
(:mod:`suites.accuracy.rollouts`).

Sizes: ``-small`` problems have P well below the parameter-space cutoff of
:mod:`ratbench.reference` (a P x P SciPy solve); ``-medium`` ones are
network-sized (P ~ 1e5) and are referenced in sample space. The two
``*-exact-small`` families are the cases where the approximate solvers are
exact (F diagonal; F one Kronecker product), so their contracts can be
checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ratbench.actor_critic import ActorCritic
from ratbench.errors import RatbenchError, unknown_name
from ratbench.policies import CategoricalPolicy, GaussianPolicy, Policy, categorical_mlp, gaussian_mlp, mlp
from ratbench.problem import NPGProblem, ValueTerm
from ratbench.training.algorithms.minibatch import normalize_advantages
from suites.accuracy.rollouts import rollout_batch

DEFAULT_DAMPING = 0.1
"""Tikhonov lambda of the accuracy problems (the reference RAT configuration's value)."""

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Family:
    """A named problem recipe.

    make_policy() builds the policy (called under the seed); make_batch(policy,
    n, seed) returns float64 (obs, actions, advantages) for the float64
    policy; select_params picks the parameters the Fisher is over (default:
    ``policy.policy_parameters()``); exact_for names the approximate solvers
    that are exact on this family. A ``joint`` family's make_policy builds a shared
    :class:`~ratbench.actor_critic.ActorCritic`: its problem is train_shared.py's joint one
    (:class:`~ratbench.problem.ValueTerm` with N(0, 1) noise, every parameter, right-hand sides [A, 1]).
    """

    name: str
    description: str
    n: int
    make_policy: Callable[[], Policy]
    make_batch: Callable[[Policy, int, int], Batch]
    select_params: Optional[Callable[[Policy], list]] = None
    exact_for: tuple[str, ...] = ()
    quick: bool = False
    joint: bool = False

    def build(
        self,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        seed: int = 0,
        damping: float = DEFAULT_DAMPING,
    ) -> NPGProblem:
        """The seeded problem in ``dtype`` on ``device``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.make_policy().to(torch.float64)
            policy = model.policy if self.joint else model
            obs, actions, advantages = self.make_batch(policy, self.n, seed)
            noise = torch.randn(self.n, dtype=torch.float64) if self.joint else None
        model = model.to(device=device, dtype=dtype)
        policy = model.policy if self.joint else model
        actions = actions.to(dtype) if actions.is_floating_point() else actions
        params = self.select_params(policy) if self.select_params is not None else []
        value = None
        if self.joint:
            advantages = torch.stack([advantages, torch.ones_like(advantages)], dim=1)
            value = ValueTerm(model.value_function(), noise.to(device=device, dtype=dtype))
        return NPGProblem(
            policy,
            obs.to(device=device, dtype=dtype),
            actions.to(device),
            advantages.to(device=device, dtype=dtype),
            damping=damping,
            params=params,
            name=self.name,
            value=value,
        )

    def num_params(self) -> int:
        """P, from the policy alone (no batch is drawn)."""
        with torch.random.fork_rng(devices=[]):
            policy = self.make_policy()
        if self.joint:
            return sum(p.numel() for p in policy.parameters())
        params = self.select_params(policy) if self.select_params is not None else policy.policy_parameters()
        return sum(p.numel() for p in params)


# -- batches -------------------------------------------------------------------


def standardise(advantages: torch.Tensor) -> torch.Tensor:
    """Centre and scale to unit RMS exactly (the families' advantage convention)."""
    return normalize_advantages(advantages, eps=0.0)


def _on_policy(draw_obs: Callable[[int], torch.Tensor]) -> Callable[[Policy, int, int], Batch]:
    """Observations from ``draw_obs(n)``, actions sampled from the policy, N(0, 1) advantages standardised."""

    @torch.no_grad()
    def make_batch(policy: Policy, n: int, seed: int) -> Batch:
        obs = draw_obs(n)
        return obs, policy.act(obs), standardise(torch.randn(n, dtype=torch.float64))

    return make_batch


def _normal_obs(*shape: int) -> Callable[[int], torch.Tensor]:
    return lambda n: torch.randn(n, *shape, dtype=torch.float64)


def _pixel_obs(*shape: int) -> Callable[[int], torch.Tensor]:
    return lambda n: torch.rand(n, *shape, dtype=torch.float64)


def _constant_obs(dim: int) -> Callable[[int], torch.Tensor]:
    return lambda n: torch.randn(1, dim, dtype=torch.float64).expand(n, dim).clone()


def _one_hot_obs(states: int) -> Callable[[int], torch.Tensor]:
    return lambda n: nn.functional.one_hot(torch.randint(states, (n,)), states).to(torch.float64)


def _rollout(env_name: str, obs_dim: int, hidden: Sequence[int]) -> Callable[[Policy, int, int], Batch]:
    def make_batch(policy: Policy, n: int, seed: int) -> Batch:
        critic = mlp([obs_dim, *hidden, 1]).to(torch.float64)
        obs, actions, advantages = rollout_batch(env_name, policy, critic, n, seed)
        return obs, actions, standardise(advantages)

    return make_batch


# -- policies ------------------------------------------------------------------


def _shared_actor_critic(obs_dim: int, act_dim: int, hidden: Sequence[int]) -> Callable[[], Policy]:
    return lambda: ActorCritic(obs_dim, act_dim, hidden=hidden, shared=True).policy


def _small_cnn(n_actions: int) -> CategoricalPolicy:
    """3x32x32 pixels: conv 5x5/2 (8 channels) -> conv 3x3/2 (8) -> linear 288 -> logits."""
    return CategoricalPolicy(
        nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2), nn.Tanh(),
            nn.Conv2d(8, 8, 3, stride=2), nn.Tanh(),
            nn.Flatten(), nn.Linear(8 * 6 * 6, n_actions),
        )
    )


def _medium_cnn(n_actions: int) -> CategoricalPolicy:
    """4x42x42 stacked frames: conv 5x5/2 (16) -> 3x3/2 (32) -> 3x3/1 (32) -> linear 128 -> logits."""
    return CategoricalPolicy(
        nn.Sequential(
            nn.Conv2d(4, 16, 5, stride=2), nn.Tanh(),
            nn.Conv2d(16, 32, 3, stride=2), nn.Tanh(),
            nn.Conv2d(32, 32, 3, stride=1), nn.Tanh(),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.Tanh(),
            nn.Linear(128, n_actions),
        )
    )


def _tabular_gaussian(states: int) -> GaussianPolicy:
    return GaussianPolicy(nn.Linear(states, 1, bias=False), act_dim=1)


def _weight_only(policy: Policy) -> list:
    return [policy.body.weight]


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "gaussian-mlp-small", "Gaussian MLP (Walker2d-sized obs 17, act 6), 32x32 tanh, N(0,1) obs",
            512, lambda: gaussian_mlp(17, 6, (32, 32)), _on_policy(_normal_obs(17)), quick=True,
        ),
        Family(
            "gaussian-mlp-medium", "Gaussian MLP (Humanoid-sized obs 348, act 17), 256x256 tanh, N(0,1) obs",
            1024, lambda: gaussian_mlp(348, 17, (256, 256)), _on_policy(_normal_obs(348)),
        ),
        Family(
            "categorical-small", "categorical MLP (obs 8, 4 actions), 32x32 tanh, N(0,1) obs",
            512, lambda: categorical_mlp(8, 4, (32, 32)), _on_policy(_normal_obs(8)), quick=True,
        ),
        Family(
            "categorical-medium", "categorical MLP (obs 128, 18 actions), 256x256 tanh, N(0,1) obs",
            1024, lambda: categorical_mlp(128, 18, (256, 256)), _on_policy(_normal_obs(128)),
        ),
        Family(
            "cnn-small", "categorical CNN on 3x32x32 pixels (2 conv + linear), 6 actions, U(0,1) pixels",
            512, lambda: _small_cnn(6), _on_policy(_pixel_obs(3, 32, 32)), quick=True,
        ),
        Family(
            "cnn-medium", "categorical CNN on 4x42x42 stacked frames (3 conv + 128 linear), 6 actions, U(0,1) pixels",
            256, lambda: _medium_cnn(6), _on_policy(_pixel_obs(4, 42, 42)),
        ),
        Family(
            "shared-ac-small", "shared-trunk actor-critic policy (obs 17, act 6), 32x32 trunk, N(0,1) obs",
            512, _shared_actor_critic(17, 6, (32, 32)), _on_policy(_normal_obs(17)), quick=True,
        ),
        Family(
            "shared-ac-medium", "shared-trunk actor-critic policy (obs 348, act 17), 256x256 trunk, N(0,1) obs",
            1024, _shared_actor_critic(348, 17, (256, 256)), _on_policy(_normal_obs(348)),
        ),
        Family(
            "joint-ac-small", "train_shared.py's joint problem: shared actor-critic (obs 17, act 6), 32x32 trunk, "
            "scores of log pi + 2 eps V over every parameter, right-hand sides [A, 1]",
            512, lambda: ActorCritic(17, 6, hidden=(32, 32), shared=True), _on_policy(_normal_obs(17)), joint=True,
            quick=True,
        ),
        Family(
            "hopper-rollout-small", "Hopper-v5 rollout of a fresh 32x32 Gaussian policy, GAE from a fresh 32x32 critic",
            512, lambda: gaussian_mlp(11, 3, (32, 32)), _rollout("hopper", 11, (32, 32)), quick=True,
        ),
        Family(
            "humanoid-rollout-medium", "Humanoid-v5 rollout of a fresh 256x256 Gaussian policy, GAE from a fresh 256x256 critic",
            1024, lambda: gaussian_mlp(348, 17, (256, 256)), _rollout("humanoid", 348, (256, 256)),
        ),
        Family(
            "kfac-exact-small", "categorical bandit: one linear layer, one fixed context (F = G (x) A exactly)",
            256, lambda: CategoricalPolicy(nn.Linear(16, 8)), _on_policy(_constant_obs(16)),
            exact_for=("kfac",), quick=True,
        ),
        Family(
            "diagonal-exact-small", "tabular Gaussian: one-hot states, 1-D action, mean weights only (F diagonal)",
            256, lambda: _tabular_gaussian(64), _on_policy(_one_hot_obs(64)),
            select_params=_weight_only, exact_for=("diagonal",), quick=True,
        ),
    )
}


def family_names() -> list[str]:
    """Every registered family, in registry order."""
    return list(FAMILIES)


def quick_set() -> list[str]:
    """The default problems of ``ratbench accuracy``: every small family."""
    return [name for name, family in FAMILIES.items() if family.quick]


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise unknown_name("problem", name, FAMILIES)
    return FAMILIES[name]


def build_problem(
    name: str,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    damping: float = DEFAULT_DAMPING,
) -> NPGProblem:
    """The problem of family ``name`` for ``seed``; unknown names raise RatbenchError."""
    if dtype not in (torch.float32, torch.float64):
        raise RatbenchError(f"accuracy problems are float32 or float64, got {dtype}")
    return get_family(name).build(dtype=dtype, device=device, seed=seed, damping=damping)
