"""`Value`: what an expression evaluates to, over every row of a frame at once.

Kinds:
- "array":  `data` is an ndarray of shape (rows, *sample shape): every row has the same shape,
            so operators run as one NumPy call over the whole column.
- "ragged": `data` is a list of ndarrays, one per row, of different shapes (dynamic-shape
            tensors, empty samples). Operators loop over the rows here; a C kernel will
            replace these loops later.
- "text":   `data` is an object ndarray (rows,) of str, None for a null.
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
            data = [self.data[int(p)] for p in positions]
            return Value("ragged", data, self.class_names)
        return Value(self.kind, self.data[positions], self.class_names, None if self.null is None else self.null[positions], self.time)

    def row(self, i: int) -> Any:
        if self.kind == "const":
            return self.data
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
        if self.kind in ("text", "json"):
            return list(self.data)
        if self.kind == "ragged":
            return list(self.data)
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
    return Value("ragged", arrs, class_names)


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
    rows = [np.zeros((0,), v.data.dtype) if z else v.data[i] for i, z in enumerate(v.null)]
    return Value("ragged", rows, v.class_names)


def rows_flat(a: np.ndarray) -> np.ndarray:
    """(rows, *shape) -> (rows, elements), also for zero rows (where reshape(n, -1) fails)."""
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64)))


def empty_rows(n: int) -> Value:
    """Every row NULL."""
    return Value("array", np.zeros((n, 0)))
