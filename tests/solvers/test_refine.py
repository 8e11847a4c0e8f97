"""Mixed-precision refinement (``woodbury.refine``) against the dense float64 solve of the same float32 scores.

The float32 route's data are its float32 scores; upcast, they are the problem the refinement solves in float64
(solvers/refine.py). On the quick families at damping 1e-10 (kappa(F + lambda I) 2e4 to 8e10, the float32
Cholesky failing on three of them) the refined direction matches that solve to 100 eps64 kappa, kappa the
condition number of the system the route solves, S S^T / N + lambda I (the same as kappa(F + lambda I) up to
the smaller eigenvalues, larger where N > P as on diagonal-exact-small). Plain float32 stays at eps32 kappa.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ratbench.curvature import capture
from ratbench.errors import RatbenchError
from solvers import make_solver
from suites.accuracy.families import get_family, quick_set

EPS64 = torch.finfo(torch.float64).eps


@pytest.mark.parametrize("family", quick_set())
def test_refined_float32_solve_matches_the_float64_solve_of_its_scores(family):
    lam = 1e-10
    problem = get_family(family).build(dtype=torch.float32, damping=lam)
    curv = capture(problem)
    scores = curv.astype(torch.float64).dense().numpy()
    n = scores.shape[0]
    b = problem.rhs().to(torch.float64).numpy()
    gram = scores @ scores.T / n
    eig = np.linalg.eigvalsh(gram)
    kappa = (eig[-1] + lam) / (max(eig[0], 0.0) + lam)
    want = scores.T @ scipy.linalg.solve(gram + lam * np.eye(n), b, assume_a="pos") / n
    result = make_solver("woodbury", refine=True).solve(problem, curvature=curv)
    got = result.direction.numpy().reshape(want.shape)
    assert result.direction.dtype == torch.float64
    assert np.linalg.norm(got - want) <= 100 * EPS64 * kappa * np.linalg.norm(want)
    assert result.stats.residual <= 16 * EPS64  # the float64 backward error it stopped at


def test_without_refinement_the_float32_failure_names_the_option():
    problem = get_family("hopper-rollout-small").build(dtype=torch.float32, damping=1e-10)
    with pytest.raises(RatbenchError, match="refine in mixed precision with the solver.s refine=true"):
        make_solver("woodbury").solve(problem)
    assert torch.isfinite(make_solver("woodbury", refine=True).solve(problem).direction).all()


@pytest.mark.parametrize("options, message", [
    ({"refine": "yes"}, "refine must be true or false"),
    ({"refine": True, "refine_tol": 0}, "refine_tol must be positive"),
    ({"refine": True, "refine_steps": 0}, "refine_steps must be a positive integer"),
])
def test_bad_refinement_options_get_one_sentence(options, message):
    with pytest.raises(RatbenchError, match=message):
        make_solver("woodbury", **options)


@pytest.mark.parametrize("block_size", [512, 256])
def test_refined_kaczmarz_blocks_match_the_float64_solve_of_the_float32_scores(block_size):
    """kaczmarz with refine: float32 block factors, float64 iterates; one block is the whole solve, two blocks
    converge over sweeps (cnn-small at damping 1e-6, where the plain float32 route loses about kappa eps32)."""
    lam = 1e-6
    problem = get_family("cnn-small").build(dtype=torch.float32, damping=lam)
    curv = capture(problem)
    scores = curv.astype(torch.float64).dense().numpy()
    n = scores.shape[0]
    gram = scores @ scores.T / n
    eig = np.linalg.eigvalsh(gram)
    kappa = (eig[-1] + lam) / (max(eig[0], 0.0) + lam)
    want = scores.T @ scipy.linalg.solve(gram + lam * np.eye(n), problem.rhs().double().numpy(), assume_a="pos") / n
    options = {"block_size": block_size, "sweeps": 1 if block_size >= n else 300, "tol": 1e-12}
    refined = make_solver("kaczmarz", refine=True, **options).solve(problem, curvature=curv)
    plain = make_solver("kaczmarz", **{**options, "tol": 1e-6}).solve(problem)
    error = lambda r: np.linalg.norm(r.direction.double().numpy() - want) / np.linalg.norm(want)  # noqa: E731
    assert refined.direction.dtype == torch.float64
    assert error(refined) <= 100 * EPS64 * kappa < error(plain)
