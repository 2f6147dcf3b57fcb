"""Reading text and json tensors into TQL values.

The one place the executor's column reader turns a text, json, list or tag tensor into a
`Value`; the chunk-aware numeric reader (`reader.py`) hands these tensors here. Text reads as
`TextBuffers` (offsets + UTF-8 bytes straight from the chunks, no str per row), which the
text kernels (`text_ops.py`) take as they are; json as parsed Python values.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lakeformat.core.json_values import read_json_values
from lakeformat.core.text_buffers import read_text_buffers
from lakeformat.tql.values import Value

TEXT_HTYPES = ("text",)
JSON_HTYPES = ("json", "list", "tag")


def object_array(values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def read_text_like(tensor: Any, view: Any, n: int) -> Value:
    """`view` (the selected rows of `tensor`, `n` of them) as a "text" or "json" value."""
    base = tensor.base_htype
    if base == "text":
        return Value("text", read_text_buffers(view))
    if base in ("list", "tag"):  # numpy() gives each list's items as an array: take the lists themselves
        return Value("json", object_array(view.values()))
    return Value("json", read_json_values(view))  # one json.loads for the whole column
