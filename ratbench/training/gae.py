"""Generalised advantage estimation with correct time-limit bootstrapping.

Arrays are time-major, (T, E) for T steps of E envs. For step t:

- ``next_values[t]`` is V of the observation that follows action t *in the
  same episode*: V(s_{t+1}) when the episode goes on (or the rollout ends
  there), V(final_obs) when the episode was truncated by a time limit, and
  anything (ignored) when it terminated;
- ``terminated[t]``: the episode ended in a terminal state (no bootstrap);
- ``ended[t]``: the episode ended by termination *or* truncation (the
  lambda-recursion does not cross it).

    delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t
    A_t     = delta_t + gamma * lambda * (1 - ended_t) * A_{t+1}
    returns = A + values
"""

from __future__ import annotations

import numpy as np


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    ended: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns), both shaped like ``rewards``, float64."""
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    not_terminal = 1.0 - np.asarray(terminated, dtype=np.float64)
    carries = 1.0 - np.asarray(ended, dtype=np.float64)
    deltas = rewards + gamma * not_terminal * np.asarray(next_values, dtype=np.float64) - values
    advantages = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * carries[t] * running
        advantages[t] = running
    return advantages, advantages + values
