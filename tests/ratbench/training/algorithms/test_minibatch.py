"""The policy updates' shared helpers: the entropy bonus as a per-sample advantage.

The entropy term is checked exactly on a categorical policy with every action enumerated: with weights
w = K pi(a|s) the weighted policy gradient (1/N) sum_i w_i b_i grad log pi_i is the expectation over
actions itself, so it must equal autograd's gradient of the mean entropy, not only in expectation. Both
sides are float64 evaluations of the same sums in other orders: 1e-10 relative (as in the curvature tests).
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from ratbench.curvature import capture
from ratbench.policies import categorical_mlp
from ratbench.problem import NPGProblem
from ratbench.training.algorithms.minibatch import entropy_advantage
from solvers.base import vanilla_gradient
from tests.dense import rel_err
from tests.strategies import property_settings


@property_settings(30)
@given(states=st.integers(1, 6), obs_dim=st.integers(1, 4), hidden=st.integers(1, 6), actions=st.integers(2, 5),
       seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 5.0))
def test_entropy_advantage_is_the_entropy_gradient(states, obs_dim, hidden, actions, seed, scale):
    torch.manual_seed(seed)
    policy = categorical_mlp(obs_dim, actions, (hidden,)).double()
    obs = scale * torch.randn(states, obs_dim, dtype=torch.float64)
    params = list(policy.parameters())

    entropy = policy.distribution(obs).entropy().mean()
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(entropy, params)])

    every_obs = obs.repeat_interleave(actions, dim=0)  # (S K, obs_dim): each state once per action
    every_action = torch.arange(actions).repeat(states)
    with torch.no_grad():
        log_probs = policy.log_prob(every_obs, every_action)
    problem = NPGProblem(policy, every_obs, every_action, entropy_advantage(log_probs), 0.1,
                         weights=actions * log_probs.exp())
    assert rel_err(vanilla_gradient(capture(problem), problem), expected) <= 1e-10


def test_entropy_advantage_is_centred_and_detached():
    log_probs = torch.tensor([-0.5, -1.0, -3.0], requires_grad=True)
    bonus = entropy_advantage(log_probs)
    assert not bonus.requires_grad
    assert torch.allclose(bonus, torch.tensor([-1.0, -0.5, 1.5]))  # the rarer the action, the larger its bonus
