"""The cached bench columns as Arrow tables, built from the NumPy buffers without a copy
per row (for the DuckDB and Lance peers): text as `string`, embeddings as
`fixed_size_list<float>[384]`, boxes as `list<fixed_size_list<float>[4]>`."""

from __future__ import annotations

from typing import Dict

import numpy as np
import pyarrow as pa


def text_array(fixed: np.ndarray) -> pa.Array:
    """S20 (fixed-width bytes) -> Arrow strings, sharing the bytes."""
    n, width = len(fixed), fixed.dtype.itemsize
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int64 if width * n >= 2**31 else np.int32)
    typ = pa.large_string() if offsets.dtype == np.int64 else pa.string()
    data = np.ascontiguousarray(fixed).view(np.uint8).reshape(-1)
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def tables(d: Dict[str, np.ndarray]) -> Dict[str, pa.Table]:
    emb = np.ascontiguousarray(d["emb"])
    flat, off = np.ascontiguousarray(d["box_flat"]), np.asarray(d["box_offsets"]).astype(np.int32)
    boxes = pa.ListArray.from_arrays(pa.array(off), pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), 4))
    return {
        "tab": pa.table({"id": pa.array(np.asarray(d["tab_id"])), "value": pa.array(np.asarray(d["tab_value"])),
                         "text": text_array(np.asarray(d["tab_text"])), "label": pa.array(np.asarray(d["tab_label"]))}),
        "emb": pa.table({"id": pa.array(np.arange(len(emb), dtype=np.int64)),
                         "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1])}),
        "box": pa.table({"id": pa.array(np.arange(len(off) - 1, dtype=np.int64)), "boxes": boxes}),
    }
