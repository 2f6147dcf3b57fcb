"""Logical types: what a column's values mean beyond their storage dtype.

The tensor info carries them (`lakeformat_type` and its parameters, written by the connectors
and by `lakeformat.temporal.info_for`); `logical_type` names them for summaries:
`timestamp[us, UTC]`, `timestamp[us]`, `date`, `time[us]`, `time[us, tz]`, `decimal(10,2)`,
`interval[us]`, else the dtype.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


def logical_type(info: Optional[Mapping[str, Any]], dtype: Optional[str]) -> str:
    """The logical type of a tensor from its info and dtype.

    >>> logical_type({"lakeformat_type": "timestamp", "unit": "us", "timezone": "UTC"}, "int64")
    'timestamp[us, UTC]'
    >>> logical_type({"lakeformat_type": "decimal", "precision": 10, "scale": 2}, "float64")
    'decimal(10,2)'
    """
    info = info or {}
    kind = info.get("lakeformat_type")
    unit = info.get("unit", "us")
    if kind == "timestamp":
        tz = info.get("timezone")
        return f"timestamp[{unit}, {tz}]" if tz else f"timestamp[{unit}]"
    if kind == "date":
        return "date"
    if kind == "time":
        return f"time[{unit}, tz]" if info.get("with_offset") else f"time[{unit}]"
    if kind == "interval":
        return f"interval[{unit}]"
    if kind == "decimal":
        p, s = info.get("precision"), info.get("scale")
        return f"decimal({p},{s})" if p is not None else "decimal"
    if isinstance(kind, str) and kind:
        return kind
    return str(dtype)


# ------------------------------------------------------------------ the info of each logical type
# One constructor per logical type, shared by the connectors (the destination and the SQL
# backfill) so that both write the same keys. Each returns a fresh dict (callers add keys).
def temporal_info(kind: str, timezone: Optional[str]) -> Dict[str, Any]:
    """timestamp (with its timezone or none), date or time, as int64 microseconds."""
    from lakeformat import temporal

    return temporal.info_for(kind, timezone)


def time_with_offset_info() -> Dict[str, Any]:
    """A time of day with its UTC offset, stored as ISO text (an int64 drops the offset)."""
    return {"lakeformat_type": "time", "unit": "us", "with_offset": True}


def interval_info() -> Dict[str, Any]:
    return {"lakeformat_type": "interval", "unit": "us"}


def decimal_info(precision: Optional[int], scale: Optional[int], lossy: bool = False) -> Dict[str, Any]:
    """A decimal (as float64 or exact text); ``lossy`` when float64 cannot hold every digit."""
    info: Dict[str, Any] = {"lakeformat_type": "decimal", "precision": precision, "scale": scale}
    if lossy:
        info["lossy"] = True
    return info


def array_info() -> Dict[str, Any]:
    """A numeric array per row; a null is an empty sample (the validity tensor tells it from [])."""
    return {"lakeformat_type": "array", "null_placeholder": "empty"}


def text_array_info() -> Dict[str, Any]:
    return {"lakeformat_type": "text_array"}


def bytes_info() -> Dict[str, Any]:
    return {"lakeformat_type": "bytes", "null_placeholder": "empty"}


def uuid_info() -> Dict[str, Any]:
    return {"lakeformat_type": "uuid"}
