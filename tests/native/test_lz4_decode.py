"""``lakeformat._native.lz4_decode`` against python-lz4's encoder and decoder.

Random payloads of every kind lz4 treats differently (incompressible bytes, runs, short
periods, long repeats) are compressed with python-lz4 in each of its modes and decoded by
ours, whole and partially; corrupted blocks must raise ValueError and never touch memory
outside the buffers.
"""
from __future__ import annotations

import lz4.block
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeformat import _native
from lakeformat.codecs.bytes_codecs import compress_bytes, decompress_bytes, decompress_into
from lakeformat.errors import CorruptDataError

FUZZ = settings(max_examples=150, deadline=None)


@st.composite
def payloads(draw) -> bytes:
    n = draw(st.integers(0, 70_000))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["random", "zeros", "small_alphabet", "period", "runs"]))
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if kind == "zeros":
        return bytes(n)
    if kind == "small_alphabet":
        return rng.integers(0, 4, n, dtype=np.uint8).tobytes()
    if kind == "period":
        period = int(rng.integers(1, 40))
        return np.tile(rng.integers(0, 256, period, dtype=np.uint8), n // period + 1)[:n].tobytes()
    return np.repeat(rng.integers(0, 256, n // 7 + 1, dtype=np.uint8), 7)[:n].tobytes()


@FUZZ
@given(payloads(), st.sampled_from(["default", "fast", "high_compression"]))
def test_decodes_what_python_lz4_encodes(data, mode):
    block = lz4.block.compress(data, store_size=False, mode=mode)
    out = np.full(len(data), 0xAB, np.uint8)
    assert _native.lz4_decode(block, out) == len(data)
    assert out.tobytes() == data


@FUZZ
@given(payloads(), st.floats(0, 1))
def test_partial_decode_is_a_prefix(data, fraction):
    if not data:
        return
    k = max(1, int(len(data) * fraction))
    block = lz4.block.compress(data, store_size=False)
    out = np.zeros(k, np.uint8)
    assert _native.lz4_decode(block, out, partial=True) == k
    assert out.tobytes() == data[:k]
    if k < len(data):
        with pytest.raises(ValueError, match="more"):
            _native.lz4_decode(block, np.zeros(k, np.uint8))


def test_wrong_size_is_an_error():
    block = lz4.block.compress(b"abc" * 1000, store_size=False)
    with pytest.raises(ValueError, match="fewer"):
        _native.lz4_decode(block, np.zeros(3001, np.uint8))


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_corrupt_blocks_raise_or_decode_within_bounds(seed, flips):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 3, 5000, dtype=np.uint8).tobytes()
    block = bytearray(lz4.block.compress(data, store_size=False))
    for _ in range(flips):
        block[int(rng.integers(0, len(block)))] = int(rng.integers(0, 256))
    # guard bytes on both sides of the output catch any write outside it
    room = int(rng.integers(1, 6000))
    guarded = np.full(room + 64, 0x5A, np.uint8)
    try:
        _native.lz4_decode(bytes(block), guarded[32 : 32 + room], partial=bool(seed % 2))
    except ValueError:
        pass
    assert np.all(guarded[:32] == 0x5A) and np.all(guarded[32 + room :] == 0x5A)


def test_truncated_block_raises():
    block = lz4.block.compress(bytes(range(256)) * 50, store_size=False)
    for cut in (1, 2, len(block) // 2, len(block) - 1):
        with pytest.raises(ValueError):
            _native.lz4_decode(block[:cut], np.zeros(256 * 50, np.uint8))


def test_codec_round_trip_and_into():
    data = (np.arange(300_000) // 13 % 251).astype(np.uint8).tobytes()
    stored = compress_bytes(data, "lz4")
    assert bytes(decompress_bytes(stored, "lz4")) == data
    head = np.empty(1000, np.uint8)
    decompress_into(stored, "lz4", head, partial=True)
    assert head.tobytes() == data[:1000]
    with pytest.raises(CorruptDataError):
        decompress_into(stored, "lz4", np.empty(1000, np.uint8))
    with pytest.raises(CorruptDataError):
        decompress_bytes(stored[:4] + b"\x00" * 10, "lz4")
    zstd = compress_bytes(data, "zstd")
    whole = np.empty(len(data), np.uint8)
    decompress_into(zstd, "zstd", whole)
    assert whole.tobytes() == data
