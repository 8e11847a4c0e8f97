"""Checkpoint state as plain data: what ``torch.load(..., weights_only=True)`` reads without running code.

A trainer's state holds torch tensors, numbers, strings and containers, and also numpy arrays and
scalars (normaliser statistics, raw observations, RNG states), numpy ``RandomState`` generators and,
for MinAtar, the game objects. :func:`encode` turns it into tensors, numbers, strings, None, lists,
tuples and dicts only: an array becomes ``{"__ndarray__": tensor}`` (dtype kept), a numpy scalar
``{"__npscalar__": ...}``, a ``RandomState`` its ``get_state()`` tuple and any other object its
attributes, ``{"__object__": {...}}``. :func:`decode` reverses the first three; an object comes back
as an :class:`ObjectState`, whose attributes :func:`restore_into` writes onto an object of the same
type that the resuming run built itself (a fresh MinAtar game), so no class is ever looked up by name
or instantiated from a checkpoint, and generators shared between objects stay shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

NDARRAY, NPSCALAR, RANDOM_STATE, OBJECT = "__ndarray__", "__npscalar__", "__numpy_random_state__", "__object__"
_MARKERS = (NDARRAY, NPSCALAR, RANDOM_STATE, OBJECT)


@dataclass(frozen=True)
class ObjectState:
    """The attributes of an object saved by :func:`encode` (values already decoded)."""

    type_name: str  # module.qualname of the saved object, checked on restore
    attrs: dict[str, Any]


@dataclass(frozen=True)
class RandomStateValue:
    """A numpy ``RandomState``'s ``get_state()`` tuple."""

    state: tuple


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def encode(value: Any) -> Any:
    """``value`` as tensors, numbers, strings, None, lists, tuples and string-keyed dicts (see module doc).
    Raises TypeError naming the first value that has no such form (a function, an open file)."""
    if isinstance(value, np.generic):  # before the Python types: np.float64 is a float subclass
        return {NPSCALAR: encode(np.asarray(value))}
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("cannot checkpoint a numpy array of Python objects")
        return {NDARRAY: torch.from_numpy(np.array(value, copy=True, order="C"))}
    if isinstance(value, np.random.RandomState):
        return {RANDOM_STATE: encode(value.get_state())}
    if isinstance(value, dict):
        if any(not isinstance(k, (str, int)) or k in _MARKERS for k in value):
            raise TypeError(f"cannot checkpoint a dict with keys {list(value)[:3]!r}")
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return tuple(encode(v) for v in value)
    if hasattr(value, "__dict__") and not callable(value):
        return {OBJECT: {"type": _type_name(value), "attrs": encode(dict(vars(value)))}}
    raise TypeError(f"cannot checkpoint a {_type_name(value)}")


def decode(tree: Any) -> Any:
    """The inverse of :func:`encode`, objects as :class:`ObjectState` and generators as :class:`RandomStateValue`."""
    if isinstance(tree, dict):
        if len(tree) == 1 and next(iter(tree)) in _MARKERS:
            (marker, inner), = tree.items()
            if marker == NDARRAY:
                return inner.numpy().copy()
            if marker == NPSCALAR:
                return decode(inner)[()]
            if marker == RANDOM_STATE:
                return RandomStateValue(decode(inner))
            return ObjectState(inner["type"], decode(inner["attrs"]))
        return {k: decode(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [decode(v) for v in tree]
    if isinstance(tree, tuple):
        return tuple(decode(v) for v in tree)
    return tree


def restore_into(target: Any, saved: ObjectState) -> None:
    """Write ``saved``'s attributes onto ``target``, an object of the saved type built by the resuming run:
    nested objects are restored into ``target``'s own, generators by ``set_state`` on its own (so two
    attributes that shared one generator still do)."""
    if _type_name(target) != saved.type_name:
        raise TypeError(f"the checkpoint holds a {saved.type_name} where this run has a {_type_name(target)}")
    for name, value in saved.attrs.items():
        current = getattr(target, name, None)
        if isinstance(value, ObjectState) and current is not None:
            restore_into(current, value)
        elif isinstance(value, RandomStateValue):
            if not isinstance(current, np.random.RandomState):
                current = np.random.RandomState()
                setattr(target, name, current)
            current.set_state(value.state)
        elif isinstance(value, ObjectState):
            raise TypeError(f"the checkpoint holds a {value.type_name} as {name!r}, which this run's "
                            f"{saved.type_name} does not have")
        else:
            setattr(target, name, value)


__all__ = ["ObjectState", "RandomStateValue", "decode", "encode", "restore_into"]
