"""Text items of a chunk engine read as `TextBuffers` and turned into what `numpy()` and
`values()` return, by native kernels: a NumPy `U` array decoded from the UTF-8 bytes
without the GIL (`text_to_ucs4`), or a list of str made in C (`text_str_list`). Object
arrays appear only where nulls need them, as before.

The values are exactly what decoding each sample with Python gave: a `U` array as wide as
the longest value in code points (at least 1), NumPy's usual dropping of trailing NULs.
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from lakeformat import _native
from lakeformat.core.chunk_reads import names_corruption
from lakeformat.core.codec_pool import codec_pool
from lakeformat.core.text_buffers import TextBuffers, gather_sample_bytes
from lakeformat.errors import CorruptDataError

__all__ = ["read_item_buffers", "ucs4_array", "str_list", "text_column"]

# above this many bytes of output, two threads decode one half each (page faults dominate)
_SPLIT_BYTES = 4 << 20


@names_corruption
def read_item_buffers(eng: Any, items: np.ndarray) -> TextBuffers:
    """The stored bytes of text `items` (untiled, no sample compression) as buffers. A few
    items of big uncompressed chunks (random reads) fetch their byte ranges, not whole chunks."""
    n = len(items)
    if n and eng.chunk_compression is None and n * 16 < eng.num_items:  # else touched >= n * 16 anyway
        rows = np.unique(eng.chunk_ids.row_of(items))
        first, last = eng.chunk_ids.first_indices(), eng.chunk_ids.rows[:, 1].astype(np.int64)
        touched = int((last[rows] - first[rows] + 1).sum())
        if n * 16 < touched:
            datas, shapes = eng.read_items_bytes(items)
            lengths = np.fromiter(map(len, datas), np.int64, n)
            offsets = np.zeros(n + 1, np.int64)
            np.cumsum(lengths, out=offsets[1:])
            data = np.empty(int(offsets[-1]), np.uint8)
            _native.gather(list(datas), np.arange(n, dtype=np.int64).data, np.zeros(n, np.int64).data, lengths.data, data.data, offsets[:-1].data)
            null = (lengths == 0) & (np.asarray(shapes)[:, 0] == 0) if n else np.zeros(0, bool)
            return TextBuffers(offsets, data, null if null.any() else None)
    return gather_sample_bytes(eng, items)


def _not_utf8(eng: Any, items: np.ndarray, bad: int) -> CorruptDataError:
    err: CorruptDataError = eng.corruption_at(items[bad : bad + 1], "stored text is not UTF-8", None)
    return err


def ucs4_array(tb: TextBuffers, eng: Any, items: np.ndarray) -> np.ndarray:
    """The values (no nulls) as a (n,) `U<width>` array; `CorruptDataError` naming the sample
    (of `eng`, `items`) whose bytes are not UTF-8."""
    n = len(tb)
    width, bad, _ = _native.text_ucs4_width(tb.offsets.data, tb.data.data)
    if bad >= 0:
        raise _not_utf8(eng, items, bad)
    width = max(width, 1)
    out = np.empty(n, dtype=f"U{width}")
    dst = out.view(np.uint32)

    def run(a: int, b: int) -> int:
        k = int(_native.text_to_ucs4(tb.offsets[a : b + 1].data, tb.data.data, width, dst[a * width : b * width].data))
        return a + k if k >= 0 else -1

    if n >= 2 and 4 * n * width >= _SPLIT_BYTES:
        half = n // 2
        bads = [k for k in codec_pool().map(lambda ab: run(*ab), [(0, half), (half, n)]) if k >= 0]
    else:
        bads = [k for k in [run(0, n)] if k >= 0]
    if bads:
        raise _not_utf8(eng, items, min(bads))
    return out


def str_list(tb: TextBuffers, eng: Any, items: np.ndarray) -> List[Optional[str]]:
    """The values as str, None for a null."""
    r = _native.text_str_list(tb.offsets.data, tb.data.data, tb.null.data if tb.null is not None else None)
    if isinstance(r, int):
        raise _not_utf8(eng, items, r)
    return r


def text_column(tb: TextBuffers, eng: Any, items: np.ndarray) -> np.ndarray:
    """The (n, 1) array `numpy()` gives: `U` without nulls, else object with None."""
    n = len(tb)
    if tb.null is not None:
        out = np.empty((n, 1), dtype=object)
        out[:, 0] = str_list(tb, eng, items)
        return out
    return ucs4_array(tb, eng, items).reshape(n, 1)


def sample_arrays(vals: List[Optional[str]]) -> List[np.ndarray]:
    """Each value as deeplake 3.x's `numpy(aslist=True)` gives a text sample: a (1,)
    `U<len>` array (`np.array(v).reshape(1)`), a (1,) object array holding None for a null.
    Values of one length are converted together: one array per length, one view per value."""
    n = len(vals)
    out: List[Any] = [None] * n
    lengths = np.fromiter((-1 if v is None else len(v) for v in vals), np.int64, n)
    order = np.argsort(lengths, kind="stable")
    ordered = lengths[order]
    cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), n]):
        if a == b:
            continue
        length, where = int(ordered[a]), order[a:b].tolist()
        if length < 0:  # nulls
            for i in where:
                out[i] = np.array([None], dtype=object)
            continue
        group = np.array([vals[i] for i in where], dtype=f"U{max(length, 1)}").reshape(-1, 1)
        for i, row in zip(where, group):
            out[i] = row
    return out


@names_corruption
def json_items(eng: Any, items: np.ndarray) -> Optional[List[Any]]:
    """`json_values.json_item_values` (one parse for all documents; None: read per sample),
    with a missing or damaged chunk named as any read names it."""
    from lakeformat.core.json_values import json_item_values

    return json_item_values(eng, items)
