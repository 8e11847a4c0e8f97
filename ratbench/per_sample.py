"""Per-sample score gradients by ``torch.func`` (the materialised-J route).

This is the slow, architecture-agnostic way to get rows of J: vmap over the
batch of grad(log pi(a_i | s_i)). The curvature layer uses it only for
parameters no fast rule covers; the dense reference and the speed baseline
use it for every parameter, independently of the fast path.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, Sequence

import torch
from torch import nn
from torch.distributions import Distribution
from torch.func import functional_call, grad, vmap

from ratbench.errors import RatbenchError


class _LogProb(nn.Module):
    """Exposes ``policy.log_prob`` as ``forward`` so functional_call can drive it."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.policy.log_prob(obs, actions)


@contextlib.contextmanager
def no_distribution_validation() -> Iterator[None]:
    """Distribution argument checks branch on data, which vmap cannot trace."""
    old = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(old)


def refuse_sample_mixing(policy: nn.Module) -> None:
    """Raise if a module couples the samples of a batch (BatchNorm in training mode)."""
    for name, module in policy.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            raise RatbenchError(
                f"module {name or type(module).__name__} is a BatchNorm in training mode, which mixes the "
                "samples of a batch so per-sample scores are undefined; call policy.eval() before solving "
                "or use LayerNorm/GroupNorm instead"
            )


def param_names(policy: nn.Module, params: Sequence[torch.Tensor]) -> list[str]:
    """The ``named_parameters`` name of each tensor in ``params`` (in order)."""
    by_id = {id(p): name for name, p in policy.named_parameters()}
    names = []
    for p in params:
        if id(p) not in by_id:
            raise RatbenchError("a parameter to solve for is not a parameter of the policy; pass policy parameters only")
        names.append(by_id[id(p)])
    return names


def refuse_foreign(modules: Sequence[nn.Module], params: Sequence[torch.Tensor]) -> None:
    """:func:`param_names`' one-sentence refusal for any tensor in ``params`` that none of ``modules`` holds."""
    held = {id(p) for module in modules for p in module.parameters()}
    foreign = [p for p in params if id(p) not in held]
    if foreign:
        param_names(modules[0], foreign)


def summed_per_sample_grads(parts: Sequence[tuple[nn.Module, torch.Tensor]], params: Sequence[torch.Tensor],
                            obs: torch.Tensor) -> torch.Tensor:
    """Rows sum over ``parts`` of grad ``module.log_prob(obs, data)`` for ``params``: (N, sum numel), columns in the
    order of ``params``. Each (module, data) pair adds to the columns of the parameters it holds (a shared trunk gets
    both); a parameter that no part holds is refused in one sentence (:func:`param_names`)."""
    refuse_foreign([module for module, _ in parts], params)
    holders = [{id(p) for p in module.parameters()} for module, _ in parts]
    out = obs.new_zeros(obs.shape[0], sum(p.numel() for p in params), dtype=params[0].dtype)
    for (module, data), held in zip(parts, holders):
        mine = [p for p in params if id(p) in held]
        if not mine:
            continue
        grads, at, col = per_sample_grads(module, mine, obs, data), 0, 0
        for p in params:
            if id(p) in held:
                out[:, col:col + p.numel()] += grads[:, at:at + p.numel()].to(out.dtype)
                at += p.numel()
            col += p.numel()
    return out


class RatbenchWarning(UserWarning):
    """A slower route was taken so that the result stays correct (the message says which and why)."""


def owners(policy: nn.Module, params: Sequence[torch.Tensor]) -> list[str]:
    """'name (Type)' of the modules that directly hold ``params``, for messages."""
    wanted = {id(p) for p in params}
    found = []
    for name, module in policy.named_modules():
        if any(id(p) in wanted for p in module.parameters(recurse=False)):
            found.append(f"{name or 'the policy'} ({type(module).__name__})")
    return found


def per_sample_grads(
    policy: nn.Module,
    params: Sequence[torch.Tensor],
    obs: torch.Tensor,
    actions: torch.Tensor,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Rows grad_theta log pi(a_i | s_i) for ``params`` only: (N, sum numel).

    Parameters outside ``params`` are held fixed. Columns follow the order
    of ``params`` and each tensor's row-major layout.

    vmap of grad first; modules torch.func cannot transform (recurrent layers such as nn.GRU, custom
    autograd.Functions without ``setup_context``, some in-place patterns) fall back to one autograd
    backward per sample, which is correct for any module that treats samples independently, with one
    :class:`RatbenchWarning` naming the modules and the cost. If that fails too, a one-line
    RatbenchError names them.
    """
    refuse_sample_mixing(policy)
    try:
        return _vmapped(policy, params, obs, actions, chunk_size)
    except (RuntimeError, NotImplementedError, ValueError, TypeError) as err:
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    where = ", ".join(owners(policy, params)) or "the policy"
    warnings.warn(
        f"torch.func cannot vectorise the per-sample scores of {where} ({reason}); using one autograd backward "
        f"per sample instead: {obs.shape[0]} backward passes per capture, slow for large batches",
        RatbenchWarning, stacklevel=2)
    try:
        return _looped(policy, params, obs, actions)
    except (RuntimeError, NotImplementedError, ValueError, TypeError) as err:
        raise RatbenchError(f"per-sample scores of {where} cannot be computed, neither vectorised nor one sample "
                            f"at a time ({str(err).strip().splitlines()[0][:160]}); such a policy is not supported") from None


def _vmapped(policy, params, obs, actions, chunk_size):
    wrapper = _LogProb(policy)
    names = ["policy." + n for n in param_names(policy, params)]
    wanted = set(names)
    fixed = {"policy." + n: p.detach() for n, p in policy.named_parameters() if "policy." + n not in wanted}
    fixed.update({"policy." + n: b for n, b in policy.named_buffers()})

    def log_prob_one(free: dict, o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return functional_call(wrapper, {**fixed, **free}, (o.unsqueeze(0), a.unsqueeze(0)), strict=False).sum()

    free = {n: p.detach() for n, p in zip(names, params)}
    per_sample = vmap(grad(log_prob_one), in_dims=(None, 0, 0), chunk_size=chunk_size)
    with no_distribution_validation():
        grads = per_sample(free, obs, actions)
    return torch.cat([grads[n].reshape(obs.shape[0], -1) for n in names], dim=1)


def _looped(policy, params, obs, actions):
    """One backward per sample on a batch of one: slow, and correct for any per-sample policy."""
    param_names(policy, params)  # same refusal as the vmapped route for foreign tensors
    rows = []
    with torch.enable_grad(), no_distribution_validation():
        for i in range(obs.shape[0]):
            logp = policy.log_prob(obs[i:i + 1], actions[i:i + 1]).sum()
            grads = torch.autograd.grad(logp, list(params), allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                   for g, p in zip(grads, params)]))
    return torch.stack(rows).detach()
