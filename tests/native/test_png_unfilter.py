"""``png_unfilter`` (through ``png_fast.decode``) against Pillow, on PNGs Pillow writes with
its adaptive filters (None, Sub, Up, Average and Paeth rows) and on ours."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lakeformat import _native
from lakeformat.codecs import png_fast


@settings(max_examples=120, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 2, 3, 4]), st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 6, 9]), st.booleans())
def test_decodes_pillow_pngs_exactly(h, w, c, seed, level, smooth):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    if smooth:  # smooth images make Pillow pick Up/Average/Paeth rows
        a = (np.cumsum(np.cumsum(a, axis=0), axis=1) // 97).astype(np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    buf = io.BytesIO()
    Image.fromarray(a[:, :, 0] if c == 1 else a, mode).save(buf, format="PNG", compress_level=level)
    out = np.zeros((h, w, c), np.uint8)
    assert png_fast.decode(buf.getvalue(), out) is not None
    assert np.array_equal(out, a)
    assert np.array_equal(png_fast.decode(png_fast.encode(a)), a)


def test_unknown_filter_and_bad_geometry_raise():
    raw = np.zeros(2 * 7, np.uint8)
    raw[7] = 5  # the second row's filter type
    with pytest.raises(ValueError, match="row 1"):
        _native.png_unfilter(raw, 2, 6, 3, np.zeros(12, np.uint8))
    with pytest.raises(ValueError):
        _native.png_unfilter(raw, 3, 6, 3, np.zeros(18, np.uint8))
    with pytest.raises(ValueError):
        _native.png_unfilter(raw, 2, 6, 0, np.zeros(12, np.uint8))
