"""Logical types: what a column's values mean beyond their storage dtype.

The tensor info carries them (`lakeformat_type` and its parameters, written by the connectors
and by `lakeformat.temporal.info_for`); `logical_type` names them for summaries:
`timestamp[us, UTC]`, `timestamp[us]`, `date`, `time[us]`, `time[us, tz]`, `decimal(10,2)`,
`interval[us]`, else the dtype.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional


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
