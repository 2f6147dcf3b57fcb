"""The JSON path kernel (native/json_path.c) and `json_path_values` against `json.loads` + a
Python walk, on random JSON text: nested objects and arrays, unicode and escapes, integers
beyond int64, floats in exponent forms, duplicate keys, random whitespace, NaN/Infinity, and
truncated or damaged documents (which must be left to Python, never given a value)."""
from __future__ import annotations

import json
from typing import Any, List, Tuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeformat import _native
from lakeformat.core.json_values import json_path_values, walk_json_path
from tests.native.json_path_fuzz import FALLBACK, INT, SEEDS, STR, check_docs, target_json_path

FUZZ = settings(max_examples=300, deadline=None)
KEYS = ["a", "b", "id", "é", "", 'q"', "k\\"]
blank = st.sampled_from(["", "", " ", "\n\t ", "\r"])


def _num(mant: int, frac: str, exp: Any) -> str:
    text = str(mant) + (f".{frac}" if frac else "")
    return text + exp if exp else text


numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: "%.17e" % f),
    st.builds(_num, st.integers(-999, 999), st.text("0123456789", max_size=20),
              st.one_of(st.none(), st.builds(lambda e, s, x: f"{e}{s}{x}", st.sampled_from("eE"),
                                             st.sampled_from(["", "+", "-"]), st.integers(0, 400)))),
    st.sampled_from(["-0", "-0.0", "0e0", "1E400", "-1e-400", "NaN", "Infinity", "-Infinity", "9223372036854775807",
                     "-9223372036854775808", "9223372036854775808", "5e-324", "2.2250738585072011e-308"]),
)
strings = st.builds(lambda s, ascii_only: json.dumps(s, ensure_ascii=ascii_only),
                    st.text(alphabet="ab é\"\\\n\x01\u2028😀/", max_size=6), st.booleans())
scalars = st.one_of(st.sampled_from(["null", "true", "false"]), numbers, strings)


def _array(items: List[str], ws: str) -> str:
    return "[" + ws + ("," + ws).join(items) + ws + "]"


def _object(members: List[Tuple[str, str]], ws: str, ascii_keys: bool) -> str:
    body = ("," + ws).join(json.dumps(k, ensure_ascii=ascii_keys) + ws + ":" + ws + v for k, v in members)
    return "{" + ws + body + ws + "}"


values = st.recursive(scalars, lambda inner: st.one_of(
    st.builds(_array, st.lists(inner, max_size=4), blank),
    st.builds(_object, st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=4), blank, st.booleans()),
), max_leaves=12)


def _damage(text: bytes, how: int, at: int) -> bytes:
    if not text:
        return text
    at %= len(text)
    if how == 1:
        return text[:at]  # truncated
    if how == 2:
        return text[:at] + b"\xff" + text[at + 1:]  # invalid UTF-8
    if how == 3:
        return text[:at] + b"," + text[at:]
    return text


documents = st.builds(lambda v, ws, how, at: _damage((ws + v + ws).encode("utf-8"), how, at),
                      values, blank, st.sampled_from([0, 0, 0, 1, 2, 3]), st.integers(0, 10**6))
paths = st.lists(st.one_of(st.sampled_from(KEYS), st.integers(-3, 3)), max_size=3).map(tuple)


@FUZZ
@given(st.lists(st.one_of(documents, st.just(b"")), max_size=12), paths)
def test_kernel_matches_json_loads(docs: List[bytes], path: Tuple[Any, ...]) -> None:
    check_docs(docs, path)


@FUZZ
@given(st.lists(st.one_of(values.map(str.encode), st.just(b"")), max_size=12), paths)
def test_json_path_values_equal_the_python_walk(docs: List[bytes], path: Tuple[Any, ...]) -> None:
    offsets = np.zeros(len(docs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(d) for d in docs])
    data = np.frombuffer(b"".join(docs), np.uint8)
    got = json_path_values(offsets, data, path)
    want = [None if not d else walk_json_path(json.loads(d), path) for d in docs]
    assert got is not None
    assert [repr(x) for x in got.tolist()] == [repr(x) for x in want]


@FUZZ
@given(st.lists(values, min_size=1, max_size=6), st.data())
def test_kernel_on_paths_that_exist(texts: List[str], data: st.DataObject) -> None:
    """Paths drawn from one document's own keys and indices (random paths seldom hit)."""
    doc: Any = json.loads(texts[0])
    path: List[Any] = []
    while isinstance(doc, (dict, list)) and doc and data.draw(st.integers(0, 4)):
        if isinstance(doc, dict):
            key: Any = data.draw(st.sampled_from(sorted(doc)))
        else:
            key = data.draw(st.integers(-len(doc), len(doc) - 1))
        path.append(key)
        doc = doc[key]
    check_docs([t.encode() for t in texts], tuple(path))


def test_plain_documents_need_no_python() -> None:
    docs = [json.dumps({"source": {"id": k % 100, "name": f"n{k}"}, "score": 0.5}).encode() for k in range(300)]
    assert (check_docs(docs, ("source", "id")) == INT).all()
    assert (check_docs(docs, ("source", "name")) == STR).all()
    kinds = check_docs(docs, ("source",))
    assert (kinds == FALLBACK).all()  # objects are built by Python


def test_duplicate_keys_last_wins_and_negative_indices() -> None:
    docs = [b'{"a": 1, "b": {"c": [1, 2, 3]}, "a": {"x": "y"}}', b'{"a": {"x": 1}, "a": 2}']
    kinds = check_docs(docs, ("a", "x"))
    assert kinds.tolist() == [STR, 0]
    offsets = np.array([0, len(docs[0]), len(docs[0]) + len(docs[1])], np.int64)
    data = np.frombuffer(b"".join(docs), np.uint8)
    out = json_path_values(offsets, data, ("b", "c", -1))
    assert out is not None and out.tolist() == [3, None]


def test_a_document_python_rejects_is_reported() -> None:
    docs = [b'{"a": 1}', b'{"a": tru}']
    offsets = np.array([0, 8, 18], np.int64)
    assert json_path_values(offsets, np.frombuffer(b"".join(docs), np.uint8), ("a",)) is None


def test_bad_arguments_raise() -> None:
    out = [np.empty(1, np.int64) for _ in range(3)]
    with pytest.raises(ValueError):
        _native.json_path(np.array([0, 9], np.int64), b"{}", ("a",), *out)
    with pytest.raises(TypeError):
        _native.json_path(np.array([0, 2], np.int64), b"{}", (1.5,), *out)
    with pytest.raises(ValueError):
        _native.json_path(np.array([0, 2], np.int64), b"{}", ("a",), out[0], out[1], np.empty(2, np.int64))
    with pytest.raises(TypeError):
        _native.json_path(np.array([0, 2], np.int64), b"{}", ("a",), out[0], out[1], np.empty(1, np.int32))


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_fuzz_seeds(seed: int) -> None:
    target_json_path(SEEDS[seed])


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_target_on_random_bytes(data: bytes) -> None:
    target_json_path(data)
