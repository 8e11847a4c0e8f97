"""Image trunks: uint8 frames (N, C, H, W) -> features (N, hidden), scaled to floats inside the network.

- ``minatar``: Young & Tian (2019), MinAtar's network: one 3x3 conv (16), ReLU, dense ``hidden``.
- ``nature``: Mnih et al. (2015), the DQN "Nature CNN": 8x8/4 (32), 4x4/2 (64), 3x3/1 (64), dense
  ``hidden`` (512 in the paper), ReLUs; for 84x84 Atari-style frames.
- ``impala``: Espeholt et al. (2018), IMPALA's ResNet: three stages of [3x3 conv, 3x3/2 max-pool, two
  residual blocks of (ReLU, 3x3 conv) x 2] with 16, 32, 32 channels, ReLU, dense ``hidden`` (256).

Every parameter sits in an ``nn.Conv2d`` or ``nn.Linear`` (the curvature layer's fast path); max-pooling
and the residual additions carry no parameters. ``trunk: auto`` picks ``minatar`` for frames of at
most 16 x 16 pixels and ``nature`` above.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ratbench.errors import RatbenchError, unknown_name

TRUNKS = ("auto", "minatar", "nature", "impala")
SMALL_FRAME = 16  # auto: minatar up to 16 x 16 pixels, nature above


class ToFloat(nn.Module):
    """uint8 frames -> floats in [0, 1] (``scale = 1 / high`` of the observation box), in the network's
    dtype (a buffer follows ``.double()`` / ``.to()``)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.scale.dtype) * self.scale


def _flat_size(body: nn.Module, obs_shape: Sequence[int]) -> int:
    try:
        with torch.no_grad():
            return int(body(torch.zeros(1, *obs_shape)).shape[1])
    except RuntimeError:
        raise RatbenchError(f"frames of shape {tuple(obs_shape)} are too small for this image trunk's strides; "
                            "use model.trunk=auto or minatar") from None


def minatar_cnn(obs_shape: Sequence[int], hidden: int = 128, scale: float = 1.0) -> nn.Sequential:
    channels = obs_shape[0]
    body = nn.Sequential(nn.Conv2d(channels, 16, 3), nn.ReLU(), nn.Flatten())
    return nn.Sequential(ToFloat(scale), *body, nn.Linear(_flat_size(body, obs_shape), hidden), nn.ReLU())


def nature_cnn(obs_shape: Sequence[int], hidden: int = 512, scale: float = 1.0) -> nn.Sequential:
    channels = obs_shape[0]
    body = nn.Sequential(
        nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
        nn.Flatten(),
    )
    return nn.Sequential(ToFloat(scale), *body, nn.Linear(_flat_size(body, obs_shape), hidden), nn.ReLU())


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(relu(x)))), 3x3 convolutions keeping the channels and the size."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


def impala_cnn(obs_shape: Sequence[int], hidden: int = 256, scale: float = 1.0,
               channels: Sequence[int] = (16, 32, 32)) -> nn.Sequential:
    stages: list[nn.Module] = []
    previous = obs_shape[0]
    for out in channels:
        stages += [nn.Conv2d(previous, out, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1),
                   ResidualBlock(out), ResidualBlock(out)]
        previous = out
    body = nn.Sequential(*stages, nn.ReLU(), nn.Flatten())
    return nn.Sequential(ToFloat(scale), *body, nn.Linear(_flat_size(body, obs_shape), hidden), nn.ReLU())


BUILDERS: dict[str, Callable[..., nn.Sequential]] = {"minatar": minatar_cnn, "nature": nature_cnn, "impala": impala_cnn}


def image_trunk(name: str, obs_shape: Sequence[int], hidden: int, scale: float = 1.0) -> nn.Sequential:
    """The trunk ``name`` (one of :data:`TRUNKS`) for frames of ``obs_shape`` (C, H, W), ``hidden`` features."""
    if name not in TRUNKS:
        raise unknown_name("image trunk", name, TRUNKS)
    if name == "auto":
        name = "minatar" if max(obs_shape[1:]) <= SMALL_FRAME else "nature"
    return BUILDERS[name](obs_shape, hidden, scale)
