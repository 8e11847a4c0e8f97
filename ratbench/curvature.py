"""The curvature layer: J (scaled scores) of one batch, without materialising it.

One forward and one backward of ``sum_i sqrt(w_i) log pi(a_i | s_i)`` with
hooks on every ``nn.Linear`` and ``nn.Conv2d`` keep each layer's inputs
``a_i`` (with a ones column for the bias) and output-gradients ``g_i``. For
such a layer the per-sample gradient is ``sum_l g_il a_il^T`` (l runs over
positions: 1 for a plain Linear, the output pixels for a Conv2d, whose
inputs are unfolded patches), so

    K_ij   = sum_{l,m} (g_il . g_jm)(a_il . a_jm)
    J v    = sum_l g_il^T V a_il            (one forward's flops)
    J^T u  = sum_i u_i sum_l g_il a_il^T    (one backward's flops)
    diag F, K-FAC factors A = E[sum_l a a^T], G = E[sum_l g g^T] / L

The state-independent log-std of a :class:`~ratbench.policies.GaussianPolicy`
has closed-form per-sample scores, ``(a - mu)^2 / sigma^2 - 1``. Every other
trainable parameter (LayerNorm, any custom module) gets its per-sample gradients from ``torch.func``
(:mod:`ratbench.per_sample`), so every differentiable policy works.
Modules that mix samples (BatchNorm in training mode) are refused.

A joint problem (``problem.value``, :class:`~ratbench.problem.ValueTerm`) differentiates
``sum_i sqrt(w_i) (log pi_i + 2 eps_i V_i)`` instead, over the policy's and the value module's
layers: the value term is one more output-gradient per sample, no N x P Jacobian is formed. A layer
called more than once on equal inputs (a shared trunk run for the policy and for the value) has its
calls' output-gradients summed, ``g_1 a^T + g_2 a^T = (g_1 + g_2) a^T``, so it costs one position.

``Curvature.kl_hessian`` is the other curvature of a batch: the Hessian of the policy's mean KL from itself
(the expected Fisher, TRPO's and the natural actor-critic's product), by double back-propagation, built once
per capture; :func:`kl_hessian_operator` is the same operator for any scalar KL (TRPO's).

Row indices (``rows``/``cols``) select samples; ``None`` means all N.
Products never divide by N: ``gram`` is ``S S^T``, ``jvp`` is ``S v``,
``vjp`` is ``S^T u`` with S the scaled score matrix of
:mod:`ratbench.problem`; both take several columns ((P, k) and (n, k)), one product per column.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import kl_divergence
from torch.nn.utils import parameters_to_vector

from ratbench.errors import RatbenchError
from ratbench.per_sample import RatbenchWarning, refuse_sample_mixing, summed_per_sample_grads
from ratbench.policies import GaussianPolicy
from ratbench.problem import NPGProblem
from ratbench.symmetric import fill_upper, gram_lower

Rows = Optional[torch.Tensor]


@dataclass
class LayerFactors:
    """Captured factors of one Linear/Conv2d layer.

    g: (N, L, d_out) output-gradients; weight/bias offsets index the flat parameter vector. The inputs are
    held in one of two forms, chosen at capture by :func:`keeps_per_sample_scores`:

    - a: (N, L, d_in [+1 when biased]) the layer's inputs per position (unfolded patches for a conv);
    - scores: (N, d_out, d_in [+1]) the per-sample gradients sum_l g_l a_l^T, formed once at capture a chunk
      of samples at a time, with ``inputs`` (each call's raw input, (N, C, H, W)) kept for K-FAC's factor A.
    """

    module: nn.Module
    weight_offset: int
    bias_offset: Optional[int]
    a: Optional[torch.Tensor]
    g: torch.Tensor
    scores: Optional[torch.Tensor] = None
    inputs: tuple[torch.Tensor, ...] = ()
    input_versions: tuple[int, ...] = ()

    @property
    def d_out(self) -> int:
        return self.g.shape[-1]

    @property
    def d_in(self) -> int:
        return (self.a if self.scores is None else self.scores).shape[-1]

    @property
    def positions(self) -> int:
        return self.g.shape[1]

    def per_sample(self, rows: Rows) -> torch.Tensor:
        """Per-sample gradients [W | b] of the selected rows: (n, d_out, d_in) (the kept ``scores`` themselves
        when ``rows`` is None: read, do not modify)."""
        if self.scores is not None:
            return _take(self.scores, rows)
        return torch.einsum("nlo,nli->noi", _take(self.g, rows), _take(self.a, rows))

    def gram(self, rows: Rows, cols: Rows) -> torch.Tensor:
        """This layer's S[rows] S[cols]^T; when ``cols is rows`` only the lower triangle is guaranteed."""
        nr, nc = _row_count(rows, self.g.shape[0]), _row_count(cols, self.g.shape[0])
        if self.scores is None and self.positions == 1:
            ar, gr = _take(self.a, rows)[:, 0], _take(self.g, rows)[:, 0]
            if cols is rows:
                return gram_lower(gr).mul_(gram_lower(ar))
            return (gr @ _take(self.g, cols)[:, 0].T).mul_(ar @ _take(self.a, cols)[:, 0].T)
        L = self.positions
        cost_positions = nr * nc * L * L * (self.d_in + self.d_out)
        cost_materialise = (nr + nc + nr * nc / L) * L * self.d_in * self.d_out
        if self.scores is None and cost_positions < cost_materialise:
            ar, gr = _take(self.a, rows), _take(self.g, rows)
            ac, gc = (ar, gr) if cols is rows else (_take(self.a, cols), _take(self.g, cols))
            gg = gr.reshape(nr * L, -1) @ gc.reshape(nc * L, -1).T
            aa = ar.reshape(nr * L, -1) @ ac.reshape(nc * L, -1).T
            return (gg * aa).reshape(nr, L, nc, L).sum(dim=(1, 3))
        if cols is rows:
            return gram_lower(self.per_sample(rows).reshape(nr, -1))
        return self.per_sample(rows).reshape(nr, -1) @ self.per_sample(cols).reshape(nc, -1).T

    def jvp(self, v: torch.Tensor, rows: Rows) -> torch.Tensor:
        """(J v)_i restricted to this layer; v is the layer block as (d_out, d_in)."""
        if self.scores is not None:
            return torch.einsum("noi,oi->n", _take(self.scores, rows), v)
        return torch.einsum("nlo,nlo->n", _take(self.g, rows), _take(self.a, rows) @ v.T)

    def vjp(self, u: torch.Tensor, rows: Rows) -> torch.Tensor:
        """sum_i u_i (per-sample gradient)_i as (d_out, d_in)."""
        if self.scores is not None:
            return torch.einsum("n,noi->oi", u, _take(self.scores, rows))
        return torch.einsum("nlo,nli->oi", _take(self.g, rows) * u[:, None, None], _take(self.a, rows))

    def diag(self, chunk: int = 256, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """sum_i c_i (per-sample gradient)_i^2 as (d_out, d_in), c = ``scale`` (N,) or ones."""
        if self.scores is not None:
            squares = self.scores ** 2
            return squares.sum(0) if scale is None else torch.einsum("n,noi->oi", scale, squares)
        if self.positions == 1:
            g2 = self.g[:, 0] ** 2
            return (g2 if scale is None else g2 * scale[:, None]).T @ (self.a[:, 0] ** 2)
        out = torch.zeros(self.d_out, self.d_in, dtype=self.a.dtype, device=self.a.device)
        for start in range(0, self.a.shape[0], chunk):
            rows = torch.arange(start, min(start + chunk, self.a.shape[0]), device=self.a.device)
            squares = self.per_sample(rows) ** 2
            out += squares.sum(0) if scale is None else torch.einsum("n,noi->oi", scale[rows], squares)
        return out

    def kfac_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, G): A = sum_i sum_l a a^T / N (d_in x d_in), G = sum_i sum_l g g^T / (N L)."""
        n, L = self.g.shape[0], self.positions
        g = self.g.reshape(n * L, -1)
        if self.scores is None:
            a = self.a.reshape(n * L, -1)
            return a.T @ a / n, g.T @ g / (n * L)
        if self.inputs_modified():
            raise RatbenchError(
                f"the input of {self.module} was modified in place after the capture, so K-FAC's factor A "
                "cannot be formed from it; capture again after the change")
        a_factor = torch.zeros(self.d_in, self.d_in, dtype=self.g.dtype, device=self.g.device)
        for samples in self._sample_chunks():
            a = self.unfolded_inputs(samples)
            a = a.reshape(-1, a.shape[-1])
            a_factor += a.T @ a
        return a_factor / n, g.T @ g / (n * L)

    def unfolded_inputs(self, samples: slice) -> torch.Tensor:
        """The layer's inputs per position for ``samples``, every call's positions in call order:
        (n_samples, L, d_in [+1]), from the raw ``inputs``."""
        parts = [_layer_inputs(self.module, x[samples]) for x in self.inputs]
        return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)).to(self.g.dtype)  # cat copies even one part

    def inputs_modified(self) -> bool:
        """Whether a raw input kept for this layer was modified in place since the capture recorded it."""
        return _changed(self.inputs, self.input_versions)

    def form_scores(self) -> None:
        """scores = sum_l g_l a_l^T per sample, from the raw inputs a chunk of samples at a time (each chunk's
        unfolded inputs hold at most :data:`UNFOLD_CHUNK_ELEMENTS` numbers)."""
        self.scores = self.g.new_empty(self.g.shape[0], self.d_out, _conv_input_width(self.module))
        for samples in self._sample_chunks():
            self.scores[samples] = torch.einsum("nlo,nli->noi", self.g[samples], self.unfolded_inputs(samples))

    def _sample_chunks(self) -> Iterator[slice]:
        n = self.g.shape[0]
        step = max(1, UNFOLD_CHUNK_ELEMENTS // (self.positions * self.d_in))
        return (slice(start, min(start + step, n)) for start in range(0, n, step))


UNFOLD_CHUNK_ELEMENTS = 2**24
"""Largest unfolded-input chunk formed at once for a layer that keeps per-sample scores (64 MiB in float32)."""


def keeps_per_sample_scores(module: nn.Module, output: torch.Tensor) -> bool:
    """Whether capture keeps ``module``'s per-sample gradients instead of its unfolded inputs: for a Conv2d
    whose per-sample gradient (d_out x d_in) is smaller than its unfolded inputs and output-gradients over the
    L output positions together, d_in d_out < L (d_in + d_out). Then the Gram needs no pairs of positions,
    J v and J^T u cost N d_in d_out instead of N L d_in d_out, and the unfolded patches (the Nature CNN's
    first layer: 400 positions x 257 inputs per sample) are never held for the whole batch. The layer still
    keeps its output-gradients and raw input (for K-FAC's factors), so where d_out is large against L the
    memory saved is smaller than the rule counts; its products are cheaper in every case. Decided from a
    module's first call."""
    if type(module) is not nn.Conv2d:
        return False
    d_in = _conv_input_width(module)
    d_out, positions = output.shape[1], output.shape[2] * output.shape[3]
    return d_in * d_out < positions * (d_in + d_out)


def _conv_input_width(module: nn.Conv2d) -> int:
    """d_in of a Conv2d's unfolded inputs: C kh kw, plus the ones column of a bias."""
    return module.in_channels * math.prod(module.kernel_size) + (module.bias is not None)


def _take(t: torch.Tensor, rows: Rows) -> torch.Tensor:
    return t if rows is None else t[rows]


def _row_count(rows: Rows, n: int) -> int:
    """How many samples ``rows`` selects out of n (None: all)."""
    return n if rows is None else int(rows.numel())


def _changed(kept: Iterable[torch.Tensor], versions: Iterable[int]) -> bool:
    """Whether any kept tensor was modified in place since its version was recorded."""
    return any(t._version != v for t, v in zip(kept, versions))


@dataclass
class Curvature:
    """Implicit scaled score matrix S (N x P) of one problem.

    Build with :func:`capture`. ``passes`` counts rows touched by products
    divided by N (one Gram, J v or J^T u over the whole batch = 1 pass).
    """

    n: int
    num_params: int
    dtype: torch.dtype
    device: torch.device
    layers: list[LayerFactors]
    other_offsets: list[tuple[int, int]]
    other_scores: Optional[torch.Tensor]
    rows_touched: int = field(default=0)
    _kl_hessian: Optional[Callable[[torch.Tensor], torch.Tensor]] = field(default=None, repr=False)
    _counts_into: Optional["Curvature"] = field(default=None, repr=False)  # a copy's original (astype)

    @property
    def _tally(self) -> "Curvature":
        """The curvature whose ``rows_touched`` counts this one's products: itself, or the original of a copy."""
        return self if self._counts_into is None else self._counts_into

    @property
    def passes(self) -> float:
        return self._tally.rows_touched / self.n

    def astype(self, dtype: torch.dtype) -> "Curvature":
        """The same scores held in ``dtype`` (a new Curvature whose products count as passes of this one). Upcast, the
        float32 factors are represented exactly, so float64 products of the copy are products of the float32
        scores themselves (exactly so for the per-sample outer products of a one-position layer)."""
        cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731 - a local shorthand
        layers = [dataclasses.replace(layer, a=cast(layer.a), g=cast(layer.g), scores=cast(layer.scores))
                  for layer in self.layers]
        return dataclasses.replace(self, dtype=dtype, layers=layers, other_scores=cast(self.other_scores),
                                   _kl_hessian=None, _counts_into=self._tally)

    def scale_rows(self, scale: torch.Tensor) -> None:
        """Multiply every row of S by ``scale`` (N,) in place: a capture of unweighted scores becomes the
        capture of weights ``scale ** 2`` (each sample's output gradients scale alone; no pass counted)."""
        scale = scale.to(self.dtype)
        for layer in self.layers:  # the capture owns g and scores (copies made by it): scaled in place
            layer.g.mul_(scale[:, None, None])
            if layer.scores is not None:
                layer.scores.mul_(scale[:, None, None])
        if self.other_scores is not None:
            self.other_scores = self.other_scores * scale[:, None]

    def kl_hessian(self, problem: NPGProblem) -> Callable[[torch.Tensor], torch.Tensor]:
        """v -> (H + lambda I) v for ``problem`` (the batch of this capture), H the Hessian of the mean KL of the
        policy from itself (:func:`policy_kl_hessian`): built once per capture, so a solver and a step clip share
        its graph. Each product counts as two passes (a backward through the KL gradient's graph)."""
        if self._kl_hessian is None:
            operator = policy_kl_hessian(problem, problem.damping)

            def counted(v: torch.Tensor) -> torch.Tensor:
                self._tally.rows_touched += 2 * self.n
                return operator(v)

            self._kl_hessian = counted
        return self._kl_hessian

    @contextlib.contextmanager
    def uncounted(self) -> Iterator[None]:
        """Products inside this block are diagnostics: they do not count as passes."""
        tally = self._tally
        rows = tally.rows_touched
        try:
            yield
        finally:
            tally.rows_touched = rows

    def _count(self, rows: Rows) -> None:
        self._tally.rows_touched += self.n if rows is None else int(rows.numel())

    def _n_rows(self, rows: Rows) -> int:
        return _row_count(rows, self.n)

    def gram(self, rows: Rows = None, cols: Rows = None, lower_only: bool = False) -> torch.Tensor:
        """S[rows] S[cols]^T: (n_rows, n_cols), unscaled by N. With ``cols is rows`` and ``lower_only``
        only the lower triangle is guaranteed (all a Cholesky factor reads; :mod:`ratbench.symmetric`)."""
        self._count(rows if self._n_rows(rows) >= self._n_rows(cols) else cols)
        out = torch.zeros(self._n_rows(rows), self._n_rows(cols), dtype=self.dtype, device=self.device)
        for layer in self.layers:
            out += layer.gram(rows, cols)
        if self.other_scores is not None:
            out += _take(self.other_scores, rows) @ _take(self.other_scores, cols).T
        return out if cols is not rows or lower_only else fill_upper(out)

    def jvp(self, v: torch.Tensor, rows: Rows = None) -> torch.Tensor:
        """S[rows] v for a flat v (P,): (n_rows,); for v (P, k): (n_rows, k)."""
        if v.dim() == 2:
            return torch.stack([self.jvp(column, rows) for column in v.unbind(1)], dim=1)
        self._count(rows)
        out = torch.zeros(self._n_rows(rows), dtype=self.dtype, device=self.device)
        for layer in self.layers:
            out += layer.jvp(self.layer_block(v, layer), rows)
        if self.other_scores is not None:
            out += _take(self.other_scores, rows) @ self.other_block(v)
        return out

    def vjp(self, u: torch.Tensor, rows: Rows = None) -> torch.Tensor:
        """S[rows]^T u for u (n_rows,): flat (P,); for u (n_rows, k): (P, k)."""
        if u.dim() == 2:
            return torch.stack([self.vjp(column, rows) for column in u.unbind(1)], dim=1)
        self._count(rows)
        out = torch.zeros(self.num_params, dtype=self.dtype, device=self.device)
        for layer in self.layers:
            self.add_layer_block(out, layer, layer.vjp(u, rows))
        if self.other_scores is not None:
            self.add_other_block(out, _take(self.other_scores, rows).T @ u)
        return out

    def fvp(self, v: torch.Tensor) -> torch.Tensor:
        """F v = S^T S v / N (flat (P,))."""
        return self.vjp(self.jvp(v)) / self.n

    def fisher_diagonal(self, row_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """diag(F) = sum_i s_i^2 / N, flat (P,); with ``row_scale`` c (N,), sum_i c_i s_i^2 / N (c = 1 / w
        gives the diagonal of the unweighted scores' Fisher)."""
        scale = None if row_scale is None else row_scale.to(self.dtype)
        out = torch.zeros(self.num_params, dtype=self.dtype, device=self.device)
        for layer in self.layers:
            self.add_layer_block(out, layer, layer.diag(scale=scale))
        if self.other_scores is not None:
            squares = self.other_scores**2
            self.add_other_block(out, squares.sum(0) if scale is None else scale @ squares)
        return out / self.n

    def dense(self) -> torch.Tensor:
        """Materialise S (N x P). For tests and small problems only."""
        out = torch.zeros(self.n, self.num_params, dtype=self.dtype, device=self.device)
        for layer in self.layers:
            block = layer.per_sample(None)
            w_cols = block[:, :, : layer.d_in - (layer.bias_offset is not None)]
            out[:, layer.weight_offset : layer.weight_offset + w_cols[0].numel()] = w_cols.reshape(self.n, -1)
            if layer.bias_offset is not None:
                out[:, layer.bias_offset : layer.bias_offset + layer.d_out] = block[:, :, -1]
        if self.other_scores is not None:
            col = 0
            for start, size in self.other_offsets:
                out[:, start : start + size] = self.other_scores[:, col : col + size]
                col += size
        return out

    # -- flat-vector plumbing -------------------------------------------------
    def layer_block(self, v: torch.Tensor, layer: LayerFactors) -> torch.Tensor:
        has_bias = layer.bias_offset is not None
        d_w = layer.d_in - has_bias
        w = v[layer.weight_offset : layer.weight_offset + layer.d_out * d_w].reshape(layer.d_out, d_w)
        if not has_bias:
            return w
        b = v[layer.bias_offset : layer.bias_offset + layer.d_out]
        return torch.cat([w, b[:, None]], dim=1)

    def add_layer_block(self, out: torch.Tensor, layer: LayerFactors, block: torch.Tensor) -> None:
        has_bias = layer.bias_offset is not None
        d_w = layer.d_in - has_bias
        out[layer.weight_offset : layer.weight_offset + layer.d_out * d_w] += block[:, :d_w].reshape(-1)
        if has_bias:
            out[layer.bias_offset : layer.bias_offset + layer.d_out] += block[:, -1]

    def other_block(self, v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v[s : s + k] for s, k in self.other_offsets])

    def add_other_block(self, out: torch.Tensor, block: torch.Tensor) -> None:
        col = 0
        for start, size in self.other_offsets:
            out[start : start + size] += block[col : col + size]
            col += size


class _Call(NamedTuple):
    """One call of a fast layer: its input (unfolded per position, or raw when the layer keeps per-sample
    scores), the kept tensor's version counter at the call (shared with the layer's input where it is a view
    of it), and the output."""

    inputs: torch.Tensor
    version: int
    output: torch.Tensor


class _Recorder:
    """Forward hooks that collect each fast-layer call's inputs and output ``z``.

    The hook hands the rest of the network a copy of ``z``, so ``d loss / d z`` is
    the output-gradient ``g`` even when later modules modify their input in place,
    and the backward can stop at the layer outputs: no weight gradient is formed.
    A layer that keeps per-sample scores (:func:`keeps_per_sample_scores`, decided at its
    first call) has its raw input kept, not a copy: its version is checked after the backward.
    """

    def __init__(self, n: int):
        self.n = n
        self.calls: dict[nn.Module, list[_Call]] = {}
        self.raw: set[nn.Module] = set()
        self.rejected: set[nn.Module] = set()

    def hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> Optional[torch.Tensor]:
        x = inputs[0]
        if x.shape[0] != self.n or not output.requires_grad:
            self.rejected.add(module)
            return None
        if module not in self.calls and keeps_per_sample_scores(module, output):
            self.raw.add(module)
        kept = x.detach() if module in self.raw else _layer_inputs(module, x.detach())
        self.calls.setdefault(module, []).append(_Call(kept, kept._version, output))  # a view shares x's version
        return output.clone()

    def outputs(self) -> list[torch.Tensor]:
        return [call.output for calls in self.calls.values() for call in calls]


def _fast_path_supported(module: nn.Module) -> bool:
    if type(module) is nn.Linear:
        return module.weight.requires_grad and (module.bias is None or module.bias.requires_grad)
    if type(module) is nn.Conv2d:
        return (
            module.groups == 1
            and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
            and module.weight.requires_grad
            and (module.bias is None or module.bias.requires_grad)
        )
    return False


def _conv_windows(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Every receptive field of ``module`` over x (N, C, H, W) as a strided view (N, Ho, Wo, C, kh, kw).

    Flattened to (N, Ho Wo, C kh kw) it is ``F.unfold(x, ...).transpose(1, 2)`` (same channel-major order),
    without F.unfold's per-sample im2col: on CUDA that launches one kernel per sample, 70% of the Nature
    CNN's woodbury time at N = 1,024 on an H200 (results/gpu-h200/profile-nature-cnn.txt).
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = module.kernel_size, module.stride, module.padding, module.dilation
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    windows = x.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)[..., ::dh, ::dw]
    return windows.permute(0, 2, 3, 1, 4, 5)


def _layer_inputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's inputs per sample and position, (N, L, d_in), with a ones column last when it has a bias;
    written in one copy (a view for a bias-free Linear)."""
    n = x.shape[0]
    if isinstance(module, nn.Conv2d):
        windows = _conv_windows(module, x)  # (N, Ho, Wo, C, kh, kw)
        positions, width = windows.shape[1] * windows.shape[2], math.prod(windows.shape[3:])
    else:
        windows = x.reshape(n, -1, x.shape[-1])  # (N, L, d_in)
        positions, width = windows.shape[1], windows.shape[2]
    if module.bias is None:
        return windows.reshape(n, positions, width)
    a = x.new_empty(n, positions, width + 1)
    a[..., :width].view(windows.shape).copy_(windows)
    a[..., width] = 1
    return a


def _layer_output_grads(module: nn.Module, grad: torch.Tensor) -> torch.Tensor:
    n = grad.shape[0]
    if isinstance(module, nn.Conv2d):
        return grad.reshape(n, grad.shape[1], -1).transpose(1, 2)
    return grad.reshape(n, -1, grad.shape[-1])


def _equal_inputs(calls: list[_Call]) -> bool:
    """Whether a layer was called more than once, every time on inputs equal to the first call's."""
    first = calls[0].inputs
    return len(calls) > 1 and all(c.inputs.shape == first.shape and torch.equal(c.inputs, first) for c in calls[1:])


def kl_hessian_operator(kl: torch.Tensor, params: Sequence[torch.Tensor], damping: float
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> (H + damping I) v for flat v (P,), H the Hessian of the scalar ``kl`` in ``params`` (flat order
    of ``parameters_to_vector``), by double back-propagation; ``kl`` must have been computed with a graph."""
    params = list(params)
    with torch.enable_grad():
        kl_grad = parameters_to_vector(torch.autograd.grad(kl, params, create_graph=True))

    def operator(v: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            hessian_v = torch.autograd.grad(kl_grad.dot(v), params, retain_graph=True)
        return parameters_to_vector(hessian_v).detach() + damping * v

    return operator


def policy_kl_hessian(problem: NPGProblem, damping: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`kl_hessian_operator` of mean_i KL(pi(.|s_i) detached || pi(.|s_i)) over ``problem.obs`` and
    ``problem.params`` (unweighted, as train_detach.py:113-116 forms it)."""
    if not hasattr(problem.policy, "distribution"):
        raise RatbenchError("the KL Hessian needs a policy with distribution(obs); use the empirical Fisher instead")
    with torch.no_grad():
        fixed = problem.policy.distribution(problem.obs)
    with torch.enable_grad():
        kl = kl_divergence(fixed, problem.policy.distribution(problem.obs)).mean()
    return kl_hessian_operator(kl, problem.params, damping)


def capture(problem: NPGProblem) -> Curvature:
    """One forward and one backward over the batch: the implicit S of ``problem`` (see
    :func:`capture_with_log_probs`)."""
    return capture_with_log_probs(problem)[0]


def capture_with_log_probs(problem: NPGProblem) -> tuple[Curvature, torch.Tensor]:
    """The implicit S of ``problem`` and the log-probabilities (N,) its forward computed.

    If that backward fails because the policy modified a hooked layer's output in place (``relu_``
    after a Linear), or a layer's input that the capture keeps without copying was modified in place
    after the layer, the capture is redone without the layer fast path: every parameter's scores then come
    from :func:`~ratbench.per_sample.per_sample_grads`, with a warning naming the cost (a policy that
    modifies a layer's input after using it cannot be differentiated by autograd either, and ends there
    in one clear error)."""
    try:
        return _capture(problem, fast_layers=True)
    except RuntimeError as err:
        if "inplace operation" not in str(err):
            raise
        warnings.warn(
            "a Linear/Conv2d output or input of the policy is modified in place, which the layer fast path cannot "
            f"follow ({str(err).splitlines()[0][:120]}); capturing every parameter's per-sample scores "
            "directly instead (slower, same result)", RatbenchWarning, stacklevel=2)
        return _capture(problem, fast_layers=False)


def _capture(problem: NPGProblem, fast_layers: bool) -> tuple[Curvature, torch.Tensor]:
    policy, params = problem.policy, problem.params
    refuse_sample_mixing(policy)
    offsets, start = {}, 0
    for p in params:
        offsets[id(p)] = start
        start += p.numel()

    modules = list(policy.modules())
    if problem.value is not None:
        modules += [m for m in problem.value.module.modules() if all(m is not k for k in modules)]
    fast = [m for m in modules if fast_layers and _fast_path_supported(m) and id(m.weight) in offsets]
    fast = [m for m in fast if m.bias is None or id(m.bias) in offsets]
    recorder = _Recorder(problem.n)
    handles = [m.register_forward_hook(recorder.hook) for m in fast]
    gaussian_mean = None
    try:
        with torch.enable_grad():
            if type(policy) is GaussianPolicy:  # its log_prob is distribution(obs).log_prob: keep the mean
                dist = policy.distribution(problem.obs)
                logp, gaussian_mean = dist.log_prob(problem.actions), dist.mean
            else:
                logp = policy.log_prob(problem.obs, problem.actions)
            if logp.shape != (problem.n,):
                raise RatbenchError(f"policy.log_prob must return shape ({problem.n},), got {tuple(logp.shape)}")
            likelihood = logp
            if problem.value is not None:
                value = problem.value.module(problem.obs)
                if value.shape != (problem.n,):
                    raise RatbenchError(f"the value module must return shape ({problem.n},), got {tuple(value.shape)}")
                likelihood = logp + 2.0 * problem.value.noise.to(value.dtype) * value
            outputs = recorder.outputs()
            grads = torch.autograd.grad((problem.sqrt_weights() * likelihood).sum(), outputs, allow_unused=True) if outputs else ()
    finally:
        for h in handles:
            h.remove()
    output_grads = {id(z): g for z, g in zip(outputs, grads)}
    del outputs, grads  # each layer's outputs and output-gradients are released once copied into its factors

    layers, covered, unformed = [], set(), []
    for m in fast:
        calls = recorder.calls.pop(m, [])
        if m in recorder.rejected or not calls or any(output_grads[id(c.output)] is None for c in calls):
            continue
        if _changed((c.inputs for c in calls), (c.version for c in calls)):  # a kept view of the input (raw, or a bias-free
            # Linear's) would be read changed: say it as autograd would, so that capture_with_log_probs falls back
            raise RuntimeError(f"the input of {m} was changed by an inplace operation after the layer used it")
        per_call = [_layer_output_grads(m, output_grads.pop(id(c.output)).detach()) for c in calls]
        if m not in recorder.raw and _equal_inputs(calls):  # one position: the calls' output-gradients summed
            g, calls = torch.stack(per_call).sum(0), calls[:1]
        else:
            g = torch.cat(per_call, dim=1)
        del per_call
        bias_offset = offsets[id(m.bias)] if m.bias is not None else None
        if m in recorder.raw:
            layer = LayerFactors(m, offsets[id(m.weight)], bias_offset, None, g, inputs=tuple(c.inputs for c in calls),
                                 input_versions=tuple(c.version for c in calls))
            unformed.append(layer)
        else:
            owned = len(calls) == 1 and not calls[0].inputs._is_view()  # a bias-free Linear's is a view: copied
            a = calls[0].inputs if owned else torch.cat([c.inputs for c in calls], dim=1)
            layer = LayerFactors(m, offsets[id(m.weight)], bias_offset, a, g)
        layers.append(layer)
        covered.update({id(m.weight)} | ({id(m.bias)} if m.bias is not None else set()))
        del calls
    for layer in unformed:  # with every layer's outputs and output-gradients released
        layer.form_scores()

    others = [p for p in params if id(p) not in covered]
    other_scores = None
    if others:
        closed = {}
        if gaussian_mean is not None and any(p is policy.log_std for p in others):
            with torch.no_grad():
                closed[id(policy.log_std)] = policy.log_std_scores(gaussian_mean.detach(), problem.actions)
        rest = [p for p in others if id(p) not in closed]
        from_func = summed_per_sample_grads(problem.likelihood_parts(), rest, problem.obs) if rest else None
        columns, at = [], 0
        for p in others:
            if id(p) in closed:
                columns.append(closed[id(p)].reshape(problem.n, -1))
            else:
                columns.append(from_func[:, at:at + p.numel()])
                at += p.numel()
        other_scores = torch.cat(columns, dim=1).to(problem.dtype) * problem.sqrt_weights()[:, None]
    curvature = Curvature(
        n=problem.n,
        num_params=start,
        dtype=problem.dtype,
        device=problem.device,
        layers=layers,
        other_offsets=[(offsets[id(p)], p.numel()) for p in others],
        other_scores=other_scores,
    )
    return curvature, logp.detach()

