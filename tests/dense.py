"""Dense float64 references built from a materialised J, for tests only.

J comes from :func:`ratbench.per_sample.per_sample_grads` (vmap of
per-sample autograd), which never touches the curvature layer's hooks, and
every linear-algebra step runs in NumPy/SciPy float64. Conventions follow
:mod:`ratbench.problem`: rows of S are ``sqrt(w_i) grad log pi_i``,
``F = S^T S / N``, ``g = S^T b / N``, ``M = S S^T / N + lambda I``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from torch import nn

from ratbench.per_sample import per_sample_grads
from ratbench.problem import NPGProblem

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


@dataclass
class Dense:
    """S (N, P), b (N,), lambda, and everything derived from them, all float64 NumPy."""

    scores: np.ndarray
    rhs: np.ndarray
    damping: float

    @property
    def n(self) -> int:
        return self.scores.shape[0]

    @property
    def num_params(self) -> int:
        return self.scores.shape[1]

    @property
    def fisher(self) -> np.ndarray:
        return self.scores.T @ self.scores / self.n

    @property
    def gradient(self) -> np.ndarray:
        return self.scores.T @ self.rhs / self.n

    @property
    def damped_fisher(self) -> np.ndarray:
        """F + lambda I (P x P)."""
        return self.fisher + self.damping * np.eye(self.num_params)

    @property
    def damped_gram(self) -> np.ndarray:
        """M = S S^T / N + lambda I (N x N)."""
        return self.scores @ self.scores.T / self.n + self.damping * np.eye(self.n)

    def npg(self) -> np.ndarray:
        """d* = (F + lambda I)^-1 g by a parameter-space SciPy solve."""
        return scipy.linalg.solve(self.damped_fisher, self.gradient, assume_a="pos")

    def dual(self) -> np.ndarray:
        """u* = M^-1 b by a sample-space SciPy solve."""
        return scipy.linalg.solve(self.damped_gram, self.rhs, assume_a="pos")

    def npg_from_dual(self) -> np.ndarray:
        """d* = S^T u* / N (the Woodbury identity) by the N x N SciPy solve: the reference when P >> N."""
        return self.scores.T @ self.dual() / self.n

    def fisher_eigenvalues(self) -> np.ndarray:
        """Eigenvalues of F (length P; the P - rank zeros included), ascending."""
        sv = np.linalg.svd(self.scores, compute_uv=False)
        eig = np.zeros(self.num_params)
        eig[self.num_params - sv.size :] = np.sort(sv**2 / self.n)
        return eig

    def condition_number(self) -> float:
        """kappa(F + lambda I) = (lambda_max(F) + lambda) / (lambda_min(F) + lambda)."""
        eig = self.fisher_eigenvalues()
        return float((eig[-1] + self.damping) / (eig[0] + self.damping))

    def dual_condition_number(self) -> float:
        """kappa(M) = kappa(S S^T / N + lambda I): the N x N system a sample-space solver works on."""
        sv = np.linalg.svd(self.scores, compute_uv=False)
        eig = np.zeros(self.n)
        eig[self.n - sv.size :] = np.sort(sv**2 / self.n)
        return float((eig[-1] + self.damping) / (eig[0] + self.damping))

    def kappa(self) -> float:
        """max(kappa(F + lambda I), kappa(M)): bounds the float64 forward error of either route's solve."""
        return max(self.condition_number(), self.dual_condition_number())

    def product_condition(self) -> float:
        """max(1, c(S^T b), c(S^T u*)) with c(S^T x) = || |S|^T |x| || / ||S^T x||: how much rounding in the
        two products the routes form (g = S^T b / N before the parameter-space solve, d = S^T u / N after
        the sample-space one) is amplified when their terms cancel (nearly equal rows of S meeting nearly
        opposite entries of b). The forward error of either route is bounded by the solve's term times this."""
        return max(1.0, self.gradient_condition(), _cancellation(self.scores, self.dual()))

    def gradient_condition(self) -> float:
        """c(S^T b) (see :meth:`product_condition`): the amplification of rounding in g = S^T b / N, whose
        float64 forward error is at most ~N eps || |S|^T |b| || / N, by its terms' cancellation."""
        return _cancellation(self.scores, self.rhs)

    def energy_norm(self, v: np.ndarray) -> float:
        """||v||_{F + lambda I} = sqrt(||S v||^2 / N + lambda ||v||^2)."""
        return float(np.sqrt(np.sum((self.scores @ v) ** 2) / self.n + self.damping * v @ v))


def _cancellation(scores: np.ndarray, x: np.ndarray) -> float:
    """c(S^T x) = || |S|^T |x| || / ||S^T x|| (1 when S^T x = 0): how much S^T x's terms cancel."""
    exact = np.linalg.norm(scores.T @ x)
    return float(np.linalg.norm(np.abs(scores).T @ np.abs(x)) / exact) if exact > 0 else 1.0


def sqrt_weights(problem: NPGProblem) -> torch.Tensor:
    """sqrt(w_i) from problem.weights (ones when unweighted), independently of NPGProblem's helpers."""
    if problem.weights is None:
        return torch.ones(problem.obs.shape[0], dtype=torch.float64, device=problem.obs.device)
    return torch.sqrt(problem.weights.to(torch.float64))


def rhs(problem: NPGProblem) -> np.ndarray:
    """b_i = sqrt(w_i) A_i as float64 NumPy."""
    return to_np(sqrt_weights(problem) * problem.advantages.to(torch.float64))


def cast_problem(problem: NPGProblem, dtype: torch.dtype, device: str = "cpu") -> NPGProblem:
    """The same problem (deep-copied policy) in another dtype / on another device."""

    def move(t):
        return None if t is None else (t.to(device, dtype) if t.is_floating_point() else t.to(device))

    policy = copy.deepcopy(problem.policy).to(device, dtype)
    index = {id(p): i for i, p in enumerate(problem.policy.parameters())}
    params = list(policy.parameters())
    return NPGProblem(
        policy, move(problem.obs), move(problem.actions), move(problem.advantages), problem.damping,
        weights=move(problem.weights), params=[params[index[id(p)]] for p in problem.params], name=problem.name,
    )  # fmt: skip


def dense(problem: NPGProblem) -> Dense:
    """Materialise S of ``problem`` in float64 (the policy itself must already be float64)."""
    assert problem.dtype == torch.float64, "dense references are built from float64 policies"
    scores = per_sample_grads(problem.policy, problem.params, problem.obs, problem.actions)
    return Dense(to_np(scores * sqrt_weights(problem)[:, None]), rhs(problem), problem.damping)


def rel_err(x, ref) -> float:
    """||x - ref|| / ||ref|| (inf when ref is 0 and x is not)."""
    x, ref = to_np(x), to_np(ref)
    num, den = np.linalg.norm(x - ref), np.linalg.norm(ref)
    return float(num / den) if den > 0 else (0.0 if num == 0 else float("inf"))


def to_np(x) -> np.ndarray:
    """A tensor or array as a float64 NumPy array."""
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def param_offsets(problem: NPGProblem) -> dict[int, int]:
    """id(parameter) -> its first column in the flat vector (problem.params order)."""
    offsets, start = {}, 0
    for p in problem.params:
        offsets[id(p)] = start
        start += p.numel()
    return offsets


def expected_fast_layers(problem: NPGProblem) -> list[nn.Module]:
    """The Linear/Conv2d modules the capture must take as layers, found here without ratbench's rules:
    exactly ``nn.Linear``/``nn.Conv2d`` (the strategies' convs are all plain), every parameter of the module
    among ``problem.params``, called by ``log_prob``, and batch-first in every call (leading dim N); a module
    that sees a flattened (N*T, d) view belongs to the per-sample fallback."""
    solved = {id(p) for p in problem.params}
    candidates = [m for m in problem.policy.modules()
                  if type(m) in (nn.Linear, nn.Conv2d) and all(id(p) in solved for p in m.parameters(recurse=False))]
    leading: dict[nn.Module, list[int]] = {m: [] for m in candidates}
    handles = [m.register_forward_hook(lambda mod, inputs, out: leading[mod].append(inputs[0].shape[0])) for m in candidates]
    try:
        with torch.no_grad():
            problem.policy.log_prob(problem.obs, problem.actions)
    finally:
        for h in handles:
            h.remove()
    return [m for m in candidates if leading[m] and all(k == problem.n for k in leading[m])]


def layer_indices(problem: NPGProblem, module: nn.Module) -> np.ndarray:
    """Flat indices of a Linear/Conv2d layer's [W | b] block, as (d_out, d_in [+1])."""
    offsets = param_offsets(problem)
    d_out = module.weight.shape[0]
    d_w = module.weight[0].numel()
    idx = offsets[id(module.weight)] + np.arange(d_out * d_w).reshape(d_out, d_w)
    if module.bias is not None:
        idx = np.concatenate([idx, offsets[id(module.bias)] + np.arange(d_out)[:, None]], axis=1)
    return idx


def _patches(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Unfolded conv inputs (N, L, C kh kw) by a convolution with one-hot kernels (not F.unfold)."""
    c, (kh, kw) = x.shape[1], module.kernel_size
    eye = torch.eye(c * kh * kw, dtype=x.dtype, device=x.device).reshape(c * kh * kw, c, kh, kw)
    cols = torch.nn.functional.conv2d(x, eye, None, module.stride, module.padding, module.dilation)
    return cols.reshape(x.shape[0], c * kh * kw, -1).transpose(1, 2)


def layer_inputs_and_grads(problem: NPGProblem, modules: list[nn.Module]) -> dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """With hooks of our own: a (N, L, d_in [+1]) and g (N, L, d_out) of each Linear/Conv2d module.

    g is the gradient of sum_i sqrt(w_i) log pi_i with respect to the layer's
    outputs; the positions of all calls of a module (weight sharing) are
    concatenated, in call order. Every module must see batch-first inputs.
    """
    if not modules:
        return {}
    seen: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {m: [] for m in modules}

    def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen[module].append((inputs[0].detach(), output))

    handles = [m.register_forward_hook(keep) for m in modules]
    try:
        with torch.enable_grad():
            logp = problem.policy.log_prob(problem.obs, problem.actions)
            outputs = [out for m in modules for _, out in seen[m]]
            grads = iter(torch.autograd.grad((sqrt_weights(problem) * logp).sum(), outputs))
    finally:
        for h in handles:
            h.remove()
    n, result = problem.n, {}
    for m in modules:
        a_calls, g_calls = [], []
        for x, _ in seen[m]:
            grad = next(grads)
            if isinstance(m, nn.Conv2d):
                a = _patches(m, x)
                g = grad.reshape(n, grad.shape[1], -1).transpose(1, 2)
            else:
                a = x.reshape(n, -1, x.shape[-1])
                g = grad.reshape(n, -1, grad.shape[-1])
            if m.bias is not None:
                a = torch.cat([a, torch.ones_like(a[..., :1])], dim=-1)
            a_calls.append(a)
            g_calls.append(g)
        result[m] = (torch.cat(a_calls, dim=1).detach(), torch.cat(g_calls, dim=1).detach())
    return result


def kfac_factors(a: torch.Tensor, g: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A = sum_i sum_l a a^T / N, G = sum_i sum_l g g^T / (N L), by explicit loops over samples."""
    n, positions = a.shape[0], a.shape[1]
    a_np, g_np = to_np(a), to_np(g)
    a_factor = sum(a_np[i].T @ a_np[i] for i in range(n)) / n
    g_factor = sum(g_np[i].T @ g_np[i] for i in range(n)) / (n * positions)
    return a_factor, g_factor


def linear_gaussian_scores(problem: NPGProblem) -> np.ndarray:
    """S of a GaussianPolicy whose body is one nn.Linear (mean = W s + c), from the Gaussian score formulas.

    With sigma = exp(log_std) and z = (a - mu) / sigma^2:
    d log pi / dW = z s^T, d log pi / dc = z, d log pi / d log_std = ((a - mu) / sigma)^2 - 1.
    No autograd: mu is evaluated in NumPy from the parameter values.
    """
    policy = problem.policy
    weight, bias, log_std = (to_np(t) for t in (policy.body.weight, policy.body.bias, policy.log_std))
    obs, actions = to_np(problem.obs), to_np(problem.actions)
    sigma = np.exp(log_std)
    mean = obs @ weight.T + bias
    z = (actions - mean) / sigma**2
    blocks = {
        id(policy.body.weight): np.einsum("nk,nj->nkj", z, obs).reshape(problem.n, -1),
        id(policy.body.bias): z,
        id(policy.log_std): ((actions - mean) / sigma) ** 2 - 1.0,
    }
    scores = np.concatenate([blocks[id(p)] for p in problem.params], axis=1)
    return scores * to_np(sqrt_weights(problem))[:, None]


def linear_gaussian(problem: NPGProblem) -> Dense:
    """The Dense reference of a linear-Gaussian problem built from the analytic scores (no autograd)."""
    return Dense(linear_gaussian_scores(problem), rhs(problem), problem.damping)


def exact_rtol(problem: NPGProblem, reference: Dense) -> float:
    """4 (N + P) eps kappa c: the float64 forward-error allowance of an exact solver (derived in
    tests/solvers/test_woodbury.py's docstring)."""
    return 4 * (problem.n + problem.num_params) * EPS64 * reference.kappa() * reference.product_condition()


def preconditioned_rtol(problem: NPGProblem, reference: Dense, kappa: float) -> float:
    """4 (N + P) eps kappa c_g: the float64 allowance of a direction M^-1 g against its dense restatement, kappa
    the condition of M (diagonal or Kronecker-factored) and c_g g's cancellation (:meth:`Dense.gradient_condition`;
    derived in tests/solvers/test_diagonal.py's docstring)."""
    return 4 * (problem.n + problem.num_params) * EPS64 * kappa * reference.gradient_condition()


def stopped_allowance(problem: NPGProblem, reference: Dense, direction: torch.Tensor, dual: torch.Tensor, d_ref: np.ndarray) -> float:
    """||r|| / (2 sqrt(N lambda)) + 4 (N + P) eps kappa ||d_ref||, with r = b - S d - lambda u measured densely
    (derived in tests/solvers/test_kaczmarz.py's docstring): what a solver stopped on that residual may miss."""
    r = reference.rhs - reference.scores @ to_np(direction) - problem.damping * to_np(dual)
    return np.linalg.norm(r) / (2 * np.sqrt(problem.n * problem.damping)) + exact_rtol(problem, reference) * np.linalg.norm(d_ref)


def joint_scores(problem: NPGProblem) -> np.ndarray:
    """S of a joint problem (``problem.value`` set) by plain autograd, one sample at a time:
    row i is ``sqrt(w_i) grad (log pi_i + 2 eps_i V_i)`` over ``problem.params`` (train_shared.py:114-132's
    ``-(V - (V + eps).detach())^2`` has that gradient)."""
    value, rows = problem.value, []
    for i in range(problem.n):
        obs, act = problem.obs[i:i + 1], problem.actions[i:i + 1]
        likelihood = problem.policy.log_prob(obs, act).sum() + 2 * value.noise[i] * value.module(obs).sum()
        grads = torch.autograd.grad(likelihood, problem.params, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, problem.params)]))
    return to_np(torch.stack(rows) * sqrt_weights(problem)[:, None])


def column_dense(problem: NPGProblem, scores: np.ndarray, j: int) -> Dense:
    """The Dense of right-hand side j of a problem with (N, k) advantages, from its materialised S."""
    return Dense(scores, to_np(sqrt_weights(problem) * problem.advantages[:, j].to(torch.float64)), problem.damping)
