"""Metrics on hand-made vectors, their invariances, and score() against a real reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ratbench.metrics import cosine, damped_relative_error, relative_error, score
from ratbench.policies import categorical_mlp
from ratbench.problem import NPGProblem
from ratbench.reference import compute_reference


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_relative_error_by_hand():
    assert relative_error(t(3, 5), t(3, 4)) == pytest.approx(0.2)
    assert relative_error(t(0, 0), t(3, 4)) == pytest.approx(1.0)
    assert relative_error(t(3, 4), t(3, 4)) == 0.0
    assert relative_error(t(0, 0), t(0, 0)) == 0.0
    assert relative_error(t(1, 0), t(0, 0)) == math.inf


def test_cosine_by_hand():
    assert cosine(t(1, 0), t(0, 2)) == pytest.approx(0.0)
    assert cosine(t(1, 1), t(2, 2)) == pytest.approx(1.0)
    assert cosine(t(1, 1), t(-3, -3)) == pytest.approx(-1.0)
    assert cosine(t(1, 0), t(1, 1)) == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(cosine(t(0, 0), t(1, 1)))


# entries 0 or of magnitude >= 1e-100, so that products of two stay far from float64's subnormal range
entries = st.one_of(st.just(0.0), st.floats(1e-100, 1e3), st.floats(-1e3, -1e-100))


@given(st.lists(entries, min_size=1, max_size=50), st.floats(0.1, 10))
def test_cosine_of_parallel_vectors_is_one_and_never_past_it(values, scale):
    """Rounding in the dot product and the norms can step a few ulps past 1: clamped, never NaN unless v is 0."""
    v = torch.tensor(values, dtype=torch.float64)
    c = cosine(v, scale * v)
    if not any(values):
        assert math.isnan(c)
    else:  # dot and norms of length <= 50 in float64: each within 50 eps relative
        assert c <= 1.0 and c == pytest.approx(1.0, abs=200 * np.finfo(np.float64).eps)


def test_damped_relative_error_by_hand():
    """A = diag(1, 4): ||(1, 1)||_A = sqrt(5), ||(0, 1)||_A = 2."""
    diag = t(1, 4)

    def apply(v: torch.Tensor) -> torch.Tensor:
        return diag * v

    assert damped_relative_error(t(1, 2), t(1, 1), apply) == pytest.approx(2 / math.sqrt(5))
    assert damped_relative_error(t(2, 1), t(1, 1), apply) == pytest.approx(1 / math.sqrt(5))
    assert damped_relative_error(t(1, 1), t(1, 1), apply) == 0.0


def test_metrics_accept_float32_and_any_shape():
    d = torch.tensor([[3.0, 5.0]], dtype=torch.float32)
    assert relative_error(d, t(3, 4)) == pytest.approx(0.2, rel=1e-7)


vectors = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=3).filter(
    lambda v: sum(x * x for x in v) > 1e-6
)


@settings(max_examples=50, deadline=None)
@given(d=vectors, d_star=vectors, scale=st.floats(1e-3, 1e3), damping=st.floats(1e-3, 1e3))
def test_invariances(d, d_star, scale, damping):
    d, d_star = t(*d), t(*d_star)
    # scale invariance (float64 rounding: a few eps relative)
    assert relative_error(scale * d, scale * d_star) == pytest.approx(relative_error(d, d_star), rel=1e-12, abs=1e-12)
    plain = float(np.dot(d.numpy(), d_star.numpy()) / (np.linalg.norm(d.numpy()) * np.linalg.norm(d_star.numpy())))
    assert -1.0 <= cosine(d, d_star) <= 1.0 and cosine(d, d_star) == pytest.approx(plain, abs=1e-12)
    # with F = 0 the (F + lambda I)-norm is lambda^(1/2) times the Euclidean one: same relative error
    assert damped_relative_error(d, d_star, lambda v: damping * v) == pytest.approx(relative_error(d, d_star), rel=1e-12)


def test_score_against_a_real_reference():
    torch.manual_seed(0)
    policy = categorical_mlp(3, 4, (5,)).double()
    obs = torch.randn(20, 3, dtype=torch.float64)
    actions = torch.randint(4, (20,))
    problem = NPGProblem(policy, obs, actions, torch.randn(20, dtype=torch.float64), damping=0.2)
    reference = compute_reference(problem)
    exact = score(reference.direction, reference)
    assert exact.relative_error == 0.0 and exact.damped_relative_error == 0.0 and exact.cosine == pytest.approx(1.0)
    doubled = score(2 * reference.direction, reference)
    assert doubled.relative_error == pytest.approx(1.0) and doubled.damped_relative_error == pytest.approx(1.0)
    assert doubled.cosine == pytest.approx(1.0)
    # The vanilla gradient g scores the same whether the (F + lambda I)-norm uses F (parameter mode)
    # or J^T J e / N + lambda e without F (sample mode); both are float64 products of the same J.
    by_samples = compute_reference(problem, mode="sample")
    assert reference.mode == "parameter"
    for field, value in score(reference.gradient, reference).as_dict().items():
        assert getattr(score(reference.gradient, by_samples), field) == pytest.approx(value, rel=1e-9)
    assert set(exact.as_dict()) == {"relative_error", "cosine", "damped_relative_error"}
