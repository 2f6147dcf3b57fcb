"""Reading a backfilled dataset back as the source's values (for checks and for users)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from connectors.sql.state import STATE_KEY
from connectors.sql.types import decode_values


def read_column(ds, tensor: str) -> List[Any]:
    """A tensor's values as Python values of the source column: ints, floats, Decimal,
    datetime/date/time, str, JSON objects, arrays (ndarray), bytes; None for NULL."""
    t = ds[tensor]
    info = dict(t.info)
    if t.is_link:  # the URLs, not the linked files (no public accessor for the paths yet)
        import numpy as np

        datas, _ = t.engine.read_items_bytes(np.arange(t.num_samples, dtype=np.int64))
        return [bytes(d).decode("utf-8") or None for d in datas]
    values = t.values()  # None for a null (the tensor's validity tensor, or an older empty sample)
    return decode_values(values, info)


def read_rows(ds, key: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every row as {source column: value}, in dataset order (or sorted by source column `key`)."""
    st = ds.info.get(STATE_KEY) or {}
    cols = [(c["source"], c["tensor"]) for c in st.get("columns", [])] or [(n, n) for n in ds.tensors]
    data = {src: read_column(ds, tensor) for src, tensor in cols}
    n = len(ds)
    rows = [{src: data[src][i] for src, _ in cols} for i in range(n)]
    if key is not None:
        rows.sort(key=lambda r: r[key])
    return rows


def _norm(v: Any) -> Any:
    import datetime as dt
    import decimal

    import numpy as np

    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc)
    if isinstance(v, dt.timedelta):  # MySQL TIME
        return (dt.datetime.min + v).time()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (memoryview, bytearray)):
        return bytes(v)
    if isinstance(v, decimal.Decimal):
        return v.normalize() if v.is_finite() else v
    if isinstance(v, tuple):
        return list(v)
    if type(v).__name__ == "UUID":  # stored as its text
        return str(v)
    return v


def compare_with_source(ds, url: str, table: Optional[str] = None, query: Optional[str] = None, key: Optional[str] = None, schema: Optional[str] = None, limit: int = 20) -> List[str]:
    """Row-by-row differences between the dataset and the source (at most `limit`), read in
    the order of `key` on both sides; an empty list when they hold the same rows."""
    import sqlalchemy as sa

    from connectors.sql.engine import source_selectable
    from connectors.sql.spec import SourceSpec

    st = ds.info.get(STATE_KEY) or {}
    cols = [(c["source"], c["tensor"]) for c in st.get("columns", [])]
    data = {src: read_column(ds, tensor) for src, tensor in cols}
    n = len(ds)
    order = list(range(n))
    if key is not None:
        order.sort(key=lambda i: data[key][i])
    engine = sa.create_engine(url)
    diffs: List[str] = []
    try:
        with engine.connect() as conn:
            spec = SourceSpec(url, table, schema, query, [c for c, _ in cols], [], None)
            from_, c = source_selectable(conn, spec)
            stmt = sa.select(*[c[s] for s, _ in cols]).select_from(from_)
            if key is not None:
                stmt = stmt.order_by(c[key])
            res = conn.execution_options(stream_results=True, yield_per=10_000).execute(stmt)
            i = 0
            for row in res:
                if i >= n:
                    diffs.append(f"source has more rows than the dataset ({n})")
                    break
                j = order[i]
                for k, (src, _) in enumerate(cols):
                    a, b = _norm(row[k]), _norm(data[src][j])
                    if a != b and not (isinstance(a, float) and isinstance(b, float) and a != a and b != b):
                        who = f"{key}={row[[s for s, _ in cols].index(key)]!r}" if key else f"row {i}"
                        diffs.append(f"{who}, column {src}: source {a!r} != lake {b!r}")
                        if len(diffs) >= limit:
                            return diffs
                i += 1
            if i < n:
                diffs.append(f"dataset has {n} rows, the source {i}")
    finally:
        engine.dispose()
    return diffs
