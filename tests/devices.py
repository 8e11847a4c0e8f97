"""Device parameters for tests: the CUDA cases skip cleanly where no GPU is present (CI has none)."""

from __future__ import annotations

import pytest
import torch

needs_cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


def requires_cuda(test):
    """A CUDA-only test: the ``cuda`` marker and a clean skip without a GPU (the marks of ``needs_cuda``)."""
    for mark in reversed(needs_cuda):
        test = mark(test)
    return test
