"""Environment states as a resumed run sees them: encoded, saved and loaded with weights_only=True."""

from __future__ import annotations

import io
from typing import Any

import torch

from ratbench.safe_state import decode, encode


def through_checkpoint(state: Any) -> Any:
    """``state`` after the trip a checkpoint makes (:mod:`ratbench.training.checkpoint`)."""
    buffer = io.BytesIO()
    torch.save(encode(state), buffer)
    buffer.seek(0)
    return decode(torch.load(buffer, weights_only=True))
