"""The seeds ratbench accepts: integers from 0 to 2**32 - 1 (NumPy's and gymnasium's range; torch's is wider)."""

from __future__ import annotations

import click

SEED_MAX = 2**32 - 1
SEED = click.IntRange(0, SEED_MAX)
"""The click type of every command's ``--seed`` (``ratbench train`` checks its seed with the config's other keys)."""
