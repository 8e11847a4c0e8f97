"""Numbers published by other harnesses (``published.yaml``), as data with their sources.

``curves``: each entry: ``method``, ``harness``, ``env`` (a gymnasium id, version included), ``metric``
(``train_return`` or ``eval_return``), ``source`` and ``points`` ({env steps: value}); optionally ``spread``
({env steps: the +- the source prints}) and ``seeds`` (how many the source says it averaged). They are
shown beside ratbench's runs and always labelled as published, never mixed into its statistics.
``reference_scores``: one published score per task (``env``, ``score``, ``method``, ``source``), the upper
anchor of the fixed normalisation (:mod:`ratbench.reporting.normalisation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Mapping

import yaml

from envs.names import ENV_IDS


@dataclass(frozen=True)
class Published:
    method: str
    harness: str
    env: str
    metric: str
    source: str
    points: Mapping[int, float]
    spread: Mapping[int, float] = field(default_factory=dict)
    seeds: int | None = None

    def same_task(self, env: str) -> bool:
        """True when ``env`` (a ratbench short name or id) is this entry's task, any version."""
        full = ENV_IDS.get(env, env)
        return full.split("-v")[0].lower() == self.env.split("-v")[0].lower()


@dataclass(frozen=True)
class ReferenceScore:
    """A task's published reference score (the normalisation's upper anchor) and where it comes from."""

    env: str  # gymnasium id, version included
    score: float
    method: str
    source: str


def _raw() -> dict:
    return yaml.safe_load((resources.files("ratbench.reporting") / "published.yaml").read_text())


def load_published() -> list[Published]:
    return [Published(e["method"], e["harness"], e["env"], e["metric"], e["source"],
                      {int(k): float(v) for k, v in e["points"].items()},
                      {int(k): float(v) for k, v in e.get("spread", {}).items()}, e.get("seeds"))
            for e in _raw()["curves"]]


def load_reference_scores() -> dict[str, ReferenceScore]:
    """Per gymnasium id, the published reference score of ``published.yaml``'s ``reference_scores``."""
    return {e["env"]: ReferenceScore(e["env"], float(e["score"]), e["method"], e["source"])
            for e in _raw()["reference_scores"]}
