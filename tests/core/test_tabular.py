"""Tabular columns at little cost: lz4 chunks stored as one literal run where compressing
does not pay and by the long-key encoder where it pays more than lz4's fast mode, sample ids
that lz4 stores in about half a byte each, lz4 hidden tensors, and chunk headers of
same-size samples built without a per-sample pass."""
from __future__ import annotations

import lz4.block
import numpy as np
import pytest

import lakeformat
from lakeformat import _native
from lakeformat.codecs import bytes_codecs
from lakeformat.codecs.bytes_codecs import compress_bytes, compress_parts, decompress_bytes, decompress_into, lz4_literal_prefix
from lakeformat.core.chunk import Chunk, ChunkBuilder, chunk_header, serialize_chunk, uniform_size
from lakeformat.core.sample_ids import RUN, new_sample_ids

SEEDS = range(20)


# ------------------------------------------------------------------------------ lz4 literal runs
@pytest.mark.parametrize("n", [0, 1, 14, 15, 16, 269, 270, 271, 524, 525, 4096, 300_001])
def test_literal_run_is_an_lz4_block_every_decoder_reads(n):
    data = np.random.default_rng(n).bytes(n)
    block = lz4_literal_prefix(n) + data
    assert lz4.block.decompress(block) == data  # python-lz4: what deeplake 3.x decodes with
    if n:
        assert bytes(decompress_bytes(block, "lz4")) == data  # the native decoder
        head = np.empty(n // 2 + 1, np.uint8)  # a read of the first rows decodes a prefix
        decompress_into(block, "lz4", head, partial=True)
        assert bytes(head) == data[: len(head)]


def test_incompressible_chunks_are_stored_as_literals_compressible_ones_compressed():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(100_000).tobytes()  # 800 KB of random floats
    stored = compress_bytes(noise, "lz4")
    assert len(stored) - len(noise) < len(noise) // 200  # a prefix of 1/255 of it, no more
    assert stored[:4] == len(noise).to_bytes(4, "little") and stored[4] == 0xF0
    assert bytes(decompress_bytes(stored, "lz4")) == noise
    labels = rng.integers(0, 10, 200_000).astype(np.int32).tobytes()
    packed = compress_bytes(labels, "lz4")
    assert len(packed) < len(labels) // 2
    assert bytes(decompress_bytes(packed, "lz4")) == labels


def test_compress_parts_does_not_copy_a_literal_run():
    noise = memoryview(np.random.default_rng(2).bytes(1 << 20))
    parts = compress_parts(noise, "lz4")
    assert len(parts) == 2 and parts[1] is noise
    assert bytes(decompress_bytes(b"".join(parts), "lz4")) == bytes(noise)
    small = memoryview(b"abc" * 10)
    assert len(compress_parts(small, "lz4")) == 1  # under the probe's size: compressed as ever
    assert compress_parts(noise, "zstd")[0] != noise


# ------------------------------------------------------------------------------ sample ids
@pytest.mark.parametrize("seed", SEEDS)
def test_sample_ids_are_unique_and_cost_about_a_byte(seed):
    n = int(np.random.default_rng(seed).integers(1, 5 * RUN))
    batches = [new_sample_ids(n) for _ in range(3)]
    for ids in batches:
        assert ids.dtype == np.uint64 and ids.shape == (n,)
    every = np.concatenate(batches)
    assert len(np.unique(every)) == len(every)
    packed = lz4.block.compress(batches[0].tobytes())
    assert len(packed) < 1.1 * n + 64  # the last run's string only as long as its ids need


@pytest.mark.parametrize("seed", SEEDS)
def test_sample_ids_cost_about_half_a_byte_and_stay_unique_in_small_batches(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3 * RUN, 40 * RUN))
    ids = new_sample_ids(n)
    assert len(np.unique(ids)) == n
    assert len(lz4.block.compress(ids.tobytes())) < 0.56 * n + 64  # 8 bytes an id raw
    assert len(compress_bytes(ids.tobytes(), "lz4")) < 0.56 * n + 64  # whichever encoder the probe picks
    # a writer appending a few rows at a time: every batch starts a fresh string
    small = np.concatenate([new_sample_ids(int(k)) for k in rng.integers(1, 40, 1000)])
    assert len(np.unique(small)) == len(small)


def test_sample_ids_of_a_run_are_its_distinct_windows():
    ids = new_sample_ids(3 * RUN)
    raw = ids[:RUN].view(np.uint8)
    s = raw[: 8 * RUN : 8].copy()  # the first byte of id i is the string's byte at 8*i mod RUN
    offsets = (8 * np.arange(RUN)) % RUN
    string = np.empty(RUN, np.uint8)
    string[offsets] = s
    windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([string, string[:7]]), 8)
    assert np.array_equal(windows[offsets].copy().view("<u8").reshape(-1), ids[:RUN])
    counters = string[8::8]  # after the 8-byte head, one counter every 8 bytes, all distinct
    assert len(counters) == (RUN - 1) // 8 and len(np.unique(counters)) == len(counters)


def test_no_sample_ids():
    assert new_sample_ids(0).shape == (0,)


# ------------------------------------------------------------------------------ the long-key lz4 encoder
def _long_encode(data: bytes) -> bytes:
    out = np.empty(len(data) + len(data) // 255 + 16, np.uint8)
    return out[: _native.lz4_encode(data, out)].tobytes()


def _structured(rng: np.random.Generator, n: int) -> bytes:
    """Bytes of the kinds chunks hold: small ints of several widths, runs, repeats, noise."""
    kind = int(rng.integers(0, 6))
    if kind == 0:
        width = rng.choice(["<i1", "<i2", "<i4", "<i8"])
        return rng.integers(0, int(rng.integers(1, 20)), n // np.dtype(width).itemsize + 1).astype(width).tobytes()[:n]
    if kind == 1:
        return rng.bytes(n)
    if kind == 2:
        return bytes(n)
    if kind == 3:  # runs of repeated pieces at odd distances
        piece = rng.bytes(int(rng.integers(1, 40)))
        return (piece * (n // max(1, len(piece)) + 1))[:n]
    if kind == 4:
        return (np.arange(n // 8 + 1, dtype=np.int64) * int(rng.integers(1, 1000))).tobytes()[:n]
    words = [rng.bytes(int(rng.integers(1, 9))) for _ in range(12)]
    return b"".join(words[int(i)] for i in rng.integers(0, 12, n))[:n]


@pytest.mark.parametrize("seed", SEEDS)
def test_long_key_encoder_writes_blocks_every_lz4_decoder_reads(seed):
    rng = np.random.default_rng(seed)
    for n in [0, 1, 5, 12, 23, 24, 25, 31, 64, 1000, int(rng.integers(1, 300_000))]:
        data = _structured(rng, n)
        block = _long_encode(data)
        assert len(block) <= n + n // 255 + 16
        assert lz4.block.decompress(block, uncompressed_size=n) == data  # python-lz4, as deeplake 3.x
        if n:
            out = np.empty(n, np.uint8)
            _native.lz4_decode(block, out)
            assert bytes(out) == data


def test_long_key_encoder_refuses_a_short_output():
    data = bytes(1000)
    with pytest.raises(ValueError, match="lz4 block"):
        _native.lz4_encode(data, np.empty(len(data), np.uint8))
    with pytest.raises(TypeError):
        _native.lz4_encode(data, bytes(2000))  # read-only output


def test_lz4_plan_per_chunk():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 400_000).astype(np.int32).tobytes()
    assert bytes_codecs.lz4_plan(labels) == bytes_codecs.LZ4_LONG
    assert bytes_codecs.lz4_plan(rng.standard_normal(100_000).tobytes()) == bytes_codecs.LZ4_RAW
    assert bytes_codecs.lz4_plan(np.arange(100_000, dtype=np.int64).tobytes()) == bytes_codecs.LZ4_FAST
    assert bytes_codecs.lz4_plan(labels[:1000]) == bytes_codecs.LZ4_FAST  # under the probe's size
    # the long-key block of a label column: far smaller than lz4's fast mode, the same format
    packed = compress_bytes(labels, "lz4")
    assert len(packed) < 0.8 * len(lz4.block.compress(labels))
    assert lz4.block.decompress(packed) == labels and bytes(decompress_bytes(packed, "lz4")) == labels
    parts = compress_parts(memoryview(labels), "lz4")
    assert b"".join(bytes(p) for p in parts) == packed


def test_lz4_of_an_array_counts_its_bytes_not_its_items():
    rng = np.random.default_rng(4)
    for arr in (rng.standard_normal(100_000), rng.integers(0, 10, 200_000).astype(np.int32)):
        packed = compress_bytes(arr, "lz4")  # a literal run, then a long-key block
        assert lz4.block.decompress(packed) == arr.tobytes()
        parts = compress_parts(arr, "lz4")
        assert lz4.block.decompress(b"".join(bytes(memoryview(p).cast("B")) for p in parts)) == arr.tobytes()


def test_hidden_tensors_are_lz4_and_small(tmp_path):
    n = 200_000
    ds = lakeformat.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(n))
    ds = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    for hidden in ("_x_id", "_x_shape"):
        assert ds[hidden].meta.chunk_compression == "lz4"
    stored = sum(f.stat().st_size for f in (tmp_path / "ds" / "_x_id" / "chunks").iterdir())
    assert stored < 0.56 * n + 4096  # 8 bytes an id raw
    stored = sum(f.stat().st_size for f in (tmp_path / "ds" / "_x_shape" / "chunks").iterdir())
    assert stored < 8 * n // 100  # 8 bytes a shape raw: one value repeated
    ids = ds["_x_id"].numpy().reshape(-1)
    assert len(np.unique(ids)) == n
    assert np.array_equal(ds["_x_shape"].numpy(), np.ones((n, 1), np.int64))


# ------------------------------------------------------------------------------ same-size samples
def _header_both_ways(size: int, shape: tuple, n: int, positions: bool = True) -> tuple:
    sizes = np.broadcast_to(np.asarray(size, np.int64), (n,))
    shapes = np.broadcast_to(np.asarray(shape, np.int64), (n, len(shape)))
    assert uniform_size(sizes, shapes) == size
    return chunk_header(sizes, shapes, positions=positions), chunk_header(np.array(sizes), np.array(shapes), positions=positions)


@pytest.mark.parametrize("seed", SEEDS)
def test_uniform_header_equals_the_general_one(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 6, int(rng.integers(1, 4))))
    size = int(np.prod(shape)) * int(rng.choice([1, 2, 4, 8]))
    n = int(rng.integers(1, 5000))
    positions = bool(rng.integers(0, 2))
    fast, general = _header_both_ways(size, shape, n, positions=positions)
    assert fast == general
    if not positions:  # an image chunk's header: the canvas places the samples
        return
    chunk = Chunk.parse(fast + bytes(size * n), None)
    local = rng.integers(0, n, 50)
    start, end = chunk.byte_ranges(local)
    assert np.array_equal(start, local * size) and np.array_equal(end, (local + 1) * size)
    assert np.array_equal(chunk.shapes(local), np.tile(shape, (50, 1)))


def test_not_uniform_when_materialized_or_mixed():
    assert uniform_size(np.full(3, 8), np.ones((3, 1), np.int64)) is None
    assert uniform_size(np.broadcast_to(np.int64(8), (3,)), np.ones((3, 1), np.int64)) is None
    assert uniform_size(np.zeros(0, np.int64), np.zeros((0, 1), np.int64)) is None


@pytest.mark.parametrize("seed", SEEDS)
def test_builder_of_uniform_batches_serializes_as_materialized(seed):
    rng = np.random.default_rng(seed)
    width = int(rng.integers(1, 4))
    b = ChunkBuilder(1, 1)
    pieces = []
    for _ in range(int(rng.integers(1, 5))):
        k = int(rng.integers(1, 100))
        arr = rng.integers(0, 1 << 30, (k, width)).astype(np.int32)
        pieces.append(arr)
        b.add([memoryview(arr).cast("B")], np.broadcast_to(np.int64(4 * width), (k,)), np.broadcast_to(np.int64(width), (k, 1)))
    data = np.concatenate(pieces)
    n = len(data)
    want = serialize_chunk([memoryview(data).cast("B")], np.full(n, 4 * width), np.full((n, 1), width), None)
    assert bytes(b.serialize(None)) == bytes(want)
    b.replace(0, b"\0" * 4 * width, [width])  # edits need writable sizes and shapes
    assert b.all_sizes().flags.writeable


@pytest.mark.parametrize("seed", SEEDS)
def test_tabular_columns_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    comp = [None, "lz4"][seed % 2]
    chunk = int(rng.choice([1 << 12, 1 << 16, 1 << 20]))
    ds = lakeformat.empty(str(tmp_path / "ds"))
    want = {"i": [], "f": [], "t": [], "v": []}
    with ds:
        ds.create_tensor("i", dtype="int64", chunk_compression=comp, max_chunk_size=chunk)
        ds.create_tensor("f", dtype="float64", chunk_compression=comp, max_chunk_size=chunk)
        ds.create_tensor("t", htype="text", chunk_compression=comp, max_chunk_size=chunk)
        ds.create_tensor("v", dtype="float32", chunk_compression=comp, max_chunk_size=chunk)
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.integers(1, 20_000))
            cols = {"i": rng.integers(-(1 << 40), 1 << 40, k), "f": rng.standard_normal(k),
                    "t": np.array([f"row {x}" for x in rng.integers(0, 10**9, k)]),
                    "v": rng.standard_normal((k, 3)).astype(np.float32)}
            ds.extend(cols)
            for key, v in cols.items():
                want[key].append(v)
    back = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    for key in ("i", "f", "v"):
        full = np.concatenate(want[key])
        assert np.array_equal(back[key].numpy().reshape(full.shape[0], -1), full.reshape(full.shape[0], -1))
    assert back["t"].numpy().reshape(-1).tolist() == np.concatenate(want["t"]).tolist()
    n = sum(len(x) for x in want["i"])
    idx = rng.integers(0, n, 100)
    assert np.array_equal(back["f"][idx.tolist()].numpy().reshape(-1), np.concatenate(want["f"])[idx])
    assert back.v.shape == (n, 3)
