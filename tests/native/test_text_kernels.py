"""``widen_bytes`` and ``narrow_ucs4``: NumPy fixed-width strings without Python str objects,
compared with NumPy's own conversions on random text."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lakeformat
from lakeformat import _native

FUZZ = settings(max_examples=150, deadline=None)
texts = st.lists(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=300), max_size=30), min_size=1, max_size=60)


@FUZZ
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=50))
def test_widen_bytes_is_numpy_ascii_decoding(values):
    raw = np.array(values, dtype="S")
    width = raw.dtype.itemsize or 1
    raw = raw.astype(f"S{width}")
    out = np.empty(len(raw), dtype=f"U{width}")
    high, nonzero = _native.widen_bytes(raw.view(np.uint8), out.view(np.uint32))
    flat = raw.view(np.uint8)
    assert high == int(np.bitwise_or.reduce(flat)) and nonzero == int(np.count_nonzero(flat))
    if high < 128:
        assert out.tolist() == raw.astype(f"U{width}").tolist()


@FUZZ
@given(texts)
def test_narrow_ucs4_matches_str_encoding(values):
    arr = np.array(values, dtype="U")
    width = max(arr.dtype.itemsize // 4, 1)
    arr = arr.astype(f"U{width}")
    out = np.empty(len(arr) * width, np.uint8)
    lengths = np.empty(len(arr), np.int64)
    high, written = _native.narrow_ucs4(arr.view(np.uint32), width, out, lengths)
    as_listed = arr.tolist()  # NumPy drops trailing NULs, as narrow_ucs4 does
    assert lengths.tolist() == [len(v) for v in as_listed]
    assert high == int(np.bitwise_or.reduce(arr.view(np.uint32)))
    if high < 128:
        assert out[:written].tobytes() == "".join(as_listed).encode("ascii")


def test_narrow_ucs4_rejects_bad_shapes():
    with pytest.raises(ValueError):
        _native.narrow_ucs4(np.zeros(10, np.uint32), 3, np.zeros(10, np.uint8), np.zeros(3, np.int64))
    with pytest.raises(ValueError):
        _native.narrow_ucs4(np.zeros(9, np.uint32), 3, np.zeros(5, np.uint8), np.zeros(3, np.int64))


@FUZZ
@given(texts)
def test_text_tensor_round_trips_numpy_str_arrays(values):
    ds = lakeformat.empty("memory://text-kernels", overwrite=True)
    ds.create_tensor("t", htype="text")
    arr = np.array(values, dtype="U")
    ds.t.extend(arr)
    assert ds.t.numpy(aslist=True) == arr.tolist()
