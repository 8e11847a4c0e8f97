"""Running statistics and PopArt against direct computations."""

import numpy as np
import pytest
import torch
from torch import nn

from ratbench.training.normalize import ObsNormalizer, PopArt, RewardScaler, RunningMeanStd


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 5))
    rms = RunningMeanStd((5,), epsilon=0.0)
    for chunk in np.array_split(data, 7):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-12)  # float64 Welford merge: rounding only
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-10)


def test_obs_normalizer_state_round_trip_and_clip():
    norm = ObsNormalizer((2,), clip=3.0)
    norm.update(np.array([[0.0, 10.0], [2.0, 30.0]]))
    other = ObsNormalizer((2,), clip=3.0)
    other.load_state_dict(norm.state_dict())
    x = np.array([[1.0, 1000.0]])
    np.testing.assert_array_equal(norm(x), other(x))
    assert norm(x)[0, 1] == 3.0  # clipped


def test_reward_scaler_resets_returns_at_episode_end():
    scaler = RewardScaler(2, gamma=0.9)
    scaler(np.array([1.0, 1.0]), np.array([False, True]))
    np.testing.assert_array_equal(scaler.returns, [1.0, 0.0])


def test_popart_update_preserves_outputs():
    torch.manual_seed(0)
    head = nn.Linear(4, 1)
    popart = PopArt(head)
    x = torch.randn(16, 4)
    before = popart.denormalize(head(x).squeeze(-1)).detach()
    popart.update(torch.randn(256) * 50 + 100)
    after = popart.denormalize(head(x).squeeze(-1)).detach()
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-4)  # float32 layer rescaled by std ~50
    assert abs(popart.shift - 100) < 15 and 30 < popart.std < 70


def test_popart_beta_is_per_batch_and_debiased():
    """beta close to 1 per batch: after k batches the statistics are the plain average of the k batch
    means and second moments (debiasing removes the zero start), whatever each batch's size."""
    head = nn.Linear(3, 1)
    popart = PopArt(head, beta=0.99999)
    batches = [torch.full((8192,), 10.0), torch.full((16,), 30.0)]
    for targets in batches:
        popart.update(targets)
    assert popart.shift == pytest.approx(20.0, rel=1e-4)
    assert popart.std == pytest.approx(10.0, rel=1e-4)  # sqrt((100 + 900) / 2 - 20^2)
    popart.update(torch.full((8192,), 20.0))  # a uniform batch cannot collapse the std
    assert popart.std > 8.0
