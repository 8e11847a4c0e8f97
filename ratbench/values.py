"""Checks of plain values that configs, suites, reports and commands share: whole numbers and seeds. Kept free of
heavy imports (gymnasium, torch) so that lazily loaded commands and the reporting package can use them."""

from __future__ import annotations

from typing import Any

import click

SEED_MAX = 2**32 - 1
"""The seeds ratbench accepts: integers from 0 to 2**32 - 1 (NumPy's and gymnasium's range; torch's is wider)."""
SEED = click.IntRange(0, SEED_MAX)
"""The click type of every command's ``--seed`` (``ratbench train`` checks its seed with the config's other keys)."""


def is_int(value: Any) -> bool:
    """An int and not a bool (YAML's ``true`` is the int 1 to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)
