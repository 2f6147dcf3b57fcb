"""GROUP BY and UNGROUP BY: planning and running them (docs/tql.md, "GROUP BY and UNGROUP BY").

GROUP BY turns the rows WHERE kept into groups of equal keys (rows to sequences): one result
row per group, in order of first appearance, with the group's rows as its members. Keys are
one value per row (numbers, class labels by id, text, json scalars); NULL keys (empty
samples, None, NaN) form one group of their own. SELECT items over a group are the keys, the
aggregates COUNT(*), COUNT(x), SUM, MEAN/AVG, MIN, MAX of one value per row, and expressions
of those; ORDER BY, LIMIT and OFFSET then apply to the groups. Everything is vectorised: keys
become integer codes with `np.unique`, aggregates one `reduceat` over rows sorted by group.

UNGROUP BY splits each row of sequence tensors into one row per item; its result rows are
(row, item) pairs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lakeformat.tql import ast as A
from lakeformat.tql import values as V
from lakeformat.tql.errors import TQLError
from lakeformat.tql.executor import Executor, Frame, Selection, column_per_row, sort_permutation
from lakeformat.tql.functions import lookup
from lakeformat.tql.grouped_view import item_counts
from lakeformat.tql.planner import Output, Plan, SelectPlan, output_names
from lakeformat.tql.unparse import to_text
from lakeformat.tql.values import Value

AGGREGATES = ("COUNT", "SUM", "MEAN", "AVG", "MIN", "MAX")


@dataclass(frozen=True)
class Grouping:
    """What a SELECT's GROUP BY or UNGROUP BY does (SelectPlan.grouping)."""
    mode: str  # "group" or "ungroup"
    keys: Tuple[A.Expr, ...]
    key_names: Tuple[str, ...]
    aggregates: Tuple[A.Call, ...] = ()

    def describe(self) -> str:
        if self.mode == "ungroup":
            return "ungroup: one row per item of " + ", ".join(self.key_names)
        aggs = ", ".join(_name_of(a) for a in self.aggregates)
        return "group by: " + ", ".join(self.key_names) + " (groups in order of first appearance)" + (f"; aggregates: {aggs}" if aggs else "")


def _name_of(e: A.Expr) -> str:
    if isinstance(e, A.Call) and e.name == "COUNT" and not e.args:
        return "COUNT(*)"
    return to_text(e)


def _children(e: Any) -> List[Any]:
    if isinstance(e, A.Unary):
        return [e.operand]
    if isinstance(e, A.Binary):
        return [e.left, e.right]
    if isinstance(e, A.InList):
        return [e.expr, *e.items]
    if isinstance(e, A.Between):
        return [e.expr, e.low, e.high]
    if isinstance(e, A.Like):
        return [e.expr, e.pattern]
    if isinstance(e, A.IsNull):
        return [e.expr]
    if isinstance(e, A.Call):
        return list(e.args)
    if isinstance(e, A.ArrayLiteral):
        return list(e.items)
    if isinstance(e, A.Subscript):
        return [e.expr, *e.items]
    if isinstance(e, A.Slice):
        return [b for b in (e.start, e.stop, e.step) if b is not None]
    return []


# -- planning --------------------------------------------------------------------------------------
def plan_grouped(planner: Any, q: A.Select) -> SelectPlan:
    """The plan of a SELECT with GROUP BY or UNGROUP BY (`planner` is the planner's `_Planner`)."""
    err = planner.err
    if q.group_by and q.ungroup_by:
        raise err("GROUP BY and UNGROUP BY in one SELECT: ungroup in a query on the grouped result", q.ungroup_by[0].pos)
    clause = q.group_by or q.ungroup_by
    if q.sample_by is not None:
        raise err("SAMPLE BY with GROUP BY or UNGROUP BY: sample in a query on the result", q.sample_by.pos)
    source: Optional[Plan] = None
    columns = frozenset()  # type: ignore[var-annotated]
    if isinstance(q.source, A.SubquerySource):
        source = planner.plan(q.source.query)
        if isinstance(source, SelectPlan) and source.grouping is not None:
            raise err("a sub-query with GROUP BY or UNGROUP BY: query its result instead (tql.run(result.view, ...))", q.source.pos)
        columns = frozenset(output_names(source))
    reads: List[str] = []
    if q.where is not None:
        planner.check_expr(q.where, columns, reads)
    if q.expand_by is not None:
        if source is not None:
            raise err("EXPAND BY adds the dataset's neighbouring rows: it runs on the dataset, not on a sub-query", q.expand_by.pos)
        if q.expand_by.before < 0 or q.expand_by.after < 0:
            raise err("EXPAND BY takes two counts >= 0 (rows before, rows after)", q.expand_by.pos)
    keys = tuple(clause)
    for k in keys:
        if q.ungroup_by and not isinstance(k, A.Identifier):
            raise err("UNGROUP BY takes sequence tensors (names), not expressions", k.pos)
        planner.check_expr(k, columns, reads)
    key_names = tuple(_name_of(k) for k in keys)
    star = False
    outputs: List[Output] = []
    for item in q.items:
        if isinstance(item.expr, A.Star):
            star = True
            continue
        e = item.expr
        plain = isinstance(e, A.Identifier) and item.alias is None and e.name not in columns
        if plain:
            planner.check_expr(e, columns, [])
        elif q.ungroup_by:
            raise err("UNGROUP BY passes tensors through: compute columns in a query on its result", item.pos)
        name = item.alias or (e.name if isinstance(e, A.Identifier) else _name_of(e))
        if any(o.name == name for o in outputs):
            raise err(f"two columns named {name!r}; name one with AS", item.pos)
        outputs.append(Output(name, e, not plain))
    aggregates: List[A.Call] = []
    order: List[A.OrderKey] = []
    if q.ungroup_by:
        if q.order_by:
            raise err("ORDER BY with UNGROUP BY: order the items in a query on its result", q.order_by[0].pos)
        grouping = Grouping("ungroup", keys, key_names)
    else:
        for o in outputs:
            if o.computed:
                _check_grouped(planner, o.expr, keys, columns, reads, aggregates)
        aliases = {o.name: o.expr for o in outputs if o.computed}
        for key in q.order_by:
            e = key.expr
            if isinstance(e, A.Identifier) and e.name in aliases and e.name not in columns:
                e = aliases[e.name]
            _check_grouped(planner, e, keys, columns, reads, aggregates)
            order.append(A.OrderKey(e, key.descending, pos=key.pos))
        grouping = Grouping("group", keys, key_names, tuple(aggregates))
    strategy = "sort" if order else "none"
    return SelectPlan(q, source, tuple(reads), q.where, tuple(order), strategy, q.limit, q.offset, tuple(outputs), star,
                      columns, dict(planner.renames), grouping=grouping)


def _check_grouped(planner: Any, e: Any, keys: Tuple[A.Expr, ...], columns: Any, reads: List[str], found: List[A.Call]) -> None:
    """An expression over groups: made of GROUP BY keys, aggregates and constants."""
    if e in keys or isinstance(e, (A.Literal, A.Param)):
        return
    if isinstance(e, A.Call) and e.name in AGGREGATES and (e.name == "COUNT" or len(e.args) == 1):
        if e.name == "COUNT" and len(e.args) > 1:
            raise planner.err("COUNT takes * or one value per row", e.pos)
        for a in e.args:
            planner.check_expr(a, columns, reads)  # per row: any expression, even a reduction of a sample
        if e not in found:
            found.append(e)
        return
    if isinstance(e, A.Identifier):
        raise planner.err(f"{e.name!r} is not a GROUP BY key: group by it, or use it inside an aggregate ({', '.join(AGGREGATES)})", e.pos)
    if isinstance(e, A.Call):
        spec = lookup(e.name)
        if spec is None:
            raise planner.err(f"unknown function {e.name}", e.pos)
        if e.name in AGGREGATES:
            raise planner.err(f"{e.name} over a group takes one value per row ({e.name}(x)); reduce a sample inside it: {e.name}({e.name}(x, axis))", e.pos)
        if len(e.args) < spec.min_args or (spec.max_args is not None and len(e.args) > spec.max_args):
            raise planner.err(f"{e.name}: wrong number of arguments ({len(e.args)})", e.pos)
    for c in _children(e):
        _check_grouped(planner, c, keys, columns, reads, found)


# -- keys ------------------------------------------------------------------------------------------
def key_column(v: Value, n: int, what: str = "GROUP BY") -> Tuple[np.ndarray, np.ndarray]:
    """One key per row: (values, null mask). NULL: an empty sample, None, NaN."""
    def many(shape: Any) -> TQLError:
        return TQLError(f"{what} needs one value per row, got samples of shape {tuple(shape)}")
    if v.kind == "const":
        if v.data is None:
            return np.zeros(n), np.ones(n, bool)
        if isinstance(v.data, tuple) or np.ndim(v.data) != 0:
            raise many(np.shape(v.data))
        return np.full(n, v.data), np.zeros(n, bool)
    if v.kind in ("text", "json"):
        data = np.asarray(V.text_objects(v) if v.kind == "text" else v.data, dtype=object)
        null = np.fromiter((x is None for x in data), bool, n)
        present = [x for x in data if x is not None]
        if all(isinstance(x, str) for x in present):
            return (np.asarray([x if x is not None else "" for x in data], dtype=str) if n else np.zeros(0, str)), null
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in present):
            vals = np.asarray([x if x is not None else 0 for x in data], dtype=np.float64)
            return vals, null | np.isnan(vals)
        raise TQLError(f"{what} needs numbers or strings, not json objects or lists")
    if v.kind == "array":
        d = v.data
        item = int(np.prod(d.shape[1:])) if d.ndim > 1 else 1
        if item == 0:
            return np.zeros(n), np.ones(n, bool)
        if item != 1:
            raise many(d.shape[1:])
        vals = d.reshape(n)
        null = np.zeros(n, bool) if v.null is None else v.null.copy()
    else:
        rows = V.ragged_list(v)
        sizes = np.fromiter((np.size(r) for r in rows), np.int64, n)
        if (sizes > 1).any():
            raise many(np.shape(rows[int(np.argmax(sizes > 1))]))
        null = sizes == 0
        present = [np.asarray(r).reshape(-1) for r in rows if np.size(r)]
        vals = np.zeros(n, np.result_type(*[p.dtype for p in present]) if present else np.float64)
        if present:
            vals[~null] = np.concatenate(present)
    if vals.dtype.kind == "f":
        null = null | np.isnan(vals)
    return vals, null


def row_nulls(v: Value, n: int) -> np.ndarray:
    """Which rows are NULL: an empty sample, a None text or json value, a NaN scalar."""
    if v.kind == "const":
        return np.full(n, v.data is None)
    if v.kind in ("text", "json"):
        data = V.text_objects(v) if v.kind == "text" else v.data
        return np.fromiter((x is None for x in data), bool, n)
    if v.kind == "array":
        d = v.data
        item = int(np.prod(d.shape[1:])) if d.ndim > 1 else 1
        null = np.full(n, item == 0) if v.null is None else v.null | (item == 0)
        if item == 1 and d.dtype.kind == "f":
            null = null | np.isnan(d.reshape(n))
        return null
    out = np.zeros(n, bool)
    for i, r in enumerate(V.ragged_list(v)):
        a = np.asarray(r)
        out[i] = a.size == 0 or (a.size == 1 and a.dtype.kind == "f" and bool(np.isnan(a.reshape(-1)[0])))
    return out


def _codes(vals: np.ndarray, null: np.ndarray) -> Tuple[np.ndarray, int]:
    """Dense integer codes of the values in [0, m), and m; NULL gets a code of its own.
    Small non-negative integers (class labels, small keys) are coded without a sort."""
    n = len(vals)
    codes = np.empty(n, np.int64)
    present = vals[~null]
    if vals.dtype.kind in "biu" and len(present) and int(present.min()) >= 0 and int(present.max()) < 4 * n + 1024:
        ids = present.astype(np.int64)
        seen = np.zeros(int(ids.max()) + 1, bool)
        seen[ids] = True
        remap = np.cumsum(seen) - 1
        codes[~null] = remap[ids]
        m = int(seen.sum())
    else:
        uniq, inv = np.unique(present, return_inverse=True)
        codes[~null] = inv.reshape(-1)
        m = len(uniq)
    codes[null] = m
    return codes, m + 1


def _sortable(a: np.ndarray, bound: int) -> np.ndarray:
    """`a` (values below `bound`) as uint16 where it fits: NumPy's stable sort of 16-bit
    integers is a radix sort, O(n)."""
    return a.astype(np.uint16) if bound <= 1 << 16 else a


@dataclass(frozen=True)
class GroupIndex:
    """Rows -> groups: `gid` per row (groups numbered by first appearance), `members` the
    row positions sorted by group (stable), `starts`/`counts` each group's slice of them."""
    gid: np.ndarray
    members: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    first: np.ndarray  # each group's first row position

    @property
    def size(self) -> int:
        return len(self.counts)


def group_index(codes: List[Tuple[np.ndarray, int]], n: int) -> GroupIndex:
    """Group the rows whose codes (one array per key) are all equal."""
    c, m = codes[0]
    for more, mm in codes[1:]:
        if m * mm > 4 * n + 1024:  # keep the combined codes dense, so bincount stays small
            c, m = _codes(c, np.zeros(n, bool))
            m -= 1
        c, m = c * mm + more, m * mm
    if m > 4 * n + 1024:
        c, m = _codes(c, np.zeros(n, bool))
    counts = np.bincount(c, minlength=m)
    used = np.flatnonzero(counts)
    first_at = np.zeros(m, np.int64)
    first_at[c[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)  # the last write, the first row, wins
    first_of = first_at[used]
    by_first = np.argsort(first_of, kind="stable")
    rank = np.zeros(m, np.int64)
    rank[used[by_first]] = np.arange(len(used))
    gid = rank[c] if n else np.zeros(0, np.int64)
    g = len(used)
    members = np.argsort(_sortable(gid, g), kind="stable").astype(np.int64)
    gcounts = counts[used[by_first]].astype(np.int64)
    starts = (np.cumsum(gcounts) - gcounts).astype(np.int64)
    return GroupIndex(gid, members, starts, gcounts, first_of[by_first].astype(np.int64))


def _key_display(v: Value, vals: np.ndarray, null: np.ndarray) -> Value:
    """A key as a result column: a class label by name, text as text, a number as a number."""
    if v.class_names is not None and vals.dtype.kind in "iu":
        names = np.empty(len(vals), dtype=object)
        names[:] = [None if z else (v.class_names[int(x)] if 0 <= int(x) < len(v.class_names) else int(x)) for x, z in zip(vals, null)]
        return Value("text", names)
    if vals.dtype.kind in "US":
        out = np.empty(len(vals), dtype=object)
        out[:] = [None if z else str(x) for x, z in zip(vals, null)]
        return Value("text", out)
    return V.with_null(np.where(null, np.zeros(1, vals.dtype), vals) if null.any() else vals, null)


# -- aggregates ----------------------------------------------------------------------------------------
def _aggregate(name: str, vals: np.ndarray, null: np.ndarray, gi: GroupIndex) -> Value:
    """`name` of the non-null values of each group, NULL where a group has none (COUNT: 0)."""
    g = gi.size
    count = np.bincount(gi.gid[~null], minlength=g).astype(np.int64) if null.any() else gi.counts
    if name == "COUNT":
        return Value("array", count)
    if vals.dtype.kind not in "biuf":
        raise TQLError(f"{name} over a group takes numbers, not {'text' if vals.dtype.kind in 'UO' else vals.dtype}")
    if vals.dtype.kind == "b":
        vals = vals.astype(np.int64)
    empty = count == 0
    if name in ("SUM", "AVG"):
        acc = vals.astype(np.int64 if vals.dtype.kind in "iu" and name == "SUM" else np.float64)
        if null.any():
            acc = np.where(null, acc.dtype.type(0), acc)
        out = np.add.reduceat(acc[gi.members], gi.starts) if g else np.zeros(0, acc.dtype)
        if name == "AVG":
            out = out / np.maximum(count, 1)
        return V.with_null(out, empty)
    fill: Any
    if vals.dtype.kind == "f":
        fill = np.inf if name == "MIN" else -np.inf
    else:
        info = np.iinfo(vals.dtype)
        fill = info.max if name == "MIN" else info.min
    filled = np.where(null, vals.dtype.type(fill), vals) if null.any() else vals
    ufunc = np.minimum if name == "MIN" else np.maximum
    out = ufunc.reduceat(filled[gi.members], gi.starts) if g else np.zeros(0, vals.dtype)
    return V.with_null(np.where(empty, vals.dtype.type(0), out), empty)


def _aggregate_call(ex: Executor, call: A.Call, frame: Frame, gi: GroupIndex) -> Value:
    n = len(frame.rows)
    if not call.args:
        return Value("array", gi.counts)
    arg = call.args[0]
    try:
        v = ex.eval(arg, frame)
        if call.name == "COUNT":  # rows where x is not NULL, whatever x holds
            return _aggregate("COUNT", np.zeros(n), row_nulls(v, n), gi)
        vals, null = key_column(v, n, f"{call.name} over a group")
        name = "AVG" if call.name == "MEAN" else call.name
        return _aggregate(name, vals, null, gi)
    except TQLError as e:
        raise e.at(ex.text, arg.pos) from None


# -- running ---------------------------------------------------------------------------------------
def run_grouping(ex: Executor, plan: SelectPlan, frame: Frame) -> Selection:
    """Rows after WHERE (and EXPAND BY) -> the groups or items, ordered and windowed."""
    spec = plan.grouping
    assert isinstance(spec, Grouping)
    tensors = None if plan.star else tuple(o.name for o in plan.outputs if not o.computed)
    if spec.mode == "ungroup":
        return _ungroup(ex, plan, spec, frame, tensors)
    n = len(frame.rows)
    key_values: List[Value] = []
    cols: List[Tuple[np.ndarray, np.ndarray]] = []
    for k in spec.keys:
        v = ex.eval(k, frame)
        try:
            cols.append(key_column(v, n))
        except TQLError as e:
            raise e.at(ex.text, k.pos) from None
        key_values.append(v)
    gi = group_index([_codes(vals, null) for vals, null in cols], n)
    g = gi.size
    first_pos = gi.first
    # the groups' frame: keys and aggregates computed once, found by expression in its cache
    gframe = Frame(frame.rows[first_pos])
    display: Dict[str, Value] = {}
    for k, name, v, (vals, null) in zip(spec.keys, spec.key_names, key_values, cols):
        gframe.cache[k] = v.take(first_pos)
        display[name] = _key_display(v, vals[first_pos], null[first_pos])
    for call in spec.aggregates:
        gframe.cache[call] = _aggregate_call(ex, call, frame, gi)
    start, count = ex.window(plan, g)
    if plan.order:
        keys = [(*ex.order_values(k, gframe), k.descending) for k in plan.order]
        perm = sort_permutation(keys)
        positions = perm[start:start + count]
    else:
        positions = np.arange(start, min(g, start + count), dtype=np.int64)
    gframe = gframe.take(positions)
    columns = {name: v.take(positions) for name, v in display.items()}
    shown = dict(zip(spec.keys, spec.key_names))
    for o in plan.outputs:
        if o.computed:  # a key under an alias shows as the key does (class labels by name)
            columns[o.name] = columns[shown[o.expr]] if o.expr in shown else column_per_row(ex.eval(o.expr, gframe), len(positions))
    # only the groups kept get their row arrays (one slice each of the rows sorted by group)
    flat = frame.rows[gi.members]
    starts, counts = gi.starts[positions].tolist(), gi.counts[positions].tolist()
    groups = [flat[a:a + c] for a, c in zip(starts, counts)]
    return replace_selection(Selection(gframe.rows, columns, tensors), groups=groups)


def _ungroup(ex: Executor, plan: SelectPlan, spec: Grouping, frame: Frame, tensors: Optional[Tuple[str, ...]]) -> Selection:
    ds = getattr(ex.reader, "ds", None)
    if ds is None:
        raise TQLError("UNGROUP BY needs the dataset's reader (a custom reader= cannot ungroup)", ex.text, spec.keys[0].pos)
    lengths: Optional[np.ndarray] = None
    for k in spec.keys:
        assert isinstance(k, A.Identifier)
        t = ds[ex.renames.get(k.name, k.name)]
        if not getattr(t, "is_sequence", False):
            raise TQLError(f"UNGROUP BY takes sequence tensors: {k.name!r} is not one", ex.text, k.pos)
        counts = item_counts(t, frame.rows)
        if lengths is None:
            lengths = counts
        elif (counts != lengths).any():
            row = int(frame.rows[int(np.argmax(counts != lengths))])
            raise TQLError(f"UNGROUP BY tensors hold different numbers of items in row {row}", ex.text, k.pos)
    assert lengths is not None
    total = int(lengths.sum())
    rows = np.repeat(frame.rows, lengths)
    items = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    start, count = ex.window(plan, total)
    sl = slice(start, start + count)
    return replace_selection(Selection(rows[sl], {}, tensors), items=items[sl])


def replace_selection(sel: Selection, **kw: Any) -> Selection:
    return replace(sel, **kw)
