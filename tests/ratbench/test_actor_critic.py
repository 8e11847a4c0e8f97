"""ActorCritic's layer init: SB3's / CleanRL's orthogonal one against its definition, and the algorithms that use it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from ratbench.actor_critic import ActorCritic
from ratbench.training import resolve_config
from ratbench.training.agent import Agent
from ratbench.training.algorithms.critic import CriticTrainer
from tests.strategies import property_settings


def _is_scaled_orthogonal(weight: torch.Tensor, gain: float) -> bool:
    """W (out, in...) flattened to (out, fan_in) has orthonormal rows or columns, times ``gain``."""
    w = weight.detach().reshape(weight.shape[0], -1).double() / gain
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)


@property_settings(25)
@given(obs_dim=st.integers(1, 12), act_dim=st.integers(1, 6), hidden=st.lists(st.integers(1, 24), min_size=1, max_size=3),
       shared=st.booleans(), discrete=st.booleans(), seed=st.integers(0, 2**16))
def test_orthogonal_init_is_sb3s(obs_dim, act_dim, hidden, shared, discrete, seed):
    """Every Linear orthogonal with gain sqrt(2), the policy head's 0.01, the value head's 1, every bias zero
    (stable_baselines3/common/policies.py ActorCriticPolicy._build; CleanRL's layer_init)."""
    torch.manual_seed(seed)
    model = ActorCritic(obs_dim, act_dim, discrete=discrete, hidden=hidden, shared=shared, log_std_init=-0.5,
                        init="orthogonal")
    policy_head, value_head = model.policy.body[-1], model.critic[-1]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert policy_head in linears and value_head in linears
    for layer in linears:
        gain = 0.01 if layer is policy_head else 1.0 if layer is value_head else math.sqrt(2)
        assert _is_scaled_orthogonal(layer.weight, gain)
        assert torch.count_nonzero(layer.bias) == 0
    if not discrete:
        assert torch.equal(model.policy.log_std.detach(), torch.full((act_dim,), -0.5))


def test_orthogonal_init_reaches_the_conv_trunk():
    torch.manual_seed(0)
    model = ActorCritic(0, 4, discrete=True, hidden=[32], image_shape=(4, 10, 10), init="orthogonal")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(_is_scaled_orthogonal(c.weight, math.sqrt(2)) and not c.bias.any() for c in convs)


def test_the_default_init_is_pytorchs_and_unknown_ones_are_refused():
    torch.manual_seed(3)
    default = ActorCritic(5, 2, hidden=[8])
    torch.manual_seed(3)
    explicit = ActorCritic(5, 2, hidden=[8], init="torch")
    torch.manual_seed(3)
    plain = nn.Linear(5, 8)  # the policy body's first layer is built first, by PyTorch's own init
    for a, b in zip(default.parameters(), explicit.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(default.policy.body[0].weight, plain.weight)
    with pytest.raises(ValueError, match="init must be"):
        ActorCritic(5, 2, init="xavier")


@pytest.mark.parametrize("algo,init", [("ppo", "orthogonal"), ("trpo", "orthogonal"), ("npg", "torch"), ("pg", "torch")])
def test_ppo_and_trpo_initialise_as_their_libraries_do(algo, init):
    config = resolve_config({"env": "hopper", "algo": algo, "seed": 0})
    assert config["model"]["init"] == init


def test_trpos_critic_uses_sb3s_adam_epsilon():
    import gymnasium as gym

    config = resolve_config({"env": "hopper", "algo": "trpo", "seed": 0})
    agent = Agent(config, gym.spaces.Box(-np.inf, np.inf, (3,)), gym.spaces.Box(-1.0, 1.0, (2,)))
    critic = CriticTrainer.from_config(agent, config, np.random.default_rng(0))
    assert critic.optimizer.param_groups[0]["eps"] == 1e-5
