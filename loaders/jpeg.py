"""JPEG samples decoded straight into a caller's array with Pillow's own libjpeg decoder.

`Image.open` + `np.asarray` costs about twice the decode itself on small images: the plugin
parses the headers in Python, and `np.asarray` copies the pixels through `tobytes()`. The
sample's shape is already known from the chunk, so here only the frame header is read (to
check that the stream really has that size and band count) and the stream goes to the same
libjpeg decoder `ImageFile.load` would use, with the same arguments: the pixels are the same.
Anything else (12-bit, CMYK, a size that does not match, a broken stream) returns False and
the caller takes the ordinary Pillow path, which raises Pillow's own errors.
"""
from __future__ import annotations

import threading
from typing import Tuple

import numpy as np
from PIL import Image

_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
_STANDALONE = frozenset((0x01, 0xD8, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7))
_MODES = {1: "L", 3: "RGB"}
_local = threading.local()


def frame_header(data: memoryview) -> Tuple[int, int, int, int]:
    """(height, width, components, precision) of a JPEG stream's frame header, or zeros."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return 0, 0, 0, 0
    i = 2
    while i + 3 < n:
        if data[i] != 0xFF:
            return 0, 0, 0, 0
        m = data[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m in _STANDALONE:
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if m in _SOF:
            if i + 9 >= n:
                return 0, 0, 0, 0
            return (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8], data[i + 9], data[i + 4]
        if m == 0xDA or length < 2:  # scan data before any frame header: not a stream we know
            return 0, 0, 0, 0
        i += 2 + length
    return 0, 0, 0, 0


def _core_image(mode: str, size: Tuple[int, int]):
    cache = getattr(_local, "images", None)
    if cache is None:
        cache = _local.images = {}
    im = cache.get((mode, size))
    if im is None:
        if len(cache) > 8:
            cache.clear()
        im = cache[(mode, size)] = Image.core.new(mode, size)
    return im


def decode_jpeg_into(data: memoryview, shape: Tuple[int, ...], out: np.ndarray) -> bool:
    """Decode a JPEG stored with sample shape `shape` ((H, W), (H, W, 1) or (H, W, 3)) into
    `out` (a writable uint8 buffer of exactly that many bytes). False when the stream is not
    one this fast path handles; `out` is then unspecified. The decode releases the GIL."""
    if len(shape) == 2:
        h, w, bands = shape[0], shape[1], 1
    elif len(shape) == 3 and shape[2] in (1, 3):
        h, w, bands = shape
    else:
        return False
    fh, fw, comps, precision = frame_header(data)
    if fh != h or fw != w or comps != bands or precision != 8 or not h or not w:
        return False
    mode = _MODES[bands]
    im = _core_image(mode, (w, h))
    dec = Image.core.jpeg_decoder(mode, mode, "")
    try:
        dec.setimage(im, (0, 0, w, h))
        consumed, err = dec.decode(data)
    finally:
        dec.cleanup()
    if consumed >= 0 or err < 0:  # wants more data (truncated) or failed
        return False
    enc = Image.core.raw_encoder(mode, mode, 0, 1)
    enc.setimage(im, (0, 0, w, h))
    nbytes = h * w * bands
    _, status, pixels = enc.encode(nbytes)
    if status == 0 or len(pixels) != nbytes:
        return False
    out.reshape(-1)[:] = np.frombuffer(pixels, np.uint8)
    return True
