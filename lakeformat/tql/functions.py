"""TQL's functions, by upper-case name: the built-ins and those registered from Python.

A function takes the evaluated arguments (`Value`s over every row) and returns a `Value`.
Numeric built-ins run as whole-column NumPy calls on "array" values, and on "ragged" ones
as the C kernels of native/tql_ragged.c (tql/ragged_ops.py). A reduction over an empty (NULL) sample gives NULL, except ANY (false), ALL
(true) and ALL_STRICT (false).
"""
from __future__ import annotations

import inspect
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from lakeformat import _native
from lakeformat.tql import ast as A
from lakeformat.tql import ragged_ops, text_ops
from lakeformat.tql.errors import TQLError
from lakeformat.tql.operators import align, apply_ufunc, arithmetic, describe, not_none, quiet
from lakeformat.tql.ragged import Ragged
from lakeformat.tql.values import Value, empty_rows, ragged_value, rows_flat, rowwise, text_objects, with_null


@dataclass
class CallContext:
    """What a function may know about the frame besides its arguments."""
    n: int
    rows: np.ndarray  # the frame's rows, as positions in the dataset queried
    rng: np.random.Generator


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    min_args: int
    max_args: Optional[int]  # None: any number
    impl: Callable[[CallContext, List[Value]], Value]
    doc: str = ""
    user: bool = False


_BUILTINS: Dict[str, FunctionSpec] = {}
_USER: Dict[str, FunctionSpec] = {}
_USER_LOCK = threading.Lock()


def register_builtin(name: str, min_args: int, max_args: Optional[int], doc: str) -> Callable[[Callable[[CallContext, List[Value]], Value]], Callable[[CallContext, List[Value]], Value]]:
    def deco(fn: Callable[[CallContext, List[Value]], Value]) -> Callable[[CallContext, List[Value]], Value]:
        _BUILTINS[name] = FunctionSpec(name, min_args, max_args, fn, doc)
        return fn
    return deco


def lookup(name: str) -> Optional[FunctionSpec]:
    return _BUILTINS.get(name) or _USER.get(name)


def builtin_names() -> List[str]:
    return sorted(_BUILTINS)


# --- helpers ---------------------------------------------------------------------------------
def _const_int(v: Value, what: str) -> int:
    if v.kind != "const" or isinstance(v.data, (str, tuple)) or v.data is None or np.ndim(v.data) != 0 or not float(v.data).is_integer():
        raise TQLError(f"{what} must be an integer constant, got {describe(v)}")
    return int(v.data)


def _numeric_arg(v: Value, fname: str) -> None:
    if not v.is_numeric:
        raise TQLError(f"{fname} takes numbers or numeric tensors, not {describe(v)}")


def _reduce(v: Value, fn: Callable[..., Any], axis: Optional[int], fname: str, empty: Optional[bool] = None) -> Value:
    """fn over each sample (or one axis of it). `empty`: the result for an empty sample
    (None: NULL)."""
    _numeric_arg(v, fname)

    def one(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if axis is not None and not -x.ndim <= axis < x.ndim:
            raise TQLError(f"{fname}: axis {axis} is out of range for samples of {x.ndim} dimensions")
        if x.size == 0:
            return np.zeros((0,)) if empty is None else np.asarray(empty)
        return np.asarray(quiet(fn, x, None if axis is None else axis))

    if v.kind == "const":
        return Value("const", one(v.data)[()])
    if v.kind == "ragged":
        flat = ragged_ops.reduce(v.data, fname, fn, axis, empty)  # the C kernel
        if flat is not None:
            return ragged_value(flat)
        return rowwise(one, [v], len(v.data))
    d = v.data
    n, k = d.shape[0], d.ndim - 1
    if axis is not None and not -k <= axis < k:
        raise TQLError(f"{fname}: axis {axis} is out of range for samples of {k} dimensions")
    if d[0:1].size == 0 and (n or k):
        if empty is None or n == 0:
            return empty_rows(n)
        return Value("array", np.full(n, empty))
    axes = tuple(range(1, d.ndim)) if axis is None else (axis % k + 1,)
    return Value("array", quiet(fn, d, axes))


def _axis_arg(args: List[Value], fname: str) -> Optional[int]:
    return _const_int(args[1], f"{fname}'s axis") if len(args) > 1 else None


def _reduction(name: str, fn: Callable[..., Any], doc: str, empty: Optional[bool] = None) -> None:
    @register_builtin(name, 1, 2, doc)
    def impl(ctx: CallContext, args: List[Value]) -> Value:
        return _reduce(args[0], fn, _axis_arg(args, name), name, empty)


for _name, _fn in (("SUM", np.sum), ("MEAN", np.mean), ("AVG", np.mean), ("PROD", np.prod), ("MIN", np.min), ("MAX", np.max), ("AMIN", np.min), ("AMAX", np.max)):
    _reduction(_name, _fn, f"{_name}(x[, axis]): {_name.lower()} of each sample's elements (or along one axis of it)")
_reduction("ANY", np.any, "ANY(x[, axis]): true where any element is true; false for an empty sample", False)
_reduction("ALL", np.all, "ALL(x[, axis]): true where every element is true; true for an empty sample", True)
_reduction("ALL_STRICT", np.all, "ALL_STRICT(x[, axis]): as ALL, but false for an empty sample", False)


def _elementwise(name: str, fn: Callable[[np.ndarray], np.ndarray], doc: str) -> None:
    @register_builtin(name, 1, 1, doc)
    def impl(ctx: CallContext, args: List[Value]) -> Value:
        v = args[0]
        _numeric_arg(v, name)
        if v.kind == "ragged":
            return Value("ragged", v.data.with_values(quiet(fn, v.data.values)))
        if v.kind == "const":
            return Value("const", quiet(fn, np.asarray(v.data))[()])
        return Value("array", quiet(fn, v.data), None, v.null)  # a NULL row stays NULL


_elementwise("ABS", np.abs, "ABS(x): absolute value of each element")
_elementwise("SQRT", np.sqrt, "SQRT(x): square root of each element (NaN below 0)")


def _norm(name: str, fn: Callable[..., Any], doc: str) -> None:
    @register_builtin(name, 1, 1, doc)
    def impl(ctx: CallContext, args: List[Value]) -> Value:
        return _reduce(args[0], fn, None, name)


_norm("L1_NORM", lambda x, axis: np.sum(np.abs(x), axis=axis), "L1_NORM(x): sum of absolute values of each sample")
def _l2(x: np.ndarray, axis: Any) -> np.ndarray:
    x = x.astype(np.float64) if x.dtype.kind in "iub" else x
    norm: np.ndarray = np.sqrt(np.sum(np.square(x), axis=axis))
    return norm


@register_builtin("L2_NORM", 1, 1, "L2_NORM(x): Euclidean norm of each sample")
def _l2_norm(ctx: CallContext, args: List[Value]) -> Value:
    v = args[0]
    if v.kind == "array" and v.data.dtype.kind == "f" and v.data.ndim >= 2 and v.data[0:1].size:
        # one pass, no temporary the size of the column
        flat = rows_flat(v.data)
        return Value("array", np.sqrt(np.einsum("ij,ij->i", flat, flat)))
    return _reduce(v, _l2, None, "L2_NORM")
_norm("LINF_NORM", lambda x, axis: np.max(np.abs(x), axis=axis), "LINF_NORM(x): largest absolute value in each sample")


def _same_float(a: Value, b: Value) -> Value:
    """A constant operand takes a float tensor's dtype, so a float32 column is not upcast."""
    if a.kind == "array" and b.kind == "const" and a.data.dtype.kind == "f" and np.asarray(b.data).dtype.kind in "iuf":
        return Value("const", np.asarray(b.data, dtype=a.data.dtype))
    return b


@register_builtin("L2_DISTANCE", 2, 2, "L2_DISTANCE(a, b): Euclidean distance between each sample of a and b")
def _l2_distance(ctx: CallContext, args: List[Value]) -> Value:
    a, b = args
    _numeric_arg(a, "L2_DISTANCE")
    _numeric_arg(b, "L2_DISTANCE")
    fast = _rows_vector(a, b, 2)
    if fast is not None:
        return fast
    diff = arithmetic("-", a, _same_float(a, b), ctx.n)
    return _l2_norm(ctx, [diff])


def _matvec(a: Value, b: Value) -> Optional[np.ndarray]:
    """The fast path of DOT and COSINE_SIMILARITY: a fixed-shape vector column against one
    constant vector is one matrix-vector product."""
    if a.kind == "array" and b.kind == "const" and a.data.ndim == 2 and np.ndim(b.data) == 1 and a.data.shape[1] == np.shape(b.data)[0] and a.data.shape[1] > 0:
        product: np.ndarray = a.data @ np.asarray(b.data, dtype=a.data.dtype if a.data.dtype.kind == "f" else np.float64)
        return product
    return None


def _dot(a: Value, b: Value, n: int) -> Value:
    for x in (a, b):
        _numeric_arg(x, "DOT")
    if a.kind == "const" and b.kind != "const":
        a, b = b, a
    fast = _matvec(a, b)
    if fast is not None:
        return Value("array", fast)
    return _reduce(arithmetic("*", a, b, n), np.sum, None, "DOT")


@register_builtin("DOT", 2, 2, "DOT(a, b): sum of the element-wise products of each sample of a and b")
def _dot_fn(ctx: CallContext, args: List[Value]) -> Value:
    return _dot(args[0], args[1], ctx.n)


def _rows_vector(a: Value, b: Value, op: int) -> Optional[Value]:
    """COSINE_SIMILARITY (op 1) or L2_DISTANCE (op 2) of a float vector column with one
    constant vector: one pass of the C kernel over the rows."""
    if a.kind == "const" and b.kind != "const":
        a, b = b, a
    if a.kind != "array" or b.kind != "const" or a.data.ndim != 2 or a.data.dtype not in (np.float32, np.float64):
        return None
    vec = np.asarray(b.data)
    if vec.ndim != 1 or vec.dtype.kind not in "iuf" or vec.shape[0] != a.data.shape[1] or vec.shape[0] == 0:
        return None
    out = np.empty(a.data.shape[0], a.data.dtype)
    _native.rows_vector(np.ascontiguousarray(a.data).data, np.ascontiguousarray(vec, a.data.dtype).data, op, out.data)
    return Value("array", out, None, a.null)


@register_builtin("COSINE_SIMILARITY", 2, 2, "COSINE_SIMILARITY(a, b): DOT(a, b) / (L2_NORM(a) * L2_NORM(b))")
def _cosine(ctx: CallContext, args: List[Value]) -> Value:
    a, b = args
    fast = _rows_vector(a, b, 1)
    if fast is not None:
        return fast
    if a.kind == "const" and b.kind != "const":
        a, b = b, a
    b = _same_float(a, b)
    dot = _dot(a, b, ctx.n)
    denom = arithmetic("*", _l2_norm(ctx, [a]), _l2_norm(ctx, [b]), ctx.n)
    return arithmetic("/", dot, denom, ctx.n)


@register_builtin("HAMMING_DISTANCE", 2, 2, "HAMMING_DISTANCE(a, b): how many elements of each sample differ")
def _hamming(ctx: CallContext, args: List[Value]) -> Value:
    a, b = args
    _numeric_arg(a, "HAMMING_DISTANCE")
    _numeric_arg(b, "HAMMING_DISTANCE")
    ne = apply_ufunc(np.not_equal, a, b, ctx.n)
    return _reduce(ne, lambda x, axis: np.count_nonzero(x, axis=axis), None, "HAMMING_DISTANCE")


@register_builtin("SHAPE", 1, 1, "SHAPE(x): the shape of each sample, as an array (SHAPE(x)[0] is its first size)")
def _shape(ctx: CallContext, args: List[Value]) -> Value:
    v = args[0]
    if v.kind in ("text", "json") or not v.is_numeric:
        raise TQLError(f"SHAPE applies to numeric tensors, not {describe(v)}")
    if v.kind == "const":
        return Value("const", np.asarray(np.shape(v.data), np.int64))
    if v.kind == "ragged":
        nd = v.data.uniform_ndim()
        if nd is not None:
            return Value("array", v.data.shapes[:, :nd].copy())
        return rowwise(lambda x: np.asarray(np.shape(x), np.int64), [v], ctx.n)
    item = np.asarray(v.data.shape[1:], np.int64)
    return Value("array", np.broadcast_to(item, (ctx.n, len(item))).copy())


@register_builtin("NONZERO", 1, 1, "NONZERO(x): the flat (C-order) positions of each sample's non-zero elements")
def _nonzero(ctx: CallContext, args: List[Value]) -> Value:
    v = args[0]
    _numeric_arg(v, "NONZERO")
    if v.kind == "const":
        return Value("const", np.flatnonzero(np.asarray(v.data)))
    r = v.data if v.kind == "ragged" else Ragged.from_uniform(np.asarray(v.data))
    if v.kind == "array" and v.null is not None:
        r = r.emptied(v.null)
    return ragged_value(ragged_ops.nonzero(r))


@register_builtin("DATA", 2, 2, "DATA(x, i): the sample of tensor x at row i of the dataset queried, the same for every row")
def _data(ctx: CallContext, args: List[Value]) -> Value:
    # the executor calls data_sample instead (it needs the tensor's name, not its values)
    raise TQLError("DATA takes a tensor name and a row number: DATA(embedding, 10)")


def data_sample(args: Sequence[A.Expr], read: Callable[[str, np.ndarray], Value], length: int, evaluate: Callable[[A.Expr], Value]) -> Value:
    """DATA(tensor, i): tensor's sample at row i of the dataset queried, as a constant (so
    that `L2_NORM(emb - DATA(emb, 10))` compares every row with row 10)."""
    target, row = args
    if not isinstance(target, A.Identifier) or target.version is not None:
        raise TQLError("DATA's first argument is a tensor name")
    i = evaluate(row)
    if i.kind != "const" or isinstance(i.data, (str, tuple, bool, np.bool_)) or i.data is None or np.ndim(i.data) != 0 or not float(i.data).is_integer():
        raise TQLError("DATA's second argument is a row number")
    k = int(i.data)
    if not 0 <= k < length:
        raise TQLError(f"DATA: row {k} is outside the dataset's {length} rows")
    v = read(target.name, np.array([k], np.int64))
    if v.kind == "array":
        return Value("const", None if v.null is not None and v.null[0] else np.asarray(v.data[0]))
    if v.kind == "ragged":
        return Value("const", np.asarray(v.data.row(0)))
    if v.kind == "text":
        return Value("const", text_objects(v)[0])
    raise TQLError(f"DATA applies to numeric and text tensors, not {describe(v)}")


@register_builtin("KEYS", 1, 1, "KEYS(j): the keys of each json object, as a json list in the object's order (NULL where the value is not an object)")
def _keys(ctx: CallContext, args: List[Value]) -> Value:
    v = args[0]
    if v.kind != "json":
        raise TQLError(f"KEYS applies to json, not {describe(v)}")
    out = np.empty(ctx.n, dtype=object)
    out[:] = [list(x) if isinstance(x, dict) else None for x in v.data]
    return Value("json", out)


@register_builtin("CONTAINS", 2, 2, "CONTAINS(x, v): text: v is a substring; json list: v is an item; json object: v is a key; numeric or class_label: some element equals v")
def _contains(ctx: CallContext, args: List[Value]) -> Value:
    a, v = args
    if v.kind != "const" or v.data is None or isinstance(v.data, tuple):
        raise TQLError("CONTAINS's second argument must be a constant")
    n = ctx.n
    if a.kind == "text":
        if not isinstance(v.data, str):
            raise TQLError("CONTAINS on a text tensor takes a string")
        return text_ops.contains(a, v.data)
    if a.kind == "json":
        item = v.data.item() if isinstance(v.data, np.generic) else v.data

        def one(x: Any) -> bool:
            if isinstance(x, str):
                return isinstance(item, str) and item in x
            if isinstance(x, (list, dict)):
                try:
                    return item in x
                except TypeError:
                    return False
            return False
        return with_null(np.fromiter((one(x) for x in a.data), bool, n), ~not_none(a.data))
    if not a.is_numeric:
        raise TQLError(f"CONTAINS applies to text, json or numeric tensors, not {describe(a)}")
    target = v.data
    if not isinstance(target, str) and np.ndim(target) != 0:
        raise TQLError("CONTAINS looks for one value, not an array")
    if isinstance(target, str):
        if a.class_names is None:
            raise TQLError("CONTAINS with a string needs a text, json or class_label tensor")
        if target not in a.class_names:
            raise TQLError(f"{target!r} is not one of the tensor's class names {list(a.class_names)}")
        target = a.class_names.index(target)
    if a.kind == "ragged":
        return Value("array", ragged_ops.row_any(a.data.with_values(a.data.values == target)))
    if a.kind == "const":
        return Value("const", np.bool_(np.any(np.asarray(a.data) == target)))
    return Value("array", rows_flat(a.data == target).any(axis=1))


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes in LTWH (left, top, width, height) along the last axis."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    ix = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.where(union > 0, quiet(np.true_divide, inter, np.where(union > 0, union, 1)), 0.0)


@register_builtin("IOU", 2, 2, "IOU(boxes, ARRAY[x, y, w, h]): intersection over union of each box (LTWH) with the other box")
def _iou(ctx: CallContext, args: List[Value]) -> Value:
    a, b = args
    for x in (a, b):
        _numeric_arg(x, "IOU")
        if x.kind != "ragged" and np.shape(x.data)[-1:] != (4,):
            raise TQLError(f"IOU takes boxes of 4 numbers (x, y, w, h) on the last axis, got shape {np.shape(x.data)[1:] if x.kind == 'array' else np.shape(x.data)}")
    if a.kind == "ragged" and b.kind == "const" and a.data.inner_shape() == (4,) and np.shape(b.data) == (4,):
        r = a.data  # every row (k, 4): one call over the flat (total, 4) boxes
        ious = iou_xywh(r.values.reshape(-1, 4), np.asarray(b.data))
        return ragged_value(Ragged(ious, r.offsets // 4, r.shapes[:, :1].copy(), np.ones(len(r), np.int64)))
    if a.kind == "ragged" or b.kind == "ragged":
        def one(x: Any, y: Any) -> np.ndarray:
            x, y = np.asarray(x), np.asarray(y)
            if x.size == 0 or y.size == 0:
                return np.zeros((0,))
            if x.shape[-1:] != (4,) or y.shape[-1:] != (4,):
                raise TQLError("IOU takes boxes of 4 numbers (x, y, w, h) on the last axis")
            return iou_xywh(x, y)
        return rowwise(one, [a, b], ctx.n)
    if a.kind == "const" and b.kind == "const":
        return Value("const", iou_xywh(np.asarray(a.data), np.asarray(b.data))[()])
    xa, ya = align(np.asarray(a.data), a.kind == "array", np.asarray(b.data), b.kind == "array")
    return Value("array", iou_xywh(xa, ya))


@register_builtin("RANDOM", 0, 0, "RANDOM(): a uniform random number in [0, 1) per row (seeded by run(..., seed=))")
def _random(ctx: CallContext, args: List[Value]) -> Value:
    return Value("array", ctx.rng.random(ctx.n))


@register_builtin("ROW_NUMBER", 0, 0, "ROW_NUMBER(): the row's position in the dataset queried")
def _row_number(ctx: CallContext, args: List[Value]) -> Value:
    return Value("array", ctx.rows.astype(np.int64))


# --- functions from Python -----------------------------------------------------------------------
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def register_function(name: str, fn: Callable[..., Any]) -> None:
    """Make `fn` callable from queries as `name(...)` (case-insensitive).

    `fn` gets NumPy arrays, one per argument: a fixed-shape column as (rows, *sample shape),
    text and json as object arrays, a constant as itself; it returns an array with one entry
    per row (or one value for all). Where an argument's samples differ in shape, `fn` is
    called once per row with that row's samples.

    >>> register_function("area", lambda b: b[..., 2] * b[..., 3])   # doctest: +SKIP
    >>> run(ds, "SELECT * WHERE ANY(AREA(boxes) > 400)")             # doctest: +SKIP
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise TQLError(f"function name {name!r} is not an identifier")
    if not callable(fn):
        raise TQLError(f"register_function({name!r}, ...): {type(fn).__name__} is not callable")
    up = name.upper()
    if up in _BUILTINS:
        raise TQLError(f"{up} is a built-in function and cannot be replaced")
    lo, hi = 0, None
    try:
        params = list(inspect.signature(fn).parameters.values())
        if not any(p.kind == p.VAR_POSITIONAL for p in params):
            pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            hi = len(pos)
            lo = len([p for p in pos if p.default is p.empty])
    except (TypeError, ValueError):  # builtins without a signature take any arity
        pass

    def impl(ctx: CallContext, args: List[Value]) -> Value:
        return _call_user(up, fn, ctx, args)
    with _USER_LOCK:
        _USER[up] = FunctionSpec(up, lo, hi, impl, f"{up}: registered from Python", user=True)


def unregister_function(name: str) -> None:
    """Forget a function registered with `register_function` (no error if there is none)."""
    with _USER_LOCK:
        _USER.pop(name.upper(), None)


def _user_result(name: str, out: Any, n: int) -> Value:
    arr = np.asarray(out)
    if arr.dtype == object and arr.ndim == 1 and len(arr) == n and all(isinstance(x, str) or x is None for x in arr):
        return Value("text", arr)
    if arr.ndim == 0:
        return Value("array", np.broadcast_to(arr, (n,)).copy())
    if arr.shape[0] != n:
        raise TQLError(f"{name} returned {arr.shape[0]} values for {n} rows")
    if arr.dtype.kind in "US":
        return Value("text", arr.astype(object))
    return Value("array", arr)


def _call_user(name: str, fn: Callable[..., Any], ctx: CallContext, args: List[Value]) -> Value:
    try:
        if any(a.kind == "ragged" for a in args):
            def one(*xs: Any) -> np.ndarray:
                return np.asarray(fn(*xs))
            return rowwise(one, args, ctx.n)
        return _user_result(name, fn(*[text_objects(a) if a.kind == "text" else a.data for a in args]), ctx.n)
    except TQLError:
        raise
    except Exception as e:  # the user's code failed: say which function, keep the cause
        raise TQLError(f"function {name} failed: {type(e).__name__}: {e}") from e
