"""`Value`: what an expression evaluates to, over every row of a frame at once.

Kinds:
- "array":  `data` is an ndarray of shape (rows, *sample shape): every row has the same shape,
            so operators run as one NumPy call over the whole column.
- "ragged": `data` is a `Ragged` (lakeformat.tql.ragged): rows of different shapes
            (dynamic-shape tensors, empty samples) in one flat buffer with offsets and
            per-row shapes. Operators run on the flat buffer and C kernels
            (native/tql_ragged.c); `ragged_list(v)` gives the rows as ndarrays.
- "text":   `data` is a `TextBuffers` (lakeformat.core.text_buffers: offsets + UTF-8 bytes +
            null mask, as text tensors are read) or an object ndarray (rows,) of str, None
            for a null (constants, user functions). Operators take both (C kernels in
            native/tql_text.c); `text_objects(v)` gives the str objects.
- "json":   `data` is an object ndarray (rows,) of parsed JSON values, None for a null.
- "const":  `data` is one value for every row: a NumPy scalar or array (a number or
            ARRAY[...] literal), a str, None (NULL), or a tuple (an IN list).

A sample with no elements is NULL: operators and functions over it give an empty result,
and an empty result never satisfies WHERE.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.core.text_buffers import TextBuffers
from lakeformat.tql.ragged import Ragged


@dataclass(frozen=True)
class Value:
    kind: str
    data: Any
    # class names of a class_label tensor, so that its ids compare with names
    class_names: Optional[Tuple[str, ...]] = None
    # "array" only: rows whose value is NULL (a comparison with a null text or json value);
    # None when no row is
    null: Optional[np.ndarray] = None
    # "array" of a time column (lakeformat.temporal): (kind, timezone), so that an ISO string
    # literal compares with it as a time
    time: Optional[Tuple[str, Optional[str]]] = None

    def __len__(self) -> int:
        return len(self.data)

    @property
    def is_numeric(self) -> bool:
        if self.kind in ("array", "ragged"):
            return True
        return self.kind == "const" and isinstance(self.data, (np.ndarray, np.generic, int, float, bool))

    def take(self, positions: np.ndarray) -> "Value":
        """The rows at `positions` (a view of the frame's rows after a filter or a sort)."""
        if self.kind == "const":
            return self
        if self.kind == "ragged":
            return Value("ragged", self.data.take(np.asarray(positions, np.int64)), self.class_names)
        if isinstance(self.data, TextBuffers):
            return Value(self.kind, self.data.take(np.asarray(positions, np.int64)), self.class_names)
        return Value(self.kind, self.data[positions], self.class_names, None if self.null is None else self.null[positions], self.time)

    def row(self, i: int) -> Any:
        if self.kind == "const":
            return self.data
        if self.kind == "ragged":
            return self.data.row(i)
        if isinstance(self.data, TextBuffers):
            return self.data.take(np.array([i], np.int64)).objects()[0]
        return self.data[i]

    def to_python(self) -> Any:
        """The column as the user gets it: an ndarray for an "array" value, a list otherwise."""
        if self.kind == "array":
            if self.null is not None and self.null.any():
                out = list(self.data)
                for k in np.flatnonzero(self.null):
                    out[k] = None
                return out
            return self.data
        if self.kind == "text":
            return text_objects(self).tolist()
        if self.kind == "json":
            return list(self.data)
        if self.kind == "ragged":
            return ragged_list(self)
        return self.data


def const(x: Any) -> Value:
    if isinstance(x, (bool, int, float)) and not isinstance(x, str):
        return Value("const", np.asarray(x)[()])
    if isinstance(x, (list, tuple)) and not all(isinstance(v, str) for v in x):
        return Value("const", np.asarray(x))
    if isinstance(x, list):
        return Value("const", tuple(x))
    return Value("const", x)


def pack(rows: Sequence[np.ndarray], class_names: Optional[Tuple[str, ...]] = None) -> Value:
    """Per-row results -> an "array" value when every row has the same shape, else "ragged"."""
    if not rows:
        return Value("array", np.zeros((0,)), class_names)
    arrs = [np.asarray(r) for r in rows]
    first = arrs[0].shape
    if all(a.shape == first for a in arrs) and all(a.dtype != object for a in arrs):
        return Value("array", np.stack(arrs), class_names)
    return Value("ragged", Ragged.from_rows(arrs), class_names)


def text_objects(v: Value) -> np.ndarray:
    """A "text" value's rows as an object ndarray of str (None for a null): one Python str
    per row, for callers that need them (user functions, row-wise fallbacks)."""
    if v.kind != "text":
        raise TypeError(f"text_objects takes a text value, not {v.kind!r}")
    if isinstance(v.data, TextBuffers):
        return v.data.objects()
    data: np.ndarray = v.data
    return data


def text_buffers(v: Value) -> TextBuffers:
    """A "text" value's rows as `TextBuffers` (object arrays are encoded once)."""
    if v.kind != "text":
        raise TypeError(f"text_buffers takes a text value, not {v.kind!r}")
    if isinstance(v.data, TextBuffers):
        return v.data
    return TextBuffers.from_objects(v.data)


def ragged_value(r: Ragged, class_names: Optional[Tuple[str, ...]] = None) -> Value:
    """A flat result as a Value: an "array" when every row has one shape (as `pack`)."""
    if len(r) == 0:
        return Value("array", np.zeros((0,), r.dtype), class_names)
    uniform = r.to_uniform()
    if uniform is not None:
        return Value("array", uniform, class_names)
    return Value("ragged", r, class_names)


def ragged_list(v: Value) -> List[np.ndarray]:
    """The rows of a "ragged" value as ndarrays (one Python object per row: for callers
    that need them, such as user functions; operators work on `v.data` directly)."""
    if v.kind != "ragged":
        raise TypeError(f"ragged_list takes a ragged value, not {v.kind!r}")
    rows: List[np.ndarray] = v.data.rows()
    return rows


def as_ragged(v: Value) -> Ragged:
    """A ragged or "array" value's rows as a `Ragged` (NULL rows of an array empty)."""
    if v.kind == "ragged":
        r: Ragged = v.data
        return r
    if v.kind != "array":
        raise TypeError(f"as_ragged takes a ragged or array value, not {v.kind!r}")
    r = Ragged.from_uniform(np.asarray(v.data))
    return r.emptied(v.null) if v.null is not None else r


def rowwise(fn: Callable[..., Any], values: Sequence[Value], n: int, class_names: Optional[Tuple[str, ...]] = None) -> Value:
    """Apply `fn` to each row's samples. Used only where some value is ragged (shapes differ
    per row): a loop over samples, acceptable for now (a C kernel takes it over later)."""
    out: List[np.ndarray] = []
    for i in range(n):
        out.append(np.asarray(fn(*[v.row(i) for v in values])))
    return pack(out, class_names)


def with_null(data: np.ndarray, null: np.ndarray) -> Value:
    """An "array" value with NULL rows (None for the mask when there are none)."""
    return Value("array", data, None, null if null.any() else None)


def null_to_ragged(v: Value) -> Value:
    """An "array" value with NULL rows as a "ragged" one where those rows are empty."""
    if v.kind != "array" or v.null is None:
        return v
    return Value("ragged", as_ragged(v), v.class_names)


def rows_flat(a: np.ndarray) -> np.ndarray:
    """(rows, *shape) -> (rows, elements), also for zero rows (where reshape(n, -1) fails)."""
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64)))


def empty_rows(n: int) -> Value:
    """Every row NULL."""
    return Value("array", np.zeros((n, 0)))
