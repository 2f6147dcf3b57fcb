"""Stored sample bytes + a tensor's `SampleFormat` (a `TensorLayout` is one) -> sample values: the one decode module.

`Tensor`'s reads, the torch loader's workers and (next) TQL and the visualizer turn chunk
bytes into values here: raw numeric samples, text / json / list, images through the codecs
(straight into a caller's array when they share one shape), tiles reassembled, sequences
and links (through the resolver the caller passes in). Fetching bytes is not done here: the
engine (`chunk_reads`) or the loader's chunk cache hands them over.

>>> from lakeformat.core.decode import decode_sample
>>> decode_sample(ds.images.sample_format, data, shape)   # doctest: +SKIP
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.codecs import BYTE_COMPRESSIONS, IMAGE_COMPRESSIONS, decompress_bytes, decompress_image, jpeg_fast, png_fast
from lakeformat.core.layout import TEXT_HTYPES, SampleFormat
from lakeformat.core.text_codec import json_loads
from lakeformat.core.tiling import assemble_tiles
from lakeformat.errors import CorruptDataError, DynamicShapeError, SampleDecodeError
from lakeformat.htypes import htype_of

DECODE_THREADS = max(2, min(8, os.cpu_count() or 2))  # the size of the codec pool
LinkResolver = Callable[[List[Any], np.ndarray], List[Any]]  # (stored paths, items) -> values

__all__ = [
    "DECODE_THREADS", "TEXT_HTYPES", "decode_text", "text_like_array", "text_like_arrays", "stack_text", "convert_to_text", "image_error",
    "decode_image", "decode_image_into", "decode_sample", "decode_samples", "decode_tile", "assemble_tiled", "group_sequences",
]


# -- text, json, list ---------------------------------------------------------------------------------
def decode_text(d: Any, base: str, shape: Any = (1,)) -> Any:
    """One text (str; None for a null, an empty sample of shape (0,)), json (object; None when
    empty) or list (list; [] when empty) sample from its stored bytes."""
    if base == "text":
        if len(d) == 0 and len(shape) and shape[0] == 0:
            return None  # a null, stored as an empty sample: distinct from ""
        return bytes(d).decode("utf-8")
    if len(d) == 0:
        return None if base == "json" else []
    return json_loads(d)


def text_like_array(v: Any, base: str) -> np.ndarray:
    """One text, json or list sample as deeplake 3.x's numpy() returns it: a (1,) str array,
    a (1,) object array holding the object, an object array of the list's items."""
    if base == "text":
        return np.array(v).reshape(1) if v is not None else np.array([None], dtype=object)
    if base == "json":
        out = np.empty(1, dtype=object)
        out[0] = v
        return out
    items = [] if v is None else v
    out = np.empty(len(items), dtype=object)
    for k, x in enumerate(items):
        out[k] = x
    return out


def text_like_arrays(name: str, values: List[Any], base: str, aslist: bool) -> Any:
    """Text-like samples as deeplake 3.x's arrays (`text_like_array`): a list of them, or
    stacked into one array (lists of one length)."""
    vals = [text_like_array(v, base) for v in values]
    if aslist:
        return vals
    if len({v.shape for v in vals}) > 1:
        raise DynamicShapeError(f"tensor {name!r}: lists of different lengths; use .numpy(aslist=True)")
    return np.stack(vals) if vals else np.zeros((0, 0), dtype=object)


def stack_text(values: List[Any], base: str) -> np.ndarray:
    """Text-like samples as one (n, 1) array: str for text without nulls, else object."""
    if base == "text":
        if None in values:  # C-level scan; nulls need an object array
            out = np.empty((len(values), 1), dtype=object)
            out[:, 0] = values
            return out
        return np.asarray(values, dtype=str).reshape(len(values), 1) if values else np.zeros((0, 1), str)
    out = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        out[i, 0] = v
    return out


def convert_to_text(v: Any, names: Sequence[str]) -> Any:
    """Class indices -> names, nested like the indices (an index past the names: None)."""
    if isinstance(v, (np.integer, int)):
        return names[int(v)] if int(v) < len(names) else None
    return [convert_to_text(x, names) for x in v]


# -- images -------------------------------------------------------------------------------------------
def image_error(sc: Optional[str], e: BaseException) -> str:
    """The reason given for stored image bytes that do not decode."""
    return f"stored {sc} bytes do not decode: {e}"


def text_error(base: str, e: BaseException) -> str:
    """The reason given for stored text, json or list bytes that do not decode."""
    return f"stored {base} bytes do not decode: {type(e).__name__}: {e}"


def decode_image(d: Any, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """One compressed image in its stored shape (zeros for an empty sample); the codecs'
    exceptions propagate (callers name the sample)."""
    if len(d) == 0:
        return np.zeros(shape, dtype)
    return decompress_image(d, shape).astype(dtype, copy=False)


def decode_image_into(d: Any, sc: Optional[str], shape: Tuple[int, ...], dtype: np.dtype, out: np.ndarray) -> Optional[np.ndarray]:
    """Decode one image into `out` (a C-contiguous array of `shape`, or of its size): None
    when written there, else the decoded image, which does not fit `out`. An empty sample
    writes zeros. The codecs' exceptions propagate."""
    if not len(d):
        out[...] = 0
        return None
    if dtype == np.uint8:
        if sc == "png" and png_fast.decode(d, out) is not None:
            return None
        if sc == "jpeg" and jpeg_fast.decode_into(d, shape, out.reshape(-1)):
            return None
    v = decompress_image(d, shape)
    if v.size != out.size:
        return v
    out[...] = v.astype(dtype, copy=False).reshape(out.shape)
    return None


# -- one sample, many samples ---------------------------------------------------------------------------
def decode_sample(fmt: SampleFormat, d: Any, shape: Any) -> Any:
    """One stored (untiled, unlinked) sample: text-like values, images through their codec,
    raw or byte-compressed numbers. A damaged image raises `SampleDecodeError`, numbers that
    do not fit their shape `CorruptDataError`."""
    base = fmt.htype
    if htype_of(base).text_like:
        try:
            return decode_text(d, base, shape)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError: bytes damaged at rest
            raise SampleDecodeError(text_error(base, e), tensor=fmt.name) from e
    shp = tuple(int(x) for x in shape)
    sc = fmt.sample_compression
    dtype = fmt.np_dtype
    if sc in IMAGE_COMPRESSIONS:
        try:
            return decode_image(d, shp, dtype)
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
            raise SampleDecodeError(image_error(sc, e), tensor=fmt.name) from e
    if sc in BYTE_COMPRESSIONS and len(d):
        d = decompress_bytes(d, sc)
    if len(d) == 0:
        return np.zeros(shp, dtype)
    arr = np.frombuffer(d, dtype=dtype)
    if arr.size != int(np.prod(shp)):
        raise CorruptDataError(f"sample of {arr.size} values does not fit its shape {shp} in tensor {fmt.name!r}")
    return arr.reshape(shp)


def decode_samples(
    fmt: SampleFormat,
    datas: Sequence[Any],
    shapes: Any,
    items: np.ndarray,
    links: Optional[LinkResolver] = None,
    fail: Optional[Callable[[int, str], BaseException]] = None,
) -> List[Any]:
    """Stored samples (bytes and chunk-level shapes) -> values; links through `links`;
    images side by side on the codec threads. `fail(k, reason)` gives the error raised for
    image k that does not decode (default: the `SampleDecodeError` itself)."""
    if fmt.is_link:
        if links is None:
            raise CorruptDataError(f"tensor {fmt.name!r} holds links and no link resolver was given")
        return links(list(datas), items)

    def one(k: int) -> Any:
        try:
            return decode_sample(fmt, datas[k], shapes[k])
        except SampleDecodeError as e:
            if fail is None or e.__cause__ is None:
                raise
            cause = e.__cause__
            reason = text_error(fmt.htype, cause) if fmt.is_text_like else image_error(fmt.sample_compression, cause)
            raise fail(k, reason) from cause

    if fmt.is_image and len(datas) > 4:
        with ThreadPoolExecutor(DECODE_THREADS) as pool:
            return list(pool.map(one, range(len(datas))))
    return [one(k) for k in range(len(datas))]


# -- tiles ----------------------------------------------------------------------------------------------
def decode_tile(fmt: SampleFormat, d: Any, tile_shape: Tuple[int, ...]) -> np.ndarray:
    """One tile chunk's data (its one sample) as an array of `tile_shape`."""
    sc = fmt.sample_compression
    if sc in IMAGE_COMPRESSIONS:
        return decompress_image(d, tile_shape)
    if sc in BYTE_COMPRESSIONS:
        return np.frombuffer(decompress_bytes(d, sc), dtype=fmt.np_dtype).reshape(tile_shape)
    return np.frombuffer(d, dtype=fmt.np_dtype)[: int(np.prod(tile_shape))].reshape(tile_shape)


def assemble_tiled(fmt: SampleFormat, sample_shape: Sequence[int], tile_shape: Sequence[int], tile_chunks: Sequence[Any]) -> np.ndarray:
    """A tiled sample from its tile chunks (in tile order; each with `data` and `shape_rows`)."""
    tiles = [decode_tile(fmt, c.data, tuple(int(x) for x in c.shape_rows[0, :-1])) for c in tile_chunks]
    return assemble_tiles(tiles, sample_shape, tile_shape, fmt.np_dtype)


# -- sequences ------------------------------------------------------------------------------------------
def group_sequences(name: str, vals: List[Any], starts: np.ndarray, ends: np.ndarray, aslist: bool, empty_dtype: Any) -> Any:
    """Item values, flat, grouped into sequences [starts[i], ends[i]): a list of lists
    (`aslist`) or, as deeplake 3.x, one array of (items, *item shape) per sequence, stacked
    when every sequence has the same length and shape (an empty one: `empty_dtype`)."""
    out: List[Any] = []
    pos = 0
    for s, e in zip(starts, ends):
        part = vals[pos : pos + (e - s)]
        pos += e - s
        if aslist:
            out.append(part)
        elif not part:
            out.append(np.zeros((0,), empty_dtype))
        elif isinstance(part[0], (str, dict, list)) or part[0] is None:
            out.append(np.asarray(part, dtype=object))
        elif len({np.shape(p) for p in part}) == 1:
            out.append(np.stack(part))
        else:
            raise DynamicShapeError(f"tensor {name!r}: items of different shapes in one sequence; use aslist=True")
    if aslist:
        return out
    if len({o.shape for o in out}) > 1:
        raise DynamicShapeError(f"tensor {name!r}: sequences of different lengths or shapes; use aslist=True")
    return np.stack(out) if out else np.zeros((0,))
