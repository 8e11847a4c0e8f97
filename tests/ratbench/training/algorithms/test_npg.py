"""The NPG update: each minibatch is solved on its own, and one iteration's step generalises beyond its batch."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from envs.vector import make_vector_env
from ratbench.training import Trainer, resolve_config
from ratbench.training.algorithms.npg import exact_kl
from ratbench.training.rollout import Collector
from tests.dense import EPS32, cast_problem, dense
from tests.ratbench.training.helpers import small_config


def test_corrected_variant_solves_every_minibatch_from_zero(tmp_path, monkeypatch):
    """Every solve of an iteration starts cold and returns that minibatch's own d* (the dense float64
    SciPy solve of that minibatch): nothing of the previous minibatch's direction is carried (issue 8)."""
    config = small_config("hopper", extra=["npg.epochs=2", "npg.minibatches=4"], preset="none")  # the corrected rule
    trainer = Trainer.create(config, logdir=tmp_path, progress_bar=False)
    calls = []
    solve = trainer.algo.solver.solve

    def recording_solve(problem, curvature=None, callback=None, warm_start=None):
        result = solve(problem, curvature=curvature, callback=callback, warm_start=warm_start)
        reference = dense(cast_problem(problem, torch.float64))  # this minibatch, at the policy of this solve
        d_star = reference.npg()
        err = np.linalg.norm(result.direction.double().numpy() - d_star) / np.linalg.norm(d_star)
        calls.append((warm_start, err, 64 * EPS32 * reference.kappa() * reference.product_condition()))
        return result

    monkeypatch.setattr(trainer.algo.solver, "solve", recording_solve)
    try:
        trainer.algo.update(trainer.collector.collect(), 0.0)
    finally:
        trainer.close()
    assert len(calls) == 8
    assert all(warm is None for warm, _, _ in calls)
    # A float32 solve of the float32-representable minibatch against the float64 SciPy d*: backward-stable
    # steps (capture, Gram, Cholesky) give a forward error <= c eps32 kappa times the cancellation in
    # S^T u (product_condition, tests/dense.py); c = 64 as in tests/solvers/test_registry.py.
    assert all(err <= rtol for _, err, rtol in calls), calls


@pytest.mark.parametrize("ent_coef", [0.0, 0.05])
def test_entropy_bonus_alone_raises_the_entropy(tmp_path, ent_coef):
    """With every task advantage equal (normalised to zero), the only signal left is the entropy bonus:
    without it the policy does not move; with it the NPG step raises the batch's mean entropy."""
    config = small_config("cartpole", extra=[f"npg.ent_coef={ent_coef}", "npg.epochs=1", "npg.kl_adaptive=false"])
    trainer = Trainer.create(config, logdir=tmp_path, progress_bar=False)
    try:
        batch = trainer.collector.collect()
        batch = dataclasses.replace(batch, advantages=torch.ones_like(batch.log_probs))
        policy = trainer.agent.policy
        before = copy.deepcopy(policy)
        trainer.algo.update(batch, 0.0)
        with torch.no_grad():
            entropy = [float(p.distribution(batch.obs).entropy().mean()) for p in (before, policy)]
        moved = max(float((a - b).abs().max().detach()) for a, b in zip(before.parameters(), policy.parameters()))
    finally:
        trainer.close()
    if ent_coef == 0.0:
        assert moved == 0.0
    else:
        assert entropy[1] > entropy[0], entropy


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kl_on_an_independent_batch_stays_near_the_batch_kl(tmp_path, seed):
    """Issue 8: a direction carried across minibatches survives in the null space of each minibatch's
    Fisher (rank <= 128, P = 4,611 here) and is unseen by its Fisher-norm clip. Real InvertedPendulum-v5
    (shipped task config: 8 envs x 128 steps, 64x64 MLPs; observation normalisation off so that both
    batches see the same inputs), trained 20,480 steps until episodes are long, then one more iteration:
    the KL on an independent batch from the rollout policy stays within 1.5x the batch KL (the issue's
    bar). Measured: 0.83-1.14x here; with the carried direction 1.01-1.84x (seed 1 fails)."""
    steps = 20 * 1024
    config = resolve_config({"env": "invertedpendulum", "seed": seed, "steps": steps},
                            sets=["threads=1", "obs_norm=false", "eval.every=0"])
    Trainer.create(config, logdir=tmp_path, progress_bar=False).train()
    trainer = Trainer.resume(tmp_path, steps=steps + 1024, progress_bar=False)
    try:
        batch = trainer.collector.collect()
        old = copy.deepcopy(trainer.agent)
        trainer.algo.update(batch, 0.0)
        fresh_envs = make_vector_env("invertedpendulum", config["num_envs"])
        fresh = Collector(fresh_envs, old, trainer.obs_norm, trainer.reward_scaler, config["num_steps"],
                          config["gamma"], config["gae_lambda"], trainer.device)
        fresh.reset(seed + 5_000)
        fresh_obs = fresh.collect().obs
        fresh_envs.close()
    finally:
        trainer.close()
    batch_kl = exact_kl(old.policy, trainer.agent.policy, batch.obs)
    fresh_kl = exact_kl(old.policy, trainer.agent.policy, fresh_obs)
    assert batch_kl > 1e-4, "the update must move the policy for the comparison to mean anything"
    assert fresh_kl <= 1.5 * batch_kl, f"KL on an independent batch {fresh_kl:.4g} vs on the batch {batch_kl:.4g}"
