"""Fixed per-task normalisation: ``(x - random) / (reference - random)``.

The anchors are fixed per task, never taken from the methods being compared, so a method's normalised
score does not move when another method is added to or removed from a page (rliable's practice: random
and human scores on Atari, Agarwal et al. 2021). ``random``: the mean return of uniform-random actions
measured by ratbench (``random_scores.yaml``, each entry with the ``ratbench random-score`` command that
made it); ``reference``: a published score with its source (``published.yaml``, ``reference_scores``).
A task lacking either anchor has no normalised score and stays out of aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

from envs.names import DMC_PREFIX, ENVPOOL_ONLY_IDS, MINATAR_PREFIX, MUJOCO_IDS
from ratbench.reporting.published import ReferenceScore, load_reference_scores

RANDOM_SCORES_FILE = "random_scores.yaml"


@dataclass(frozen=True)
class Anchors:
    """A task's two normalisation anchors and where each comes from."""

    env: str
    random: float
    random_command: str
    reference: ReferenceScore

    def normalise(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=float) - self.random) / (self.reference.score - self.random)


def load_random_scores() -> dict[str, dict]:
    """``random_scores.yaml``: per gymnasium id, ``score``, ``std``, ``episodes``, ``seed``, ``cut``, ``command``."""
    return yaml.safe_load((resources.files("ratbench.reporting") / RANDOM_SCORES_FILE).read_text()) or {}


def load_anchors() -> dict[str, Anchors]:
    """Per gymnasium id, the anchors of every task that has both."""
    randoms, references = load_random_scores(), load_reference_scores()
    return {env: Anchors(env, float(randoms[env]["score"]), randoms[env]["command"], references[env])
            for env in sorted(set(randoms) & set(references))}


def family(env: str) -> str:
    """The benchmark family a task belongs to (aggregates are formed within one family)."""
    if env.startswith(MINATAR_PREFIX):
        return "MinAtar"
    if env.startswith(DMC_PREFIX):
        return "DMC"
    if env in ENVPOOL_ONLY_IDS:
        return "Atari"
    if env.split("-v")[0] in {e.split("-v")[0] for e in MUJOCO_IDS}:
        return "MuJoCo"
    return "other"


__all__ = ["Anchors", "RANDOM_SCORES_FILE", "family", "load_anchors", "load_random_scores"]
