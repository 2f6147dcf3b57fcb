"""Fuzz target of the TQL text kernels (native/tql_text.c), in the form of tests/fuzz/targets.py:
`target_tql_text(data)` feeds arbitrary bytes to a kernel (any offsets, data, needle, set,
pattern) and lets through only ValueError / TypeError; where the input is well formed the
result must equal Python's str operations."""
from __future__ import annotations

import json
import operator
import re
from typing import List, Optional

import numpy as np

from lakeformat import _native

_OPS = [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]


def _decode(parts: List[bytes]) -> Optional[List[str]]:
    try:
        return [p.decode("utf-8") for p in parts]
    except UnicodeDecodeError:
        return None


def target_tql_text(data: bytes) -> None:
    head = data[:4].ljust(4, b"\0")
    kernel, mode, m, nlen = head[0] % 7, head[1], head[2] % 16, head[3] % 16
    body = data[4:]
    raw_offsets = bool(mode & 0x80)
    cuts = np.frombuffer(body[:m].ljust(m, b"\0"), np.int8 if raw_offsets else np.uint8).astype(np.int64)
    needle = body[m : m + nlen]
    text = body[m + nlen :]
    offsets = cuts if raw_offsets else np.concatenate([[0], np.cumsum(cuts % 8)]).astype(np.int64)
    if not raw_offsets and len(offsets) and offsets[-1] > len(text):
        offsets = np.minimum(offsets, len(text))
    arr = np.frombuffer(text, np.uint8)
    n = max(len(offsets) - 1, 0)
    out = np.zeros(n, np.uint8)
    op = mode % 6
    try:
        if kernel == 0:
            _native.text_compare(offsets, arr, needle, op, out)
        elif kernel == 1:
            _native.text_contains(offsets, arr, needle, out)
        elif kernel == 2:
            members = sorted(set(needle.split(b"|"))) if not mode & 0x40 else needle.split(b"|")
            so = np.concatenate([[0], np.cumsum([len(x) for x in members])]).astype(np.int64)
            _native.text_in(offsets, arr, so, b"".join(members), out)
        elif kernel == 3:
            chars = _decode([needle])  # the pattern's code points (its bytes when not UTF-8)
            codes = [ord(c) for c in chars[0]] if chars is not None else list(needle)
            tokens = np.frombuffer(needle[: len(needle) // 4 * 4], np.int32) if mode & 0x40 else \
                np.array([-1 if c == 37 else -2 if c == 95 else c for c in codes], np.int32)
            unsure = _native.text_like(tokens, offsets, arr, bool(mode & 0x20), out)
            assert 0 <= unsure <= n
        elif kernel == 4:
            _native.text_compare_pairs(offsets, arr, offsets[::-1].copy(), arr, op, out)
        elif kernel == 5:
            bad = _native.text_utf8_check(offsets, arr)
            assert -1 <= bad < max(n, 1)
            return
        else:
            bad = _native.json_balanced(offsets, arr)
            assert -1 <= bad < max(n, 1)
            docs = [text[int(a) : int(b)] for a, b in zip(offsets[:-1], offsets[1:])]
            if all(_parses(d) for d in docs if d):
                assert bad == -1, docs  # one value each: never refused
            return
    except (ValueError, TypeError) as e:
        if type(e) not in (ValueError, TypeError):
            raise
        return
    assert set(np.unique(out).tolist()) <= {0, 1, 2}
    parts = [text[int(a) : int(b)] for a, b in zip(offsets[:-1], offsets[1:])]
    vals, key = _decode(parts), _decode([needle])
    if vals is None or key is None:
        return
    s = key[0]
    if kernel == 0:
        assert out.tolist() == [int(_OPS[op](v, s)) for v in vals]
    elif kernel == 1:
        assert out.tolist() == [int(s in v) for v in vals]
    elif kernel == 2 and not mode & 0x40:
        members_s = set(s.split("|"))
        assert out.tolist() == [int(v in members_s) for v in vals]
    elif kernel == 3 and not mode & 0x40:
        rx = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in s),
                        re.S | (re.I if mode & 0x20 else 0))
        for v, got in zip(vals, out.tolist()):
            if got != 2:
                assert got == int(rx.fullmatch(v) is not None), (v, s)


def _parses(doc: bytes) -> bool:
    try:
        json.loads(doc.decode("utf-8"))
        return True
    except ValueError:
        return False


def _seed(kernel: int, mode: int, lengths: List[int], needle: bytes, text: bytes) -> bytes:
    return bytes([kernel, mode, len(lengths), len(needle)]) + bytes(lengths) + needle + text


SEEDS: List[bytes] = [
    _seed(0, 0, [1, 2, 0, 3], b"ab", b"aabxyz"),
    _seed(0, 4, [2, 2], "é".encode(), "éa".encode() + b"ab"),
    _seed(1, 0, [3, 3, 0], b"b", b"abcxyz"),
    _seed(2, 0, [1, 2, 2], b"a|bc", b"abcbc"),
    _seed(3, 0, [3, 2], b"a%", b"abcab"),
    _seed(3, 0x20, [2, 3], b"_B%", "éBxyz".encode()[:5]),
    _seed(4, 2, [1, 1, 1], b"", b"abc"),
    _seed(5, 0, [2, 2], b"", b"\xc3\xa9ab"),
    _seed(1, 0x80, [0, 0xFF, 2], b"a", b"abc"),
    _seed(6, 0, [7, 0, 5, 7], b"", b'{"a":1}[1,2]"a,\\"["'),
]


def seeds_tql_text() -> List[bytes]:
    return list(SEEDS)
