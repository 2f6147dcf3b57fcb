"""The TQL text kernels (native/tql_text.c) against Python's own str operations and `re`, on
random unicode text: empty strings, NUL, multibyte characters, patterns with globs and regex
metacharacters; and bad inputs, which raise and never crash."""
from __future__ import annotations

import operator
import re
from typing import List, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeformat import _native
from lakeformat.core.text_buffers import TextBuffers
from lakeformat.tql import text_ops
from lakeformat.tql.values import Value
from tests.native.tql_text_fuzz import SEEDS, target_tql_text

FUZZ = settings(max_examples=200, deadline=None)
# few letters so that values repeat and patterns match; Latin-1 letters of both cases, a
# Greek and a Cyrillic pair, the Kelvin sign and long s (which `re.I` folds onto k and s),
# emoji, NUL, and the pattern characters themselves
ALPHABET = "aAbBkKsS \x00éÉßÿµ_%*?.\\[(^$ΣσЖжKſ😀"
texts = st.text(alphabet=ALPHABET, max_size=12)
columns = st.lists(st.one_of(texts, st.none()), max_size=40)
PY_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def mask(v: Value) -> List[Optional[bool]]:
    """A kernel result as Python: None for a NULL row."""
    null = v.null if v.null is not None else np.zeros(len(v.data), bool)
    return [None if z else bool(x) for x, z in zip(v.data.tolist(), null.tolist())]


def ref(vals: List[Optional[str]], fn) -> List[Optional[bool]]:
    return [None if x is None else bool(fn(x)) for x in vals]


def col(vals: List[Optional[str]]) -> Value:
    return Value("text", TextBuffers.from_objects(vals))


@FUZZ
@given(columns, texts, st.sampled_from(sorted(PY_OPS)))
def test_compare_with_a_constant_is_python_str_order(vals, s, op):
    assert mask(text_ops.compare_const(op, col(vals), s)) == ref(vals, lambda x: PY_OPS[op](x, s))
    assert mask(text_ops.compare_const(op, col(vals), s, flipped=True)) == ref(vals, lambda x: PY_OPS[op](s, x))


@FUZZ
@given(st.lists(st.tuples(st.one_of(texts, st.none()), st.one_of(texts, st.none())), max_size=30), st.sampled_from(sorted(PY_OPS)))
def test_compare_columns_row_by_row(pairs, op):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    want = [None if x is None or y is None else PY_OPS[op](x, y) for x, y in pairs]
    assert mask(text_ops.compare_columns(op, col(a), col(b))) == want


@FUZZ
@given(columns, st.lists(texts, min_size=1, max_size=8))
def test_in_set(vals, members):
    assert mask(text_ops.in_set(col(vals), members)) == ref(vals, lambda x: x in members)


@FUZZ
@given(columns, texts)
def test_contains_is_substring(vals, needle):
    assert mask(text_ops.contains(col(vals), needle)) == ref(vals, lambda x: needle in x)


def like_ref(pattern: str, ci: bool):
    rx = re.compile("".join(".*" if c in "%*" else "." if c in "_?" else re.escape(c) for c in pattern), re.S | (re.I if ci else 0))
    return lambda x: rx.fullmatch(x) is not None


@FUZZ
@given(columns, st.text(alphabet=ALPHABET + "%%__**??", max_size=8), st.booleans())
def test_like_and_ilike_are_re_fullmatch(vals, pattern, ci):
    assert mask(text_ops.like(col(vals), pattern, ci)) == ref(vals, like_ref(pattern, ci))


@FUZZ
@given(st.lists(texts, max_size=20), texts)
def test_like_from_values_matches_themselves(vals, s):
    """A value used as a pattern (globs escaped away by construction: no glob characters)."""
    plain = "".join(c for c in s if c not in "%_*?")
    got = mask(text_ops.like(col(vals + [plain]), plain, False))
    assert got[-1] is True
    assert got == ref(vals + [plain], lambda x: x == plain)


def test_ilike_folds_exactly_as_re_on_latin1():
    """Every pair of code points up to U+00FF: the kernel's folding is `re.I`'s."""
    chars = [chr(c) for c in range(256)]
    tb = TextBuffers.from_objects(chars)
    for p in chars:
        codes = np.empty(256, np.uint8)
        tokens = np.array([ord(p)], np.int32)
        assert _native.text_like(tokens, tb.offsets, tb.data, True, codes) == 0
        want = [re.fullmatch(re.escape(p), c, re.I | re.S) is not None for c in chars]
        assert (codes == 1).tolist() == want, p


def test_ilike_rows_above_latin1_go_to_python():
    vals = ["ſ", "s", "K", "k", "Straße", "STRASSE", "ΣΑΣ", None]
    for pattern in ("s", "k", "%s%", "straße", "σας", "_"):
        assert mask(text_ops.like(col(vals), pattern, True)) == ref(vals, like_ref(pattern, True))
    codes = np.empty(3, np.uint8)
    tb = TextBuffers.from_objects(["ſ", "s", "ab"])
    assert _native.text_like(np.array([ord("s")], np.int32), tb.offsets, tb.data, True, codes) == 1
    assert codes.tolist() == [2, 1, 0]


@FUZZ
@given(st.lists(st.binary(max_size=8), max_size=20))
def test_utf8_check_is_python_decoding(parts):
    offsets = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    data = np.frombuffer(b"".join(parts), np.uint8)

    def ok(b: bytes) -> bool:
        try:
            b.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
    want = next((i for i, p in enumerate(parts) if not ok(p)), -1)
    assert _native.text_utf8_check(offsets, data) == want


def test_empty_column_and_empty_values():
    tb = TextBuffers.from_objects([])
    for fn in (lambda v: text_ops.contains(v, "a"), lambda v: text_ops.like(v, "%", True), lambda v: text_ops.in_set(v, ["a"])):
        assert fn(Value("text", tb)).data.tolist() == []
    v = col(["", None, "a"])
    assert mask(text_ops.like(v, "", False)) == [True, None, False]
    assert mask(text_ops.like(v, "%", False)) == [True, None, True]
    assert mask(text_ops.contains(v, "")) == [True, None, True]


BAD_OFFSETS = [np.array([], np.int64), np.array([1, 0], np.int64), np.array([0, 9], np.int64), np.array([-1, 0], np.int64),
               np.array([0, 3, 2], np.int64)]


@pytest.mark.parametrize("offsets", BAD_OFFSETS)
def test_bad_offsets_raise(offsets):
    data = np.frombuffer(b"abc", np.uint8)
    out = np.zeros(max(len(offsets) - 1, 0), bool)
    for call in (lambda: _native.text_compare(offsets, data, b"a", 0, out),
                 lambda: _native.text_contains(offsets, data, b"a", out),
                 lambda: _native.text_in(offsets, data, np.array([0, 1], np.int64), b"a", out),
                 lambda: _native.text_like(np.array([-1], np.int32), offsets, data, False, out),
                 lambda: _native.text_compare_pairs(offsets, data, offsets, data, 0, out),
                 lambda: _native.text_utf8_check(offsets, data)):
        with pytest.raises(ValueError, match="offsets"):
            call()


def test_bad_arguments_raise():
    off, data = np.array([0, 1, 3], np.int64), np.frombuffer("aé".encode(), np.uint8)
    out = np.zeros(2, bool)
    with pytest.raises(TypeError):
        _native.text_compare(off.astype(np.int32), data, b"a", 0, out)
    with pytest.raises(ValueError, match="op"):
        _native.text_compare(off, data, b"a", 6, out)
    with pytest.raises(ValueError, match="out has"):
        _native.text_contains(off, data, b"a", np.zeros(3, bool))
    with pytest.raises(TypeError):
        _native.text_contains(off, data, b"a", b"\0\0")  # read-only out
    with pytest.raises(ValueError, match="sorted"):
        _native.text_in(off, data, np.array([0, 1, 2], np.int64), b"ba", out)
    with pytest.raises(ValueError, match="sorted"):
        _native.text_in(off, data, np.array([0, 1, 2], np.int64), b"aa", out)
    with pytest.raises(TypeError, match="int32"):
        _native.text_like(np.array([97], np.int64), off, data, False, out)
    with pytest.raises(ValueError, match="token"):
        _native.text_like(np.array([0x110000], np.int32), off, data, False, out)
    with pytest.raises(ValueError, match="token"):
        _native.text_like(np.array([0x100], np.int32), off, data, True, out)
    bad = np.frombuffer(b"a\xff\xfe", np.uint8)
    with pytest.raises(ValueError, match="not UTF-8"):
        _native.text_like(np.array([-1], np.int32), off, bad, False, out)
    with pytest.raises(ValueError, match="share memory"):
        buf = np.zeros(4, np.uint8)
        _native.text_contains(np.array([0, 1, 2], np.int64), buf, b"a", buf[:2].view(bool))


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_fuzz_seeds_run(seed):
    target_tql_text(SEEDS[seed])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_target_on_random_bytes(data):
    target_tql_text(data)
