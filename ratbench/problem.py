"""The natural-policy-gradient problem every solver solves.

Conventions (held by every solver, the reference and the trainer):

- Scores. ``s_i = sqrt(w_i) * grad_theta log pi(a_i | s_i)`` (a P-vector) with
  per-sample weights ``w_i > 0`` (importance ratios in training; 1 in the
  accuracy problems). ``S = [s_1; ...; s_N]`` is N x P.
- Right-hand side. ``b_i = sqrt(w_i) * A_i``. Advantages are used exactly as
  given: the problem never centres or normalises them (the trainer does that
  before building the problem, the accuracy families generate them
  already centred and scaled to unit RMS).
- Fisher ``F = S^T S / N``, vanilla gradient ``g = S^T b / N =
  (1/N) sum_i w_i A_i grad log pi_i``, damping ``lambda > 0``.
- Target ``d* = (F + lambda I)^-1 g``: an **ascent** direction for the
  surrogate ``(1/N) sum_i w_i A_i log pi_i``. An optimizer that minimises a
  loss steps along ``-d``.
- Woodbury: ``d* = S^T u / N`` with ``(S S^T / N + lambda I) u = b``. The
  transformed advantage is ``y = u / sqrt(w)``, so that
  ``d* = (1/N) sum_i w_i y_i grad log pi_i``: a vanilla policy gradient with
  advantage ``y``.
- Flat vectors in parameter space follow the order of ``problem.params`` and
  each parameter's row-major layout (``torch.nn.utils.parameters_to_vector``).
- Several right-hand sides. ``advantages`` may be (N, k): k problems with the
  same S and damping, solved together (``b`` (N, k), ``d*`` (P, k), ``y`` (N, k));
  the joint update of a shared actor-critic solves for [A, 1] at once.
- The value term (``value``, a :class:`ValueTerm`): agent-lab/ICML2026-RAT
  train_shared.py:114-132 folds a sampled value likelihood
  ``-(V_i - (V_i + eps_i).detach())^2``, eps_i ~ N(0, 1), into each sample's
  log-likelihood, so the scores become
  ``s_i = sqrt(w_i) (grad log pi_i + 2 eps_i grad V_i)`` over the policy's and
  the value function's parameters together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from ratbench.errors import RatbenchError
from ratbench.per_sample import no_distribution_validation, refuse_sample_mixing
from ratbench.policies import Policy


@dataclass
class ValueTerm:
    """The value likelihood of a joint problem: ``module(obs) -> V (N,)`` and the noise eps (N,) drawn for
    this batch; it adds ``2 eps_i grad V_i`` to sample i's score."""

    module: nn.Module
    noise: torch.Tensor


class ValueLikelihood(nn.Module):
    """``log_prob(obs, noise) = 2 noise V(obs)``: a per-sample function whose gradient is the value term's
    score ``2 eps_i grad V_i`` (the noise is data, like an action), for per-sample gradient routes."""

    def __init__(self, value: nn.Module):
        super().__init__()
        self.value = value

    def log_prob(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return 2.0 * noise * self.value(obs)


@dataclass
class NPGProblem:
    """One on-policy batch and its damping.

    policy: any module with ``log_prob(obs, actions) -> (N,)``.
    obs: (N, ...) observations; actions: (N, ...) actions;
    advantages: (N,) or (N, k) (k right-hand sides); weights: optional (N,) positive per-sample weights;
    damping: lambda > 0; params: the parameters the Fisher is over
    (default ``policy.policy_parameters()`` or every trainable parameter, then the value module's);
    value: the value term of a joint problem (None: scores of log pi alone);
    trusted: skip the policy forward that checks the actions' shape and support
    (for batches the policy itself sampled, such as the trainer's minibatches;
    the cheap shape and finiteness checks still run).
    """

    policy: nn.Module
    obs: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    damping: float
    weights: Optional[torch.Tensor] = None
    params: list = field(default_factory=list)
    name: str = ""
    trusted: bool = False
    value: Optional[ValueTerm] = None

    def __post_init__(self) -> None:
        if not hasattr(self.policy, "log_prob"):
            raise RatbenchError(
                f"the policy {type(self.policy).__name__} has no log_prob(obs, actions) method; "
                "wrap it in a ratbench.policies.Policy"
            )
        if not self.params:
            self.params = (
                self.policy.policy_parameters()
                if isinstance(self.policy, Policy)
                else [p for p in self.policy.parameters() if p.requires_grad]
            )
            if self.value is not None:
                seen = {id(p) for p in self.params}
                self.params += [p for p in self.value.module.parameters() if p.requires_grad and id(p) not in seen]
        if not self.params:
            raise RatbenchError("the policy has no trainable parameters; nothing to solve for")
        try:
            damping = float(self.damping)
        except (TypeError, ValueError):
            raise RatbenchError(f"damping must be a positive number, got {self.damping!r}") from None
        if not (damping > 0.0 and damping < float("inf")):
            raise RatbenchError(f"damping must be positive and finite (Tikhonov lambda > 0), got {self.damping!r}")
        self.damping = damping
        n = self.obs.shape[0] if self.obs.dim() > 0 else 0
        if n == 0:
            raise RatbenchError("the batch is empty: obs must have shape (N, ...) with N >= 1")
        if self.actions.shape[0] != n:
            raise RatbenchError(f"actions have {self.actions.shape[0]} rows but obs has {n}; pass one action per observation")
        if self.advantages.dim() not in (1, 2) or self.advantages.shape[0] != n or 0 in self.advantages.shape:
            raise RatbenchError(f"advantages must have shape ({n},) or ({n}, k) to match obs, got {tuple(self.advantages.shape)}")
        if self.value is not None and self.value.noise.shape != (n,):
            raise RatbenchError(f"the value term's noise must have shape ({n},), got {tuple(self.value.noise.shape)}")
        if self.weights is not None:
            if self.weights.shape != (n,):
                raise RatbenchError(f"weights must have shape ({n},) to match obs, got {tuple(self.weights.shape)}")
            if not bool(torch.isfinite(self.weights).all()) or bool((self.weights <= 0).any()):
                raise RatbenchError("weights must be finite and strictly positive (clamp importance ratios first)")
        for label, t in (("obs", self.obs), ("actions", self.actions), ("advantages", self.advantages)):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise RatbenchError(f"{label} contain NaN or inf; drop or fix those samples before solving")
        if isinstance(self.policy, Policy) and not self.trusted:
            self._check_actions()

    def _check_actions(self) -> None:
        """Actions must have the shape and support of the policy's distribution.

        log_prob would otherwise broadcast an (N, 1) action against an (N, k)
        mean without complaint, or fail deep inside torch.
        """
        refuse_sample_mixing(self.policy)  # the forward below must not update BatchNorm statistics
        with torch.no_grad(), no_distribution_validation():
            dist = self.policy.distribution(self.obs)
        expected = (self.n, *dist.batch_shape[1:], *dist.event_shape)
        if tuple(self.actions.shape) != expected:
            raise RatbenchError(
                f"actions have shape {tuple(self.actions.shape)} but the policy's distribution expects {expected}; "
                "pass one action of the policy's action shape per observation"
            )
        try:
            support = dist.support
        except NotImplementedError:  # a custom distribution that declares no support
            return
        if not bool(support.check(self.actions).all()):
            raise RatbenchError(
                "some actions lie outside the support of the policy's distribution "
                "(e.g. a categorical index out of range); fix the actions before solving"
            )

    @property
    def n(self) -> int:
        """Batch size N."""
        return int(self.obs.shape[0])

    @property
    def num_params(self) -> int:
        """P, the number of parameters the Fisher is over."""
        return sum(p.numel() for p in self.params)

    @property
    def dtype(self) -> torch.dtype:
        return self.params[0].dtype

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    def sqrt_weights(self) -> torch.Tensor:
        """sqrt(w) as (N,) in the parameters' dtype (ones when unweighted)."""
        if self.weights is None:
            return torch.ones(self.n, dtype=self.dtype, device=self.device)
        return self.weights.to(self.dtype).sqrt()

    def likelihood_parts(self) -> list[tuple[nn.Module, torch.Tensor]]:
        """(module, data) pairs whose ``log_prob(obs, data)`` sum to each sample's log-likelihood: the policy with
        the actions, and for a joint problem the value term (:class:`ValueLikelihood`) with its noise."""
        parts = [(self.policy, self.actions)]
        if self.value is not None:
            parts.append((ValueLikelihood(self.value.module), self.value.noise))
        return parts

    @property
    def columns(self) -> Optional[int]:
        """k for an (N, k) right-hand side, None for a single (N,) one."""
        return None if self.advantages.dim() == 1 else int(self.advantages.shape[1])

    def rows_scale(self, t: torch.Tensor) -> torch.Tensor:
        """sqrt(w) shaped to multiply ``t`` (N,) or (N, k) row by row."""
        scale = self.sqrt_weights()
        return scale if t.dim() == 1 else scale[:, None]

    def rhs(self) -> torch.Tensor:
        """b = sqrt(w) * A, (N,) or (N, k)."""
        advantages = self.advantages.to(self.dtype)
        return self.rows_scale(advantages) * advantages

    def to_transformed_advantage(self, u: torch.Tensor) -> torch.Tensor:
        """Map the dual iterate u (system in scaled rows, (N,) or (N, k)) to y = u / sqrt(w)."""
        return u / self.rows_scale(u)
