"""ratbench.io: atomic writes leave a whole file or none; YAML reads fail in one sentence naming the file."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratbench.errors import RatbenchError
from ratbench.io import atomic_write_bytes, read_yaml, write_json
from tests.strategies import property_settings


@property_settings(30)
@given(data=st.binary(max_size=4096))
def test_an_atomic_write_leaves_exactly_the_bytes_and_no_temporary_file(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("out")
    path = atomic_write_bytes(folder / "deep" / "file.bin", data)
    assert path.read_bytes() == data and os.listdir(path.parent) == ["file.bin"]


def test_json_holds_null_where_a_value_is_not_finite(tmp_path):
    path = write_json(tmp_path / "a.json", {"a": float("nan"), "b": [1.5, float("inf")], "c": (float("-inf"),)})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": [None]}


@pytest.mark.parametrize("content,problem", [
    (b"a: [1\n", "is not valid YAML (ParserError: "),
    (b"\xff\xfe\x00a: 1", "is not UTF-8 text (a binary file?)"),
])
def test_a_damaged_yaml_file_is_one_sentence_with_its_name_and_remedy(tmp_path, content, problem):
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(RatbenchError) as raised:
        read_yaml(path, "suite file", "fix it")
    assert str(raised.value).startswith(f"suite file {str(path)!r} {problem}")
    assert str(raised.value).endswith("; fix it") and "\n" not in str(raised.value)


def test_a_folder_or_missing_file_cannot_be_read_and_an_empty_file_is_none(tmp_path):
    with pytest.raises(RatbenchError, match=r"^run config '.*' cannot be read \("):
        read_yaml(tmp_path, "run config")
    with pytest.raises(RatbenchError, match="cannot be read"):
        read_yaml(tmp_path / "absent.yaml", "run config")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert read_yaml(tmp_path / "empty.yaml", "run config") is None
    (tmp_path / "ok.yaml").write_text("a: [1, 2]\n")
    assert read_yaml(tmp_path / "ok.yaml", "run config") == {"a": [1, 2]}
