"""Shared helpers of the policy updates: minibatch indices, advantage normalisation, KL."""

from __future__ import annotations

from typing import Iterator

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


def approx_kl(log_ratio: torch.Tensor) -> float:
    """KL(old || new) estimate E[(r - 1) - log r] with r = pi_new / pi_old (non-negative, low variance)."""
    return float(((log_ratio.exp() - 1) - log_ratio).mean())
