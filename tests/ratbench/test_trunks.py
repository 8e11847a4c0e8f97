"""Image trunks (ratbench/trunks.py) through the curvature layer, tied to the dense float64 reference.

Each trunk gets uint8 frames of the smallest size its strides allow, categorical and Gaussian heads, and
is run in float64. The dense reference takes autograd per-sample scores S and solves in sample space,
d* = S^T (S S^T / N + lambda I)^-1 b / N (P is 10^4-10^5 here, too large for a P x P solve); Woodbury
through the curvature layer (convs keeping per-sample gradients, or unfolded inputs on the materialised
or positions Gram route, as their shapes decide) must match it to 4 (N + P) eps kappa, the allowance of
every exact solver.
"""

import numpy as np
import pytest
import torch
from torch import nn

from ratbench import NPGProblem, RatbenchError
from ratbench.actor_critic import ActorCritic
from ratbench.curvature import capture
from ratbench.policies import CategoricalPolicy
from ratbench.trunks import SMALL_FRAME, TRUNKS, image_trunk
from solvers import make_solver
from tests.dense import dense, exact_rtol, rel_err

FRAMES = {"minatar": (4, 10, 10), "nature": (2, 36, 36), "impala": (3, 12, 12)}


@pytest.mark.parametrize("trunk", list(FRAMES))
@pytest.mark.parametrize("discrete", [True, False], ids=["categorical", "gaussian"])
@pytest.mark.parametrize("shared", [False, True], ids=["separate", "shared"])
def test_direction_matches_the_dense_sample_space_solve(trunk, discrete, shared):
    torch.manual_seed(0)
    shape = FRAMES[trunk]
    model = ActorCritic(int(np.prod(shape)), 3, discrete=discrete, hidden=(8,), image_shape=shape,
                        image_scale=1 / 255, trunk=trunk, shared=shared).double()
    if shared:  # the trunk is the critic's too, and the policy's parameters include it
        assert model.critic[0] is model.policy.body[0]
    obs = torch.randint(0, 256, (6, *shape), dtype=torch.uint8)
    actions = model.policy.act(obs).detach()
    problem = NPGProblem(model.policy, obs, actions, torch.randn(6, dtype=torch.float64), 0.1)
    reference = dense(problem)
    expected = reference.scores.T @ reference.dual() / reference.n
    direction = make_solver("woodbury").solve(problem).direction
    assert rel_err(direction, expected) <= exact_rtol(problem, reference)


def test_every_parameter_sits_in_a_conv_or_linear_layer():
    """No torch.func fallback: the curvature layer captures every trunk parameter on its fast path."""
    for trunk, shape in FRAMES.items():
        body = nn.Sequential(image_trunk(trunk, shape, 8), nn.Linear(8, 3)).double()
        policy = CategoricalPolicy(body)
        obs = torch.randint(0, 256, (4, *shape), dtype=torch.uint8)
        problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(4, dtype=torch.float64), 0.1)
        curv = capture(problem)
        assert curv.other_scores is None
        assert sum(layer.d_in * layer.d_out for layer in curv.layers) == problem.num_params


def test_auto_picks_minatar_for_small_frames_and_nature_above():
    assert isinstance(image_trunk("auto", (4, SMALL_FRAME, SMALL_FRAME), 8)[1], nn.Conv2d)
    assert image_trunk("auto", (4, 10, 10), 8)[1].kernel_size == (3, 3)
    assert image_trunk("auto", (4, 84, 84), 8)[1].kernel_size == (8, 8)


def test_frames_are_scaled_inside_the_network():
    trunk = image_trunk("minatar", (1, 10, 10), 8, scale=1 / 255)
    frames = torch.full((1, 1, 10, 10), 255, dtype=torch.uint8)
    assert torch.equal(trunk[0](frames), torch.ones(1, 1, 10, 10))


def test_unknown_trunk_lists_the_valid_ones():
    with pytest.raises(RatbenchError, match="impala"):
        image_trunk("resnet", (4, 10, 10), 8)
    assert "impala" in TRUNKS


def test_frames_too_small_for_a_trunk_get_a_clear_error():
    with pytest.raises(RatbenchError, match="too small"):
        image_trunk("nature", (4, 10, 10), 8)
