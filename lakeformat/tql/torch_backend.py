"""`backend="torch"`: TQL's numeric work on PyTorch tensors, on a GPU where one is present.

Arithmetic and comparisons (fixed-shape columns, and ragged rows over their flat buffer),
the reductions over fixed-shape columns, the distances of a vector column to one vector,
and the ORDER BY ... LIMIT top-k run as torch calls; the rest (text, json, class names,
reductions of ragged rows, dtypes torch lacks such as uint32) goes to the NumPy operators
and C kernels, so every query runs on either backend. Each torch call first casts its
operands to the dtype NumPy would give, so results equal the NumPy backend's: exactly for
integers and booleans, to rounding for floats (a GPU sums in another order).

torch is imported with this module, which the executor imports only for
`backend="torch"`: `import lakeformat` never imports torch.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from lakeformat.tql import operators as ops
from lakeformat.tql.errors import TQLError
from lakeformat.tql.functions import CallContext, FunctionSpec
from lakeformat.tql.values import Value

try:
    import torch
except ImportError as e:  # pragma: no cover - only without torch installed
    raise TQLError("backend='torch' needs PyTorch: pip install torch") from e

# NumPy dtypes torch holds with the same meaning (torch's unsigned types beyond uint8 lack
# most kernels)
_TORCH: Dict[np.dtype, Any] = {
    np.dtype(np.bool_): torch.bool, np.dtype(np.uint8): torch.uint8, np.dtype(np.int8): torch.int8,
    np.dtype(np.int16): torch.int16, np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64,
    np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
}
_ARITH = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.true_divide, "%": torch.remainder}
_CMP = {"==": torch.eq, "!=": torch.ne, "<": torch.lt, "<=": torch.le, ">": torch.gt, ">=": torch.ge}
_REDUCE: Dict[str, Callable[..., Any]] = {
    "SUM": torch.sum, "PROD": torch.prod, "MIN": torch.amin, "AMIN": torch.amin, "MAX": torch.amax,
    "AMAX": torch.amax, "MEAN": torch.mean, "AVG": torch.mean,
}


_NP_REDUCE: Dict[str, Callable[..., Any]] = {
    "SUM": np.sum, "PROD": np.prod, "MIN": np.min, "AMIN": np.min, "MAX": np.max, "AMAX": np.max, "MEAN": np.mean, "AVG": np.mean,
}


def device() -> Any:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _plain(v: Value) -> bool:
    """A numeric "array" or constant torch can hold (no class names, time, text)."""
    if v.kind == "array":
        return v.class_names is None and v.time is None and np.asarray(v.data).dtype in _TORCH
    if v.kind == "const":
        return isinstance(v.data, (np.ndarray, np.generic)) and np.asarray(v.data).dtype in _TORCH
    return False


def _tensor(x: np.ndarray, dtype: np.dtype, dev: Any) -> Any:
    with warnings.catch_warnings():  # a read-only column is only read
        warnings.simplefilter("ignore", UserWarning)
        t = torch.as_tensor(np.ascontiguousarray(x))
    return t.to(device=dev, dtype=_TORCH[dtype])


def _numpy(t: Any) -> np.ndarray:
    out: np.ndarray = t.detach().cpu().numpy()
    return out


def _sample(v: Value) -> Any:
    """What NumPy sees of an operand for type promotion: the constant itself, or one
    element of the column's dtype."""
    return np.asarray(v.data) if v.kind == "const" else np.ones((1,), np.asarray(v.data).dtype)


class TorchBackend:
    """The torch versions of the executor's numeric steps; `None` from a helper means
    "not a torch case", and the NumPy operator runs instead."""

    name = "torch"

    def __init__(self) -> None:
        self.device = device()
        self.ragged_calls = 0  # element-wise calls on ragged rows that ran on torch

    # -- operators ------------------------------------------------------------------------------
    def _binary(self, fn: Any, np_fn: Any, a: Value, b: Value, n: int, cast: Optional[np.dtype]) -> Optional[Value]:
        if not (_plain(a) and _plain(b)) or (a.kind == "const" and b.kind == "const"):
            return None
        x, y = ops.align(np.asarray(a.data), a.kind == "array", np.asarray(b.data), b.kind == "array")
        try:
            want = ops.quiet(np_fn, _sample(a), _sample(b)).dtype if cast is None else cast
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            return None  # the NumPy operator raises its own error
        work = want if cast is None else cast
        if work not in _TORCH:
            return None
        if np_fn is np.mod and work.kind in "iu" and not np.all(np.asarray(b.data)):
            return None  # integer % 0: NumPy gives 0, torch raises
        tx, ty = _tensor(x, work, self.device), _tensor(y, work, self.device)
        out = _numpy(fn(tx, ty))
        if cast is None and out.dtype != want:
            out = out.astype(want)
        return Value("array", out, None, ops.row_null(a, b))

    def _elementwise(self, np_fn: Any, torch_fn: Any, compare: bool) -> Callable[[Any, Any], np.ndarray]:
        """A stand-in for a NumPy ufunc that runs on torch: what the ragged flat path (and its
        row-by-row fallback) calls with NumPy operands; NumPy's own result dtype."""
        def run(x: Any, y: Any) -> np.ndarray:
            x, y = np.asarray(x), np.asarray(y)
            want = np.result_type(x, y) if compare else ops.quiet(np_fn, x.reshape(-1)[:1], y.reshape(-1)[:1]).dtype
            mixed64 = compare and {x.dtype.kind, y.dtype.kind} == {"i", "u"} and max(x.dtype.itemsize, y.dtype.itemsize) == 8
            if want not in _TORCH or mixed64 or (np_fn is np.mod and want.kind in "iu" and not np.all(y)):
                out: np.ndarray = ops.quiet(np_fn, x, y)
                return out
            res = _numpy(torch_fn(_tensor(x, want, self.device), _tensor(y, want, self.device)))
            self.ragged_calls += 1
            return res if compare else res.astype(want, copy=False)
        return run

    def _ragged(self, a: Value, b: Value) -> bool:
        """Some operand is ragged, and both are numbers without class names or times."""
        if a.kind != "ragged" and b.kind != "ragged":
            return False
        return all(v.is_numeric and v.class_names is None and v.time is None and not (v.kind == "const" and isinstance(v.data, (str, tuple))) for v in (a, b))

    def arithmetic(self, op: str, a: Value, b: Value, n: int) -> Value:
        if self._ragged(a, b):
            return ops.apply_ufunc(self._elementwise(ops.ARITH_UFUNCS[op], _ARITH[op], False), ops.bools_as_counts(a), ops.bools_as_counts(b), n)
        ca, cb = ops.bools_as_counts(a) if _plain(a) else a, ops.bools_as_counts(b) if _plain(b) else b
        res = self._binary(_ARITH[op], ops.ARITH_UFUNCS[op], ca, cb, n, None)
        return res if res is not None else ops.arithmetic(op, a, b, n)

    def compare(self, op: str, a: Value, b: Value, n: int) -> Value:
        if self._ragged(a, b):
            return ops.apply_ufunc(self._elementwise(ops._CMP[op], _CMP[op], True), a, b, n)
        res = None
        if _plain(a) and _plain(b):
            da, db = np.asarray(a.data).dtype, np.asarray(b.data).dtype
            mixed64 = {da.kind, db.kind} == {"i", "u"} and max(da.itemsize, db.itemsize) == 8
            if not mixed64:
                res = self._binary(_CMP[op], ops._CMP[op], a, b, n, np.result_type(_sample(a), _sample(b)))
        return res if res is not None else ops.compare(op, a, b, n)

    # -- functions ------------------------------------------------------------------------------
    def call(self, spec: FunctionSpec, ctx: CallContext, args: List[Value]) -> Value:
        res = None
        if not spec.user:
            if spec.name in _REDUCE and args and _plain(args[0]) and args[0].kind == "array":
                res = self._reduce(spec.name, args)
            elif spec.name in ("COSINE_SIMILARITY", "L2_DISTANCE", "DOT") and len(args) == 2:
                res = self._vector(spec.name, args[0], args[1])
        return res if res is not None else spec.impl(ctx, args)

    def _reduce(self, name: str, args: List[Value]) -> Optional[Value]:
        v = args[0]
        d = np.asarray(v.data)
        k = d.ndim - 1
        if k < 1 or d[0:1].size == 0 and len(d) or v.null is not None:
            return None
        axis = None
        if len(args) > 1:
            a = args[1]
            if a.kind != "const" or np.ndim(a.data) != 0 or not isinstance(a.data, (np.integer, int)):
                return None
            axis = int(a.data)
            if not -k <= axis < k:
                return None  # the NumPy path raises the error
        axes = tuple(range(1, d.ndim)) if axis is None else (axis % k + 1,)
        np_fn: Callable[..., Any] = _NP_REDUCE[name]
        want = np.asarray(np_fn(np.ones((1,) * d.ndim, d.dtype), axis=axes)).dtype
        if want not in _TORCH:
            return None
        # one reduced dim: the sample flattened (no axis) or the one axis
        dim = 1 if axis is None else axis % k + 1
        src = d.reshape(len(d), -1) if axis is None else d
        if name in ("MIN", "AMIN", "MAX", "AMAX"):
            t = _tensor(src, d.dtype, self.device)
            if d.dtype == np.bool_:  # torch has no amin/amax on bool
                t = t.to(torch.uint8)
            out = _numpy(_REDUCE[name](t, dim=dim)).astype(want)
        elif name in ("MEAN", "AVG"):
            out = _numpy(torch.mean(_tensor(src, want, self.device), dim=dim))
        else:
            out = _numpy(_REDUCE[name](_tensor(src, d.dtype, self.device), dim=dim, dtype=_TORCH[want]))
        return Value("array", np.asarray(out, want))

    def _vector(self, name: str, a: Value, b: Value) -> Optional[Value]:
        if a.kind == "const" and b.kind != "const":
            a, b = b, a
        if a.kind != "array" or b.kind != "const" or a.null is not None or not _plain(a):
            return None
        m, vec = np.asarray(a.data), np.asarray(b.data)
        if m.dtype.kind != "f" or m.ndim != 2 or vec.ndim != 1 or vec.dtype.kind not in "iuf" or vec.shape[0] != m.shape[1] or not vec.shape[0]:
            return None
        tm = _tensor(m, m.dtype, self.device)
        tv = _tensor(vec.astype(m.dtype), m.dtype, self.device)
        if name == "DOT":
            out = tm @ tv
        elif name == "L2_DISTANCE":
            out = torch.linalg.vector_norm(tm - tv, dim=1)
        else:
            out = (tm @ tv) / (torch.linalg.vector_norm(tm, dim=1) * torch.linalg.vector_norm(tv))
        return Value("array", _numpy(out).astype(m.dtype))

    # -- ORDER BY ... LIMIT ---------------------------------------------------------------------
    def top_k(self, vals: np.ndarray, null: np.ndarray, k: int, desc: bool, fallback: Callable[[np.ndarray, np.ndarray, int, bool], np.ndarray]) -> np.ndarray:
        """torch.topk finds the k-th key; the rows before it and the first ties (row order)
        are then sorted stably, so the rows equal a full stable sort's first k."""
        valid = np.flatnonzero(~null)
        if k <= 0 or vals.dtype not in _TORCH or vals.dtype == np.bool_ or k >= len(valid):
            return fallback(vals, null, k, desc)
        keys = _tensor(vals[valid], vals.dtype, self.device)
        kth = torch.topk(keys, k, largest=desc, sorted=True).values[-1]
        better = keys > kth if desc else keys < kth
        ties = torch.nonzero(keys == kth).reshape(-1)
        below = torch.nonzero(better).reshape(-1)
        chosen = torch.cat([below, ties[: k - below.numel()]])
        chosen, _ = torch.sort(chosen)
        order = torch.sort(keys[chosen], descending=desc, stable=True).indices
        rows: np.ndarray = valid[_numpy(chosen[order])].astype(np.int64)
        return rows
