"""Reading text and json tensors into TQL values.

The one place the executor's column reader turns a text, json, list or tag tensor into a
`Value`; the chunk-aware numeric reader (`reader.py`) hands these tensors here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lakeformat.errors import LakeFormatError
from lakeformat.tql.values import Value

TEXT_HTYPES = ("text",)
JSON_HTYPES = ("json", "list", "tag")


def object_array(values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _one(x: Any) -> Any:
    """A text or json sample as one Python value (None for an empty sample)."""
    if isinstance(x, np.ndarray):
        if x.size == 0:
            return None
        x = x.reshape(-1)[0] if x.size == 1 else x.tolist()
    return x.item() if isinstance(x, np.generic) else x


def _scalars(view: Any, n: int) -> np.ndarray:
    """Text and json tensors hold one value per sample, as an (n, 1) array; a column of
    them, with None for nulls, as an (n,) object array."""
    try:
        arr = np.asarray(view.numpy())
        if arr.shape == (n, 1):
            return object_array(arr[:, 0].tolist() if arr.dtype != object else list(arr[:, 0]))
    except LakeFormatError:  # empty samples make the shapes differ
        pass
    return object_array([_one(x) for x in view.numpy(aslist=True)])


def read_text_like(tensor: Any, view: Any, n: int) -> Value:
    """`view` (the selected rows of `tensor`, `n` of them) as a "text" or "json" value."""
    base = tensor.base_htype
    if base == "text":
        return Value("text", _scalars(view, n))
    if base in ("list", "tag"):  # numpy() gives each list's items as an array: take the lists themselves
        return Value("json", object_array(view.values()))
    return Value("json", _scalars(view, n))
