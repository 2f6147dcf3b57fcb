"""JPEG decoding through libjpeg-turbo's TurboJPEG API (the `simplejpeg` wheel), straight into
the caller's array.

`Image.open` + `np.asarray` spends about as long around the decode as in it: the plugin parses
the markers in Python and the pixels are copied out of Pillow's 4-byte-per-pixel image. Here
the header is read in C and the pixels land in the output buffer, with the GIL released.
Pillow bundles the same libjpeg-turbo and decodes with the same settings (accurate integer
IDCT, smooth upsampling), so the pixels are the same; the tests hold the two side by side.

Only the colour spaces whose Pillow result is plain gray or RGB take this path (gray, YCbCr,
RGB). CMYK/YCCK, 12-bit and broken streams return None / False, and the caller goes to Pillow,
which raises Pillow's own errors.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import simplejpeg

# colour space in the stream -> (TurboJPEG output colour space, channels), as Pillow decodes it
_OUTPUT = {"Gray": ("GRAY", 1), "YCbCr": ("RGB", 3), "RGB": ("RGB", 3)}


def _header(data) -> Optional[Tuple[int, int, str, int]]:
    """(height, width, output colour space, channels), or None for a stream not handled here."""
    try:
        h, w, space, _ = simplejpeg.decode_jpeg_header(data)
    except (ValueError, TypeError):
        return None
    out = _OUTPUT.get(space)
    if out is None or not h or not w:
        return None
    return h, w, out[0], out[1]


def decode_into(data, shape: Tuple[int, ...], out: np.ndarray) -> bool:
    """Decode `data` stored with sample shape `shape` ((H, W), (H, W, 1) or (H, W, 3)) into
    `out`, a writable uint8 buffer of exactly that many bytes. False when the stream's size
    or channels differ from `shape`, or it is not one this path decodes; `out` is then
    unspecified."""
    if len(shape) == 2:
        h, w, bands = shape[0], shape[1], 1
    elif len(shape) == 3 and shape[2] in (1, 3):
        h, w, bands = shape
    else:
        return False
    head = _header(data)
    if head is None or head[0] != h or head[1] != w or head[3] != bands:
        return False
    try:
        simplejpeg.decode_jpeg(data, head[2], buffer=out)
    except (ValueError, TypeError):
        return False
    return True


def decode(data) -> Optional[np.ndarray]:
    """The image as (H, W, 1) for gray or (H, W, 3), the pixels Pillow gives, or None for a
    stream not handled here."""
    head = _header(data)
    if head is None:
        return None
    h, w, space, bands = head
    try:
        arr = simplejpeg.decode_jpeg(data, space)
    except (ValueError, TypeError):
        return None
    return arr if arr.shape == (h, w, bands) else None
