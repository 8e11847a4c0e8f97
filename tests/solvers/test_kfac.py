"""K-FAC: per-layer (G (x) A + lambda I)^-1, exact when F is block diagonal with Kronecker layer blocks.

The reference factors come from hooks of our own (tests.dense: conv patches by
one-hot convolution, output gradients by autograd on the layer outputs), the
block-diagonal approximation B is assembled densely with np.kron in the flat
parameter layout, and d_ref = (B + lambda I)^-1 g by SciPy. Both are exact
solves of the same SPD system by different routes (eigendecompositions of the
factors against a dense Cholesky), so they agree to 4 (N + P) eps kappa(B + lambda I)
as in test_woodbury, times c_g, the cancellation factor of g (tests.dense.preconditioned_rtol).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from hypothesis import given

from ratbench import NPGProblem
from ratbench.policies import gaussian_mlp
from solvers import make_solver
from tests.dense import EPS64, dense, exact_rtol, expected_fast_layers, kfac_factors, layer_indices, layer_inputs_and_grads, preconditioned_rtol, rel_err
from tests.strategies import kronecker_exact_problems, problems, property_settings


def kfac_matrix(problem: NPGProblem) -> tuple[np.ndarray, float]:
    """The K-FAC approximation B of F (P x P) and kappa(B + lambda I), from reference factors.

    Captured Linear/Conv2d layers get G (x) A on their [W | b] indices; every other
    parameter forms one block of the exact F; cross-blocks are zero.
    """
    reference = dense(problem)
    modules = expected_fast_layers(problem)
    factors = layer_inputs_and_grads(problem, modules)
    approx = np.zeros((problem.num_params, problem.num_params))
    covered, eigenvalues = [], []
    for module in modules:
        a_factor, g_factor = kfac_factors(*factors[module])
        idx = layer_indices(problem, module).ravel()
        approx[np.ix_(idx, idx)] = np.kron(g_factor, a_factor)
        covered.extend(idx)
        eigenvalues.append(np.outer(np.linalg.eigvalsh(g_factor), np.linalg.eigvalsh(a_factor)).ravel())
    others = np.setdiff1d(np.arange(problem.num_params), covered)
    if others.size:
        block = reference.fisher[np.ix_(others, others)]
        approx[np.ix_(others, others)] = block
        eigenvalues.append(np.linalg.eigvalsh(block))
    spectrum = np.concatenate(eigenvalues) + problem.damping
    return approx, float(spectrum.max() / spectrum.min())


@property_settings(30)
@given(problems(architectures=("gaussian_mlp", "categorical", "cnn", "tied", "sequence", "layernorm", "shared_actor_critic")))
def test_matches_its_definition(problem):
    reference = dense(problem)
    approx, kappa = kfac_matrix(problem)
    expected = scipy.linalg.solve(approx + problem.damping * np.eye(problem.num_params), reference.gradient, assume_a="pos")
    result = make_solver("kfac").solve(problem)
    assert rel_err(result.direction, expected) <= preconditioned_rtol(problem, reference, kappa)
    assert result.transformed_advantage is None and result.stats.iterations == 1


@property_settings(40)
@given(kronecker_exact_problems())
def test_exact_when_fisher_is_kronecker_per_layer(problem):
    reference = dense(problem)
    approx, _ = kfac_matrix(problem)
    # the construction really is exact: F = B up to the rounding of forming both
    construction = 16 * (problem.n + problem.num_params) * EPS64
    assert np.linalg.norm(reference.fisher - approx) <= construction * np.linalg.norm(reference.fisher)
    result = make_solver("kfac").solve(problem)
    # K-FAC solves with B = F + dF, ||dF|| <= construction ||F||: that perturbation alone moves the solution
    # by up to kappa * construction (relative), on top of an exact solver's own 4 (N + P) eps kappa.
    allowance = exact_rtol(problem, reference) + construction * reference.kappa()
    assert rel_err(result.direction, reference.npg()) <= allowance


def test_not_exact_for_a_two_layer_network():
    """Across two layers (and within a layer whose inputs vary by sample) F is not Kronecker
    block diagonal: kfac is then only an approximation (so the exactness test is not vacuous)."""
    torch.manual_seed(0)
    policy = gaussian_mlp(3, 2, hidden=(8,)).double()
    obs = torch.randn(32, 3, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(32, dtype=torch.float64), 0.1)
    assert rel_err(make_solver("kfac").solve(problem).direction, dense(problem).npg()) > 0.1
