"""Problem families: listed, seeded, deterministic, with the advertised sizes and exactness claims."""

from __future__ import annotations

import pytest
import torch

from ratbench.errors import RatbenchError
from ratbench.reference import DEFAULT_MAX_PARAMS, dense_jacobian, reference_mode
from suites.accuracy.families import FAMILIES, build_problem, family_names, get_family, quick_set

# Cheap to build (no MuJoCo); the rollout family is covered separately below.
SYNTHETIC_SMALL = ["gaussian-mlp-small", "categorical-small", "cnn-small", "shared-ac-small", "kfac-exact-small", "diagonal-exact-small"]


def _tensors(problem) -> list[torch.Tensor]:
    return [problem.obs, problem.actions, problem.advantages, *[p.detach() for p in problem.params]]


def test_registry_names_and_quick_set():
    names = family_names()
    for required in ("gaussian-mlp-small", "gaussian-mlp-medium", "categorical-small", "cnn-small", "shared-ac-small",
                     "joint-ac-small", "hopper-rollout-small", "humanoid-rollout-medium", "kfac-exact-small", "diagonal-exact-small"):
        assert required in names
    assert set(quick_set()) == {n for n in names if n.endswith("-small")}
    for name in names:
        mode = reference_mode(get_family(name).num_params(), DEFAULT_MAX_PARAMS)
        assert mode == ("parameter" if name.endswith("-small") else "sample"), name


def test_advertised_sizes():
    """Humanoid-sized medium MLP: obs 348 -> 256 -> 256 -> 17 plus a 17-vector log-std, N = 1024."""
    humanoid_p = 348 * 256 + 256 + 256 * 256 + 256 + 256 * 17 + 17 + 17
    for name in ("gaussian-mlp-medium", "humanoid-rollout-medium", "shared-ac-medium"):
        assert get_family(name).num_params() == humanoid_p and get_family(name).n == 1024
    medium = build_problem("gaussian-mlp-medium", dtype=torch.float32)
    assert medium.obs.shape == (1024, 348) and medium.actions.shape == (1024, 17)
    assert medium.num_params == humanoid_p
    assert build_problem("cnn-small").obs.shape[1:] == (3, 32, 32)
    assert get_family("cnn-medium").num_params() > DEFAULT_MAX_PARAMS


@pytest.mark.parametrize("name", SYNTHETIC_SMALL)
def test_seeded_and_deterministic(name):
    rng_before = torch.random.get_rng_state()
    first, again, other = build_problem(name, seed=3), build_problem(name, seed=3), build_problem(name, seed=4)
    assert torch.equal(torch.random.get_rng_state(), rng_before), "building a problem must not consume the global RNG"
    assert first.n == get_family(name).n and first.num_params == get_family(name).num_params()
    assert first.name == name and first.weights is None and first.dtype == torch.float64
    for a, b in zip(_tensors(first), _tensors(again)):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(_tensors(first), _tensors(other)))
    # advantages centred and scaled to unit RMS by the family (float64 rounding only)
    assert abs(first.advantages.mean().item()) < 1e-12
    assert first.advantages.pow(2).mean().item() == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("name", ["gaussian-mlp-small", "cnn-small"])
def test_float32_problem_is_the_float64_one_rounded(name):
    p64, p32 = build_problem(name, dtype=torch.float64), build_problem(name, dtype=torch.float32)
    assert p32.dtype == torch.float32 and p32.obs.dtype == torch.float32
    for a, b in zip(_tensors(p64), _tensors(p32)):
        assert torch.equal(a.to(b.dtype), b)


def test_hopper_rollout_is_real_and_deterministic():
    first, again = build_problem("hopper-rollout-small", seed=1), build_problem("hopper-rollout-small", seed=1)
    assert first.obs.shape == (512, 11) and first.actions.shape == (512, 3)
    assert bool(torch.isfinite(first.obs).all()) and first.obs.abs().max() <= 10.0  # the normaliser clips at 10
    for a, b in zip(_tensors(first), _tensors(again)):
        assert torch.equal(a, b)
    # GAE advantages of real rewards are not the synthetic families' white noise: neighbours correlate.
    adv = first.advantages
    assert torch.corrcoef(torch.stack([adv[:-1], adv[1:]]))[0, 1] > 0.5


def test_exact_families_have_the_structure_they_claim():
    """diagonal-exact-small: F exactly diagonal; kfac-exact-small: F exactly G (x) A."""
    diag = build_problem("diagonal-exact-small")
    j = dense_jacobian(diag)
    fisher = j.T @ j / diag.n
    assert torch.count_nonzero(fisher - torch.diag(torch.diagonal(fisher))) == 0

    kfac = build_problem("kfac-exact-small")
    j = dense_jacobian(kfac)
    layer = kfac.policy.body
    a = torch.cat([kfac.obs, torch.ones(kfac.n, 1, dtype=torch.float64)], dim=1)  # [x; 1]
    # Columns of J are [W row-major | b]; reorder to the [W | b] block's row-major layout.
    d_out, d_in = layer.weight.shape
    per_sample = torch.cat([j[:, : d_out * d_in].reshape(-1, d_out, d_in), j[:, d_out * d_in :, None]], dim=2)
    g = per_sample[:, :, -1]  # the bias gradient is g itself
    kron = torch.kron(g.T @ g / kfac.n, a.T @ a / kfac.n)
    flat = per_sample.reshape(kfac.n, -1)
    torch.testing.assert_close(flat.T @ flat / kfac.n, kron, rtol=1e-12, atol=1e-14)
    assert "kfac" in get_family("kfac-exact-small").exact_for and "diagonal" in get_family("diagonal-exact-small").exact_for


def test_unknown_family_lists_the_valid_names():
    with pytest.raises(RatbenchError, match="unknown problem 'gausian-mlp-small'.*did you mean 'gaussian-mlp-small'") as err:
        build_problem("gausian-mlp-small")
    for name in FAMILIES:
        assert name in str(err.value)
    with pytest.raises(RatbenchError, match="float32 or float64"):
        build_problem("categorical-small", dtype=torch.float16)
