"""Operators and reductions over "ragged" values without a Python loop per row.

Element-wise work runs as one NumPy call over the flat buffer of a `Ragged` (a per-row
operand repeated to each row's elements); per-row reductions, norms and counts run in the C
kernel `_native.segment_reduce` (native/tql_ragged.c, GIL released). Each function returns
None where its fast path does not apply (rows of different ranks, a broadcast that changes
a row's leading axis); the caller then falls back to the row-by-row path, with the same
results.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from lakeformat import _native
from lakeformat.tql.errors import TQLError
from lakeformat.tql.ragged import Ragged

# the kernel's op codes (native/tql_ragged.c)
OPS: Dict[str, int] = {"SUM": 0, "PROD": 1, "MIN": 2, "MAX": 3, "ANY": 4, "ALL": 5, "MEAN": 6,
                       "L1": 7, "L2": 8, "LINF": 9, "COUNT": 10}
# a TQL function's name -> the kernel op it is
FUNCTION_OPS: Dict[str, str] = {
    "SUM": "SUM", "DOT": "SUM", "PROD": "PROD", "MIN": "MIN", "AMIN": "MIN", "MAX": "MAX", "AMAX": "MAX",
    "ANY": "ANY", "ALL": "ALL", "ALL_STRICT": "ALL", "MEAN": "MEAN", "AVG": "MEAN",
    "L1_NORM": "L1", "L2_NORM": "L2", "LINF_NORM": "LINF", "HAMMING_DISTANCE": "COUNT",
}
_KERNEL_KINDS = "biuf"


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    with np.errstate(all="ignore"):
        return fn(*args)


def kernel_dtype(dtype: np.dtype) -> bool:
    """Whether the C kernels take this element type (not float16, complex, strings)."""
    return dtype.kind in _KERNEL_KINDS and not (dtype.kind == "f" and dtype.itemsize not in (4, 8))


def _out_dtype(fn: Callable[..., Any], dtype: np.dtype) -> np.dtype:
    """The dtype NumPy gives for `fn` over a sample of `dtype` (the kernel converts to it)."""
    return np.asarray(_quiet(fn, np.ones((1,), dtype), None)).dtype


def reduce(r: Ragged, fname: str, fn: Callable[..., Any], axis: Optional[int], empty: Optional[bool]) -> Optional[Ragged]:
    """`fn` over each row (or one axis of it) as the C kernel; empty rows give `empty`, or
    NULL (an empty row) when it is None. None: not a kernel case."""
    op = FUNCTION_OPS.get(fname)
    if op is None or not kernel_dtype(r.dtype):
        return None
    dt = _out_dtype(fn, r.dtype)
    if not kernel_dtype(dt):
        return None
    n = len(r)
    sizes = r.sizes
    nonempty = sizes > 0
    values = np.ascontiguousarray(r.values)
    if r.dtype == np.bool_:
        values = values.view(np.uint8)
    if axis is None:
        out = np.empty(n, dt)
        _native.segment_reduce(values.data, r.offsets.data, OPS[op], out.data)
        out_sizes = np.where(nonempty, 1, 0 if empty is None else 1)
        if empty is not None:
            out[~nonempty] = empty
            return Ragged(out, np.arange(n + 1, dtype=np.int64), np.zeros((n, 0), np.int64), np.zeros(n, np.int64))
        ndims = np.where(nonempty, 0, 1).astype(np.int64)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(out_sizes, out=offsets[1:])
        return Ragged(out[nonempty], offsets, np.zeros((n, 1), np.int64), ndims)
    return _reduce_axis(r, values, op, dt, axis, empty, fname)


def _reduce_axis(r: Ragged, values: np.ndarray, op: str, dt: np.dtype, axis: int, empty: Optional[bool], fname: str) -> Ragged:
    n = len(r)
    nd = r.ndims
    if n and ((axis < -nd) | (axis >= nd)).any():
        bad = int(nd[int(np.argmax((axis < -nd) | (axis >= nd)))])
        raise TQLError(f"{fname}: axis {axis} is out of range for samples of {bad} dimensions")
    d = r.shapes.shape[1]
    shapes = r.shapes
    ax = np.where(nd > 0, axis % np.maximum(nd, 1), 0)
    cols = np.arange(d)[None, :]
    inrank = cols < nd[:, None]
    outer = np.where(cols < ax[:, None], shapes, 1).prod(axis=1) if d else np.ones(n, np.int64)
    length = shapes[np.arange(n), ax] if d else np.ones(n, np.int64)
    inner = np.where((cols > ax[:, None]) & inrank, shapes, 1).prod(axis=1) if d else np.ones(n, np.int64)
    nonempty = r.sizes > 0
    out_sizes = np.where(nonempty, outer * inner, 0 if empty is None else 1)
    geometry = np.stack([np.where(nonempty, outer, 0), np.where(nonempty, length, 0), np.where(nonempty, inner, 0)], axis=1).astype(np.int64)
    if empty is not None:
        geometry[~nonempty] = (1, 0, 1)
    out_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(out_sizes, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), dt)
    _native.segment_reduce(values.data, r.offsets.data, OPS[op], out.data, np.ascontiguousarray(geometry.reshape(-1)).data, out_offsets.data)
    # each row's shape without its reduced axis
    new_d = max(d - 1, 1)
    new_shapes = np.zeros((n, new_d), np.int64)
    for c in range(d - 1):
        new_shapes[:, c] = np.where(c < ax, shapes[:, c], shapes[:, c + 1])
    new_nd = nd - 1
    if empty is not None:
        out[out_offsets[:-1][~nonempty]] = empty
        new_nd = np.where(nonempty, new_nd, 0)
    else:
        new_shapes[~nonempty] = 0
        new_nd = np.where(nonempty, new_nd, 1)
    return Ragged(out, out_offsets, new_shapes, new_nd.astype(np.int64))


def row_any(r: Ragged) -> np.ndarray:
    """One bool per row: some element is non-zero (false for an empty row)."""
    out = np.empty(len(r), np.bool_)
    values = r.values.view(np.uint8) if r.dtype == np.bool_ else r.values
    if not kernel_dtype(r.dtype):
        values = (r.values != 0).view(np.uint8)
    _native.segment_reduce(np.ascontiguousarray(values).data, r.offsets.data, OPS["ANY"], out.view(np.uint8).data)
    return out


def _with_rank(r: Ragged, k: int) -> Ragged:
    """Rows of rank < k get leading 1s (what broadcasting with a k-dimensional size-1
    operand does to their shape)."""
    if k == 0 or not len(r) or int(r.ndims.min()) >= k:
        return r
    d = max(r.shapes.shape[1], k)
    shapes = np.ones((len(r), d), np.int64)
    nd = np.maximum(r.ndims, k)
    shift = nd - r.ndims
    for c in range(r.shapes.shape[1]):
        dest = c + shift
        ok = c < r.ndims
        shapes[np.arange(len(r))[ok], dest[ok]] = r.shapes[ok, c]
    shapes[np.arange(d)[None, :] >= nd[:, None]] = 0
    return Ragged(r.values, r.offsets, shapes, nd.astype(np.int64))


def elementwise(ufunc: Any, left: Any, right: Any, left_is_ragged: bool) -> Optional[Ragged]:
    """ufunc over a Ragged and another operand: a Ragged of the same layout, a constant, or
    a per-row (n, *s) array (`right` always the non-ragged or second one; `left_is_ragged`
    False when the ragged operand was the right-hand one). None: not a flat case."""
    r: Ragged = left

    def op(x: np.ndarray, y: Any) -> np.ndarray:
        res: np.ndarray = _quiet(ufunc, x, y) if left_is_ragged else _quiet(ufunc, y, x)
        return res

    if isinstance(right, Ragged):
        o = right
        if len(o) == len(r) and np.array_equal(o.offsets, r.offsets) and np.array_equal(o.ndims, r.ndims) and o.shapes.shape == r.shapes.shape and np.array_equal(o.shapes, r.shapes):
            return r.with_values(op(r.values, o.values))
        return None
    kind, data = right
    arr = np.asarray(data)
    if kind == "const":
        if arr.size == 1:
            return _with_rank(r, arr.ndim).with_values(op(r.values, arr.reshape(())))
        return _inner(r, arr, None, op)
    # a per-row array (n, *s)
    n = len(r)
    sample = arr.shape[1:]
    if int(np.prod(sample, dtype=np.int64)) == 1:
        per = np.repeat(arr.reshape(n), r.sizes)
        return _with_rank(r, len(sample)).with_values(op(r.values, per))
    return _inner(r, arr, np.repeat(np.arange(n), r.first_axis()), op)


def _inner(r: Ragged, arr: np.ndarray, rows: Optional[np.ndarray], op: Callable[[np.ndarray, Any], np.ndarray]) -> Optional[Ragged]:
    """Rows (k, *inner) against a constant (or per-row array) of shape s that broadcasts
    with `inner`: one call over the flat (total, *inner) view."""
    inner = r.inner_shape()
    if inner is None:
        return None
    s = arr.shape if rows is None else arr.shape[1:]
    if len(s) > len(inner):
        return None
    try:
        new_inner = np.broadcast_shapes(inner, s)
    except ValueError:
        raise TQLError(f"sample shapes {inner} (after the first axis) and {tuple(s)} do not broadcast") from None
    total = int(r.first_axis().sum())
    flat = r.values.reshape((total,) + inner)
    other = arr if rows is None else arr[rows].reshape((total,) + (1,) * (len(inner) - len(s)) + tuple(s))
    res = op(flat, other)
    size = int(np.prod(new_inner, dtype=np.int64))
    first = r.first_axis()
    offsets = np.zeros(len(r) + 1, np.int64)
    np.cumsum(first * size, out=offsets[1:])
    shapes = np.zeros((len(r), 1 + len(new_inner)), np.int64)
    shapes[:, 0] = first
    shapes[:, 1:] = new_inner
    return Ragged(np.ascontiguousarray(res).reshape(-1), offsets, shapes, r.ndims.copy())


def _slice_lengths(start: Optional[int], stop: Optional[int], step: int, k: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Python's slice.indices for every row length in `k`, vectorised: (first, count)."""
    if step > 0:
        lo = np.zeros_like(k) if start is None else np.clip(np.where(start < 0, start + k, start), 0, k)
        hi = k if stop is None else np.clip(np.where(stop < 0, stop + k, stop), 0, k)
        count = np.maximum(0, (hi - lo + step - 1) // step)
    else:
        lo = k - 1 if start is None else np.clip(np.where(start < 0, start + k, start), -1, k - 1)
        hi = np.full_like(k, -1) if stop is None else np.clip(np.where(stop < 0, stop + k, stop), -1, k - 1)
        count = np.maximum(0, (lo - hi - step - 1) // (-step))
    return lo, count


def subscript(r: Ragged, index: Tuple[Any, ...]) -> Optional[Ragged]:
    """`x[index]` within each row, where the rows share a rank and their sizes after the first
    axis: the first index (an int or a slice) picks rows of the flat (total, *inner) view,
    the rest applies to all of them at once. A row where the index is out of range is NULL."""
    inner = r.inner_shape()
    nd = r.uniform_ndim()
    if inner is None or nd is None or not index:
        return None
    isize = int(np.prod(inner, dtype=np.int64))
    if isize == 0:
        return None
    if len(index) > nd:
        raise TQLError(f"{len(index)} indices for samples of {nd} dimensions")
    n = len(r)
    k = r.first_axis()
    base = r.offsets[:-1] // isize
    first, rest = index[0], index[1:]
    total = int(k.sum())
    flat = r.values.reshape((total,) + inner)
    empty = Ragged(r.values[:0], np.zeros(n + 1, np.int64), np.zeros((n, 1), np.int64), np.ones(n, np.int64))
    if isinstance(first, slice):
        lo, count = _slice_lengths(first.start, first.stop, first.step or 1, k)
        m = int(count.sum())
        within = np.arange(m, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        idx = np.repeat(base + lo, count) + within * (first.step or 1)
        try:
            picked = flat[idx][(slice(None),) + rest]
        except IndexError:
            return empty
        sub = picked.shape[1:]
        size = int(np.prod(sub, dtype=np.int64))
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(count * size, out=offsets[1:])
        shapes = np.zeros((n, 1 + len(sub)), np.int64)
        shapes[:, 0] = count
        shapes[:, 1:] = sub
        return Ragged(np.ascontiguousarray(picked).reshape(-1), offsets, shapes, np.full(n, 1 + len(sub), np.int64))
    j = int(first)
    pos = np.where(j < 0, j + k, j)
    ok = (pos >= 0) & (pos < k)
    try:
        picked = flat[(base + pos)[ok]][(slice(None),) + rest] if ok.any() else flat[:0][(slice(None),) + rest]
    except IndexError:
        return empty
    sub = picked.shape[1:]
    size = int(np.prod(sub, dtype=np.int64))
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.where(ok, size, 0), out=offsets[1:])
    shapes = np.zeros((n, max(len(sub), 1)), np.int64)
    if sub:
        shapes[ok] = sub
    return Ragged(np.ascontiguousarray(picked).reshape(-1), offsets, shapes, np.where(ok, len(sub), 1).astype(np.int64))


def nonzero(r: Ragged) -> Ragged:
    """Each row's flat (C-order) positions of its non-zero elements."""
    mask = r.values != 0
    within = np.arange(len(r.values), dtype=np.int64) - np.repeat(r.offsets[:-1], r.sizes)
    counts = np.empty(len(r), np.int64)
    _native.segment_reduce(mask.view(np.uint8).data, r.offsets.data, OPS["COUNT"], counts.data)
    offsets = np.zeros(len(r) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Ragged(within[mask], offsets, counts.reshape(-1, 1), np.ones(len(r), np.int64))
