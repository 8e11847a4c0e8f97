"""Diagonal Fisher: d = g / (diag(F) + lambda); exact exactly when F is diagonal.

Allowances (float64): diag(F), a sum of squares, is computed to ~(N + P) eps
relative accuracy; g = S^T b / N to ~(N + P) eps c_g (normwise), c_g =
|| |S|^T |b| || / ||S^T b|| the amplification by its terms' cancellation (a
hypothesis example with c_g = 362 missed an allowance without it by 2.5x); and
dividing by diag(F) + lambda amplifies a relative error by at most kappa_D =
max(diag F + lambda) / min(diag F + lambda), so the definition checks allow
4 (N + P) eps kappa_D c_g. The exactness check on a
diagonal F compares with the dense d* and uses the exact-solver allowance of
test_woodbury.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given

from ratbench import NPGProblem
from ratbench.policies import gaussian_mlp
from solvers import make_solver
from tests.dense import dense, exact_rtol, preconditioned_rtol, rel_err
from tests.strategies import diagonal_fisher_problems, problems, property_settings


@property_settings(40)
@given(problems())
def test_matches_its_definition(problem):
    reference = dense(problem)
    diagonal = np.diag(reference.fisher) + problem.damping
    expected = reference.gradient / diagonal
    kappa_d = diagonal.max() / diagonal.min()
    result = make_solver("diagonal").solve(problem)
    assert rel_err(result.direction, expected) <= preconditioned_rtol(problem, reference, kappa_d)
    assert result.transformed_advantage is None and result.stats.iterations == 1


@property_settings(40)
@given(diagonal_fisher_problems())
def test_exact_when_fisher_is_diagonal(problem):
    reference = dense(problem)
    fisher = reference.fisher
    assert np.count_nonzero(fisher - np.diag(np.diag(fisher))) == 0  # the construction really is diagonal
    result = make_solver("diagonal").solve(problem)
    assert rel_err(result.direction, reference.npg()) <= exact_rtol(problem, reference)


def test_not_exact_for_a_coupled_fisher():
    """An MLP's score coordinates are correlated across the batch: diagonal is then only an
    approximation (documented, so the exactness test above is not vacuous)."""
    torch.manual_seed(0)
    policy = gaussian_mlp(3, 2, hidden=(8,)).double()
    obs = torch.randn(32, 3, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(32, dtype=torch.float64), 0.1)
    reference = dense(problem)
    assert rel_err(make_solver("diagonal").solve(problem).direction, reference.npg()) > 0.1


@property_settings(30)
@given(problems())
def test_unweighted_diagonal_is_the_reference_diag_baseline(problem):
    """weighted=False: g of the weighted problem over the diagonal of the unweighted scores' Fisher
    (train_detach.py:364-376); the same tolerance as the weighted definition above."""
    reference = dense(problem)
    w = np.ones(problem.n) if problem.weights is None else problem.weights.double().numpy()
    unweighted = reference.scores / np.sqrt(w)[:, None]
    diagonal = (unweighted**2).sum(0) / problem.n + problem.damping
    expected = reference.gradient / diagonal
    kappa_d = diagonal.max() / diagonal.min()
    result = make_solver("diagonal", weighted=False).solve(problem)
    assert rel_err(result.direction, expected) <= preconditioned_rtol(problem, reference, kappa_d)
