"""GAE against a hand-computed rollout with a truncation and a termination."""

import numpy as np

from ratbench.training.gae import gae


def test_gae_hand_computed_truncation_and_termination():
    # One env, 4 steps: steps 0-1 form an episode cut by the time limit after step 1
    # (bootstrap from V(final_obs) = 5.0), steps 2-3 an episode that terminates at step 3
    # (no bootstrap: next_values[3] = 9.9 must be ignored).
    rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
    values = np.array([[0.5], [0.6], [0.7], [0.8]])
    next_values = np.array([[0.6], [5.0], [0.8], [9.9]])
    terminated = np.array([[0], [0], [0], [1]], dtype=bool)
    ended = np.array([[0], [1], [0], [1]], dtype=bool)
    gamma, lam = 0.9, 0.8
    adv, ret = gae(rewards, values, next_values, terminated, ended, gamma, lam)
    # By hand: delta3 = 4 - 0.8 = 3.2; A3 = 3.2
    # delta2 = 3 + 0.9 * 0.8 - 0.7 = 3.02; A2 = 3.02 + 0.72 * 3.2 = 5.324
    # delta1 = 2 + 0.9 * 5.0 - 0.6 = 5.9; A1 = 5.9 (the episode ended: no carry from step 2)
    # delta0 = 1 + 0.9 * 0.6 - 0.5 = 1.04; A0 = 1.04 + 0.72 * 5.9 = 5.288
    expected = np.array([[5.288], [5.9], [5.324], [3.2]])
    np.testing.assert_allclose(adv, expected, rtol=0, atol=1e-12)  # float64 arithmetic on O(1) numbers
    np.testing.assert_allclose(ret, expected + values, rtol=0, atol=1e-12)


def test_gae_truncation_differs_from_termination():
    rewards, values = np.array([[1.0]]), np.array([[0.0]])
    ended = np.array([[True]])
    truncated, _ = gae(rewards, values, np.array([[10.0]]), np.array([[False]]), ended, 0.99, 0.95)
    terminal, _ = gae(rewards, values, np.array([[10.0]]), np.array([[True]]), ended, 0.99, 0.95)
    assert truncated[0, 0] == 1.0 + 0.99 * 10.0
    assert terminal[0, 0] == 1.0


def test_gae_lambda_one_is_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    T = 6
    rewards, values = rng.normal(size=(T, 2)), rng.normal(size=(T, 2))
    next_values = np.concatenate([values[1:], rng.normal(size=(1, 2))])
    none = np.zeros((T, 2), dtype=bool)
    adv, _ = gae(rewards, values, next_values, none, none, 0.9, 1.0)
    discounted = sum(0.9**k * rewards[k] for k in range(T)) + 0.9**T * next_values[-1]
    np.testing.assert_allclose(adv[0], discounted - values[0], atol=1e-12)
