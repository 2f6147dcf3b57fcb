"""Hypothesis over the Python parsers (same targets as the atheris runs: byte mutations of
valid inputs and raw bytes), and each input the fuzzers found, kept as a regression test."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.destination_deeplake import _records
from lakeformat import _native
from lakeformat.core.chunk import Chunk, serialize_chunk
from lakeformat.core.meta import DatasetMeta, TensorMeta
from lakeformat.errors import CorruptDataError
from lakeformat.version_control.objects import ChunkSet, CommitDiff, DatasetDiff
from tests.fuzz.targets import TARGETS

PY_TARGETS = ["chunk", "encoders", "meta", "vc_objects"]
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw, name: str) -> bytes:
    """A seed of the target with a few edits: overwrite, flip, cut, insert, or a wide int."""
    seeds = TARGETS[name][1]()
    b = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "flip", "cut", "insert", "int"]))
        at = draw(st.integers(0, len(b)))
        if op == "set" and at < len(b):
            b[at] = draw(st.integers(0, 255))
        elif op == "flip" and 0 < at < len(b):
            b[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del b[at:]
        elif op == "insert":
            b[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "int":
            width = draw(st.sampled_from([1, 4, 8]))
            value = draw(st.sampled_from([0, 2 ** (8 * width) - 1, 2 ** (8 * width - 1), 2 ** (8 * width - 1) - 1]))
            b[at : at + width] = value.to_bytes(width, draw(st.sampled_from(["little", "big"])))
    return bytes(b)


@pytest.mark.parametrize("name", PY_TARGETS)
def test_mutated_inputs_raise_only_typed_errors(name):
    @SETTINGS
    @given(data=mutated(name))
    def run(data: bytes) -> None:
        TARGETS[name][0](data)

    run()


@pytest.mark.parametrize("name", PY_TARGETS)
def test_raw_bytes_raise_only_typed_errors(name):
    @SETTINGS
    @given(data=st.binary(max_size=300))
    def run(data: bytes) -> None:
        TARGETS[name][0](data)

    run()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_parse(name):
    fn, seeds = TARGETS[name]
    for s in seeds():
        fn(s)


# ------------------------------------------------------------------ what the fuzzers found
def test_commit_diff_with_a_huge_count_is_corrupt_not_a_hang():
    good = CommitDiff(0, created=True).to_bytes()
    for at in (19, 28):  # updates count, deletions count
        bad = bytearray(good + bytes(8))
        bad[at : at + 8] = (2**63).to_bytes(8, "big")
        with pytest.raises(CorruptDataError, match="lists"):
            CommitDiff.from_bytes(bytes(bad), key="t/commit_diff")


def test_commit_diff_with_an_impossible_updated_position_is_corrupt():
    # found by atheris: a position >= 2**63 parsed, then failed to serialize with OverflowError
    cd = CommitDiff(0, created=True)
    cd.add_updated(np.array([7]))
    raw = bytearray(cd.to_bytes())
    raw[27:35] = (2**63 + 7).to_bytes(8, "big")  # the one updated position
    with pytest.raises(CorruptDataError, match="updated sample at position"):
        CommitDiff.from_bytes(bytes(raw), key="t/commit_diff")


def test_chunk_set_and_dataset_diff_damage_is_corrupt():
    with pytest.raises(CorruptDataError, match="UTF-8"):
        ChunkSet.from_bytes(b"abc,def:\xcf\x4f", key="t/chunk_set")
    dd = DatasetDiff()
    dd.tensor_renamed("old", "new")
    dd.tensor_deleted("gone")
    raw = dd.to_bytes()
    for cut in range(1, len(raw)):
        with pytest.raises(CorruptDataError):
            DatasetDiff.from_bytes(raw[:cut], key="dataset_diff")
    huge = bytearray(raw)
    huge[1:9] = (2**62).to_bytes(8, "big")
    with pytest.raises(CorruptDataError, match="renames"):
        DatasetDiff.from_bytes(bytes(huge))
    assert DatasetDiff.from_bytes(raw).to_bytes() == raw


@pytest.mark.parametrize("doc", [
    {"tensors": [{"tensors": []}]},
    {"tensors": "abc"},
    {"tensors": [], "tensor_names": []},
    {"tensors": [], "hidden_tensors": [1]},
])
def test_dataset_meta_with_wrong_types_is_corrupt(doc):
    with pytest.raises(CorruptDataError, match="dataset meta"):
        DatasetMeta.from_bytes(json.dumps(doc).encode(), key="dataset_meta.json")


@pytest.mark.parametrize("doc", [
    {"htype": "generic", "length": "7"},
    {"htype": "generic", "length": -1},
    {"htype": "generic", "min_shape": [1, "2"]},
    {"htype": "generic", "dtype": 5},
    {"htype": ["image"]},
])
def test_tensor_meta_with_wrong_types_is_corrupt(doc):
    with pytest.raises(CorruptDataError, match="tensor meta"):
        TensorMeta.from_bytes(json.dumps(doc).encode(), key="x/tensor_meta.json")


def test_metas_nested_too_deep_or_huge_ints_are_corrupt():
    with pytest.raises(CorruptDataError, match="nested too deep"):
        TensorMeta.from_bytes(b"[" * 100_000 + b"]" * 100_000, key="x/tensor_meta.json")
    with pytest.raises(CorruptDataError, match="not a JSON document"):
        TensorMeta.from_bytes(b'{"htype": "generic", "length": ' + b"9" * 5000 + b"}", key="x/tensor_meta.json")


def _chunk(comp=None) -> bytes:
    arrs = [np.arange(6, dtype=np.uint8).reshape(2, 3)] * 3
    return bytes(serialize_chunk([a.tobytes() for a in arrs], np.array([6, 6, 6]), np.array([[2, 3]] * 3), comp))


def test_chunk_tables_are_aligned_for_the_native_kernels():
    c = Chunk.parse(_chunk(), None, "k")  # version "3.9.52": the tables start at an odd offset
    assert c.shape_rows.flags.aligned and c.bp_rows.flags.aligned
    start, end = c.byte_ranges(np.arange(3))
    assert start.tolist() == [0, 6, 12] and end.tolist() == [6, 12, 18]


def test_chunk_positions_past_its_data_are_corrupt():
    raw = _chunk()
    with pytest.raises(CorruptDataError, match="past the chunk"):
        Chunk.parse(raw[:-4], None, "t/chunks/c").byte_ranges(np.arange(3))


def test_chunk_with_too_many_shape_columns_is_corrupt():
    raw = bytearray(_chunk())
    n = raw[0]
    raw[1 + n + 4 : 1 + n + 8] = (1 << 20).to_bytes(4, "little")
    with pytest.raises(CorruptDataError, match="columns"):
        Chunk.parse(bytes(raw), None, "t/chunks/c")
    # a shape table past any offset struct can address: no size, no OverflowError
    assert Chunk.header_nbytes_from(b"\x01a" + (2**31 - 1).to_bytes(4, "little") * 2 + bytes(4)) is None


def test_zstd_chunk_claiming_an_impossible_size_is_corrupt():
    raw = _chunk("zstd")
    head = Chunk.parse(raw, "zstd", "k").header_nbytes
    body = bytearray(raw[head:])
    # a frame header with a single-segment 8-byte content size of 2**60
    forged = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + (2**60).to_bytes(8, "little") + bytes(body[-20:])
    with pytest.raises(CorruptDataError):
        Chunk.parse(raw[:head] + forged, "zstd", "k").data  # noqa: B018
    with pytest.raises(CorruptDataError):
        Chunk.parse(raw[:head] + b"\x28\xb5\x2f\xfd\xff\xff", "zstd", "k").decompress_into(lambda n: np.empty(n, np.uint8))


def test_lz4_zero_offset_is_refused():
    block = bytes([0x10, ord("a"), 0, 0]) + bytes([0x10, ord("b")])  # one literal, then a match at offset 0
    with pytest.raises(ValueError, match="corrupt"):
        _native.lz4_decode(block, np.zeros(6, np.uint8))


def test_scanner_empty_text_first():
    """An empty string as a text field's first value (the column had no memory yet)."""
    sc = _records.Scanner()
    i = sc.add_stream(b"s", None)
    sc.set_fields(i, [(b"s", _records.TEXT)])
    sc.enable(i, True)
    line = b'{"type":"RECORD","record":{"stream":"s","data":{"s":""},"emitted_at":1}}\n'
    assert sc.scan(line * 2, 0, 10, 1 << 20)[1] == 2
    rows, _, _, cols = sc.take(i)
    _, nulls, ends, body = cols[0]
    assert rows == 2 and nulls == b"\0\0" and np.frombuffer(ends, np.int64).tolist() == [0, 0] and body == b""


def test_commit_diff_deleting_a_position_past_int64_is_corrupt():
    cd = CommitDiff(10)  # ten samples before this version: popping one records a deletion
    cd.pop(2, 7)
    assert cd.data_deleted == {2}
    raw = bytearray(cd.to_bytes())
    pos = 27 + 1 + 8  # no updates, the cleared flag, the deletions count: the first position
    raw[pos : pos + 8] = (2**63).to_bytes(8, "big")
    with pytest.raises(CorruptDataError, match="past any tensor"):
        CommitDiff.from_bytes(bytes(raw), key="t/commit_diff")
    assert CommitDiff.from_bytes(cd.to_bytes()).to_bytes() == cd.to_bytes()


def test_image_chunk_with_one_dimensional_shapes_is_corrupt():
    import base64

    raw = base64.b64decode("AwYzLjkuNTIBAAAAAgAAAAEAAAABAAAAAwAAAAAAAACJUE5HDQoaCgAAAA1JSERSAQAAAAMAugAsAAAAABsAQg==")
    TARGETS["chunk"][0](raw)  # the input atheris found: CorruptDataError, not IndexError
    with pytest.raises(CorruptDataError, match="1-dimensional"):
        Chunk.parse(raw[1:], "png", "t/chunks/c").data  # noqa: B018
