"""Operators over `Value`s: arithmetic, comparison, logic, IN, LIKE, IS NULL, subscripts.
Each runs as whole-column NumPy calls on "array" values, and on the flat buffer of "ragged"
values (tql/ragged_ops.py), row by row only where a ragged shape rules that out."""
from __future__ import annotations

import itertools
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.tql import text_ops
from lakeformat.tql.errors import TQLError
from lakeformat.tql import ragged_ops
from lakeformat.tql.ragged import Ragged
from lakeformat.tql.text_reader import LazyJson
from lakeformat.tql.values import Value, null_to_ragged, ragged_value, rows_flat, rowwise, with_null

ARITH_UFUNCS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "%": np.mod}
_CMP = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
_PY_CMP: Dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def quiet(fn: Any, *args: Any) -> Any:
    """A NumPy call with division-by-zero and empty-mean warnings silenced: NULL and NaN
    results are part of the semantics, not accidents."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args)


def describe(v: Value) -> str:
    if v.kind == "const":
        if isinstance(v.data, str):
            return "a string"
        if v.data is None:
            return "NULL"
        if isinstance(v.data, tuple):
            return "a list of strings"
        return "a number" if np.ndim(v.data) == 0 else "an array"
    return {"array": "a numeric tensor", "ragged": "a numeric tensor", "text": "a text tensor", "json": "a json tensor"}[v.kind]


def align(a: np.ndarray, a_rows: bool, b: np.ndarray, b_rows: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Line up two operands so that NumPy broadcasts sample shapes against each other (not
    the row axis against a sample axis): per-row arrays keep axis 0 as the row axis."""
    ia, ib = a.ndim - a_rows, b.ndim - b_rows
    nd = max(ia, ib)
    if a_rows:
        a = a.reshape(a.shape[:1] + (1,) * (nd - ia) + a.shape[1:])
    elif b_rows:
        a = a.reshape((1,) * (1 + nd - ia) + a.shape)
    if b_rows:
        b = b.reshape(b.shape[:1] + (1,) * (nd - ib) + b.shape[1:])
    elif a_rows:
        b = b.reshape((1,) * (1 + nd - ib) + b.shape)
    return a, b


def _numeric(v: Value) -> None:
    if not v.is_numeric:
        raise TQLError(f"expected a number or a numeric tensor, got {describe(v)}")


def row_null(a: Value, b: Value) -> Optional[np.ndarray]:
    if a.null is None:
        return b.null
    return a.null if b.null is None else a.null | b.null


def apply_ufunc(ufunc: Any, a: Value, b: Value, n: int) -> Value:
    """ufunc(a, b) per row, sample shapes broadcast NumPy's way; a NULL row stays NULL."""
    if a.kind == "ragged" or b.kind == "ragged":
        flat = _ragged_ufunc(ufunc, a, b)  # one call over the flat buffer, where it applies
        if flat is not None:
            return flat
        a, b = null_to_ragged(a), null_to_ragged(b)
        def one(x: Any, y: Any) -> Any:
            x, y = np.asarray(x), np.asarray(y)
            try:
                return quiet(ufunc, x, y)
            except ValueError:
                raise TQLError(f"sample shapes {x.shape} and {y.shape} do not broadcast") from None
        return rowwise(one, [a, b], n)
    if a.kind == "const" and b.kind == "const":
        try:
            return Value("const", quiet(ufunc, np.asarray(a.data), np.asarray(b.data))[()])
        except ValueError:
            raise TQLError(f"shapes {np.shape(a.data)} and {np.shape(b.data)} do not broadcast") from None
    x, y = align(np.asarray(a.data), a.kind == "array", np.asarray(b.data), b.kind == "array")
    try:
        out = quiet(ufunc, x, y)
    except ValueError:
        sa = np.shape(a.data)[1:] if a.kind == "array" else np.shape(a.data)
        sb = np.shape(b.data)[1:] if b.kind == "array" else np.shape(b.data)
        raise TQLError(f"sample shapes {tuple(sa)} and {tuple(sb)} do not broadcast") from None
    return Value("array", out, None, row_null(a, b))


def _ragged_ufunc(ufunc: Any, a: Value, b: Value) -> Optional[Value]:
    """The flat path of apply_ufunc (tql/ragged_ops.py); None where it does not apply."""
    if a.kind == "ragged":
        r, other, left = a, b, True
    else:
        r, other, left = b, a, False
    if other.kind == "ragged":
        res = ragged_ops.elementwise(ufunc, r.data, other.data, left)
    elif other.kind == "const" and isinstance(other.data, (np.ndarray, np.generic, int, float, bool)):
        res = ragged_ops.elementwise(ufunc, r.data, ("const", other.data), left)
    elif other.kind == "array":
        res = ragged_ops.elementwise(ufunc, r.data, ("array", other.data), left)
        if res is not None and other.null is not None:
            res = res.emptied(other.null)
    else:
        return None
    return None if res is None else ragged_value(res)


def bools_as_counts(v: Value) -> Value:
    """Booleans in arithmetic count as 0 and 1 (NumPy refuses `-` on bools)."""
    if v.kind == "ragged":
        if v.data.dtype == bool:
            return Value("ragged", v.data.with_values(v.data.values.astype(np.int64)))
        return v
    if np.asarray(v.data).dtype == bool:
        data = np.asarray(v.data).astype(np.int64)
        return Value(v.kind, data if v.kind == "array" else data[()], None, v.null)
    return v


def arithmetic(op: str, a: Value, b: Value, n: int) -> Value:
    _numeric(a)
    _numeric(b)
    return apply_ufunc(ARITH_UFUNCS[op], bools_as_counts(a), bools_as_counts(b), n)


def negate(a: Value, n: int) -> Value:
    _numeric(a)
    return apply_ufunc(np.subtract, Value("const", np.asarray(0)[()]), bools_as_counts(a), n)


def _label_ids(names: Sequence[str], class_names: Tuple[str, ...]) -> List[int]:
    out = []
    for s in names:
        if s not in class_names:
            raise TQLError(f"{s!r} is not one of the tensor's class names {list(class_names)}")
        out.append(class_names.index(s))
    return out


def _as_label(a: Value, b: Value) -> Value:
    """A string compared with a class_label tensor becomes its class id."""
    if a.class_names is not None and b.kind == "const" and isinstance(b.data, str):
        return Value("const", np.asarray(_label_ids([b.data], a.class_names)[0])[()])
    return b


def not_none(data: np.ndarray) -> np.ndarray:
    n = len(data)
    return np.fromiter((x is not None for x in data), bool, n) if data.dtype == object else np.ones(n, bool)


def compare(op: str, a: Value, b: Value, n: int) -> Value:
    b = _as_label(a, b)
    a = _as_label(b, a)
    if a.kind == "const" and a.data is None or b.kind == "const" and b.data is None:
        raise TQLError("compare with NULL using IS NULL or IS NOT NULL")
    if a.kind == "json" or b.kind == "json":
        fast = _parsed_json_cmp(op, a, b, n)
        if fast is not None:
            return fast
        a, b = text_ops.objects_of([a, b])
        return _json_cmp(op, a, b, n)
    a_text = a.kind == "text" or (a.kind == "const" and isinstance(a.data, str))
    b_text = b.kind == "text" or (b.kind == "const" and isinstance(b.data, str))
    if a_text and b_text:
        if a.kind == "const" and b.kind == "const":
            return Value("const", np.bool_(_PY_CMP[op](a.data, b.data)))
        if a.kind == "const":  # the column on the left: the kernel compares it with the string
            return text_ops.compare_const(op, b, a.data, flipped=True)
        if b.kind == "const":
            return text_ops.compare_const(op, a, b.data)
        return text_ops.compare_columns(op, a, b)
    if a_text or b_text:
        raise TQLError(f"cannot compare {describe(a)} with {describe(b)}")
    _numeric(a)
    _numeric(b)
    return apply_ufunc(_CMP[op], a, b, n)


def _parsed_json_cmp(op: str, a: Value, b: Value, n: int) -> Optional[Value]:
    """`_json_cmp` of a json path read natively (LazyJson: plain json.loads objects, no NumPy
    values) with a number or string constant, as one NumPy object-ufunc call (the same
    Python comparisons, without a Python loop); None where that does not apply or a
    comparison raises (mixed types under <, >: the row loop makes those false)."""
    col, other = (a, b) if isinstance(a, LazyJson) else (b, a)
    if not isinstance(col, LazyJson) or other.kind != "const":
        return None
    c = other.data.item() if isinstance(other.data, np.generic) else other.data
    if isinstance(c, np.ndarray) or not isinstance(c, (bool, int, float, str)):
        return None
    cc = np.empty((), dtype=object)
    cc[()] = c
    data = col.data
    null = col.missing()
    keep = ~null
    present = data[keep] if null.any() else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hit = _CMP[op](present, cc) if col is a else _CMP[op](cc, present)
    except (TypeError, ValueError):
        return None
    out = np.zeros(n, bool)
    out[keep] = np.asarray(hit, dtype=bool)
    return with_null(out, null)


def _json_cmp(op: str, a: Value, b: Value, n: int) -> Value:
    """JSON values compare as Python values, row by row; mismatched types compare false."""
    f = _PY_CMP[op]

    def py(x: Any) -> Any:
        return x.tolist() if isinstance(x, (np.generic, np.ndarray)) else x

    def one(x: Any, y: Any) -> bool:
        if x is None or y is None:
            return False
        try:
            return bool(f(x, y))
        except (TypeError, ValueError):
            return False

    def rows(v: Value) -> Iterator[Any]:
        # a constant converted once, not once per row
        return itertools.repeat(py(v.data), n) if v.kind == "const" else (py(x) for x in v.data)
    if a.kind == "ragged" or b.kind == "ragged":
        raise TQLError(f"cannot compare {describe(a)} with {describe(b)}")
    null = np.zeros(n, bool)
    for v in (a, b):
        if v.kind == "json":
            null |= ~not_none(v.data)
    return with_null(np.fromiter(itertools.starmap(one, zip(rows(a), rows(b))), bool, n), null)


def truth(v: Value, n: int) -> Value:
    """A value as booleans (numbers: non-zero is true)."""
    if v.kind in ("text", "json") or (v.kind == "const" and (isinstance(v.data, (str, tuple)) or v.data is None)):
        raise TQLError(f"expected a condition, got {describe(v)}")
    if v.kind == "ragged":
        return Value("ragged", v.data.with_values(v.data.values.astype(bool)))
    if v.kind == "array":
        return Value("array", np.asarray(v.data).astype(bool), None, v.null)
    return Value("const", np.bool_(bool(np.all(v.data))))


def _expand(null: Optional[np.ndarray], like: np.ndarray, n: int) -> np.ndarray:
    if null is None:
        return np.zeros((n,) + (1,) * (like.ndim - 1), bool) if like.ndim else np.zeros((), bool)
    return null.reshape((n,) + (1,) * (like.ndim - 1))


def logical(op: str, a: Value, b: Value, n: int) -> Value:
    """AND / OR with SQL's three-valued logic on NULL rows (FALSE AND NULL is FALSE, TRUE OR
    NULL is TRUE); element by element for array conditions."""
    a, b = truth(a, n), truth(b, n)
    if (a.kind == "ragged") != (b.kind == "ragged") and (a.null is not None or b.null is not None):
        return _decided_by_one_value(op, a, b, _ragged_logical(op, a, b, n), n)
    if a.null is None and b.null is None or a.kind == "ragged" or b.kind == "ragged":
        return _decided_by_one_value(op, a, b, apply_ufunc(np.logical_and if op == "AND" else np.logical_or, a, b, n), n)
    x = Value("array", a.data) if a.kind == "array" else a
    y = Value("array", b.data) if b.kind == "array" else b
    value = apply_ufunc(np.logical_and if op == "AND" else np.logical_or, x, y, n).data
    xa, ya = align(np.asarray(x.data), x.kind == "array", np.asarray(y.data), y.kind == "array")
    xn = _expand(a.null, xa, n) if a.kind == "array" else np.zeros((), bool)
    yn = _expand(b.null, ya, n) if b.kind == "array" else np.zeros((), bool)
    if op == "AND":
        known = (~xn & ~xa) | (~yn & ~ya) | (~xn & ~yn)  # a definite FALSE decides
    else:
        known = (~xn & xa) | (~yn & ya) | (~xn & ~yn)  # a definite TRUE decides
    null = ~np.broadcast_to(known, value.shape)
    value = value & ~null
    row_null = np.asarray(rows_flat(null).all(axis=1)) if value.ndim > 1 else null
    return with_null(value, row_null) if value.ndim == 1 else Value("array", value, None, row_null if row_null.any() else None)


def _one_value_rows(v: Value, n: int) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(value, known) per row where `v` holds one known truth value in that row, or None
    when no row of it does."""
    if v.kind == "const":
        if isinstance(v.data, (str, tuple)) or v.data is None or np.ndim(v.data) != 0:
            return None
        return np.full(n, bool(v.data)), np.ones(n, bool)
    if v.kind == "array":
        d = np.asarray(v.data)
        if d.ndim < 1 or len(d) != n or int(np.prod(d.shape[1:], dtype=np.int64)) != 1:
            return None
        return d.reshape(n).astype(bool), (~v.null if v.null is not None else np.ones(n, bool))
    if v.kind == "ragged":
        rg = v.data
        known = rg.sizes == 1
        val = np.zeros(n, bool)
        val[known] = rg.values[rg.offsets[:-1][known]].astype(bool)
        return val, known
    return None


def _decided_by_one_value(op: str, a: Value, b: Value, out: Value, n: int) -> Value:
    """SQL's TRUE OR NULL is TRUE and FALSE AND NULL is FALSE, for an empty sample too: a
    result row left empty (NULL) by one side takes the other side's value where that side
    holds one known value in the row that decides, instead of staying NULL."""
    if out.kind != "ragged":
        return out
    decides = np.zeros(n, bool)
    for side in (a, b):
        one = _one_value_rows(side, n)
        if one is not None:
            val, known = one
            decides |= known & (val if op == "OR" else ~val)
    decides &= out.data.sizes == 0
    if not decides.any():
        return out
    rows = out.data.rows()
    for k in np.flatnonzero(decides):
        rows[int(k)] = np.asarray([op == "OR"])
    return Value("ragged", Ragged.from_rows(rows))


def _ragged_logical(op: str, a: Value, b: Value, n: int) -> Value:
    """AND / OR of a ragged condition with an array one that has NULL rows. Where the
    ragged row is one element that decides (TRUE for OR, FALSE for AND), NULL on the other
    side does not matter; other rows with a NULL side are NULL (an element-wise NULL inside
    a row of several elements is not represented: the whole row is NULL)."""
    r, arr = (a, b) if a.kind == "ragged" else (b, a)
    null = arr.null if arr.null is not None else np.zeros(n, bool)
    rg = r.data
    one = rg.sizes == 1
    first = np.zeros(n, bool)
    first[one] = rg.values[rg.offsets[:-1][one]]
    decided = one & (first if op == "OR" else ~first)
    plain = Value("array", arr.data)  # its placeholders only count where `decided`
    out = apply_ufunc(np.logical_and if op == "AND" else np.logical_or, plain if arr is a else r, r if arr is a else plain, n)
    still = null & ~decided
    if out.kind == "ragged":
        return Value("ragged", out.data.emptied(still))
    old = out.null if out.null is not None else np.zeros(n, bool)
    return with_null(out.data, old | still)


def logical_not(a: Value, n: int) -> Value:
    t = truth(a, n)
    if t.kind == "ragged":
        return Value("ragged", t.data.with_values(~t.data.values))
    if t.kind == "array":
        return Value("array", ~t.data, None, t.null)
    return Value("const", np.bool_(not t.data))


def row_mask(v: Value, n: int) -> np.ndarray:
    """One boolean per row for WHERE: a row matches when any element of its result is true
    (a scalar tensor's one element, or any element of an array); an empty (NULL) never does."""
    t = truth(v, n)
    if t.kind == "const":
        return np.full(n, bool(t.data))
    if t.kind == "ragged":
        return ragged_ops.row_any(t.data)
    d = t.data
    out: np.ndarray = d if d.ndim == 1 else np.asarray(rows_flat(d).any(axis=1))
    return out & ~t.null if t.null is not None else out


def in_list(a: Value, items: Sequence[Value], n: int) -> Value:
    if not items:
        raise TQLError("IN needs at least one value")
    for it in items:
        if it.kind != "const":
            raise TQLError("IN takes constants (numbers, strings or ?)")
    vals: List[Any] = []
    for it in items:
        vals.extend(it.data if isinstance(it.data, tuple) else np.asarray(it.data).reshape(-1).tolist() if not isinstance(it.data, str) else [it.data])
    if a.class_names is not None:
        vals = [(_label_ids([v], a.class_names)[0] if isinstance(v, str) else v) for v in vals]
    strs = [v for v in vals if isinstance(v, str)]
    if a.kind == "text":
        if len(strs) != len(vals):
            raise TQLError("IN on a text tensor takes strings")
        return text_ops.in_set(a, strs)
    if isinstance(a, LazyJson):  # plain json.loads objects: `in` is == against each item
        null = a.missing()
        hit = np.zeros(n, bool)
        for item in vals:
            hit |= np.equal(a.data, np.full((), item, dtype=object))
        return with_null(hit & ~null, null)
    if a.kind == "json":
        def one(x: Any) -> bool:
            try:
                return x is not None and x in vals
            except TypeError:
                return False
        return with_null(np.fromiter((one(x) for x in a.data), bool, n), ~not_none(a.data))
    if strs:
        raise TQLError(f"cannot compare {describe(a)} with strings")
    ref = np.asarray(vals)
    if a.kind == "ragged":
        return Value("ragged", a.data.with_values(np.isin(a.data.values, ref)))
    if a.kind == "const":
        return Value("const", np.bool_(np.isin(a.data, ref).all()))
    return Value("array", np.isin(a.data, ref), None, a.null)  # a NULL row stays NULL


like_regex = text_ops.like_regex


def like(a: Value, pattern: Value, case_insensitive: bool, n: int) -> Value:
    if pattern.kind != "const" or not isinstance(pattern.data, str):
        raise TQLError("LIKE takes a string pattern")
    rx = like_regex(pattern.data, case_insensitive)
    if a.kind == "text":
        return text_ops.like(a, pattern.data, case_insensitive)
    if a.kind == "json":
        return with_null(np.fromiter((isinstance(x, str) and rx.fullmatch(x) is not None for x in a.data), bool, n), np.fromiter((not isinstance(x, str) for x in a.data), bool, n))
    if a.kind == "const" and isinstance(a.data, str):
        return Value("const", np.bool_(rx.fullmatch(a.data) is not None))
    raise TQLError(f"LIKE applies to text, not {describe(a)}")


def is_null(a: Value, n: int) -> Value:
    if a.kind == "const":
        return Value("const", np.bool_(a.data is None or (not isinstance(a.data, (str, tuple)) and np.size(a.data) == 0)))
    if a.kind == "text":
        return text_ops.is_null(a)
    if a.kind == "json":
        return Value("array", np.fromiter((x is None for x in a.data), bool, n))
    if a.kind == "ragged":
        return Value("array", a.data.sizes == 0)
    if a.null is not None:
        return Value("array", a.null.copy())
    return Value("array", np.full(n, a.data[0:1].size == 0 if n else False) if a.data.ndim > 1 else np.zeros(n, bool))


def subscript(a: Value, index: Tuple[Any, ...], n: int) -> Value:
    """`a[index]` within each sample (ints and slices), or a JSON key path step. An index out
    of a sample's range gives NULL for that row."""
    if a.kind == "json":
        if len(index) != 1 or isinstance(index[0], slice):
            raise TQLError("a json value takes one key or index per []")
        key = index[0]
        if isinstance(a, LazyJson):  # raw documents: the path grows, the kernel follows it later
            return a.step(key)

        def get(x: Any) -> Any:
            try:
                return x[key]
            except (KeyError, IndexError, TypeError):
                return None
        out = np.empty(n, dtype=object)
        out[:] = [get(x) for x in a.data]  # a loop over parsed JSON rows
        return Value("json", out)
    if any(isinstance(i, str) for i in index):
        raise TQLError(f"a string key applies to a json tensor, not {describe(a)}")
    if a.kind in ("text",) or (a.kind == "const" and isinstance(a.data, (str, tuple))):
        raise TQLError(f"cannot index {describe(a)}")
    if a.kind == "const":
        try:
            return Value("const", np.asarray(a.data)[index])
        except IndexError as e:
            raise TQLError(f"index out of range: {e}") from None
    if a.kind == "ragged":
        flat = ragged_ops.subscript(a.data, index)
        if flat is not None:
            return ragged_value(flat, a.class_names)

        def one(x: np.ndarray) -> np.ndarray:
            try:
                return np.asarray(x[index])
            except IndexError:
                return np.zeros((0,), x.dtype)
        return rowwise(one, [a], n, a.class_names)
    d = a.data
    if len(index) > d.ndim - 1:
        raise TQLError(f"{len(index)} indices for samples of {d.ndim - 1} dimensions")
    if n and d[0:1].size == 0:
        return Value("array", np.zeros((n, 0), d.dtype), a.class_names)  # all NULL stays NULL
    try:
        return Value("array", d[(slice(None),) + index], a.class_names)
    except IndexError:
        return Value("array", np.zeros((n, 0), d.dtype), a.class_names)
