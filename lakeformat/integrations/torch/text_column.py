"""Text samples of a task decoded together: their byte ranges gathered into text buffers
(offsets + bytes) by one native copy, then one C call makes the str values (None for a
null), instead of a slice, a copy and a decode per sample. No torch here."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from lakeformat import _native

__all__ = ["text_values"]


def text_values(src: Any, rows: np.ndarray, local: np.ndarray, chunks: Dict[str, Any]) -> Optional[List[Optional[str]]]:
    """The str values of plain text items (`rows`/`local`: chunk row and index in it), or
    None when a value is not UTF-8 (the per-sample path then reports that sample alone)."""
    from lakeformat.integrations.torch.reader import chunk_for_samples

    n = len(rows)
    src_id = np.empty(n, np.int64)
    starts = np.empty(n, np.int64)
    lengths = np.empty(n, np.int64)
    null = np.zeros(n, bool)
    sources: List[Any] = []
    for r in np.unique(rows).tolist():
        sel = np.flatnonzero(rows == r)
        c = chunk_for_samples(chunks[src.chunk_keys[r]], local[sel])
        s, e = c.byte_ranges(local[sel])
        data = c.data
        if len(e) and int(e.max()) > len(data):
            return None  # damaged: named per sample by the slow path
        empty = np.flatnonzero(e == s)
        if len(empty):  # an empty sample of shape (0,) is a null, of shape (1,) the text ""
            null[sel[empty]] = c.shapes(local[sel][empty])[:, 0] == 0
        src_id[sel] = len(sources)
        starts[sel] = s
        lengths[sel] = e - s
        sources.append(data)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.uint8)
    if n:
        _native.gather(sources, src_id.data, starts.data, lengths.data, out.data, offsets[:-1].data)
    vals = _native.text_str_list(offsets.data, out.data, null.data)
    return None if isinstance(vals, int) else vals
