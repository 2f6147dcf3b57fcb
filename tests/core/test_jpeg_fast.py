"""The libjpeg-turbo jpeg path gives Pillow's pixels, and leaves to Pillow what it does not
decode (other sizes or channels than stored, CMYK, broken streams)."""
import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lakeformat.codecs import decompress_image, jpeg_fast


def _jpeg(a: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), gray=st.booleans(), quality=st.integers(5, 100),
       subsampling=st.sampled_from([0, 1, 2]), progressive=st.booleans(), smooth=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_same_pixels_as_pillow(h, w, gray, quality, subsampling, progressive, smooth, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w) if gray else (h, w, 3)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    if smooth:  # photo-like content as well as noise
        a = np.cumsum(a.astype(np.int64) % 7, axis=0).astype(np.uint8)
    data = _jpeg(a, quality=quality, subsampling=subsampling, progressive=progressive)
    want = _pillow(data)
    stored = (h, w, 1) if gray and seed % 2 else want.shape
    out = np.empty(stored, np.uint8)
    assert jpeg_fast.decode_into(memoryview(data), stored, out)
    assert np.array_equal(out.reshape(want.shape), want)
    assert np.array_equal(decompress_image(data, stored), want.reshape(stored))
    assert np.array_equal(decompress_image(data), want)


def test_declines_what_it_does_not_handle():
    data = _jpeg(np.zeros((16, 24, 3), np.uint8))
    assert not jpeg_fast.decode_into(data, (17, 24, 3), np.empty((17, 24, 3), np.uint8))  # a size other than the stored one
    assert not jpeg_fast.decode_into(data, (16, 24), np.empty((16, 24), np.uint8))  # channels differ
    assert not jpeg_fast.decode_into(data[: len(data) // 2], (16, 24, 3), np.empty((16, 24, 3), np.uint8))  # truncated
    assert not jpeg_fast.decode_into(b"\xff\xd8" + b"\x00" * 40, (16, 24, 3), np.empty((16, 24, 3), np.uint8))
    assert jpeg_fast.decode(b"\xff\xd8" + b"\x00" * 40) is None
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (1, 2, 3, 4)).save(buf, format="JPEG")
    cmyk = buf.getvalue()
    assert not jpeg_fast.decode_into(cmyk, (8, 8, 3), np.empty((8, 8, 3), np.uint8))
    assert jpeg_fast.decode(cmyk) is None
    assert np.array_equal(decompress_image(cmyk), _pillow(cmyk))  # Pillow's path
