"""Fuzz target of the long-key lz4 encoder (`_native.lz4_encode`, native/lz4_encode.c).

Any bytes encode; the block is never larger than lz4's bound, and python-lz4 (what
deeplake 3.x decodes with) and our decoder both give the input back. The first byte picks
a shape for the rest (as is, or repeated at a period, or widened to small integers), so
mutations reach the long matches as well as literals.
"""
from __future__ import annotations

from typing import List

import numpy as np


def _shaped(data: bytes) -> bytes:
    if not data:
        return data
    mode, rest = data[0] % 4, data[1:]
    if mode == 1 and rest:  # a piece repeated at an odd period: long matches
        return (rest * (4096 // len(rest) + 1))[: 4096 + data[0]]
    if mode == 2:  # small integers as int32/int64: the long finder's case
        width = 4 if data[0] & 4 else 8
        return np.frombuffer(rest, np.uint8).astype(f"<u{width}").tobytes()
    if mode == 3:  # zeros with a few bytes set
        out = bytearray(len(rest) * 3)
        out[::7] = rest[: len(out[::7])]
        return bytes(out)
    return rest


def target_lz4_encode(data: bytes) -> None:
    import lz4.block

    from lakeformat import _native

    src = _shaped(data)
    out = np.empty(len(src) + len(src) // 255 + 16, np.uint8)
    written = _native.lz4_encode(src, out)
    assert 0 < written <= len(out)
    block = out[:written].tobytes()
    assert lz4.block.decompress(block, uncompressed_size=len(src)) == src, "python-lz4 reads it otherwise"
    if src:
        back = np.empty(len(src), np.uint8)
        _native.lz4_decode(block, back)
        assert back.tobytes() == src, "our decoder reads it otherwise"


def seeds_lz4_encode() -> List[bytes]:
    rng = np.random.default_rng(11)
    return [b"", b"\0", b"\1abc", b"\2" + rng.integers(0, 10, 3000, dtype=np.uint8).tobytes(),
            b"\6" + rng.integers(0, 3, 500, dtype=np.uint8).tobytes(), b"\3" + rng.bytes(400),
            b"\0" + rng.bytes(2000), b"\0" + bytes(range(256)) * 16]
