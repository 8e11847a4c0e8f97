"""ratbench.symmetric: x x^T, Cholesky factor and solve, on the LAPACK route (CPU float32/float64) and
the torch route (tensors that require grad), each tied to float64 NumPy/SciPy."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ratbench.symmetric import _blocked_self_gram, cholesky_lower, fill_upper, gram_lower

EPS = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}
DTYPES = [torch.float32, torch.float64]


def _matrix(n: int, d: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300), st.integers(1, 200), st.sampled_from(DTYPES), st.booleans())
def test_gram_lower_is_the_lower_triangle_of_x_times_x_transpose(n, d, dtype, through_torch):
    """Every entry is one length-d dot product of the same two rows on either route: it agrees with the
    float64 product to d * eps of the largest |x_i . x_j| (<= max ||x_i||^2 by Cauchy-Schwarz)."""
    x = _matrix(n, d, dtype, n * 1000 + d)
    if through_torch:
        x.requires_grad_(True)
    got = gram_lower(x).detach().double().tril()
    expected = (x.detach().double() @ x.detach().double().T).tril()
    scale = float((x.detach().double() ** 2).sum(1).max())
    torch.testing.assert_close(got, expected, rtol=0, atol=2 * d * EPS[dtype] * scale)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 200), st.integers(1, 150), st.integers(1, 9))
def test_blocked_self_gram_is_the_full_product(n, d, parts):
    """The torch fallback fills both triangles (the lower one by copies of upper blocks); each entry is a
    length-d float32 dot product, so it agrees with x @ x.T to d float32 roundings."""
    x = _matrix(n, d, torch.float32, n + 7 * d)
    got = _blocked_self_gram(x, parts)
    torch.testing.assert_close(got, x @ x.T, rtol=d * 1.2e-7, atol=d * 1.2e-7 * float((x @ x.T).abs().max()))


def test_fill_upper_mirrors_the_lower_triangle():
    m = torch.arange(16.0).reshape(4, 4)
    full = fill_upper(m)
    assert torch.equal(full, full.T)
    assert torch.equal(full.tril(), m.tril())


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 120), st.sampled_from(DTYPES), st.booleans(), st.floats(1e-3, 10.0))
def test_cholesky_solves_reading_only_the_lower_triangle(n, dtype, through_torch, damping):
    """M = X X^T / d + damping I with NaN in its strictly upper triangle: the solve must not read it.
    Cholesky is backward stable, so the residual ||M x - b|| is within c n eps ||M|| ||x|| (c = 10)."""
    x = _matrix(n, n + 3, torch.float64, n)
    exact = x @ x.T / (n + 3) + damping * torch.eye(n, dtype=torch.float64)
    b = _matrix(n, 1, torch.float64, n + 1)[:, 0]
    m = exact.to(dtype).clone()
    m[torch.triu_indices(n, n, 1).unbind()] = float("nan")
    if through_torch:
        m.requires_grad_(True)
    factor, ok = cholesky_lower(m)
    assert ok and factor.lapack is not through_torch
    sol = factor.solve(b.to(dtype)).detach().double()
    residual = float(torch.linalg.vector_norm(exact @ sol - b))
    bound = 10 * n * EPS[dtype] * float(torch.linalg.matrix_norm(exact, 2)) * float(torch.linalg.vector_norm(sol))
    assert residual <= bound + 10 * n * EPS[dtype] * float(torch.linalg.vector_norm(b))
    np.testing.assert_allclose(
        sol.numpy(), scipy.linalg.solve(exact.numpy(), b.numpy(), assume_a="pos"), rtol=0,
        atol=10 * n * EPS[dtype] * float(np.linalg.cond(exact.numpy())) * float(torch.linalg.vector_norm(sol)),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_cholesky_reports_an_indefinite_matrix(dtype):
    m = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=dtype)  # lower triangle of [[1, 2], [2, 1]]: eigenvalue -1
    _, ok = cholesky_lower(m.clone())
    assert not ok


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("through_torch", [False, True], ids=["lapack", "torch"])
@pytest.mark.parametrize("where,value", [((2, 0), float("nan")), ((1, 1), float("nan")), ((3, 3), float("inf"))])
def test_cholesky_reports_non_finite_input(dtype, through_torch, where, value):
    """LAPACK's potrf returns success on NaN input; the factor's diagonal is checked so both routes refuse it."""
    m = (torch.eye(4, dtype=dtype) * 2).clone()
    m[where] = value
    if through_torch:
        m.requires_grad_(True)
    _, ok = cholesky_lower(m)
    assert not ok


def test_solve_refuses_a_rhs_of_another_dtype():
    factor, ok = cholesky_lower(torch.eye(3, dtype=torch.float32) * 2)
    with pytest.raises(ValueError, match="float64"):
        factor.solve(torch.ones(3, dtype=torch.float64))
