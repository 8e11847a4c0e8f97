"""``ratbench random-score``: each task's uniform-random score, the lower anchor of the fixed normalisation."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import yaml

from ratbench.io import atomic_write_text, check_writable
from ratbench.values import SEED


@click.command("random-score", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("envs", nargs=-1, required=True)
@click.option("--episodes", type=click.IntRange(min=1, max=10_000), default=100, show_default=True,
              help="uniform-random episodes per task (one per sub-env of a synchronous vector env).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="sub-env i is seeded seed + i.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the scores as YAML here (ratbench/reporting/random_scores.yaml is the committed one).")
def random_score(envs: tuple[str, ...], episodes: int, seed: int, out: Path | None) -> None:
    """Mean return of uniform-random actions per task, with the command that reproduces it (each task is
    measured on its own, so one task's command gives the same score as a run over many).

    \b
    ratbench random-score hopper walker2d --episodes 100"""
    from envs.registry import resolve_env_id
    from ratbench.training.random_score import random_score as measure

    if out is not None:
        check_writable(out, "the scores")
    ids = [resolve_env_id(name) for name in envs]  # unknown names fail before anything runs
    scores = {}
    for i, env_id in enumerate(ids, 1):
        click.echo(f"[{i}/{len(ids)}] {env_id}: {episodes} uniform-random episodes ...", err=True)
        score = measure(env_id, episodes, seed)
        scores[env_id] = {"score": round(score.mean, 4), "std": round(score.std, 4), "episodes": score.episodes,
                          "seed": score.seed, "cut": score.cut,
                          "command": f"ratbench random-score {shlex.quote(env_id)} --episodes {episodes} --seed {seed}"}
        click.echo(f"[{i}/{len(ids)}] {env_id}: {score.mean:.4g} (std {score.std:.3g}, {score.cut} cut)", err=True)
    text = ("# Uniform-random scores measured by ratbench (ratbench/training/random_score.py): the lower anchor of the\n"
            "# fixed normalisation (x - random) / (reference - random); regenerate with each entry's command.\n"
            + yaml.safe_dump(scores, sort_keys=False))
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(out, text)
        click.echo(f"wrote {out}", err=True)
