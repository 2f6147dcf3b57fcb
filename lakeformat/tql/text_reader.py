"""Reading text and json tensors into TQL values.

The one place the executor's column reader turns a text, json, list or tag tensor into a
`Value`; the chunk-aware numeric reader (`reader.py`) hands these tensors here. Text reads as
`TextBuffers` (offsets + UTF-8 bytes straight from the chunks, no str per row), which the
text kernels (`text_ops.py`) take as they are; json as parsed Python values, or, where the
column is only subscripted by constant keys, as `LazyJson`: the raw documents, each path
found by a native kernel (`json_path_values`) instead of parsing every document.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from lakeformat.core.json_values import json_path_values, read_json_raw, read_json_values, walk_json_path
from lakeformat.core.text_buffers import TextBuffers, read_text_buffers
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
    raw = read_json_raw(view)
    if raw is None:
        return Value("json", read_json_values(view))  # one json.loads for the whole column
    return LazyJson(view, raw, ())


class LazyJson(Value):
    """A json column (of a tensor view) kept as its raw documents with a key path still to
    follow: `step` extends the path without reading anything; `data`, asked for by any other
    consumer, is what `Value("json", ...)` of the parsed column subscripted by that path holds,
    found by the native kernel (only the documents it leaves to Python are parsed)."""

    _view: Any
    _raw: TextBuffers
    _path: Tuple[Any, ...]
    _parsed: Optional[np.ndarray]

    def __init__(self, view: Any, raw: TextBuffers, path: Tuple[Any, ...]) -> None:
        for name, val in (("kind", "json"), ("class_names", None), ("null", None), ("time", None)):
            object.__setattr__(self, name, val)
        object.__setattr__(self, "_view", view)
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_parsed", None)

    def __len__(self) -> int:
        return len(self._raw)

    def missing(self) -> np.ndarray:
        """Per row: whether the path's value is null or absent (None in `data`)."""
        out: np.ndarray = np.equal(self.data, np.full((), None, dtype=object))
        return out

    def step(self, key: Any) -> "LazyJson":
        """This column subscripted by one more key or index."""
        return LazyJson(self._view, self._raw, self._path + (key,))

    @property
    def data(self) -> np.ndarray:
        parsed: Optional[np.ndarray] = self._parsed
        if parsed is None:
            parsed = json_path_values(self._raw.offsets, self._raw.data, self._path) if self._path else None
            if parsed is None:  # the whole documents, or one of them does not parse: the parsed read
                parsed = walk_rows(read_json_values(self._view), self._path)
            object.__setattr__(self, "_parsed", parsed)
        return parsed


def walk_rows(docs: np.ndarray, path: Tuple[Any, ...]) -> np.ndarray:
    """Each row's `doc[k0][k1]...`, None where a step does not apply (TQL's json subscript)."""
    out = np.empty(len(docs), dtype=object)
    out[:] = [walk_json_path(x, path) for x in docs]
    return out
