"""The solver interface with several right-hand sides: advantages (N, k) give directions (P, k).

woodbury and kaczmarz solve the k columns together (one Gram, one factorisation per block); cg, diagonal and
kfac solve them one at a time on one capture. Either way column j must be the solve of right-hand side j
alone: the exact solvers against the dense float64 solve of that column, to their derived allowance
(tests/dense.exact_rtol, derived in tests/solvers/test_woodbury.py), and every solver against its own
single-column solve to rounding (the same operations, column by column).
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import given

from ratbench.actor_critic import ActorCritic
from ratbench.curvature import capture
from ratbench.problem import NPGProblem, ValueTerm
from solvers import WarmStart, make_solver, solver_names
from tests.dense import EPS64, column_dense, exact_rtol, joint_scores, rel_err
from tests.strategies import joint_problems, property_settings

OPTIONS = {"kaczmarz": {"block_size": 4, "sweeps": 3}, "cg": {"iterations": 5}}
ROUNDING = 1e3 * EPS64
"""Column j of a k-column solve against the solve of column j alone: the same floating-point operations except
that LAPACK's triangular solves and the Gram products see k columns at once (blocked differently), so they differ
by rounding only; observed <= 1e-15, allowed ~2e-13."""


def _single(problem, j):
    return dataclasses.replace(problem, advantages=problem.advantages[:, j].clone(), trusted=True)


@property_settings(25)
@given(joint_problems())
def test_every_solver_solves_each_column_as_its_own_problem(problem):
    curv = capture(problem)
    for name in solver_names():
        solver = make_solver(name, **OPTIONS.get(name, {}))
        both = solver.solve(problem, curvature=curv)
        k = problem.advantages.shape[1]
        assert both.direction.shape == (problem.num_params, k)
        for j in range(k):
            alone = solver.solve(_single(problem, j), curvature=curv)
            assert rel_err(both.direction[:, j], alone.direction) <= ROUNDING
            if alone.transformed_advantage is not None:
                assert both.transformed_advantage.shape == (problem.n, k)


@property_settings(25)
@given(joint_problems())
def test_exact_solvers_match_the_dense_solve_of_every_column(problem):
    scores = joint_scores(problem)
    for name in ("woodbury", "kaczmarz"):
        result = make_solver(name, block_size=problem.n).solve(problem) if name == "kaczmarz" else make_solver(name).solve(problem)
        for j in range(problem.advantages.shape[1]):
            reference = column_dense(problem, scores, j)
            assert rel_err(result.direction[:, j], reference.npg()) <= exact_rtol(problem, reference)


def test_a_one_column_warm_start_starts_every_column():
    """The reference's g_k is one direction subtracted from both right-hand sides (train_shared.py:166-167)."""
    torch.manual_seed(3)
    model = ActorCritic(3, 2, hidden=(5,), shared=True).double()
    obs = torch.randn(6, 3, dtype=torch.float64)
    problem = NPGProblem(model.policy, obs, model.policy.act(obs).detach(), torch.randn(6, 2, dtype=torch.float64), 0.1,
                         value=ValueTerm(model.value_function(), torch.randn(6, dtype=torch.float64)))
    carried = torch.randn(problem.num_params, dtype=torch.float64)
    solver = make_solver("kaczmarz", block_size=6, residual="original")
    both = solver.solve(problem, warm_start=WarmStart(direction=carried))
    for j in range(2):
        alone = solver.solve(_single(problem, j), warm_start=WarmStart(direction=carried))
        assert rel_err(both.transformed_advantage[:, j], alone.transformed_advantage) <= 1e3 * EPS64
