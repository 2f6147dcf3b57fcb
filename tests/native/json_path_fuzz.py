"""Fuzz target of the JSON path kernel (native/json_path.c), in the form of
tests/fuzz/targets.py: `target_json_path(data)` splits arbitrary bytes into documents and a
path; the kernel must not crash, and every value it gives (anything but "fallback") must be
exactly what `json.loads` + a Python walk gives; a document json.loads rejects must be
"fallback"."""
from __future__ import annotations

import json
import math
from typing import Any, List, Sequence, Tuple

import numpy as np

from lakeformat import _native
from lakeformat.core.json_values import walk_json_path

MISSING, FALSE, TRUE, INT, FLOAT, STR, FALLBACK = range(7)
_KEYS = ["a", "b", "id", "é", ""]


def _reference(doc: bytes, path: Tuple[Any, ...]) -> Tuple[bool, Any]:
    """(parses, value at path) as json.loads + the walk give them."""
    if not doc:
        return True, None
    try:
        parsed = json.loads(doc.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False, None
    return True, walk_json_path(parsed, path)


def check_docs(docs: Sequence[bytes], path: Tuple[Any, ...]) -> np.ndarray:
    """Runs the kernel on `docs` and checks each result against the reference; the kinds."""
    offsets = np.zeros(len(docs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(d) for d in docs])
    data = np.frombuffer(b"".join(docs), np.uint8)
    kind, num, length = (np.full(len(docs), -1, np.int64) for _ in range(3))
    _native.json_path(offsets, data, tuple(path), kind, num, length)
    floats = num.view(np.float64)
    for i, doc in enumerate(docs):
        k = int(kind[i])
        assert 0 <= k <= FALLBACK, (doc, k)
        ok, want = _reference(doc, path)
        if not ok:
            assert k == FALLBACK, (doc, path, k)
            continue
        if k == FALLBACK:
            continue
        if k == MISSING:
            got: Any = None
        elif k in (FALSE, TRUE):
            got = k == TRUE
        elif k == INT:
            got = int(num[i])
        elif k == FLOAT:
            got = float(floats[i])
            assert math.isfinite(got)
        else:
            s, n = int(num[i]), int(length[i])
            got = bytes(data[s : s + n]).decode("utf-8")
        assert type(got) is type(want) and repr(got) == repr(want), (doc, path, k, got, want)
    return kind


def _path(head: bytes) -> Tuple[Any, ...]:
    out: List[Any] = []
    for b in head:
        out.append(_KEYS[b % len(_KEYS)] if b & 1 else (b >> 1) % 7 - 3)
    return tuple(out)


def target_json_path(data: bytes) -> None:
    head = data[:1].ljust(1, b"\0")
    npath = head[0] % 4
    path = _path(data[1 : 1 + npath])
    docs = data[1 + npath :].split(b"\n")
    check_docs(docs, path)
    # bad arguments raise, never crash
    for args in ((np.array([0, 5], np.int64), b"{}"), (np.array([1, 0], np.int64), b"{}")):
        try:
            _native.json_path(args[0], args[1], path, *(np.empty(1, np.int64) for _ in range(3)))
            raise AssertionError("bad offsets accepted")
        except ValueError:
            pass


SEEDS = [
    b"\x02\x01\x05" + b'{"a": {"b": 3, "b": 4.5e-3}, "b": [1, 2, "x"]}\n\n null\n{"a": 1\n[1, -0, 1E400]',
    b"\x01\x04" + b'[{"a": "h\\u00e9"}, 1e5, 123456789012345678901234, -9223372036854775808]\n"abc"',
    b"\x03\x03\x01\x00" + b'{"\xc3\xa9": {"a": [true, false, NaN]}}\n{"a": {"a": [0.1, 2.5e+10, -0.0]}}\n\xff',
]


def seeds_json_path() -> List[bytes]:
    return list(SEEDS)
