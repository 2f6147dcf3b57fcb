"""Fuzz target of the text decode kernels (native/text_decode.c), in the form of
tests/fuzz/targets.py: arbitrary offsets, bytes, width and null mask; only ValueError /
TypeError may come out, and where the input is well formed the results equal Python's
UTF-8 decoding."""
from __future__ import annotations

from typing import List

import numpy as np

from lakeformat import _native


def target_text_decode(data: bytes) -> None:
    head = data[:3].ljust(3, b"\0")
    mode, m, width = head[0], head[1] % 16, head[2] % 12
    body = data[3:]
    raw = bool(mode & 0x80)
    cuts = np.frombuffer(body[:m].ljust(m, b"\0"), np.int8 if raw else np.uint8).astype(np.int64)
    text = body[m:]
    offsets = cuts if raw else np.minimum(np.concatenate([[0], np.cumsum(cuts % 8)]), len(text)).astype(np.int64)
    arr = np.frombuffer(text, np.uint8)
    n = max(len(offsets) - 1, 0)
    null = (np.arange(n) % 3 == 0) if mode & 0x40 else None
    out = np.zeros(n * width, np.uint32)
    try:
        w, bad, _ = _native.text_ucs4_width(offsets.data, arr.data)
        listed = _native.text_str_list(offsets.data, arr.data, null.data if null is not None else None)
        k = _native.text_to_ucs4(offsets.data, arr.data, width, out.data)
    except (ValueError, TypeError):
        return
    parts = [text[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    decoded: List[object] = []
    for p in parts:
        try:
            decoded.append(p.decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(None)
    first_bad = next((i for i, d in enumerate(decoded) if d is None), -1)
    assert bad == first_bad
    if first_bad < 0:
        assert w == max((len(str(d)) for d in decoded), default=0)
        assert listed == [None if null is not None and null[i] else d for i, d in enumerate(decoded)]
        too_long = next((i for i, d in enumerate(decoded) if len(str(d)) > width), -1)
        assert k == too_long
        if k < 0 and width:
            got = out.view(f"U{width}").tolist()
            assert got == np.asarray([str(d) for d in decoded], dtype=f"U{width}").tolist()


def seeds_text_decode() -> List[bytes]:
    return [bytes([0, 3, 6, 2, 3, 4]) + "abéü😀x".encode(), bytes([0x40, 2, 4, 1, 5]) + b"\xff\xfeab",
            bytes([0x80, 3, 3, 0xFF, 2, 1]) + b"abc", bytes([0, 0, 0])]
