"""Shared helpers of the policy updates: minibatch indices, advantage normalisation, entropy bonus, KL."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
import torch


def minibatches(n: int, count: int, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """A fresh random partition of range(n) into ``count`` nearly equal index tensors."""
    for idx in np.array_split(rng.permutation(n), count):
        yield torch.as_tensor(idx)


def normalize_advantages(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Centre, then divide by the root mean square (of the centred values) plus ``eps``.

    With ``eps=0`` the result has unit RMS exactly; an all-equal batch is returned centred (zeros).
    """
    adv = adv - adv.mean()
    scale = adv.pow(2).mean().sqrt() + eps
    return adv / scale if scale > 0 else adv


def value_noise(rng: np.random.Generator, n: int, like: torch.Tensor) -> torch.Tensor:
    """eps ~ N(0, 1) per sample, (n,), in ``like``'s dtype and device, from the run's generator (so a resumed
    run draws the same): the noise of the reference's value likelihood ``-(V - (V + eps).detach())^2``
    (train_shared.py:86-99, :360)."""
    return torch.as_tensor(rng.standard_normal(n), dtype=like.dtype, device=like.device)


def entropy_advantage(log_probs: torch.Tensor) -> torch.Tensor:
    """Per-sample advantage whose policy gradient is the entropy gradient: -(log pi_i - mean log pi), (N,).

    grad H(pi(.|s)) = -E_{a~pi}[grad log pi(a|s) log pi(a|s)] (the score's mean is zero), so adding
    ``coef * entropy_advantage(log pi)`` to the advantages adds ``coef`` times the entropy gradient to the
    (importance-weighted) policy gradient: the score-function form, which keeps the gradient in the span
    of the sampled scores, as the Woodbury form of an NPG step needs (the analytic gradient of a
    categorical entropy is not in that span). Subtracting the minibatch mean is a constant baseline.
    """
    log_probs = log_probs.detach()
    return -(log_probs - log_probs.mean())


def approx_kl(log_ratio: torch.Tensor) -> float:
    """KL(old || new) estimate E[(r - 1) - log r] with r = pi_new / pi_old (non-negative, low variance)."""
    return float(((log_ratio.exp() - 1) - log_ratio).mean())


def kl_adapted_lr(lr: float, kl: float, cfg: Mapping[str, Any]) -> float:
    """The KL-adaptive step size: lr / 1.5 when kl > 2 target_kl, x 1.5 when kl < target_kl / 2, clamped to
    [lr_min, lr_max] (train_detach.py:524-530 and train_shared.py:461-467 at the reference's c49b552)."""
    if kl > 2.0 * cfg["target_kl"]:
        lr /= 1.5
    elif kl < 0.5 * cfg["target_kl"]:
        lr *= 1.5
    return float(min(max(lr, cfg["lr_min"]), cfg["lr_max"]))


@torch.no_grad()
def batch_kl_and_entropy(policy, obs: torch.Tensor, actions: torch.Tensor, old_log_probs: torch.Tensor) -> tuple[float, float]:
    """(approximate KL(rollout policy || policy), mean entropy) over a whole batch, after an update."""
    dist = policy.distribution(obs)
    return approx_kl(dist.log_prob(actions) - old_log_probs), float(dist.entropy().mean())
