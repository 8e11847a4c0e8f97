"""The curvature layer's products equal the materialised-J versions.

Reference: S from :func:`ratbench.per_sample.per_sample_grads` (vmap of
per-sample autograd; no hooks), scaled by sqrt(w), in float64.

Tolerance for fast-vs-materialised products: 1e-10 relative (float64). Both
routes evaluate the same exact sums in different orders, so they differ by
rounding only: at most (number of summands, here < 1e4) x eps (2.2e-16)
~ 2e-12 relative to the magnitudes involved. 1e-10 leaves room for that,
while any wrong index, transpose, scaling or missed position is O(1).
Matrix-vector products are compared normwise, relative to ||S|| ||v||
(the natural scale of a product's rounding error).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from ratbench import NPGProblem, RatbenchError
from ratbench import curvature
from ratbench.curvature import LayerFactors, capture
from ratbench.policies import CategoricalPolicy, GaussianPolicy, StateGaussianPolicy, mlp
from tests.dense import (
    EPS64,
    cast_problem,
    dense,
    expected_fast_layers,
    joint_scores,
    kfac_factors,
    layer_indices,
    layer_inputs_and_grads,
    rel_err,
    to_np,
)
from tests.devices import DEVICES, needs_cuda
from tests.strategies import conv_output_size, joint_problems, problems, property_settings

RTOL = 1e-10


def _rows(data, n: int) -> torch.Tensor:
    """A random non-empty ordered subset of sample indices."""
    return torch.tensor(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)))


def _product_err(x, ref, matrix_norm: float, vector: np.ndarray) -> float:
    """||x - ref|| / (||matrix||_2 ||vector||): normwise error of a matrix-vector product."""
    scale = matrix_norm * np.linalg.norm(vector)
    diff = np.linalg.norm(to_np(x) - to_np(ref))
    return float(diff / scale) if scale > 0 else float(diff)


def assert_products_match(problem: NPGProblem, data, device: str = "cpu") -> None:
    """Every product of capture(problem moved to ``device``) against S materialised on the CPU, on random
    row/column sets."""
    ref = dense(problem)
    problem = cast_problem(problem, torch.float64, device) if device != "cpu" else problem
    curv = capture(problem)
    s = ref.scores
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    v, u = rng.standard_normal(ref.num_params), rng.standard_normal(problem.n)
    rows, cols = _rows(data, problem.n), _rows(data, problem.n)
    r, c = rows.numpy(), cols.numpy()
    rows, cols = rows.to(device), cols.to(device)

    assert rel_err(curv.dense(), s) <= RTOL
    assert rel_err(curv.gram(), s @ s.T) <= RTOL
    assert rel_err(curv.gram(rows, cols), s[r] @ s[c].T) <= RTOL
    assert rel_err(curv.fisher_diagonal(), (s**2).sum(0) / problem.n) <= RTOL
    vt, ut = torch.from_numpy(v).to(device), torch.from_numpy(u).to(device)
    norm, norm_rows = np.linalg.norm(s, 2), np.linalg.norm(s[r], 2)
    assert _product_err(curv.jvp(vt), s @ v, norm, v) <= RTOL
    assert _product_err(curv.jvp(vt, rows), s[r] @ v, norm_rows, v) <= RTOL
    assert _product_err(curv.vjp(ut), s.T @ u, norm, u) <= RTOL
    assert _product_err(curv.vjp(ut[: len(r)], rows), s[r].T @ u[: len(r)], norm_rows, u[: len(r)]) <= RTOL
    assert _product_err(curv.fvp(vt), s.T @ (s @ v) / problem.n, norm**2 / problem.n, v) <= RTOL  # ||F|| = ||S||^2 / N


@property_settings(60)
@given(problems(), st.data())
def test_products_match_materialised_scores(problem, data):
    assert_products_match(problem, data)


@pytest.mark.parametrize("device", [pytest.param("cuda", marks=needs_cuda)])
@property_settings(30)
@given(problem=problems(), data=st.data())
def test_cuda_products_match_materialised_scores(device, problem, data):
    """The capture on a GPU (float64: cuBLAS / cuDNN sums in other orders, same 1e-10 as above)."""
    assert_products_match(problem, data, device)


CONV_VARIANTS = [
    dict(kernel_size=3, stride=1, padding=0, dilation=1, bias=True),
    dict(kernel_size=3, stride=2, padding=1, dilation=1, bias=False),
    dict(kernel_size=2, stride=1, padding=2, dilation=2, bias=True),
    dict(kernel_size=(1, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2), bias=True),
    dict(kernel_size=3, stride=3, padding=0, dilation=1, bias=False),  # non-overlapping patches
    dict(kernel_size=7, stride=1, padding=0, dilation=1, bias=True),  # one output position (L = 1)
]


@pytest.mark.parametrize("conv", CONV_VARIANTS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("device", DEVICES)
@property_settings(3)
@given(data=st.data())
def test_conv2d_variants_match_materialised_scores(conv, weighted, device, data):
    torch.manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    n, channels, size = data.draw(st.integers(1, 12)), 2, 7
    layer = nn.Conv2d(channels, 3, **conv)
    k, s, p, d = (x if isinstance(x, tuple) else (x, x) for x in (layer.kernel_size, layer.stride, layer.padding, layer.dilation))
    flat = 3 * conv_output_size(size, k[0], s[0], p[0], d[0]) * conv_output_size(size, k[1], s[1], p[1], d[1])
    policy = GaussianPolicy(nn.Sequential(layer, nn.Tanh(), nn.Flatten(), nn.Linear(flat, 2)), 2).double()
    obs = torch.randn(n, channels, size, size, dtype=torch.float64)
    weights = 0.1 + torch.rand(n, dtype=torch.float64) if weighted else None
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(n, dtype=torch.float64), 0.1, weights=weights)
    assert_products_match(problem, data, device)


class _TwoFormCNN(nn.Module):
    """Convolutions in both capture forms: ``first`` (2 -> 4 channels, 4x4 stride 2 on 12x12: L = 25,
    d_in = 33, d_out = 4; 132 < 25 x 37) keeps per-sample scores, ``second`` (4 -> 16, 3x3 on 5x5: L = 9,
    d_in = 37, d_out = 16; 592 >= 9 x 53) its unfolded inputs; ``shared`` (scores form) is called twice,
    on the image (4x4 positions) and on its mirrored 9x9 corner (3x3 positions)."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.first, self.second = nn.Conv2d(2, 4, 4, stride=2), nn.Conv2d(4, 16, 3)
        self.shared = nn.Conv2d(2, 1, 3, stride=3, bias=False)
        self.head = nn.Linear(16 * 9 + 16 + 9, out_dim)

    def forward(self, x):
        h = torch.tanh(self.second(torch.tanh(self.first(x)))).flatten(1)
        mirrored = torch.cat([self.shared(x).flatten(1), self.shared(x[..., :9, :9].flip(-1)).flatten(1)], dim=1)
        return self.head(torch.cat([h, torch.tanh(mirrored)], dim=1))


def _two_form_problem(n: int) -> NPGProblem:
    torch.manual_seed(n)
    policy = CategoricalPolicy(_TwoFormCNN(3)).double()
    obs = torch.randn(n, 2, 12, 12, dtype=torch.float64)
    weights = 0.1 + torch.rand(n, dtype=torch.float64)
    return NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(n, dtype=torch.float64), 0.1, weights=weights)


@pytest.mark.parametrize("chunk_elements", [None, 2 * 25 * 33], ids=["one-chunk", "two-samples-a-chunk"])
@pytest.mark.parametrize("n", [1, 5, 9])
@pytest.mark.parametrize("device", DEVICES)
@property_settings(2)
@given(data=st.data())
def test_conv_capture_forms_match_materialised_scores(chunk_elements, n, device, data):
    """Each conv is captured in the form :func:`keeps_per_sample_scores` picks from its shapes, scores formed
    a chunk of samples at a time (two samples a chunk for ``first``: three chunks at n = 5), and every product
    and K-FAC factor equals the reference's (per-sample scores by torch.func; A and G from hooks of the tests'
    own, on the CPU)."""
    problem = _two_form_problem(n)
    body = problem.policy.body
    with pytest.MonkeyPatch.context() as patch:
        if chunk_elements is not None:
            patch.setattr(curvature, "UNFOLD_CHUNK_ELEMENTS", chunk_elements)
        assert_products_match(problem, data, device)
        reference = layer_inputs_and_grads(problem, [body.first, body.second, body.shared, body.head])
        on_device = cast_problem(problem, torch.float64, device) if device != "cpu" else problem
        curv = capture(on_device)
        forms = {layer.module.__class__.__name__ + str(i): layer.scores is not None for i, layer in enumerate(curv.layers)}
        assert forms == {"Conv2d0": True, "Conv2d1": False, "Conv2d2": True, "Linear3": False}
        for module, layer in zip((body.first, body.second, body.shared, body.head), curv.layers):
            a_ref, g_ref = kfac_factors(*reference[module])
            a_fac, g_fac = layer.kfac_factors()
            assert rel_err(a_fac, a_ref) <= RTOL
            assert rel_err(g_fac, g_ref) <= RTOL


def test_conv_input_modified_in_place_is_never_read_silently():
    """A conv keeping per-sample scores keeps its raw input, not a copy. Modifying that input in place after
    the conv breaks autograd for the policy itself (the conv saved it for its weight gradient): the capture
    notices by the version counter and ends in the one clear error of such policies, not in wrong scores;
    an input modified after the capture makes K-FAC's factor A one clear error."""
    class ModifiesConvInput(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = nn.Conv2d(2, 3, 3), nn.Linear(3 * 25 + 1, 2)

        def forward(self, x):
            x = x * 1.0
            h = torch.tanh(self.conv(x)).flatten(1)
            x.mul_(2.0)
            return self.head(torch.cat([h, x.flatten(1).sum(1, keepdim=True)], dim=1))

    class ModifiesLinearInput(nn.Module):  # a bias-free Linear's kept input is a view: the same hazard
        def __init__(self):
            super().__init__()
            self.linear, self.head = nn.Linear(4, 3, bias=False), nn.Linear(4, 2)

        def forward(self, x):
            x = x * 1.0
            h = torch.tanh(self.linear(x))
            x.mul_(2.0)
            return self.head(torch.cat([h, x.sum(1, keepdim=True)], dim=1))

    torch.manual_seed(0)
    for body, obs_shape, name in [(ModifiesConvInput, (6, 2, 7, 7), r"body\.conv \(Conv2d\)"),
                                  (ModifiesLinearInput, (6, 4), r"body\.linear \(Linear\)")]:
        policy = CategoricalPolicy(body()).double()
        obs = torch.randn(*obs_shape, dtype=torch.float64)
        problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(6, dtype=torch.float64), 0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RatbenchError, match=name + r".*inplace operation.*not supported"):
                capture(problem)

    problem = _two_form_problem(4)
    layer = next(layer for layer in capture(problem).layers if layer.module is problem.policy.body.first)
    problem.obs.mul_(2.0)
    with pytest.raises(RatbenchError, match="modified in place after the capture"):
        layer.kfac_factors()


@pytest.mark.parametrize(
    "n, positions, d_in, d_out",
    [
        (4, 1, 5, 3),  # L = 1: the Linear branch
        (4, 2, 20, 20),  # pairs of positions cost 16*4*40 = 2.6e3 < materialising 16*2*400 = 1.3e4
        (4, 49, 2, 2),  # materialising costs ~1.6e3 < pairs of positions 16*2401*4 = 1.5e5
    ],
)
@pytest.mark.parametrize("device", DEVICES)
def test_layer_gram_branches_and_chunked_diagonal(n, positions, d_in, d_out, device):
    """LayerFactors picks a Gram route by cost; every route equals the explicit double sum."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, positions, d_in, generator=gen, dtype=torch.float64).to(device)
    g = torch.randn(n, positions, d_out, generator=gen, dtype=torch.float64).to(device)
    layer = LayerFactors(nn.Identity(), 0, None, a, g)
    rows, cols = torch.tensor([2, 0, 3], device=device), torch.tensor([1, 3], device=device)
    explicit = torch.einsum("nlo,mko,nlc,mkc->nm", g, g, a, a)
    # the self Gram of one layer is only lower-triangular-exact (ratbench.symmetric); Curvature.gram fills it
    assert rel_err(layer.gram(None, None).tril(), explicit.tril()) <= RTOL
    assert rel_err(layer.gram(rows, cols), explicit[rows][:, cols]) <= RTOL
    per_sample = torch.einsum("nlo,nli->noi", g, a)
    assert rel_err(layer.diag(chunk=3), (per_sample**2).sum(0)) <= RTOL


@property_settings(40)
@given(problems(architectures=("gaussian_mlp", "categorical", "cnn", "tied", "sequence", "shared_actor_critic")))
def test_kfac_factors_match_own_hooks(problem):
    """A = sum_i sum_l a a^T / N and G = sum_i sum_l g g^T / (N L) from inputs/output-gradients
    recorded by hooks of our own (conv patches by one-hot convolution, not F.unfold)."""
    curv, s = capture(problem), dense(problem).scores
    modules = expected_fast_layers(problem)
    assert [layer.module for layer in curv.layers] == modules  # no layer left to the fallback, none taken wrongly
    reference = layer_inputs_and_grads(problem, modules)
    for layer in curv.layers:
        a, g = reference[layer.module]
        # the reference is itself checked: sum_l g_il a_il^T are the layer's columns of S
        per_sample = to_np(torch.einsum("nlo,nli->noi", g, a)).reshape(problem.n, -1)
        assert rel_err(per_sample, s[:, layer_indices(problem, layer.module).ravel()]) <= RTOL
        a_ref, g_ref = kfac_factors(a, g)
        a_fac, g_fac = layer.kfac_factors()
        assert rel_err(a_fac, a_ref) <= RTOL
        assert rel_err(g_fac, g_ref) <= RTOL


@property_settings(40)
@given(problems())
def test_gram_symmetric_and_damped_gram_positive_definite(problem):
    """K = S S^T is symmetric PSD and M = K / N + lambda I is SPD with eigenvalues >= lambda.

    Rounding: the computed K differs from the exact one by E with ||E|| <= c (P + N) eps ||K||
    (inner products of length <= P, summed over layers), and eigvalsh adds O(N eps ||.||) of
    the matrix it decomposes; by Weyl the eigenvalues move by at most that, so the bounds
    below hold with slack 8 (N + P) eps ||K|| for K and 8 (N + P) eps ||M|| for M.
    """
    curv = capture(problem)
    k = to_np(curv.gram())
    norm = np.linalg.norm(k, 2)
    constant = 8 * (problem.n + problem.num_params) * EPS64
    assert np.abs(k - k.T).max() <= 4 * EPS64 * np.abs(k).max()
    assert np.linalg.eigvalsh(k).min() >= -constant * norm
    m = k / problem.n + problem.damping * np.eye(problem.n)
    assert np.linalg.eigvalsh(m).min() >= problem.damping - constant * (norm / problem.n + problem.damping)
    assert int(torch.linalg.cholesky_ex(torch.from_numpy(m))[1]) == 0


def _batchnorm_policy(kind: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "BatchNorm1d":
        body = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 2))
        return GaussianPolicy(body, 2).double(), torch.randn(10, 4, dtype=torch.float64)
    body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
    return CategoricalPolicy(body).double(), torch.randn(10, 1, 5, 5, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["BatchNorm1d", "BatchNorm2d"])
def test_batchnorm_training_mode_refused_eval_mode_exact(kind):
    policy, obs = _batchnorm_policy(kind)
    with torch.no_grad():
        policy.distribution(obs)  # move the running statistics away from their initial values
        actions = policy.act(obs)
    problem = NPGProblem(policy.eval(), obs, actions, torch.randn(obs.shape[0], dtype=torch.float64), 0.1)
    policy.train()
    with pytest.raises(RatbenchError, match=r"BatchNorm in training mode.*policy\.eval\(\)"):
        capture(problem)
    policy.eval()
    assert rel_err(capture(problem).dense(), dense(problem).scores) <= RTOL


def test_pass_counting():
    """passes = rows touched / N; a Gram block counts its larger side; uncounted() is free."""
    torch.manual_seed(0)
    policy = GaussianPolicy(mlp([3, 4, 2]), 2).double()
    obs = torch.randn(8, 3, dtype=torch.float64)
    curv = capture(NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(8, dtype=torch.float64), 0.1))
    assert curv.passes == 0
    curv.gram(torch.arange(2), torch.arange(4))
    curv.jvp(torch.zeros(curv.num_params, dtype=torch.float64), torch.arange(2))
    assert curv.passes == pytest.approx(6 / 8)
    with curv.uncounted():
        curv.fvp(torch.zeros(curv.num_params, dtype=torch.float64))
    assert curv.passes == pytest.approx(6 / 8)
    curv.fisher_diagonal()  # built from the captured factors, no product
    curv.vjp(torch.zeros(8, dtype=torch.float64))
    assert curv.passes == pytest.approx(14 / 8)


class _TimeMajor(nn.Module):
    """Applies its Linear layer to a (T, N, d) view: the leading dim is time, not the batch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.transpose(0, 1)).transpose(0, 1).mean(1)


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: the Linear/Conv2d hooks assume the leading dim of a layer's input is the "
    "batch; a layer applied to a time-major (T, N, d) view with T == N passes the shape check and its "
    "positions are grouped by time instead of by sample, silently giving wrong scores",
)
def test_time_major_layer_input_with_t_equal_n():
    torch.manual_seed(0)
    policy = GaussianPolicy(_TimeMajor(), 2).double()
    obs = torch.randn(4, 4, 3, dtype=torch.float64)  # T == N == 4
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(4, dtype=torch.float64), 0.1)
    assert rel_err(capture(problem).dense(), dense(problem).scores) <= RTOL


def test_state_gaussian_and_custom_policy_without_fast_layers():
    """A policy with no Linear/Conv2d layer at all goes entirely through torch.func."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Flatten(), nn.LayerNorm(4))
    policy = StateGaussianPolicy(body, 2).double()
    obs = torch.randn(6, 2, 2, dtype=torch.float64)
    problem = NPGProblem(policy, obs, policy.act(obs).detach(), torch.randn(6, dtype=torch.float64), 0.1)
    curv = capture(problem)
    assert curv.layers == []
    assert rel_err(curv.dense(), dense(problem).scores) <= RTOL


def test_log_prob_of_the_wrong_shape_is_refused():
    """A custom policy (any module with log_prob) whose log_prob is not (N,) gets a clear error."""

    class PerDimension(nn.Module):
        def __init__(self):
            super().__init__()
            self.mean = nn.Linear(3, 2)

        def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
            return -0.5 * (actions - self.mean(obs)) ** 2  # (N, 2): forgot to sum over action dims

    problem = NPGProblem(PerDimension(), torch.randn(5, 3), torch.randn(5, 2), torch.randn(5), 0.1)
    with pytest.raises(RatbenchError, match=r"policy.log_prob must return shape \(5,\), got \(5, 2\)"):
        capture(problem)


@property_settings(20)
@given(problems())
def test_scaling_an_unweighted_capture_equals_the_weighted_capture(problem):
    """S of weights w = diag(sqrt(w)) S of unit weights: the trainer captures once without weights (that
    forward also gives the ratios) and scales the rows. Same float64 products up to rounding."""
    import dataclasses

    from ratbench.curvature import capture, capture_with_log_probs

    weighted = capture(problem)
    unweighted, log_probs = capture_with_log_probs(dataclasses.replace(problem, weights=None))
    torch.testing.assert_close(log_probs, problem.policy.log_prob(problem.obs, problem.actions).detach())
    unweighted.scale_rows(problem.sqrt_weights())
    v = torch.randn(problem.num_params, dtype=problem.dtype, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(unweighted.gram(), weighted.gram(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(unweighted.jvp(v), weighted.jvp(v), rtol=1e-10, atol=1e-12)


@property_settings(25)
@given(joint_problems())
def test_joint_scores_add_the_value_term_and_share_the_trunk(problem):
    """The joint capture's S is train_shared.py's per-sample likelihood gradient (autograd, row by row), its
    products follow with several columns, and each trunk layer (run for the policy and for the value on equal
    inputs) is one position, not two."""
    s = joint_scores(problem)
    curv = capture(problem)
    assert rel_err(curv.dense(), s) <= RTOL
    assert all(layer.positions == 1 for layer in curv.layers)
    v = torch.randn(problem.num_params, 2, dtype=torch.float64)
    u = torch.randn(problem.n, 2, dtype=torch.float64)
    assert rel_err(curv.jvp(v), s @ to_np(v)) <= RTOL
    assert rel_err(curv.vjp(u), s.T @ to_np(u)) <= RTOL


def test_the_value_term_changes_the_scores_and_is_refused_with_the_wrong_shape():
    from ratbench.actor_critic import ActorCritic
    from ratbench.problem import ValueTerm

    torch.manual_seed(0)
    model = ActorCritic(3, 2, hidden=(4,), shared=True).double()
    obs = torch.randn(5, 3, dtype=torch.float64)
    actions = model.policy.act(obs).detach()
    advantages = torch.randn(5, dtype=torch.float64)
    policy_params = model.policy.policy_parameters()
    plain = capture(NPGProblem(model.policy, obs, actions, advantages, 0.1, params=policy_params)).dense()
    joint = capture(NPGProblem(model.policy, obs, actions, advantages, 0.1, params=policy_params + model.critic_only_parameters(),
                               value=ValueTerm(model.value_function(), torch.randn(5, dtype=torch.float64)))).dense()
    assert rel_err(joint[:, :plain.shape[1]], plain) > 1e-3  # the shared trunk's columns carry the value term
    with pytest.raises(RatbenchError, match="not a parameter of the policy"):  # the value head without its term
        capture(NPGProblem(model.policy, obs, actions, advantages, 0.1, params=list(model.parameters())))
    with pytest.raises(RatbenchError, match="noise must have shape"):
        NPGProblem(model.policy, obs, actions, advantages, 0.1, value=ValueTerm(model.value_function(), torch.zeros(4)))
