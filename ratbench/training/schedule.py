"""When a run is evaluated: fixed environment-step marks, the same whatever the rollout length.

A run with ``eval.every_steps = E`` is evaluated at the marks ``E, 2E, ...`` up to its step budget,
and at its end. Steps are counted in the run's ``steps_unit`` (:func:`steps_per_sample`): one per action the
agent takes, or, for the pixel-DMC literature's protocol, one per simulator control step, action repeat included.
Updates happen only at iteration boundaries (multiples of the batch ``B = num_envs x num_steps`` samples,
``B x`` the action repeat in environment steps: :func:`steps_per_iteration`), so the policy *at mark m* is the policy after the last update made with at most m
environment steps: the one at the boundary ``b`` with ``b <= m < b + B``. It is evaluated there and
its row in progress.csv records ``eval_step = m``. PPO (B = 2,048) and the NPG methods (B = 8,192)
thus report the same marks, and no evaluated policy has seen more than m steps. The end of the run
(its first boundary at or past the budget) is evaluated too, recorded at its own step count.

A spacing shorter than one batch cannot give every mark a policy of its own: each boundary is then
evaluated once and records the largest mark in its batch (``ratbench report`` lists runs whose marks
differ from the others').

``eval.every`` (iterations) is the older schedule, kept for runs written before ``every_steps``
existed; both may be set, and a boundary due under either is evaluated once.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from envs.registry import action_repeat


def steps_per_sample(config: Mapping[str, Any]) -> int:
    """Budget steps per collected sample: the task's action repeat when ``steps_unit`` is ``environment`` (the
    pixel-DMC literature counts simulator steps: PlaNet, SAC-AE, CURL, DrQ report at 500k of them), else 1."""
    return action_repeat(config["env"]) if config["steps_unit"] == "environment" else 1


def steps_per_iteration(config: Mapping[str, Any]) -> int:
    """Budget steps one iteration adds: ``num_envs x num_steps`` samples times :func:`steps_per_sample`."""
    return config["num_envs"] * config["num_steps"] * steps_per_sample(config)


def evaluation_mark(env_steps: int, batch: int, every_steps: int, budget: int) -> Optional[int]:
    """The largest mark ``m = kE`` (``k >= 1``, ``m <= budget``) with ``env_steps <= m < env_steps + batch``.

    ``env_steps``: the boundary just reached (a multiple of ``batch``); None when no mark is due there
    or ``every_steps`` is 0.
    """
    if every_steps <= 0:
        return None
    last = min(env_steps + batch - 1, budget) // every_steps * every_steps
    return last if last >= max(env_steps, every_steps) else None


def evaluation_step(config: Mapping[str, Any], iteration: int, env_steps: int) -> Optional[int]:
    """The step an evaluation at this boundary is recorded at, or None when none is due.

    The end (``env_steps >= steps``) records its own step count unless a mark falls in its batch.
    """
    batch = steps_per_iteration(config)
    schedule = config["eval"]
    mark = evaluation_mark(env_steps, batch, schedule.get("every_steps", 0), config["steps"])
    if mark is not None:
        return mark
    every = schedule["every"]
    if env_steps >= config["steps"] or (every > 0 and iteration % every == 0):
        return env_steps
    return None


def evaluations_per_iteration(config: Mapping[str, Any]) -> float:
    """The long-run average number of evaluations per iteration under ``config``'s schedule (the end aside)."""
    batch = steps_per_iteration(config)
    every_steps, every = config["eval"].get("every_steps", 0), config["eval"]["every"]
    per_marks = batch / every_steps if every_steps > 0 else 0.0
    per_iterations = 1 / every if every > 0 else 0.0
    return max(per_marks, per_iterations)  # a boundary due under both is evaluated once


__all__ = ["evaluation_mark", "evaluation_step", "evaluations_per_iteration", "steps_per_iteration", "steps_per_sample"]
