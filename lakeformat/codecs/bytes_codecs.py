"""Byte codecs for whole chunks and for single samples.

lz4 is lz4's block format with a 4-byte little-endian size prefix, as deeplake 3.x writes it.
zstd is a zstd frame carrying its content size: our extension of the layout.
"""
from __future__ import annotations

import threading
from typing import Optional

import lz4.block
import lz4.frame
import zstandard

from lakeformat.errors import CorruptDataError

BYTE_COMPRESSIONS = ("lz4", "zstd")
DEFAULT_ZSTD_LEVEL = 3

_local = threading.local()


def _zstd_c(level: int) -> "zstandard.ZstdCompressor":
    cache = getattr(_local, "zc", None)
    if cache is None:
        cache = _local.zc = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return c


def _zstd_d() -> "zstandard.ZstdDecompressor":
    d = getattr(_local, "zd", None)
    if d is None:
        d = _local.zd = zstandard.ZstdDecompressor()
    return d


def compress_bytes(data, compression: Optional[str], level: Optional[int] = None) -> bytes:
    """Compress a bytes-like object; empty input stays empty (as deeplake does)."""
    if compression is None:
        return bytes(data)
    if len(data) == 0:
        return b""
    if compression == "lz4":
        return lz4.block.compress(data, store_size=True)
    if compression == "zstd":
        return _zstd_c(DEFAULT_ZSTD_LEVEL if level is None else int(level)).compress(data)
    raise ValueError(f"Unknown byte compression {compression!r}")


def decompress_bytes(data, compression: Optional[str]) -> bytes:
    if compression is None:
        return bytes(data)
    if len(data) == 0:
        return b""
    try:
        if compression == "lz4":
            if bytes(data[:4]) == b'\x04"M\x18':  # an lz4 frame, which some old writers used
                return lz4.frame.decompress(data)
            return lz4.block.decompress(data)
        if compression == "zstd":
            return _zstd_d().decompress(data)
    except (lz4.block.LZ4BlockError, zstandard.ZstdError, RuntimeError, ValueError) as e:
        raise CorruptDataError(f"{compression} data does not decompress: {e}") from e
    raise ValueError(f"Unknown byte compression {compression!r}")
