"""How time is stored, shared by every ingestion path (the Airbyte destination, SQL backfills).

A date, time or timestamp column becomes an int64 tensor (htype generic, shape (1,)) whose
tensor info carries `{"lakeformat_type": "timestamp" | "date" | "time", "unit": "us",
"timezone": "UTC" | None}`:
- timestamp with time zone: microseconds since 1970-01-01T00:00:00Z of the instant (so
  values compare as time and round-trip to the same instant); timezone "UTC";
- timestamp without time zone: microseconds since 1970-01-01T00:00:00 of the wall-clock
  value; timezone None;
- date: microseconds since the epoch at midnight of that date (days * 86_400_000_000);
- time of day: microseconds since midnight.
Null is a placeholder (int64 min: NaT once viewed as datetime64) and True in the tensor's
validity tensor (lakeformat.core.nulls); datasets from earlier versions hold an empty sample.
`Tensor.datetime64()` reads a column as datetime64[us] (timedelta64[us] for times) with NaT.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional, Union

import numpy as np

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH_NAIVE = dt.datetime(1970, 1, 1)
US = 1_000_000
DAY_US = 86_400 * US

KINDS = ("timestamp", "date", "time")
NAT_US = -(2**63)  # a null's placeholder (NaT as datetime64): no time is stored as it


def info_for(kind: str, timezone: Optional[str]) -> Dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown time kind {kind!r}")
    return {"lakeformat_type": kind, "unit": "us", "timezone": timezone}


def _td_us(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def to_micros(value: Union[dt.datetime, dt.date, dt.time, str], kind: str) -> int:
    """A Python date/time (or ISO-8601 string) -> int64 microseconds as described above."""
    if isinstance(value, str):
        value = parse_iso(value, kind)
    if kind == "timestamp":
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if value.tzinfo is not None:
            return _td_us(value - EPOCH)
        return _td_us(value - EPOCH_NAIVE)
    if kind == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        return (value - dt.date(1970, 1, 1)).days * DAY_US
    if kind == "time":
        if isinstance(value, dt.datetime):
            value = value.time()
        return ((value.hour * 60 + value.minute) * 60 + value.second) * US + value.microsecond
    raise ValueError(f"unknown time kind {kind!r}")


def from_micros(us: int, kind: str, timezone: Optional[str] = "UTC") -> Union[dt.datetime, dt.date, dt.time]:
    us = int(us)
    if kind == "timestamp":
        if timezone:
            return EPOCH + dt.timedelta(microseconds=us)
        return EPOCH_NAIVE + dt.timedelta(microseconds=us)
    if kind == "date":
        return dt.date(1970, 1, 1) + dt.timedelta(days=us // DAY_US)
    if kind == "time":
        s, micro = divmod(us, US)
        m, s = divmod(s, 60)
        h, m = divmod(m, 60)
        return dt.time(h, m, s, micro)
    raise ValueError(f"unknown time kind {kind!r}")


def parse_iso(text: str, kind: str) -> Union[dt.datetime, dt.date, dt.time]:
    """ISO-8601 (with 'Z', offsets, a space or 'T', fractional seconds of any length)."""
    t = text.strip()
    if kind == "time":
        t2 = t.replace("Z", "")
        if "+" in t2[1:] or "-" in t2[1:]:
            cut = max(t2.rfind("+"), t2.rfind("-"))
            t2 = t2[:cut]
        return dt.time.fromisoformat(_trim_fraction(t2))
    if kind == "date" and len(t) <= 10:
        return dt.date.fromisoformat(t)
    t = t.replace("Z", "+00:00").replace("z", "+00:00")
    if " " in t and "T" not in t:
        t = t.replace(" ", "T", 1)
    return dt.datetime.fromisoformat(_trim_fraction(t))


def iso_to_stored(text: str, kind: str, timezone: Optional[str]) -> int:
    """An ISO-8601 literal as the int64 a time column of this kind stores, for comparisons
    (`created_at > '2024-01-01'`): for a timestamp with time zone a literal without offset is
    UTC; for one without, the literal's wall clock (an offset is dropped)."""
    try:
        value = parse_iso(text, "date" if kind == "date" else kind)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 {kind}") from None
    if kind == "timestamp" and isinstance(value, dt.datetime) and value.tzinfo is not None and not timezone:
        value = value.replace(tzinfo=None)
    return to_micros(value, kind)


def time_text_utc_micros(text: str) -> int:
    """A time of day with offset ('10:30:00+02:00', 'Z'), as stored by a time-with-time-zone
    column (its text), -> microseconds since midnight UTC (a time without offset: as is)."""
    t = dt.time.fromisoformat(_trim_fraction(text.strip().replace("z", "Z")))
    off = t.utcoffset()
    local = ((t.hour * 60 + t.minute) * 60 + t.second) * US + t.microsecond
    return (local - (_td_us(off) if off is not None else 0)) % DAY_US


def _trim_fraction(t: str) -> str:
    """Python < 3.11 takes 3 or 6 fraction digits only; normalise to 6."""
    if "." not in t:
        return t
    head, rest = t.split(".", 1)
    digits = ""
    i = 0
    while i < len(rest) and rest[i].isdigit():
        digits += rest[i]
        i += 1
    return f"{head}.{(digits + '000000')[:6]}{rest[i:]}"


def decode_tensor_values(values: np.ndarray, info: Dict[str, Any]) -> list:
    """Values of a time tensor (as read with .numpy(aslist=True)) -> Python objects or None."""
    kind, tz = info["lakeformat_type"], info.get("timezone")
    return [None if v is None or np.size(v) == 0 or int(np.asarray(v).reshape(-1)[0]) == NAT_US else from_micros(int(np.asarray(v).reshape(-1)[0]), kind, tz) for v in values]
