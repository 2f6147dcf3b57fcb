"""Text `numpy()`, `values()` and `numpy(aslist=True)` through text buffers and the native
UTF-8 kernels (`text_ucs4_width`, `text_to_ucs4`, `text_str_list`): the same values, dtypes
and errors as decoding each written value with Python, on random unicode text with NULs,
nulls and empty strings, across chunks, compressions, views and random (ranged) reads."""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lakeformat
from lakeformat import _native
from lakeformat.errors import CorruptDataError
from tests.core.test_text_buffers import random_texts


def want_column(vals: List[Optional[str]]) -> np.ndarray:
    """What numpy() of a text column gave before the kernels (decode.stack_text)."""
    if None in vals:
        out = np.empty((len(vals), 1), dtype=object)
        out[:, 0] = vals
        return out
    return np.asarray(vals, dtype=str).reshape(len(vals), 1) if vals else np.zeros((0, 1), str)


def same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("compression", [None, "lz4"])
@pytest.mark.parametrize("nulls", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_and_values_equal_python_decoding(tmp_path, monkeypatch, compression, nulls, seed):
    from lakeformat.core import text_arrays

    if seed:  # two threads decode a half each past this many bytes
        monkeypatch.setattr(text_arrays, "_SPLIT_BYTES", 64)
    rng = np.random.default_rng(seed)
    want = random_texts(rng, 3000)
    if not nulls:
        want = [v if v is not None else "ü" for v in want]
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("t", htype="text", chunk_compression=compression, max_chunk_size=4000)
    ds.t.extend(want[:2000])
    ds.flush()
    ds.t.extend(want[2000:])  # partly unflushed
    same(ds.t.numpy(), want_column(want))
    assert ds.t.values() == want
    aslist = ds.t.numpy(aslist=True)
    assert len(aslist) == len(want)
    for a, v in zip(aslist, want):
        same(a, np.array(v).reshape(1) if v is not None else np.array([None], dtype=object))
    ds.flush()
    again = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    picks = rng.integers(0, len(want), 40).tolist()  # a few rows of big chunks: ranged reads
    same(again.t[picks].numpy(), want_column([want[p] for p in picks]))
    assert again.t[picks].values() == [want[p] for p in picks]
    same(again.t[100:2900:7].numpy(), want_column(want[100:2900:7]))
    same(again[5:9].t.numpy(), want_column(want[5:9]))
    assert again.t.isnull().tolist() == [v is None for v in want]
    single = again.t[3].numpy()
    same(single, want_column([want[3]])[0])


def test_widths_in_code_points_and_edge_values(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("e", htype="text")
    ds.e.extend(["", "", ""])
    same(ds.e.numpy(), want_column(["", "", ""]))  # U1, as np.asarray gives
    ds.create_tensor("u", htype="text")
    vals = ["😀😀", "a\x00b", "ab\x00", "\x00", "Σé", "x" * 300, "\U0010ffff", "\u07ff\u0800\uffff"]
    ds.u.extend(vals)
    same(ds.u.numpy(), want_column(vals))
    assert ds.u.values() == vals
    ds.create_tensor("z", htype="text")
    same(ds.z.numpy(), want_column([]))
    assert ds.z.values() == []


def test_damaged_text_names_the_sample(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("t", htype="text")
    ds.t.extend(["abc", "déf", "ghi"])
    ds.flush()
    (chunk,) = (tmp_path / "ds" / "t" / "chunks").iterdir()
    raw = bytearray(chunk.read_bytes())
    at = bytes(raw).index("é".encode())
    raw[at + 1] = 0x41  # "é" loses its continuation byte
    chunk.write_bytes(bytes(raw))
    again = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    for read in (lambda: again.t.numpy(), lambda: again.t.values(), lambda: again.t.numpy(aslist=True)):
        with pytest.raises(CorruptDataError, match="UTF-8") as e:
            read()
        assert e.value.tensor == "t" and e.value.sample == 1
    assert again.t[[0, 2]].values() == ["abc", "ghi"]


def _buffers(vals: List[bytes]) -> tuple:
    offsets = np.zeros(len(vals) + 1, np.int64)
    np.cumsum([len(v) for v in vals], out=offsets[1:])
    return offsets, np.frombuffer(b"".join(vals), np.uint8).copy()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=8), st.text(max_size=6).map(lambda s: s.encode("utf-8", "surrogatepass"))), max_size=12))
def test_kernels_decode_like_python(vals):
    offsets, data = _buffers(vals)
    decoded: List[Optional[str]] = []
    for v in vals:
        try:
            decoded.append(v.decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(None)
    first_bad = next((i for i, d in enumerate(decoded) if d is None), -1)
    width, bad, ascii = _native.text_ucs4_width(offsets.data, data.data)
    assert bad == first_bad and ascii == all(b < 128 for b in data.tolist())
    listed = _native.text_str_list(offsets.data, data.data)
    if first_bad >= 0:
        assert listed == first_bad
        return
    assert listed == decoded and width == max((len(d) for d in decoded if d is not None), default=0)
    out = np.empty(len(vals), f"U{max(width, 1)}")
    assert _native.text_to_ucs4(offsets.data, data.data, max(width, 1), out.view(np.uint32).data) == -1
    assert out.tolist() == np.asarray(decoded, dtype=str).tolist()
    if width > 1:  # too narrow: the first value that does not fit is reported
        narrow = np.empty(len(vals), f"U{width - 1}")
        k = _native.text_to_ucs4(offsets.data, data.data, width - 1, narrow.view(np.uint32).data)
        assert k == next(i for i, d in enumerate(decoded) if d is not None and len(d) >= width)


def test_kernels_refuse_bad_buffers():
    offsets, data = _buffers([b"ab", b"c"])
    out = np.empty(2, "U2")
    with pytest.raises(ValueError, match="offsets"):
        _native.text_ucs4_width(np.array([0, 5], np.int64).data, data.data)
    with pytest.raises(ValueError, match="offsets"):
        _native.text_str_list(np.array([2, 1, 3], np.int64).data, data.data)
    with pytest.raises(ValueError, match="out has"):
        _native.text_to_ucs4(offsets.data, data.data, 3, out.view(np.uint32).data)
    with pytest.raises(ValueError, match="width"):
        _native.text_to_ucs4(offsets.data, data.data, -1, out.view(np.uint32).data)
    with pytest.raises(ValueError, match="null"):
        _native.text_str_list(offsets.data, data.data, np.zeros(3, bool).data)
    with pytest.raises(ValueError, match="at least one"):
        _native.text_ucs4_width(np.zeros(0, np.int64).data, data.data)
    assert _native.text_str_list(offsets.data, data.data, np.array([False, True]).data) == ["ab", None]


def test_fuzz_target_on_random_inputs():
    from tests.native.text_decode_fuzz import seeds_text_decode, target_text_decode

    rng = np.random.default_rng(11)
    for seed in seeds_text_decode():
        target_text_decode(seed)
    pieces = [b"a", b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80", b"\xff", b"\x00", b"\xe0\x80", b"\xc3"]
    for _ in range(3000):
        head = rng.integers(0, 256, 3, dtype=np.uint8).tobytes()
        body = rng.integers(0, 256, int(rng.integers(0, 12)), dtype=np.uint8).tobytes()
        text = b"".join(pieces[int(k)] for k in rng.integers(0, len(pieces), int(rng.integers(0, 10))))
        target_text_decode(head + body + text)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.text(max_size=5),
                          st.dictionaries(st.text(alphabet='k,"[{é$_', max_size=4), st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
                          st.lists(st.booleans(), max_size=3)), max_size=25))
def test_json_column_reads_equal_single_sample_reads(docs):
    """A json column's values()/numpy() (one parse for all documents) against reads of one
    sample each (the per-sample decode, which the one-parse path skips for single items)."""
    ds = lakeformat.empty("memory://json-column", overwrite=True)
    ds.create_tensor("j", htype="json", max_chunk_size=300)
    ds.j.extend(docs)
    singles = [ds.j[i].values()[0] for i in range(len(docs))]
    assert repr(ds.j.values()) == repr(singles)
    col = ds.j.numpy()
    assert col.dtype == object and col.shape == (len(docs), 1) and repr(col[:, 0].tolist()) == repr(singles)
    assert repr([a.tolist() for a in ds.j.numpy(aslist=True)]) == repr([[s] for s in singles])


def test_json_tagged_values_and_damage(tmp_path):
    from lakeformat.core.text_codec import EncodedSamples

    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("j", htype="json", chunk_compression="lz4")
    docs = [{"a": np.arange(3)}, {"_hub_custom_type": "bytes", "data": "x"}, None, [1, [2, {"b": b"hi"}]], {}, "s", {"$_hub_custom_type": 1}]
    ds.j.extend(docs)
    got, singles = ds.j.values(), [ds.j[i].values()[0] for i in range(len(docs))]
    assert repr(got) == repr(singles) and np.array_equal(got[0]["a"], np.arange(3)) and got[3][1][1]["b"] == b"hi"
    ds.j.extend(EncodedSamples(b"[12]", np.array([2, 2])))  # "[1" and "2]": damaged, balanced together
    with pytest.raises(Exception) as per_sample:
        ds.j[len(docs)].values()
    with pytest.raises(type(per_sample.value)):
        ds.j.values()
