"""Byte codecs for whole chunks and for single samples.

lz4 is lz4's block format with a 4-byte little-endian size prefix, as deeplake 3.x writes it.
zstd is a zstd frame carrying its content size: our extension of the layout.
"""
from __future__ import annotations

import threading
from typing import Any, List, Optional

import lz4.block
import lz4.frame
import numpy as np
import zstandard

from lakeformat import _native
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


# lz4 is tried on a few slices of a buffer at least this big before compressing it whole.
# Where they do not shrink, the buffer is stored as one literal run (a valid lz4 block that
# every decoder reads, deeplake 3.x's included) for the cost of a copy, or of none. Where
# they shrink a lot, the slices are also tried with our encoder's long-key match finders
# (native/lz4_encode.c), which code columns of small fixed-width values (labels,
# flags, codes) in far fewer matches; it is used for the whole buffer where it beats lz4's
# fast mode on the slices. All three write one block format: readers cannot tell them apart.
_LZ4_PROBE_MIN = 256 << 10
_LZ4_PROBE_SLICE = 16 << 10
_LZ4_PROBE_SLICES = 4
# compressed/raw ratio of the probe above which compressing does not pay: decoding an lz4
# block of literals is one memcpy, while matches cost a branch each
_LZ4_PAYS_BELOW = 0.9
# probe ratios between which the long-key finder is tried (a buffer lz4 shrinks this far has
# repeats for it to find; one it shrinks tenfold, such as sample ids or shapes, leaves too
# little to gain), and the share of lz4's size it must reach to be used
_LZ4_LONG_TRY_ABOVE = 0.1
_LZ4_LONG_TRY_BELOW = 0.75
_LZ4_LONG_WINS_BELOW = 0.9

LZ4_RAW, LZ4_FAST, LZ4_LONG = "raw", "fast", "long"


def _probe_slices(data: Any) -> List[memoryview]:
    mv = memoryview(data).cast("B")
    step = (len(mv) - _LZ4_PROBE_SLICE) // (_LZ4_PROBE_SLICES - 1)
    return [mv[k * step : k * step + _LZ4_PROBE_SLICE] for k in range(_LZ4_PROBE_SLICES)]


def lz4_plan(data: Any) -> str:
    """How an lz4 chunk of `data` is written, chosen per buffer by what a probe shows pays:
    `LZ4_RAW` (one literal run), `LZ4_FAST` (python-lz4's fast mode) or `LZ4_LONG` (our
    encoder with the long-key finder). Buffers under the probe's size are always `LZ4_FAST`."""
    if memoryview(data).nbytes < _LZ4_PROBE_MIN:
        return LZ4_FAST
    slices = _probe_slices(data)
    raw = sum(len(p) for p in slices)
    fast = sum(len(lz4.block.compress(p, store_size=False)) for p in slices)
    if fast >= _LZ4_PAYS_BELOW * raw:
        return LZ4_RAW
    if _LZ4_LONG_TRY_ABOVE * raw <= fast < _LZ4_LONG_TRY_BELOW * raw:
        packed = sum(_lz4_long_size(p) for p in slices)
        if packed < _LZ4_LONG_WINS_BELOW * fast:
            return LZ4_LONG
    return LZ4_FAST


def _lz4_long_block(data: Any) -> np.ndarray:
    """`data` as an lz4 block with deeplake's size prefix, by the long-key encoder."""
    src = memoryview(data).cast("B")
    out = np.empty(4 + len(src) + len(src) // 255 + 16, np.uint8)
    out[:4] = np.frombuffer(len(src).to_bytes(4, "little"), np.uint8)
    written = _native.lz4_encode(src, out[4:])
    return out[: 4 + written]


def _lz4_long_size(piece: memoryview) -> int:
    return len(_lz4_long_block(piece)) - 4


def lz4_literal_prefix(n: int) -> bytes:
    """The bytes that turn `n` raw bytes following them into an lz4 block with deeplake's
    4-byte size prefix: the size, then the token and length of one literal run."""
    head = n.to_bytes(4, "little")
    if n < 15:
        return head + bytes([n << 4])
    rest = n - 15
    return head + b"\xf0" + b"\xff" * (rest // 255) + bytes([rest % 255])


def compress_parts(data, compression: str, level: Optional[int] = None) -> List[Any]:
    """`compress_bytes` as a list of buffers to write back to back: a stored lz4 block is
    its prefix followed by `data` itself, so nothing is copied (the caller keeps `data`
    unchanged until the parts are written)."""
    if compression == "lz4" and len(data):
        plan = lz4_plan(data)
        if plan == LZ4_RAW:
            return [lz4_literal_prefix(memoryview(data).nbytes), data]
        if plan == LZ4_LONG:
            return [memoryview(_lz4_long_block(data))]
        return [lz4.block.compress(data, store_size=True)]
    return [compress_bytes(data, compression, level)]


def compress_bytes(data, compression: Optional[str], level: Optional[int] = None) -> bytes:
    """Compress a bytes-like object; empty input stays empty (as deeplake does)."""
    if compression is None:
        return bytes(data)
    if len(data) == 0:
        return b""
    if compression == "lz4":
        plan = lz4_plan(data)
        if plan == LZ4_RAW:
            return lz4_literal_prefix(memoryview(data).nbytes) + bytes(data)
        if plan == LZ4_LONG:
            return _lz4_long_block(data).tobytes()
        return lz4.block.compress(data, store_size=True)
    if compression == "zstd":
        return _zstd_c(DEFAULT_ZSTD_LEVEL if level is None else int(level)).compress(data)
    raise ValueError(f"Unknown byte compression {compression!r}")


_LZ4_FRAME_MAGIC = b'\x04"M\x18'


def decoded_size(data, compression: str) -> int:
    """The decompressed size recorded in a compressed buffer's header."""
    if compression == "lz4":
        if len(data) < 4 or bytes(data[:4]) == _LZ4_FRAME_MAGIC:
            raise CorruptDataError("not an lz4 block with a size prefix")
        size = int.from_bytes(bytes(data[:4]), "little", signed=True)
        if size < 0 or size > 255 * len(data) + 16:  # lz4 expands 255x at most
            raise CorruptDataError(f"lz4 block claims an impossible size {size}")
        return size
    if compression == "zstd":
        try:
            size = zstandard.frame_content_size(bytes(data[:18]))
        except zstandard.ZstdError as e:
            raise CorruptDataError(f"not a zstd frame: {e}") from None
        if size < 0:
            raise CorruptDataError("zstd frame without its content size")
        if size > _ZSTD_MAX_RATIO * len(data) + 4096:
            raise CorruptDataError(f"zstd frame of {len(data)} bytes claims an impossible size {size}")
        return size
    raise ValueError(f"Unknown byte compression {compression!r}")


# an RLE block (3 header bytes and 1 data byte) stands for at most 128 KiB
_ZSTD_MAX_RATIO = 1 << 16


def decompress_into(data, compression: Optional[str], out, partial: bool = False) -> None:
    """Decompress straight into the writable buffer `out` (len(out) bytes: the whole content,
    or with `partial` its first len(out) bytes). lz4 blocks decode natively without the GIL
    and with no intermediate copy; zstd decodes whole, then copies."""
    view = memoryview(out).cast("B")
    if compression == "lz4" and len(data) >= 4 and bytes(data[:4]) != _LZ4_FRAME_MAGIC:
        size = decoded_size(data, "lz4")
        if len(view) > size or (len(view) < size and not partial):
            raise CorruptDataError(f"lz4 block holds {size} bytes, not {len(view)}")
        try:
            _native.lz4_decode(memoryview(data)[4:], view, partial=len(view) < size)
        except ValueError as e:
            raise CorruptDataError(f"lz4 data does not decompress: {e}") from e
        return
    whole = decompress_bytes(data, compression)
    if len(whole) < len(view) or (len(whole) != len(view) and not partial):
        raise CorruptDataError(f"{compression} data holds {len(whole)} bytes, not {len(view)}")
    view[:] = memoryview(whole)[: len(view)]


def decompress_bytes(data, compression: Optional[str]) -> bytes:
    if compression is None:
        return bytes(data)
    if len(data) == 0:
        return b""
    try:
        if compression == "lz4":
            if bytes(data[:4]) == _LZ4_FRAME_MAGIC:  # an lz4 frame, which some old writers used
                return lz4.frame.decompress(data)
            out = np.empty(decoded_size(data, "lz4"), np.uint8)
            decompress_into(data, "lz4", out)
            return memoryview(out)
        if compression == "zstd":
            decoded_size(data, "zstd")  # refuses a frame that claims more than zstd can expand to
            return _zstd_d().decompress(data)
    except (lz4.block.LZ4BlockError, zstandard.ZstdError, RuntimeError, ValueError) as e:
        raise CorruptDataError(f"{compression} data does not decompress: {e}") from e
    raise ValueError(f"Unknown byte compression {compression!r}")
