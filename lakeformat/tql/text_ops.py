"""TQL's text operators over `TextBuffers` (offsets + UTF-8 bytes): comparisons, IN, LIKE /
ILIKE, CONTAINS, IS NULL and the ORDER BY key, each one pass of a C kernel (native/tql_text.c,
GIL released) over the whole column; a null row gives NULL.

Where a kernel cannot be exact the rows go to Python's `re`: ILIKE folds ASCII and Latin-1
letters in C, so a pattern or a value holding a code point above U+00FF is matched with
`re.IGNORECASE` (Unicode case folding) instead, for those rows only.
"""
from __future__ import annotations

import re
from typing import List, Sequence

import numpy as np

from lakeformat import _native
from lakeformat.core.text_buffers import TextBuffers
from lakeformat.tql.values import Value, text_buffers, with_null

OPS = {"==": 0, "!=": 1, "<": 2, "<=": 3, ">": 4, ">=": 5}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
ANY_RUN, ANY_ONE = -1, -2
FOLD_MAX = 0xFF  # the ILIKE kernel folds case up to here (ASCII + Latin-1)
GLOBS = "%*_?"


def _result(out: np.ndarray, tb: TextBuffers) -> Value:
    """A kernel's mask as a WHERE value: NULL rows false and NULL."""
    if tb.null is None:
        return Value("array", out)
    out &= ~tb.null
    return with_null(out, tb.null)


def compare_const(op: str, v: Value, s: str, flipped: bool = False) -> Value:
    """`v <op> s` (or `s <op> v` when `flipped`), by code point."""
    if flipped:
        op = _FLIPPED.get(op, op)
    tb = text_buffers(v)
    out = np.empty(len(tb), bool)
    _native.text_compare(tb.offsets.data, tb.data.data, s.encode("utf-8"), OPS[op], out.data)
    return _result(out, tb)


def compare_columns(op: str, a: Value, b: Value) -> Value:
    """`a <op> b` row by row; NULL where either is."""
    x, y = text_buffers(a), text_buffers(b)
    out = np.empty(len(x), bool)
    _native.text_compare_pairs(x.offsets.data, x.data.data, y.offsets.data, y.data.data, OPS[op], out.data)
    null = x.null_mask() | y.null_mask()
    return with_null(out & ~null, null)


def in_set(v: Value, strs: Sequence[str]) -> Value:
    """`v IN (strs...)`: one binary search per row over the sorted constants."""
    tb = text_buffers(v)
    members = sorted({s.encode("utf-8") for s in strs})
    offsets = np.zeros(len(members) + 1, np.int64)
    np.cumsum([len(m) for m in members], out=offsets[1:])
    out = np.empty(len(tb), bool)
    _native.text_in(tb.offsets.data, tb.data.data, offsets.data, b"".join(members), out.data)
    return _result(out, tb)


def contains(v: Value, needle: str) -> Value:
    """CONTAINS(v, needle): `needle` is a substring of the row."""
    tb = text_buffers(v)
    out = np.empty(len(tb), bool)
    _native.text_contains(tb.offsets.data, tb.data.data, needle.encode("utf-8"), out.data)
    return _result(out, tb)


def like_regex(pattern: str, case_insensitive: bool) -> "re.Pattern[str]":
    """SQL LIKE (`%` any run, `_` one character) and Deep Lake's globs (`*`, `?`); every other
    character stands for itself. The reference the kernel is tested against."""
    out = []
    for c in pattern:
        out.append(".*" if c in "%*" else "." if c in "_?" else re.escape(c))
    return re.compile("".join(out), re.S | (re.I if case_insensitive else 0))


def like_tokens(pattern: str) -> np.ndarray:
    """The pattern as the kernel's int32 tokens: a code point, ANY_RUN or ANY_ONE."""
    return np.fromiter((ANY_RUN if c in "%*" else ANY_ONE if c in "_?" else ord(c) for c in pattern), np.int32, len(pattern))


def like(v: Value, pattern: str, case_insensitive: bool) -> Value:
    """`v LIKE pattern` / `ILIKE`: a whole-row match."""
    if not case_insensitive:  # the common shapes as the cheaper kernels: 'lit' and '%lit%'
        inner = pattern[1:-1] if len(pattern) >= 2 and pattern[0] in "%*" and pattern[-1] in "%*" else None
        if not any(c in GLOBS for c in pattern):
            return compare_const("==", v, pattern)
        if inner and not any(c in GLOBS for c in inner):
            return contains(v, inner)
    tb = text_buffers(v)
    n = len(tb)
    tokens = like_tokens(pattern)
    if case_insensitive and len(tokens) and int(tokens.max()) > FOLD_MAX:
        return _like_python(tb, like_regex(pattern, True), np.ones(n, bool))
    codes = np.empty(n, np.uint8)
    unsure = _native.text_like(tokens.data, tb.offsets.data, tb.data.data, case_insensitive, codes.data)
    out = codes == 1
    if unsure:
        rest = codes == 2
        out |= _like_python(tb, like_regex(pattern, True), rest).data
    return _result(out, tb)


def _like_python(tb: TextBuffers, rx: "re.Pattern[str]", rows: np.ndarray) -> Value:
    """`re.fullmatch` on the rows of `rows` (those the kernel cannot decide)."""
    out = np.zeros(len(tb), bool)
    where = np.flatnonzero(rows)
    vals = tb.take(where).objects()
    out[where] = np.fromiter((x is not None and rx.fullmatch(x) is not None for x in vals), bool, len(where))
    return _result(out, tb)


def is_null(v: Value) -> Value:
    return Value("array", text_buffers(v).null_mask().copy())


def order_key(v: Value) -> tuple[np.ndarray, np.ndarray]:
    """ORDER BY's key of a text column: (fixed-width bytes, null mask). UTF-8 bytes sort in
    code point order; the values are gathered natively, no str per row."""
    tb = text_buffers(v)
    n = len(tb)
    lengths = np.diff(tb.offsets)
    width = max(int(lengths.max()) if n else 1, 1)
    if width * n > 4 * tb.nbytes + (64 << 20) or bool((tb.data == 0).any()):
        # one long value among short ones (fixed width would not fit in memory), or NUL
        # bytes (fixed-width bytes drop trailing ones): Python strings, ranked as they compare
        objs = tb.objects()
        objs[tb.null_mask()] = ""
        return objs, tb.null_mask().copy()
    keys = np.zeros(n, f"S{width}")
    if n:
        flat = keys.view(np.uint8)
        _native.gather([tb.data.data], np.zeros(n, np.int64).data, np.ascontiguousarray(tb.offsets[:-1]).data, lengths.data,
                       flat.data, (np.arange(n, dtype=np.int64) * width).data)
    return keys, tb.null_mask().copy()


def objects_of(values: List[Value]) -> List[Value]:
    """Text values with object-array data (for the row-wise JSON comparisons)."""
    return [Value("text", text_buffers(x).objects()) if x.kind == "text" and isinstance(x.data, TextBuffers) else x for x in values]
