"""Checkpoint state as plain data: every kind of value round-trips through a weights-only load, exactly."""

import io
import random

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from ratbench.safe_state import ObjectState, decode, encode, restore_into


def _trip(value):
    buffer = io.BytesIO()
    torch.save(encode(value), buffer)
    buffer.seek(0)
    return decode(torch.load(buffer, weights_only=True))


DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.uint32, np.bool_])
ARRAYS = DTYPES.flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=5),
                   ARRAYS)
TREES = st.recursive(LEAVES, lambda kids: st.one_of(st.lists(kids, max_size=3), st.tuples(kids, kids),
                                                    st.dictionaries(st.text(min_size=1, max_size=4), kids, max_size=3)),
                     max_leaves=12)


def _same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


@given(TREES)
def test_plain_trees_with_arrays_round_trip_exactly(tree):
    _same(tree, _trip(tree))


def test_numpy_scalars_keep_their_type_and_generator_states_resume_their_streams():
    scalars = [np.float64(0.1), np.float32(2.5), np.int64(-3), np.bool_(True), np.uint8(7)]
    for before, after in zip(scalars, _trip(scalars)):
        assert type(after) is type(before) and after == before
    generator = np.random.default_rng(5)
    generator.random(3)
    copy = np.random.default_rng()
    copy.bit_generator.state = _trip(generator.bit_generator.state)
    assert copy.random() == generator.random()
    np.random.seed(1)
    random.seed(1)
    saved = _trip({"numpy": np.random.get_state(), "python": random.getstate(), "torch": torch.get_rng_state()})
    expected = (np.random.rand(), random.random(), torch.rand(1))
    np.random.set_state(saved["numpy"])
    random.setstate(saved["python"])
    torch.set_rng_state(saved["torch"])
    assert (np.random.rand(), random.random()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


class _Inner:
    def __init__(self, random_state):
        self.random, self.board = random_state, np.zeros((2, 2), np.int64)


class _Game:
    def __init__(self, seed):
        self.random = np.random.RandomState(seed)
        self.env = _Inner(self.random)  # one generator, two owners (as in MinAtar)
        self.counters = [1, None, [2, 3]]


def test_an_object_comes_back_onto_the_runs_own_object_with_shared_generators_still_shared():
    game = _Game(0)
    game.random.rand(4)
    game.env.board[0, 1] = 5
    game.counters[2].append(4)
    saved = _trip(game)
    assert isinstance(saved, ObjectState) and saved.type_name.endswith("_Game")
    fresh = _Game(99)
    restore_into(fresh, saved)
    assert fresh.env.random is fresh.random  # still one generator
    assert fresh.counters == [1, None, [2, 3, 4]] and fresh.env.board[0, 1] == 5
    assert fresh.random.rand() == game.random.rand()


def test_restoring_onto_another_type_and_encoding_code_are_refused():
    with pytest.raises(TypeError, match="where this run has"):
        restore_into(_Inner(np.random.RandomState(0)), _trip(_Game(0)))
    with pytest.raises(TypeError, match="cannot checkpoint"):
        encode({"f": print})
    with pytest.raises(TypeError, match="Python objects"):
        encode(np.array([object()]))
    with pytest.raises(TypeError, match="keys"):
        encode({"__ndarray__": 1})
