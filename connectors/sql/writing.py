"""Writing a backfill: source rows turned into tensor columns (a bad value stops at its row,
or is nulled and counted), upserts matched to stored rows by primary key, one `extend` per
batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from connectors.sql.errors import ValueMappingError
from connectors.sql.spec import SourceSpec
from connectors.sql.types import ColumnData, ColumnPlan, convert_column
from lakeformat.errors import LakeFormatError
from lakeformat.htypes import is_link_htype, is_numeric_dtype

CHUNK_SIZE = 4 * 1024 * 1024

@dataclass
class Converted:
    """One batch of rows as tensor columns."""

    n: int
    columns: Dict[str, ColumnData]  # tensor name -> data
    keys: Optional[List[Any]]  # primary key columns (converted) for upserts
    last_position: Optional[Tuple[Any, ...]]  # ordering key of the last row (raw SQL values)
    nulled: Dict[str, int]
    nbytes: int


class _Stop(Exception):
    def __init__(self, index: int, error: ValueMappingError):
        self.index = index
        self.error = error


def convert_rows(rows: Sequence[Any], plans: Sequence[ColumnPlan], spec: SourceSpec, on_error: str) -> Converted:
    """Rows -> columns. With on_error "fail", a bad value raises _Stop at its row."""
    n = len(rows)
    by_col = list(zip(*rows)) if n else [() for _ in plans]
    pk_idx = [spec.columns.index(k) for k in spec.primary_key]
    nulled: Dict[str, int] = {}
    columns: Dict[str, ColumnData] = {}
    nbytes = 0
    label = spec.table or ""
    for p, col in zip(plans, by_col):
        def on_bad(i: int, v: Any, reason: str, p=p) -> None:
            if on_error == "null":
                nulled[p.source] = nulled.get(p.source, 0) + 1
                return
            key = tuple(rows[i][j] for j in pk_idx) if pk_idx else None
            if key is not None and len(key) == 1:
                key = key[0]
            raise _Stop(i, ValueMappingError(f"does not fit {p.htype}{' ' + p.dtype if p.dtype else ''} ({reason})", table=label, column=p.source, key=key, row=None if key is not None else i, value=v))

        cd = convert_column(p, col, on_bad)
        columns[p.tensor] = cd
        v = cd.values
        if isinstance(v, np.ndarray):
            nbytes += v.nbytes
        elif p.htype == "text":
            nbytes += sum(map(len, filter(None, v)))  # characters: close enough for a report
        elif p.kind in ("array", "bytes"):
            nbytes += sum(x.nbytes for x in v if x is not None)
    keys = None
    if pk_idx:
        tens = [plans[j].tensor for j in pk_idx]
        parts = []
        for t in tens:
            v = columns[t].values
            parts.append(v.tolist() if isinstance(v, np.ndarray) else list(v))
        keys = parts[0] if len(parts) == 1 else list(zip(*parts))
    order = spec.order_columns()
    last = tuple(rows[-1][spec.columns.index(c)] for c in order) if (n and order) else None
    return Converted(n, columns, keys, last, nulled, nbytes)


def convert_until_bad(rows: Sequence[Any], plans, spec, on_error) -> Tuple[Converted, Optional[ValueMappingError]]:
    """Convert rows; on a bad value, the rows before the first bad one and its error."""
    err = None
    while True:
        try:
            return convert_rows(rows, plans, spec, on_error), err
        except _Stop as s:
            err = s.error
            rows = rows[: s.index]


# ------------------------------------------------------------------------------------ writing
class KeyIndex:
    """Primary key -> dataset row, for the rows the dataset held when the run started."""

    def __init__(self, ds, tensors: Sequence[str], length: int):
        self.length = length
        self.sorted_keys: Optional[np.ndarray] = None
        self.map: Dict[Any, int] = {}
        if length == 0:
            return
        dense = int_keys(ds[tensors[0]], length) if len(tensors) == 1 else None
        if dense is not None:
            order = np.argsort(dense, kind="stable")
            self.sorted_keys = dense[order]
            self.rows = order.astype(np.int64)
            return
        cols = [ds[t][:length].values() for t in tensors]
        if len(cols) == 1 and is_numeric_dtype(ds[tensors[0]].meta.dtype) and np.dtype(ds[tensors[0]].meta.dtype).kind in "iu":
            arr = np.asarray([int(np.asarray(v).reshape(-1)[0]) if v is not None and np.size(v) else np.iinfo(np.int64).min for v in cols[0]], dtype=np.int64) if isinstance(cols[0], list) else np.asarray(cols[0]).reshape(-1)
            order = np.argsort(arr, kind="stable")
            self.sorted_keys = arr[order]
            self.rows = order.astype(np.int64)
            return
        scalars = [[_scalar(v) for v in c] for c in cols]
        keys = scalars[0] if len(scalars) == 1 else list(zip(*scalars))
        for i, k in enumerate(keys):
            self.map[k] = i  # the last row of a key wins

    def lookup(self, keys: Sequence[Any]) -> np.ndarray:
        """Dataset rows of `keys`, -1 where new."""
        if self.length == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        if self.sorted_keys is not None:
            q = np.asarray(keys, dtype=np.int64)
            pos = np.searchsorted(self.sorted_keys, q, side="right") - 1
            pos_c = np.clip(pos, 0, len(self.sorted_keys) - 1)
            hit = (pos >= 0) & (self.sorted_keys[pos_c] == q)
            return np.where(hit, self.rows[pos_c], -1)
        return np.fromiter((self.map.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))


def int_keys(t, length: int) -> Optional[np.ndarray]:
    """An integer key column's first `length` rows as one int64 array, read in bulk (no
    per-row Python values); None when it is not one dense integer column (then the caller
    reads values one by one)."""
    dt = t.meta.dtype
    if not is_numeric_dtype(dt) or np.dtype(dt).kind not in "iu" or t.is_sequence or t.is_link:
        return None
    try:
        arr = np.asarray(t[:length].numpy())
    except LakeFormatError:  # ragged (an empty sample): the one-by-one path
        return None
    if arr.ndim != 2 or arr.shape != (length, 1):
        return None
    return arr.reshape(-1).astype(np.int64)


def _scalar(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.reshape(-1)[0].item() if v.size else None
    return v


def _take(cd: ColumnData, idx: np.ndarray, n: int) -> ColumnData:
    if isinstance(cd.values, np.ndarray):
        if cd.mask is None:
            return ColumnData(cd.values[idx])
        full_pos = np.cumsum(~cd.mask) - 1
        sel_mask = cd.mask[idx]
        vals = cd.values[full_pos[idx][~sel_mask]]
        return ColumnData(vals, sel_mask if sel_mask.any() else None)
    vals = [cd.values[i] for i in idx.tolist()]
    mask = cd.mask[idx] if cd.mask is not None else None
    return ColumnData(vals, mask if mask is not None and mask.any() else None)


def write_batch(ds, plans: Sequence[ColumnPlan], conv: Converted, index: Optional[KeyIndex]) -> Tuple[int, int]:
    """Apply a converted batch: updates in place for known keys, one extend for the rest.
    Returns (appended, updated)."""
    n = conv.n
    if n == 0:
        return 0, 0
    rows = index.lookup(conv.keys) if (index is not None and conv.keys is not None) else None
    if rows is not None and (rows >= 0).any():
        upd = np.flatnonzero(rows >= 0)
        app = np.flatnonzero(rows < 0)
        # one bulk update per tensor: each affected chunk is rewritten once (a key seen twice
        # in the batch takes its last value, as updates one at a time would)
        targets = rows[upd].tolist()
        for p in plans:
            cd = conv.columns[p.tensor]
            # the rows to update as one column (what extend takes): no per-value Python work
            # (nulls: the format keeps them in the tensor's validity tensor, lakeformat.core.nulls)
            ds[p.tensor][targets] = _take(cd, upd, n).extend_values(len(upd))
        cols = {p.tensor: _take(conv.columns[p.tensor], app, n) for p in plans}
        n_app = len(app)
    else:
        upd = np.zeros(0, np.int64)
        cols = conv.columns
        n_app = n
    if n_app:
        values: Dict[str, Any] = {}
        for p in plans:
            cd = cols[p.tensor]
            values[p.tensor] = cd.extend_values(n_app)
        ds.extend(values)
    return n_app, len(upd)


# ------------------------------------------------------------------------------------ the run
def _chunk_compression(p: ColumnPlan) -> Optional[str]:
    # lz4 unless told otherwise: deeplake 3.x reads it, and chunks it cannot shrink are
    # stored as one literal run (lakeformat.codecs.bytes_codecs), so it costs a copy at most
    if p.chunk_compression or p.sample_compression or is_link_htype(p.htype):
        return p.chunk_compression
    return "lz4"


def ensure_tensors(ds, plans: Sequence[ColumnPlan]) -> None:
    for p in plans:
        if p.tensor not in ds.meta.tensor_names:
            # 4 MiB chunks: every batch flush rewrites each tensor's open chunk, so its size
            # bounds the work (and memory) per batch
            kw: Dict[str, Any] = dict(create_shape_tensor=False, create_id_tensor=False, create_sample_info_tensor=False, max_chunk_size=CHUNK_SIZE)
            if is_link_htype(p.htype):
                kw["verify"] = False
            t = ds.create_tensor(p.tensor, htype=p.htype, dtype=p.dtype, sample_compression=p.sample_compression, chunk_compression=_chunk_compression(p), **kw)
            # typed nulls for numeric columns (lakeformat.core.nulls): set before any row lands
            t.info.update({**p.info, "source_column": p.source, "sql_type": p.sql_type, "nullable": True})
