"""The executor: runs a plan over a dataset, whole columns at a time.

Rows flow as a `Frame` (row positions in the dataset queried, plus every value computed so
far over those rows). WHERE turns into one boolean mask, ORDER BY into one permutation (a
stable `np.lexsort`, or a top-k with `np.argpartition`), LIMIT/OFFSET into a slice; values
already computed follow the rows through `Value.take` instead of being read again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat import _native, temporal
from lakeformat.tql import ast as A
from lakeformat.tql import operators as ops
from lakeformat.tql.blocked import block_starts, eval_blocked, top_k_blocked
from lakeformat.tql.errors import TQLError
from lakeformat.tql.functions import CallContext, data_sample, lookup
from lakeformat.tql.planner import Plan, SelectPlan, SetPlan
from lakeformat.tql.reader import ColumnReader, fresh_buffers
from lakeformat.tql.text_ops import order_key as text_order_key
from lakeformat.tql.values import Value, const
from lakeformat.tql.versions import VersionContext, read_versioned

if TYPE_CHECKING:  # torch is imported only when backend="torch" is asked for
    from lakeformat.tql.torch_backend import TorchBackend


class NodeKey:
    """A syntax-tree node as a dict key whose hash is computed once: hashing a frozen node
    walks its whole subtree (an ARRAY[...] of 384 numbers), once per lookup otherwise. Equal
    to the node itself and to any key of an equal node, so equal subexpressions share a
    cached value."""
    __slots__ = ("node", "hash")

    def __init__(self, node: Any):
        self.node = node
        self.hash = hash(node)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return bool(self.node == (other.node if isinstance(other, NodeKey) else other))


class TakenCache(Dict[Any, Value]):
    """The cache of a frame taken from another: the parent's values, each taken at the
    positions when first looked up (a WHERE keeps 5% of 10M rows: the columns it read are
    cut down only if a later step uses them)."""

    def __init__(self, parent: Dict[Any, Value], positions: np.ndarray):
        super().__init__()
        self.parent, self.positions = parent, positions

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.parent

    def __getitem__(self, key: Any) -> Value:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        v = self.parent[key].take(self.positions)
        self[key] = v
        return v


@dataclass
class Frame:
    rows: np.ndarray  # int64 positions in the dataset queried
    columns: Dict[str, Value] = field(default_factory=dict)  # a sub-query's computed columns
    cache: Dict[Any, Value] = field(default_factory=dict)  # tensors read and expressions evaluated
    is_run: bool = False  # known to be consecutive rows (every row of the source): no check needed

    def take(self, positions: np.ndarray) -> "Frame":
        return Frame(self.rows[positions], {k: v.take(positions) for k, v in self.columns.items()}, TakenCache(self.cache, positions))


@dataclass
class Selection:
    """What a plan selects: rows, the computed columns over them, the tensors picked."""
    rows: np.ndarray
    columns: Dict[str, Value]
    tensors: Optional[Tuple[str, ...]]  # None: all
    groups: Optional[List[np.ndarray]] = None  # GROUP BY: per row, its group's rows
    items: Optional[np.ndarray] = None  # UNGROUP BY: per row, the item of `rows[k]`'s sequences


class Executor:
    def __init__(self, reader: ColumnReader, length: int, text: str, params: Sequence[Any], rng: np.random.Generator, *, versions: Optional[VersionContext] = None, backend: str = "numpy"):
        self.reader = reader
        if backend not in ("numpy", "torch"):
            raise TQLError(f"unknown backend {backend!r}: use 'numpy' or 'torch'")
        self.backend: Optional[TorchBackend] = None  # None: the NumPy operators; torch: tql/torch_backend.py
        if backend == "torch":  # imported only when asked: `import lakeformat` never loads torch
            from lakeformat.tql.torch_backend import TorchBackend
            self.backend = TorchBackend()
        self.versions = versions  # reads `name@version` (tql/versions.py)
        self.length = length
        self.text = text
        self.params = list(params)
        self.rng = rng
        self.renames: Dict[str, str] = {}
        self.node_keys: Dict[int, NodeKey] = {}  # frame-cache keys by node id
        self.constants: Dict[int, Value] = {}  # ARRAY[...] literals by node id: the plan's nodes live as long as the run

    # -- plans -------------------------------------------------------------------------------------
    def run(self, plan: Plan) -> Selection:
        if isinstance(plan, SetPlan):
            left, right = self.run(plan.left), self.run(plan.right)
            return Selection(_set_op(plan.op, left.rows, right.rows), {}, left.tensors)
        return self.run_select(plan)

    def run_select(self, plan: SelectPlan) -> Selection:
        self.renames.update(plan.renames)
        if plan.source is not None:
            inner = self.run(plan.source)
            frame = Frame(inner.rows, dict(inner.columns))
        else:
            frame = Frame(np.arange(self.length, dtype=np.int64), is_run=True)
        if plan.where is not None:  # chunks skipped by statistics, LIMIT short-circuit: tql/pushdown.py
            from lakeformat.tql.pushdown import run_where

            frame = run_where(self, plan, frame)
        q = plan.query
        if q.expand_by is not None:
            frame = Frame(expand_rows(frame.rows, q.expand_by.before, q.expand_by.after, self.length))
        if plan.grouping is not None:  # GROUP BY / UNGROUP BY: tql/grouping.py
            from lakeformat.tql.grouping import run_grouping

            return run_grouping(self, plan, frame)
        n = len(frame.rows)
        start, count = self.window(plan, n)
        if q.sample_by is not None:
            frame = frame.take(self.sample(q.sample_by, frame, count))
            start = 0
            n = count = len(frame.rows)
        # one numeric ORDER BY key over many rows: a top-k per block of rows (tql/blocked.py)
        blocked = None
        if plan.order and plan.strategy == "top-k" and len(plan.order) == 1 and self.backend is None:
            try:
                blocked = top_k_blocked(self, plan.order[0], frame, min(n, start + count))
            except TQLError as e:
                raise e.at(self.text, plan.order[0].pos) from None
        if blocked is not None:
            positions = blocked[start:start + count]
        elif plan.order:
            keys = [(self.order_values(k, frame), k.descending) for k in plan.order]
            if plan.strategy == "top-k" and keys[0][0][0].dtype.kind in "iubf":
                (vals, null), desc = keys[0]
                kk = min(n, start + count)
                perm = self.backend.top_k(vals, null, kk, desc, top_k) if self.backend else top_k(vals, null, kk, desc)
            else:
                perm = sort_permutation([(v, nl, d) for (v, nl), d in keys])
            positions = perm[start:start + count]
        else:
            positions = np.arange(start, min(n, start + count), dtype=np.int64)
        frame = frame.take(positions)
        columns = {o.name: column_per_row(self.eval(o.expr, frame), len(frame.rows)) for o in plan.outputs if o.computed}
        tensors = None if plan.star else tuple(o.name for o in plan.outputs if not o.computed)
        return Selection(frame.rows, columns, tensors)

    def sample(self, spec: A.SampleBy, frame: Frame, count: int) -> np.ndarray:
        """Positions of `count` rows drawn with probability proportional to each row's
        weight: the largest (MAX_WEIGHT) or the sum (SUM_WEIGHT) of the weights of the
        conditions it meets; a row that meets none is never drawn. Seeded by run(seed=)."""
        n = len(frame.rows)
        w = np.zeros(n)
        for cond, weight in spec.weights:
            try:
                mask = ops.row_mask(self.eval(cond, frame), n)
            except TQLError as e:
                raise e.at(self.text, cond.pos) from None
            try:
                v = self.eval(weight, frame)
                if v.kind == "const" and (isinstance(v.data, (str, tuple)) or v.data is None or np.ndim(v.data) != 0):
                    raise TQLError("a SAMPLE BY weight is a number")
                if v.kind == "const":
                    wv = np.full(n, float(v.data))
                else:
                    vals, null = order_key(v, n)  # one number per row
                    if vals.dtype.kind not in "biuf":
                        raise TQLError("a SAMPLE BY weight is a number")
                    wv = np.where(null, 0.0, vals.astype(np.float64))
            except TQLError as e:
                raise e.at(self.text, weight.pos) from None
            if (wv[mask] < 0).any() or not np.isfinite(wv[mask]).all():
                raise TQLError("SAMPLE BY weights must be finite numbers >= 0", self.text, weight.pos)
            part = np.where(mask, wv, 0.0)
            w = np.maximum(w, part) if spec.mode == "MAX_WEIGHT" else w + part
        total = w.sum()
        if n == 0 or count == 0 or total <= 0:
            return np.zeros(0, np.int64)
        replace = spec.replace is None or spec.replace
        if not replace:
            count = min(count, int(np.count_nonzero(w)))  # without replacement: at most every weighted row once
        return self.rng.choice(n, size=count, replace=replace, p=w / total).astype(np.int64)

    def window(self, plan: SelectPlan, n: int) -> Tuple[int, int]:
        """(offset, how many) from LIMIT [PERCENT] and OFFSET."""
        start = 0
        if plan.offset is not None:
            start = self.count_of(plan.offset, "OFFSET")
        count = n
        if plan.limit is not None:
            if plan.limit.percent:
                p = self.number_of(plan.limit.count, "LIMIT ... PERCENT")
                if not 0 <= p <= 100:
                    raise TQLError(f"LIMIT ... PERCENT takes 0 to 100, got {p}", self.text, plan.limit.count.pos)
                count = int(n * p // 100)  # rounded down
            else:
                count = self.count_of(plan.limit.count, "LIMIT")
        return start, count

    def number_of(self, e: A.Expr, what: str) -> float:
        v = self.eval(e, Frame(np.zeros(0, np.int64)))
        if v.kind != "const" or isinstance(v.data, (str, tuple)) or v.data is None or np.ndim(v.data) != 0 or isinstance(v.data, (bool, np.bool_)):
            raise TQLError(f"{what} takes a number", self.text, e.pos)
        return float(v.data)

    def count_of(self, e: A.Expr, what: str) -> int:
        x = self.number_of(e, what)
        if x < 0 or not x.is_integer():
            raise TQLError(f"{what} takes a whole number >= 0, got {x:g}", self.text, e.pos)
        return int(x)

    def order_values(self, key: A.OrderKey, frame: Frame) -> Tuple[np.ndarray, np.ndarray]:
        try:
            return order_key(self.eval_wide(key.expr, frame), len(frame.rows))
        except TQLError as e:
            raise e.at(self.text, key.pos) from None

    def eval_wide(self, e: A.Expr, frame: Frame) -> Value:
        """`eval`, a block of rows at a time where the rows it reads are wide (embeddings):
        the same value, without one array of every row's samples (tql/blocked.py)."""
        key = self.key_of(e)
        if key in frame.cache:
            return frame.cache[key]
        starts = block_starts(self.reader, e, frame, renames=self.renames)
        if starts:
            v = eval_blocked(self.eval, e, frame, starts)
            if v is not None:
                frame.cache[key] = v
                return v
        return self.eval(e, frame)

    def key_of(self, e: A.Expr) -> "NodeKey":
        """The frame-cache key of a node: its hash (a walk of the whole subtree) made once."""
        key = self.node_keys.get(id(e))
        if key is None:
            key = self.node_keys[id(e)] = NodeKey(e)
        return key

    # -- expressions ---------------------------------------------------------------------------------
    def eval(self, e: A.Expr, frame: Frame) -> Value:
        cacheable = not isinstance(e, (A.Literal, A.Param)) and not (isinstance(e, A.Call) and e.name == "RANDOM")
        key = self.key_of(e) if cacheable else None
        if key is not None and key in frame.cache:
            return frame.cache[key]
        try:
            v = self._eval(e, frame)
        except TQLError as err:
            raise err.at(self.text, e.pos) from None
        if key is not None:
            frame.cache[key] = v
        return v

    def _eval(self, e: A.Expr, frame: Frame) -> Value:
        n = len(frame.rows)
        if isinstance(e, A.Literal):
            return const(e.value)
        if isinstance(e, A.Param):
            if e.index >= len(self.params):
                raise TQLError(f"parameter {e.index + 1} has no value: {len(self.params)} given")
            return _param(self.params[e.index])
        if isinstance(e, A.Identifier):
            if e.version is not None:
                return read_versioned(self.versions, e.name, e.version, frame.rows)
            if e.name in frame.columns:
                return frame.columns[e.name]
            return self.reader(self.renames.get(e.name, e.name), frame.rows)
        if isinstance(e, A.ArrayLiteral):
            known = self.constants.get(id(e))  # one evaluation per query, not per block of rows
            if known is not None:
                return known
            items = [self.eval(i, frame) for i in e.items]
            if any(i.kind != "const" or isinstance(i.data, (str, tuple)) or i.data is None for i in items):
                raise TQLError("ARRAY[...] takes numbers (or nested ARRAY[...])")
            try:
                value = Value("const", np.asarray([i.data for i in items]) if items else np.zeros((0,)))
            except ValueError:
                raise TQLError("ARRAY[...] rows of different lengths") from None
            self.constants[id(e)] = value
            return value
        if isinstance(e, A.Unary):
            v = self.eval(e.operand, frame)
            if e.op == "NOT":
                return ops.logical_not(v, n)
            return ops.negate(v, n) if e.op == "-" else (v if v.is_numeric else ops.negate(v, n))
        if isinstance(e, A.Binary):
            a, b = self.eval(e.left, frame), self.eval(e.right, frame)
            if e.op in ("AND", "OR"):
                return ops.logical(e.op, a, b, n)
            if e.op in ("+", "-", "*", "/", "%"):
                return (self.backend or ops).arithmetic(e.op, a, b, n)
            a, b = _time_literals(a, b)
            return (self.backend or ops).compare(e.op, a, b, n)
        if isinstance(e, A.InList):
            out = ops.in_list(self.eval(e.expr, frame), [self.eval(i, frame) for i in e.items], n)
            return ops.logical_not(out, n) if e.negated else out
        if isinstance(e, A.Between):
            v = self.eval(e.expr, frame)
            _, low = _time_literals(v, self.eval(e.low, frame))
            _, high = _time_literals(v, self.eval(e.high, frame))
            out = ops.logical("AND", ops.compare(">=", v, low, n), ops.compare("<=", v, high, n), n)
            return ops.logical_not(out, n) if e.negated else out
        if isinstance(e, A.Like):
            out = ops.like(self.eval(e.expr, frame), self.eval(e.pattern, frame), e.case_insensitive, n)
            return ops.logical_not(out, n) if e.negated else out
        if isinstance(e, A.IsNull):
            out = ops.is_null(self.eval(e.expr, frame), n)
            return ops.logical_not(out, n) if e.negated else out
        if isinstance(e, A.Call):
            spec = lookup(e.name)
            if spec is None:
                raise TQLError(f"unknown function {e.name}")
            if e.name == "DATA":  # DATA(tensor, row) reads one sample through the reader
                return data_sample(e.args, self._read_fresh, self.length, lambda x: self.eval(x, frame))
            args = [self.eval(a, frame) for a in e.args]
            ctx = CallContext(n, frame.rows, self.rng)
            return self.backend.call(spec, ctx, args) if self.backend else spec.impl(ctx, args)
        if isinstance(e, A.Subscript):
            target = self.eval(e.expr, frame)
            index = tuple(self.index_item(i, frame) for i in e.items)
            return ops.subscript(target, index, n)
        raise TQLError(f"cannot evaluate {type(e).__name__}")

    def _read_fresh(self, name: str, rows: np.ndarray) -> Value:
        """A tensor's rows in arrays of their own, never a block's reused array (tql/reader.py)."""
        with fresh_buffers():
            return self.reader(self.renames.get(name, name), rows)

    def index_item(self, item: Any, frame: Frame) -> Any:
        if isinstance(item, A.Slice):
            parts = [None if p is None else self.slice_bound(p, frame) for p in (item.start, item.stop, item.step)]
            if parts[2] == 0:
                raise TQLError("slice step cannot be zero", self.text, item.step.pos if item.step else item.pos)
            return slice(*parts)
        v = self.eval(item, frame)
        if v.kind == "const" and isinstance(v.data, str):
            return v.data
        return self.slice_bound(item, frame)

    def slice_bound(self, e: A.Expr, frame: Frame) -> int:
        v = self.eval(e, frame)
        if v.kind != "const" or isinstance(v.data, (str, tuple)) or v.data is None or np.ndim(v.data) != 0 or isinstance(v.data, (bool, np.bool_)) or not float(v.data).is_integer():
            raise TQLError("an index or slice bound must be an integer constant", self.text, e.pos)
        return int(v.data)


def _time_literals(a: Value, b: Value) -> Tuple[Value, Value]:
    """A string literal beside a time column becomes the int64 the column stores for it."""
    def conv(lit: Value, col: Value) -> Value:
        if col.time is None or lit.kind != "const" or not isinstance(lit.data, str):
            return lit
        try:
            return Value("const", np.int64(temporal.iso_to_stored(lit.data, *col.time)))
        except ValueError as err:
            raise TQLError(str(err)) from None
    return conv(a, b), conv(b, a)


def expand_rows(rows: np.ndarray, before: int, after: int, length: int) -> np.ndarray:
    """Each row with `before` rows before it and `after` after it in the dataset, each row
    once, in dataset order."""
    if not len(rows):
        return rows
    offsets = np.arange(-before, after + 1, dtype=np.int64)
    cand = (rows[:, None] + offsets[None, :]).reshape(-1)
    return np.unique(cand[(cand >= 0) & (cand < length)])


def column_per_row(v: Value, n: int) -> Value:
    """A computed column has one entry per row: a constant is repeated."""
    if v.kind != "const":
        return v
    if v.data is None or isinstance(v.data, (str, tuple)):
        out = np.empty(n, dtype=object)
        out[:] = [list(v.data) if isinstance(v.data, tuple) else v.data] * n if n else []
        return Value("text" if isinstance(v.data, str) or v.data is None else "json", out)
    arr = np.asarray(v.data)
    return Value("array", np.broadcast_to(arr, (n,) + arr.shape).copy())


def _param(x: Any) -> Value:
    """A Python value bound to `?`."""
    if x is None or isinstance(x, (str, bool, int, float, np.generic)):
        return const(x.item() if isinstance(x, np.generic) else x)
    if isinstance(x, (list, tuple)) and all(isinstance(v, str) for v in x) and x:
        return Value("const", tuple(x))
    try:
        arr = np.asarray(x)
    except Exception:
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "biuf":
        raise TQLError(f"a parameter must be a number, a string, a list of strings or a numeric array, not {type(x).__name__}")
    return Value("const", arr)


def order_key(v: Value, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """One sort key per row: (values, null mask). A per-row scalar (one element) or NULL (no
    element); NaN counts as NULL. Several elements in a row: a TQLError."""
    def many(shape: Any) -> TQLError:
        return TQLError(f"ORDER BY needs one value per row, got samples of shape {tuple(shape)}")
    if v.kind == "const":
        return np.zeros(n), np.zeros(n, bool)
    if v.kind == "array":
        d = v.data
        item = int(np.prod(d.shape[1:])) if d.ndim > 1 else 1
        if item == 0:
            return np.zeros(n), np.ones(n, bool)
        if item != 1:
            raise many(d.shape[1:])
        vals = d.reshape(n)
    elif v.kind == "ragged":
        r = v.data  # a Ragged: one element per row, or none (NULL)
        sizes = r.sizes
        if (sizes > 1).any():
            raise many(r.row(int(np.argmax(sizes > 1))).shape)
        null = sizes == 0
        vals = np.zeros(n, r.dtype if (~null).any() else np.float64)
        vals[~null] = r.values[r.offsets[:-1][~null]]
        return _nan_null(vals, null)
    elif v.kind == "text":
        return text_order_key(v)  # fixed-width UTF-8 bytes: code point order, no str per row
    else:
        data = v.data
        null = np.fromiter((x is None for x in data), bool, n)
        present = [x for x in data if x is not None]
        if all(isinstance(x, str) for x in present):
            vals = np.asarray([x if x is not None else "" for x in data], dtype=str) if n else np.zeros(0, str)
            return vals, null
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in present):
            vals = np.asarray([x if x is not None else 0 for x in data], dtype=np.float64)
            return _nan_null(vals, null)
        raise TQLError("ORDER BY needs numbers or strings")
    return _nan_null(vals, np.zeros(n, bool) if v.null is None else v.null.copy())


def _nan_null(vals: np.ndarray, null: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    if vals.dtype.kind == "f":
        null = null | np.isnan(vals)
    return vals, null


def _ranks(vals: np.ndarray, null: np.ndarray, desc: bool) -> np.ndarray:
    """Dense ranks of `vals` (descending ranks for DESC); NULLs rank last either way."""
    out = np.empty(len(vals), np.int64)
    uniq, inv = np.unique(vals[~null], return_inverse=True)
    out[~null] = (len(uniq) - 1 - inv) if desc else inv
    out[null] = len(uniq)
    return out


def _descending(vals: np.ndarray) -> np.ndarray:
    """A key whose ascending order is `vals`' descending order, without a sort."""
    if vals.dtype.kind == "b":
        return ~vals
    if vals.dtype.kind in "iu":
        return ~vals  # ~x = -x-1: order-reversing, never overflows
    return -vals


def sort_permutation(keys: Sequence[Tuple[np.ndarray, np.ndarray, bool]]) -> np.ndarray:
    """Stable multi-key order: the first key decides, ties go to the next, then to the
    incoming row order. Numbers sort as they are (one np.lexsort); strings by rank."""
    if not keys:
        return np.zeros(0, np.int64)
    columns: List[np.ndarray] = []
    for vals, null, desc in reversed(keys):  # np.lexsort: the last column decides first
        if vals.dtype.kind in "biuf":
            v = np.where(null, 0, vals).astype(vals.dtype) if null.any() else vals
            columns.append(_descending(v) if desc else v)
            columns.append(null)  # NULL last, whatever the direction
        else:
            columns.append(_ranks(vals, null, desc))
    return np.lexsort(columns).astype(np.int64)


def top_k(vals: np.ndarray, null: np.ndarray, k: int, desc: bool) -> np.ndarray:
    """The first k positions of the stable order of `vals` (NULLs last), never a full sort:
    the C kernel's heap of k rows (`_native.top_k`) for a small k, `np.argpartition` where k
    is a large share of the rows (a heap is then slower). Equal to sort_permutation(...)[:k]."""
    if k <= 0:
        return np.zeros(0, np.int64)
    keys = vals
    if keys.dtype.kind in "biu" and keys.dtype != np.uint64:
        keys = keys.astype(np.int64)
    elif keys.dtype.kind == "f" and keys.dtype not in (np.float32, np.float64):
        keys = keys.astype(np.float64)
    if k <= max(1024, len(vals) // 64) and keys.dtype in (np.int64, np.uint64, np.float32, np.float64):
        out = np.empty(min(k, len(keys)), np.int64)
        got = _native.top_k(np.ascontiguousarray(keys).data, k, desc, out.data, (~null).view(np.uint8).data)
        if got < k and null.any():
            out = np.concatenate([out[:got], np.flatnonzero(null)])
        return out[:k].astype(np.int64)
    valid = np.flatnonzero(~null)
    key = vals[valid]
    if key.dtype.kind == "b":
        key = key.astype(np.int8)
    if desc:
        key = ~key if key.dtype.kind in "iu" else -key  # ~x = -x-1 never overflows
    if k >= len(valid):
        order = valid[np.argsort(key, kind="stable")]
        return np.concatenate([order, np.flatnonzero(null)])[:k].astype(np.int64)
    part = np.argpartition(key, k - 1)[:k]
    threshold = key[part].max()
    below = np.flatnonzero(key < threshold)
    ties = np.flatnonzero(key == threshold)[: k - len(below)]  # ties keep row order, as a stable sort does
    chosen = np.concatenate([below, ties])
    chosen = chosen[np.lexsort((chosen, key[chosen]))]
    rows: np.ndarray = valid[chosen].astype(np.int64)
    return rows


def _set_op(op: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Row lists combined as sets, in first-seen order."""
    def distinct(a: np.ndarray) -> np.ndarray:
        _, first = np.unique(a, return_index=True)
        return a[np.sort(first)]
    if op == "UNION":
        return distinct(np.concatenate([left, right]).astype(np.int64))
    left = distinct(left)
    keep = np.isin(left, right)
    return left[keep] if op == "INTERSECT" else left[~keep]
