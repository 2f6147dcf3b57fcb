"""The ingestion state kept in the dataset, and what makes a killed run resumable.

The state is one JSON object in `ds.info["lakeformat_sql"]`: the source, the column plans, the
committed cursor (the highest cursor value of the last finished run) and, while a run is under
way, the run: its cursor range, the dataset length at its start, and for each partition the
position (ordering key) of the last row flushed, together with the dataset length at that flush.

Every batch is written as: the rows (appends and in-place updates), then the new state, then one
`ds.flush()`, which writes the tensors first and the dataset info last. A kill inside that flush
can leave tensors holding more rows than the state counts; `truncate()` cuts them back to the
state's length when the run resumes, and the rows after the recorded position are read again.
Updates in the lost batch are re-applied by that re-read (latest wins, so it is idempotent).
"""
from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any, Dict, Optional

import numpy as np

STATE_KEY = "lakeformat_sql"
STATE_VERSION = 1


def encode_value(v: Any) -> Any:
    """A cursor or key value -> JSON (typed, so that it binds back as the same SQL value)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return {"t": "float", "v": repr(float(v))}
    if isinstance(v, decimal.Decimal):
        return {"t": "decimal", "v": str(v)}
    if isinstance(v, dt.datetime):
        return {"t": "datetime", "v": v.isoformat()}
    if isinstance(v, dt.date):
        return {"t": "date", "v": v.isoformat()}
    if isinstance(v, dt.time):
        return {"t": "time", "v": v.isoformat()}
    if isinstance(v, uuid.UUID):
        return {"t": "uuid", "v": str(v)}
    if isinstance(v, (tuple, list)):
        return {"t": "tuple", "v": [encode_value(x) for x in v]}
    return {"t": "str", "v": str(v)}


def decode_value(e: Any) -> Any:
    if not isinstance(e, dict):
        return e
    t, v = e.get("t"), e.get("v")
    if t == "float":
        return float(v)
    if t == "decimal":
        return decimal.Decimal(v)
    if t == "datetime":
        return dt.datetime.fromisoformat(v)
    if t == "date":
        return dt.date.fromisoformat(v)
    if t == "time":
        return dt.time.fromisoformat(v)
    if t == "uuid":
        return uuid.UUID(v)
    if t == "tuple":
        return tuple(decode_value(x) for x in v)
    return v


def display_value(e: Any) -> str:
    v = decode_value(e)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    return str(v)


def read_state(ds) -> Optional[Dict[str, Any]]:
    st = ds.info.get(STATE_KEY)
    return dict(st) if isinstance(st, dict) else None


def write_state(ds, state: Dict[str, Any]) -> None:
    """Stage the state in the dataset info (written by the next flush, after the tensors)."""
    ds.info[STATE_KEY] = state


def truncate(ds, length: int) -> int:
    """Cut every tensor (hidden ones too) back to `length` samples; returns how many tensors
    were longer. For the tail a killed flush left beyond the recorded state: the tensor metas
    are the commit points, so lowering a meta's length (and dropping the chunks wholly beyond
    it) is all it takes (`Session.truncate`, one flush); the format's reader and appender
    ignore samples past the length."""
    st = ds.session
    return st.truncate({key: int(length) for key in st.meta.tensor_names.values()})
