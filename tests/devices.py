"""Device parameters for tests: the CUDA cases skip cleanly where no GPU is present (CI has none)."""

from __future__ import annotations

import pytest
import torch

needs_cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
