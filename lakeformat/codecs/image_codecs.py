"""Image codecs (png, jpeg): our own png path and libjpeg-turbo for the common cases, Pillow for
the rest; all of them release the GIL while they code."""
from __future__ import annotations

import io
from typing import Optional, Tuple

import numpy as np
from PIL import Image

from lakeformat.codecs import jpeg_fast, png_fast

IMAGE_COMPRESSIONS = ("png", "jpeg")
_ALIASES = {"jpg": "jpeg"}
_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG"}
JPEG_QUALITY = 90


def normalize_image_compression(name: Optional[str]) -> Optional[str]:
    if name is None:
        return None
    name = name.lower()
    return _ALIASES.get(name, name)


def sniff_image_format(data: bytes) -> Optional[str]:
    head = bytes(data[:8])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    return None


def compress_image(array: np.ndarray, compression: str) -> bytes:
    """Encode an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array (png also takes bool
    and uint16 gray)."""
    compression = normalize_image_compression(compression)
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255 if compression == "jpeg" else a
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"an image must be (H, W) or (H, W, 1|3|4), got shape {array.shape}")
    if compression == "jpeg" and a.dtype != np.uint8:
        raise ValueError(f"jpeg takes uint8 images, got {a.dtype}")
    if compression == "png" and a.dtype in (np.uint8, np.bool_):
        return png_fast.encode(a)
    img = Image.fromarray(np.ascontiguousarray(a))
    buf = io.BytesIO()
    if compression == "jpeg":
        img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    else:
        img.save(buf, format=_PIL_FORMAT[compression], compress_level=1)
    return buf.getvalue()


def decompress_image(data, shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
    """Decode image bytes into an array; `shape`, when given, is the stored sample shape (a
    gray image stored as (H, W, 1) comes back with its channel axis)."""
    head = bytes(data[:8])
    arr = png_fast.decode(data) if head == png_fast.SIGNATURE else jpeg_fast.decode(data) if head[:2] == b"\xff\xd8" else None
    if arr is not None:
        if arr.shape[-1] == 1 and (shape is None or len(shape) == 2):
            arr = arr[..., 0]
    else:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.draft(None, None)
            arr = np.asarray(img)
    if shape is not None and tuple(shape) != arr.shape and arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    return arr


def image_shape(data) -> Tuple[int, ...]:
    """(H, W) or (H, W, C) from the header, without decoding the pixels."""
    with Image.open(io.BytesIO(bytes(data))) as img:
        w, h = img.size
        bands = len(img.getbands())
        if img.mode == "P":
            bands = 3
        if bands == 1:
            return (h, w)
        return (h, w, bands)
