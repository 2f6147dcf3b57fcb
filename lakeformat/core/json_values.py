"""A json tensor's values in one parse: the stored documents gathered natively into one JSON
array (`[doc0,doc1,...]`, `null` for an empty sample) and decoded by one `json.loads` call,
instead of a decode call, a bytes copy and a parser call per row.

Each document is first checked to be one balanced value on its own (`_native.json_balanced`:
no top-level comma, brackets and strings closed), so the array has exactly one element per
document; anything unusual (a document that does not parse) falls back to `values()`, which
names the damaged sample.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

import numpy as np

from lakeformat import _native
from lakeformat.core.text_buffers import TextBuffers, gather_sample_bytes
from lakeformat.core.text_codec import TYPE_TAG, json_object_hook
from lakeformat.errors import LakeFormatError

if TYPE_CHECKING:
    from lakeformat.core.tensor import Tensor

__all__ = ["read_json_values", "json_item_values", "read_json_raw", "json_path_values", "walk_json_path"]
_NULL = b"null"


def _objects(values: Any, n: int) -> np.ndarray:
    """An (n,) object array of the values as they are (lists stay lists: no broadcasting)."""
    return np.fromiter(values, dtype=object, count=n)


def read_json_values(tensor: "Tensor") -> np.ndarray:
    """The values of a json tensor (or an indexed view of one) as an (n,) object array of
    parsed documents, None for an empty sample: what `values()` gives, decoded in one call.

    >>> read_json_values(ds.props)  # doctest: +SKIP
    """
    if tensor.base_htype != "json":
        raise LakeFormatError(f"tensor {tensor.name!r} is {tensor.htype}, not json")
    fmt, eng, idx = tensor.sample_format, tensor.engine, tensor.index
    if tensor.is_sequence or fmt.is_link or fmt.sample_compression is not None or idx.ops or eng.tiles.entries:
        vals = tensor.values()
        return _objects(vals, len(vals))
    items = np.ascontiguousarray(idx.resolve(tensor.num_samples), dtype=np.int64).reshape(-1)
    eng.check_items(items)
    n = len(items)
    if n == 0:
        return np.empty(0, dtype=object)
    parsed = json_item_values(eng, items)
    if parsed is None:
        parsed = tensor.values()  # a damaged document: the per-sample read reports it
    return _objects(parsed, n)


def json_item_values(eng: Any, items: np.ndarray) -> Optional[List[Any]]:
    """The parsed documents of json `items` (untiled, unlinked, no sample compression; at
    least one) of a chunk engine, by one parse; None when one is damaged or does not parse
    (the caller then reads per sample, which names it)."""
    n = len(items)
    tb = gather_sample_bytes(eng, items)
    if int(_native.json_balanced(tb.offsets.data, tb.data.data)) >= 0 or int(_native.text_utf8_check(tb.offsets.data, tb.data.data)) >= 0:
        return None
    lengths = np.diff(tb.offsets)
    empty = lengths == 0
    pieces = np.where(empty, len(_NULL), lengths)
    dest = np.empty(n, np.int64)  # where each document goes: after "[" and one comma per document before it
    dest[0] = 1
    np.cumsum(pieces[:-1] + 1, out=dest[1:])
    dest[1:] += 1
    out = np.empty(int(dest[-1] + pieces[-1] + 1), np.uint8)
    _native.gather([tb.data.data, _NULL], empty.astype(np.int64).data, np.where(empty, 0, tb.offsets[:-1]).data,
                   pieces.data, out.data, dest.data)
    out[0] = ord("[")
    out[dest[:-1] + pieces[:-1]] = ord(",")
    out[-1] = ord("]")
    text = out.tobytes().decode("utf-8")
    try:
        parsed = json.loads(text, object_hook=json_object_hook) if TYPE_TAG in text else json.loads(text)
    except ValueError:
        return None  # a document that does not parse
    if not isinstance(parsed, list) or len(parsed) != n:
        return None
    return parsed


# json_path's result kinds (native/json_path.c)
_MISSING, _FALSE, _TRUE, _INT, _FLOAT, _STR, _FALLBACK = range(7)
_MAX_STEPS = 64  # the kernel's bound on a path (and on nesting)


def read_json_raw(tensor: "Tensor") -> Optional[TextBuffers]:
    """The stored documents of a json tensor view as text buffers (offsets + UTF-8 bytes), for
    `json_path_values`; None where `read_json_values` would not parse them as one array
    (sequences, links, compressed or tiled samples, indexed views, typed values, a damaged
    document) or there are no rows: the caller then reads them parsed."""
    if tensor.base_htype != "json":
        return None
    fmt, eng, idx = tensor.sample_format, tensor.engine, tensor.index
    if tensor.is_sequence or fmt.is_link or fmt.sample_compression is not None or idx.ops or eng.tiles.entries:
        return None
    items = np.ascontiguousarray(idx.resolve(tensor.num_samples), dtype=np.int64).reshape(-1)
    eng.check_items(items)
    if len(items) == 0:
        return None
    tb = gather_sample_bytes(eng, items)
    if int(_native.json_balanced(tb.offsets.data, tb.data.data)) >= 0 or int(_native.text_utf8_check(tb.offsets.data, tb.data.data)) >= 0:
        return None
    if TYPE_TAG.encode() in tb.data.tobytes():
        return None  # typed values go through json_object_hook: parsed whole
    return tb


def walk_json_path(doc: Any, path: Tuple[Any, ...]) -> Any:
    """`doc[k0][k1]...` as TQL's json subscript takes it: None where a step does not apply."""
    for key in path:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def json_path_values(offsets: np.ndarray, data: np.ndarray, path: Tuple[Any, ...]) -> Optional[np.ndarray]:
    """The value at `path` (str keys, int indices) in each document (data[offsets[i]:offsets[i+1]],
    an empty one is null) as an object array, what `json.loads` + a walk gives, found by the
    native kernel; only the documents it leaves to Python are parsed here. None when one of
    those does not parse (the caller reads the column parsed, which reports it) or a key is
    not encodable, or the path longer than the kernel takes."""
    if len(path) > _MAX_STEPS:
        return None
    try:
        for key in path:
            if isinstance(key, str):
                key.encode("utf-8")
    except UnicodeEncodeError:
        return None
    n = len(offsets) - 1
    kind = np.empty(n, np.int64)
    num = np.empty(n, np.int64)
    length = np.empty(n, np.int64)
    _native.json_path(offsets.data, data.data, tuple(path), kind.data, num.data, length.data)
    out = np.empty(n, dtype=object)  # None: missing or null
    for code, value in ((_FALSE, False), (_TRUE, True)):
        out[kind == code] = value
    ints = np.flatnonzero(kind == _INT)
    out[ints] = num[ints].tolist()
    floats = np.flatnonzero(kind == _FLOAT)
    out[floats] = num[floats].view(np.float64).tolist()
    raw = data.tobytes() if (kind == _STR).any() or (kind == _FALLBACK).any() else b""
    strs = np.flatnonzero(kind == _STR)
    if len(strs):
        st, ln = num[strs].tolist(), length[strs].tolist()
        out[strs] = [raw[s:s + k].decode("utf-8") for s, k in zip(st, ln)]
    for i in np.flatnonzero(kind == _FALLBACK).tolist():
        try:
            doc = json.loads(raw[int(offsets[i]):int(offsets[i + 1])].decode("utf-8"))
        except (ValueError, RecursionError):
            return None
        out[i] = walk_json_path(doc, path)
    return out
