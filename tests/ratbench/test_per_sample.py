"""per_sample_grads (vmap of grad) equals a plain autograd loop over samples.

The loop is the most literal definition of a score row: one backward of
log pi(a_i | s_i) per sample. Both evaluate the same float64 expressions,
so they agree to rounding; 1e-10 relative leaves orders of magnitude of room
while a wrong column, order or sample is O(1).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.distributions import Distribution

from ratbench import NPGProblem, RatbenchError
from ratbench.per_sample import no_distribution_validation, param_names, per_sample_grads
from ratbench.policies import GaussianPolicy, mlp
from tests.dense import rel_err
from tests.strategies import problems, property_settings

RTOL = 1e-10


def autograd_loop(problem: NPGProblem) -> torch.Tensor:
    """Rows grad log pi(a_i | s_i) over problem.params, one backward per sample: (N, P)."""
    rows = []
    for i in range(problem.n):
        logp = problem.policy.log_prob(problem.obs[i : i + 1], problem.actions[i : i + 1]).sum()
        grads = torch.autograd.grad(logp, problem.params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if gr is None else gr).reshape(-1) for gr, p in zip(grads, problem.params)]))
    return torch.stack(rows)


@property_settings(30)
@given(problems(), st.sampled_from([None, 1, 3]))
def test_matches_autograd_loop(problem, chunk_size):
    scores = per_sample_grads(problem.policy, problem.params, problem.obs, problem.actions, chunk_size=chunk_size)
    assert scores.shape == (problem.n, problem.num_params)
    assert rel_err(scores, autograd_loop(problem)) <= RTOL


@property_settings(15)
@given(problems(architectures=("gaussian_mlp", "tied", "custom_module"), freeze=False), st.randoms())
def test_columns_follow_params_order(problem, random):
    """Columns come in the order of ``params`` (each tensor row-major); other parameters are held fixed."""
    params = list(problem.params)
    full = per_sample_grads(problem.policy, params, problem.obs, problem.actions)
    starts, start = [], 0
    for p in params:
        starts.append(start)
        start += p.numel()
    order = random.sample(range(len(params)), random.randint(1, len(params)))
    picked = per_sample_grads(problem.policy, [params[i] for i in order], problem.obs, problem.actions)
    expected = torch.cat([full[:, starts[i] : starts[i] + params[i].numel()] for i in order], dim=1)
    assert rel_err(picked, expected) <= RTOL


def test_refuses_batchnorm_in_training_mode_and_foreign_parameters():
    torch.manual_seed(0)
    policy = GaussianPolicy(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)), 1).double()
    obs = torch.randn(5, 3, dtype=torch.float64)
    actions = torch.randn(5, 1, dtype=torch.float64)
    with pytest.raises(RatbenchError, match=r"BatchNorm in training mode"):
        per_sample_grads(policy, list(policy.parameters()), obs, actions)
    policy.eval()
    problem = NPGProblem(policy, obs, actions, torch.randn(5, dtype=torch.float64), 0.1)
    assert rel_err(per_sample_grads(policy, problem.params, obs, actions), autograd_loop(problem)) <= RTOL
    stranger = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(RatbenchError, match=r"not a parameter of the policy"):
        param_names(policy, [stranger])


def test_distribution_validation_is_restored():
    before = Distribution._validate_args
    with pytest.raises(KeyError):
        with no_distribution_validation():
            assert Distribution._validate_args is False
            raise KeyError("boom")
    assert Distribution._validate_args == before


def test_leaves_parameters_and_gradients_untouched():
    torch.manual_seed(0)
    policy = GaussianPolicy(mlp([3, 5, 2]), 2).double()
    before = [p.detach().clone() for p in policy.parameters()]
    obs = torch.randn(4, 3, dtype=torch.float64)
    per_sample_grads(policy, list(policy.parameters()), obs, policy.act(obs).detach())
    assert all(torch.equal(p, q) for p, q in zip(policy.parameters(), before))
    assert all(p.grad is None for p in policy.parameters())


# ----------------------------------------------------------------------------- modules torch.func cannot transform


class _GRUBody(nn.Module):
    """A recurrent body over a short observation sequence (N, T, 3) -> logits (N, 2)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


class _InPlaceBody(nn.Module):
    """A Linear whose output is rectified in place, then another in-place op on a fresh tensor."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(3, 6), nn.Linear(6, 2)

    def forward(self, x):
        y = self.first(x)
        y.relu_()
        z = y * 1.5
        z.add_(0.25)
        return self.second(z)


class _Square(torch.autograd.Function):
    """An old-style custom autograd.Function (no setup_context): torch.func refuses it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


class _CustomFunctionBody(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.scale, self.second = nn.Linear(3, 6), nn.Parameter(torch.linspace(0.5, 1.5, 6)), nn.Linear(6, 2)

    def forward(self, x):
        return self.second(_Square.apply(self.first(x)) * self.scale)


def _explicit_scores(policy, obs, actions):
    """Rows of J by one plain autograd call per sample, written here independently of ratbench."""
    params = [p for p in policy.parameters() if p.requires_grad]
    rows = []
    for i in range(obs.shape[0]):
        grads = torch.autograd.grad(policy.log_prob(obs[i:i + 1], actions[i:i + 1]).sum(), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows).detach().numpy()


@pytest.mark.parametrize("body,obs_shape,slower", [(_GRUBody, (24, 4, 3), True), (_InPlaceBody, (24, 3), False),
                                                     (_CustomFunctionBody, (24, 3), True)],
                         ids=["gru", "in-place", "custom-function"])
@pytest.mark.parametrize("solver", ["woodbury", "kaczmarz", "cg"])
def test_policies_torch_func_cannot_transform_still_get_d_star(body, obs_shape, slower, solver):
    """Every solver returns d* for these policies (float64, against a dense SciPy solve on J built by one
    plain autograd call per sample), with one warning where it takes the slower route (a GRU, an old-style
    autograd.Function) and none where the layer fast path follows (an in-place op on a Linear's output)."""
    from ratbench.per_sample import RatbenchWarning
    from ratbench.policies import CategoricalPolicy
    from solvers import make_solver
    from tests.dense import Dense, exact_rtol, rel_err, stopped_allowance
    
    torch.manual_seed(0)
    policy = CategoricalPolicy(body()).double()
    obs = torch.randn(*obs_shape, dtype=torch.float64)
    actions = policy.act(obs).detach()
    advantages = torch.randn(obs_shape[0], dtype=torch.float64)
    problem = NPGProblem(policy, obs, actions, advantages, 0.1)
    tol = 1e-13
    options = {"kaczmarz": {"block_size": 8, "sweeps": 400, "tol": tol}, "cg": {"iterations": 500, "tol": tol}}.get(solver, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = make_solver(solver, **options).solve(problem)
    assert sum(issubclass(w.category, RatbenchWarning) for w in caught) == int(slower), [str(w.message) for w in caught]
    reference = Dense(_explicit_scores(policy, obs, actions), advantages.numpy(), 0.1)
    d_star = reference.npg()
    if solver == "woodbury":  # exact: the float64 forward-error allowance of tests/solvers/test_woodbury.py
        assert rel_err(result.direction, d_star) <= exact_rtol(problem, reference)
    elif solver == "kaczmarz":  # stopped on its dual residual: tests/solvers/test_kaczmarz.py's allowance
        assert result.stats.residual <= tol
        allowance = stopped_allowance(problem, reference, result.direction, result.dual, d_star)
        assert np.linalg.norm(result.direction.numpy() - d_star) <= allowance
    else:  # stopped at relative residual tol (or its rounding floor): forward error <= kappa x that residual
        kappa = reference.condition_number()
        assert rel_err(result.direction, d_star) <= kappa * (tol + exact_rtol(problem, reference) * (1 + kappa))


def test_the_slower_route_says_so_once_per_capture():
    from ratbench.curvature import capture
    from ratbench.per_sample import RatbenchWarning
    from ratbench.policies import CategoricalPolicy

    torch.manual_seed(0)
    policy = CategoricalPolicy(_GRUBody()).double()
    obs = torch.randn(8, 4, 3, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(8, dtype=torch.float64), 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capture(problem)
    messages = [str(w.message) for w in caught if issubclass(w.category, RatbenchWarning)]
    assert len(messages) == 1, messages
    assert re.search(r"body\.gru \(GRU\).*8 backward passes", messages[0]), messages[0]


def test_a_policy_autograd_cannot_differentiate_is_one_clear_error():
    """relu_ then an in-place multiply of the same tensor breaks autograd itself: refused, named."""
    from ratbench.policies import CategoricalPolicy
    from solvers import make_solver

    class Broken(_InPlaceBody):
        def forward(self, x):
            y = self.first(x)
            y.relu_()
            y.mul_(2.0)
            return self.second(y)

    policy = CategoricalPolicy(Broken()).double()
    obs = torch.randn(8, 3, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(8, dtype=torch.float64), 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RatbenchError, match=r"body\.first \(Linear\).*not supported"):
            make_solver("woodbury").solve(problem)
