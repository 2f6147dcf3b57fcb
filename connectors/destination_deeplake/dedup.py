"""Which rows a sync removes at its end: rows another row with the same primary key
supersedes (`append_dedup`), and rows of generations older than a refresh's minimum.

Decided on whole columns at once: a scalar numeric column (ints, times, booleans, floats) is
read as one array straight from its chunks' bytes; any other column (text, JSON, nested key
paths) as Python values, factorized once into integer codes. The choice itself is one sort
over (key, cursor, extracted_at) codes: no per-row Python work on dense columns.

The rule: within a key, the latest row by cursor (nulls first), then by
`_airbyte_extracted_at`, then by position wins; a row whose key (any part of it) is null or
missing is kept and never merged with another; a winner whose `_ab_cdc_deleted_at` is set
is removed too (a CDC delete).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from connectors.destination_deeplake import schema as S

# the tensor and kind of a field (meta tensors included), None when the stream has none
TensorOf = Callable[[str], "tuple[str, str] | None"]
_DENSE_KINDS = (S.INT, S.FLOAT, S.BOOL, *S.TIME_KINDS)
_CHUNKS_AT_ONCE = 64  # parsed chunks held at a time while a column is read


@dataclass(frozen=True)
class KeyColumn:
    """One primary key part over all rows: integer codes (equal codes where both rows have
    a value: equal values) and where the value is null or missing."""

    codes: np.ndarray  # int64
    null: np.ndarray  # bool

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> "KeyColumn":
        """Factorize Python values (None: null) with one dict pass; JSON-equal values get
        equal codes, `true` and `1` do not."""
        seen: dict[Any, int] = {}
        codes = np.fromiter((-1 if v is None else seen.setdefault(hashable(v), len(seen)) for v in values),
                            np.int64, count=len(values))
        return cls(codes, codes < 0)


@dataclass(frozen=True)
class Ranked:
    """A column as sort keys: whether each row has a value, and its rank (`orderable` order
    for Python values; the value itself for integers)."""

    has: np.ndarray  # bool
    rank: np.ndarray  # int64

    @classmethod
    def absent(cls, n: int) -> "Ranked":
        return cls(np.zeros(n, bool), np.zeros(n, np.int64))


def hashable(v: Any) -> Any:
    """A dict key for a JSON value: objects and arrays by their canonical JSON, booleans
    apart from the numbers Python equates them with."""
    if isinstance(v, (dict, list)):
        return orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
    if isinstance(v, bool):
        return (bool, v)
    return v


def orderable(v: Any) -> Any:
    """A sort key for a JSON value: numbers (booleans as 0/1) before strings, objects and
    arrays by their canonical JSON text."""
    if isinstance(v, (dict, list)):
        return (1, orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode())
    if isinstance(v, bool):
        return (0, int(v))
    if isinstance(v, (int, float)):
        return (0, v)
    return (1, str(v))


def dig(v: Any, path: Sequence[str]) -> Any:
    """The value at a nested path of a JSON value (None where a step is missing)."""
    for p in path:
        if not isinstance(v, dict):
            return None
        v = v.get(p)
    return v


def rank_values(values: Sequence[Any]) -> Ranked:
    """Ranks of Python values (None: no value) in `orderable` order."""
    n = len(values)
    has = np.fromiter((v is not None for v in values), bool, count=n)
    ordered = [orderable(v) for v in values]
    distinct = sorted({o for o, h in zip(ordered, has.tolist()) if h})
    rank_of = {o: r for r, o in enumerate(distinct)}
    rank = np.fromiter((rank_of[o] if h else 0 for o, h in zip(ordered, has.tolist())), np.int64, count=n)
    return Ranked(has, rank)


def group_ids(keys: Sequence[KeyColumn]) -> np.ndarray:
    """One int64 code per row for a (composite) key: equal codes, equal keys (keyless rows'
    codes mean nothing)."""
    if len(keys) == 1:
        return keys[0].codes
    return np.unique(np.stack([k.codes for k in keys], axis=1), axis=0, return_inverse=True)[1].reshape(-1)


def keyless_mask(keys: Sequence[KeyColumn], n: int) -> np.ndarray:
    """Rows whose key (any part of it) is null or missing."""
    out = np.zeros(n, bool)
    for k in keys:
        out |= k.null[:n]
    return out


def superseded_rows(keys: Sequence[KeyColumn], cursor: Ranked, extracted: Ranked, deleted: np.ndarray | None) -> np.ndarray:
    """Rows to remove (ascending): every row but the winner of its key, and a winner whose
    `deleted` is set; keyless rows are kept. One stable sort: among rows equal on every
    sort key, the later position wins."""
    n = len(cursor.has)
    if n == 0:
        return np.zeros(0, np.int64)
    keyless = keyless_mask(keys, n)
    group = group_ids(keys)
    rows = np.flatnonzero(~keyless)
    # lexsort is stable and `rows` ascends: ties end at their last position
    order = rows[np.lexsort((extracted.rank[rows], extracted.has[rows], cursor.rank[rows], cursor.has[rows], group[rows]))]
    g = group[order]
    last_of_group = np.ones(len(order), bool)
    last_of_group[:-1] = g[1:] != g[:-1]
    keep = np.zeros(n, bool)
    keep[order[last_of_group]] = True
    if deleted is not None:
        keep &= ~deleted
    keep |= keyless
    return np.flatnonzero(~keep)


class ColumnReader:
    """Reads the columns of a stream's dataset for dedup, by field name."""

    def __init__(self, ds: Any, tensor_of: TensorOf):
        self.ds = ds
        self.tensor_of = tensor_of

    def dense(self, fname: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, null mask) of a scalar numeric column (int, float, bool, times) read as
        one array from its chunks' bytes; None for any other column (or a float column
        holding NaN, whose Python semantics as a key differ from NumPy's)."""
        tk = self.tensor_of(fname)
        if tk is None or tk[1] not in _DENSE_KINDS:
            return None
        t = self.ds[tk[0]]
        dt = t.dtype
        if dt is None or dt.kind not in "iufb" or t.is_sequence or t.is_link:
            return None
        n = t.num_samples
        if n == 0:
            return np.zeros(0, dt), np.zeros(0, bool)
        _, hi = t.shape_interval
        if len(hi) != 1 or hi[0] > 1:
            return None
        eng = t.engine
        if eng.tiles.entries:
            return None
        # chunk by chunk: a null sample stores no bytes, so a chunk's values lie back to back
        names = eng.chunk_ids.names()
        first = eng.chunk_ids.first_indices()
        last = eng.chunk_ids.rows[:, 1].astype(np.int64)
        nulls, flats = [], []
        for lo in range(0, len(names), _CHUNKS_AT_ONCE):
            got = eng.get_chunks(names[lo : lo + _CHUNKS_AT_ONCE])
            for r in range(lo, min(lo + _CHUNKS_AT_ONCE, len(names))):
                c = got[names[r]]
                local = np.arange(int(last[r] - first[r] + 1), dtype=np.int64)
                shp = c.shapes(local)
                nulls.append(shp[:, 0] == 0 if shp.shape[1] else np.ones(len(local), bool))
                s, e = c.byte_ranges(local)
                flats.append(np.frombuffer(c.data[int(s[0]) : int(e[-1])], dtype=dt) if len(local) else np.zeros(0, dt))
        empty = np.concatenate(nulls) if nulls else np.zeros(0, bool)
        flat = np.concatenate(flats) if flats else np.zeros(0, dt)
        if len(empty) != n or len(flat) != int((~empty).sum()):
            return None
        vals = np.zeros(n, dt)
        vals[~empty] = flat
        null = empty
        if t.nullable:  # nulls stored as placeholders, marked in the validity tensor
            null = empty | np.asarray(t.isnull(), bool).reshape(-1)
            vals[null] = 0  # every null ranks alike, whatever its placeholder
        if dt.kind == "f" and np.isnan(vals[~null]).any():
            return None
        return vals, null

    def values(self, fname: str) -> list[Any] | None:
        """A column as Python values (None for null), or None when the stream has no such
        field."""
        tk = self.tensor_of(fname)
        if tk is None:
            return None
        dense = self.dense(fname)
        if dense is not None:  # one read of the stored bytes, no per-sample decoding
            vals, null = dense
            out = vals.tolist()
            for i in np.flatnonzero(null).tolist():
                out[i] = None
            return out
        kind = tk[1]
        return [S.value_of(kind, v) for v in self.ds[tk[0]].values()]

    def _path_values(self, path: Sequence[str], n: int) -> list[Any]:
        col = self.values(path[0])
        if col is None:
            return [None] * n
        if len(path) > 1:
            col = [dig(v, path[1:]) for v in col[:n]]
        return col[:n] + [None] * (n - len(col))

    def key(self, path: Sequence[str], n: int) -> KeyColumn:
        """A primary key part (a field, or a path into a JSON field) over rows [0, n)."""
        dense = self.dense(path[0]) if len(path) == 1 else None
        if dense is not None and dense[0].dtype.kind in "iub" and len(dense[0]) >= n:
            return KeyColumn(dense[0][:n].astype(np.int64), dense[1][:n])
        return KeyColumn.from_values(self._path_values(path, n))

    def keys(self, primary_key: Sequence[Sequence[str]], n: int) -> list[KeyColumn]:
        return [self.key(p, n) for p in primary_key]

    def ranked(self, path: Sequence[str], n: int) -> Ranked:
        """A column (or a path into a JSON field) over rows [0, n) as sort keys."""
        dense = self.dense(path[0]) if len(path) == 1 else None
        if dense is not None and len(dense[0]) >= n:
            vals, null = dense[0][:n], dense[1][:n]
            rank = vals.astype(np.int64) if vals.dtype.kind in "iub" else np.unique(vals, return_inverse=True)[1].reshape(-1)
            return Ranked(~null, rank)
        if self.tensor_of(path[0]) is None:
            return Ranked.absent(n)
        return rank_values(self._path_values(path, n))

    def null_mask(self, fname: str, n: int) -> np.ndarray | None:
        """Where a column is null over rows [0, n) (True), or None when the stream has no
        such column."""
        dense = self.dense(fname)
        if dense is not None and len(dense[1]) >= n:
            return dense[1][:n]
        col = self.values(fname)
        if col is None:
            return None
        col = col[:n] + [None] * (n - len(col))
        return np.fromiter((v is None for v in col), bool, count=n)


def superseded(reader: ColumnReader, keys: Sequence[KeyColumn], cursor_field: Sequence[str], n: int) -> np.ndarray:
    """The rows of [0, n) that `append_dedup` removes (ascending)."""
    if n == 0:
        return np.zeros(0, np.int64)
    cursor = reader.ranked(cursor_field, n) if cursor_field else Ranked.absent(n)
    extracted = reader.ranked(["_airbyte_extracted_at"], n)
    return superseded_rows(keys, cursor, extracted, _deleted(reader, n))


def _deleted(reader: ColumnReader, n: int) -> np.ndarray | None:
    """Rows a CDC source marked deleted (`_ab_cdc_deleted_at` set)."""
    null = reader.null_mask("_ab_cdc_deleted_at", n)
    return None if null is None else ~null


def rows_of_old_generations(reader: ColumnReader, minimum_generation_id: int, n: int) -> np.ndarray:
    """The rows of [0, n) written by a generation older than `minimum_generation_id` (a row
    without one counts as generation 0)."""
    dense = reader.dense("_airbyte_generation_id")
    if dense is not None and len(dense[0]) >= n:
        gens = np.where(dense[1][:n], 0, dense[0][:n]).astype(np.int64)
        return np.flatnonzero(gens < minimum_generation_id)
    col = reader.values("_airbyte_generation_id") or []
    col = col[:n]
    return np.asarray([i for i, g in enumerate(col) if (g or 0) < minimum_generation_id], dtype=np.int64)
