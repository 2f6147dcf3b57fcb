"""Airbyte JSON schemas -> tensors, and batches of record values -> tensor samples.

Each top-level field of a stream is one tensor. Its *kind* says how values are stored:

=================  ==========================================  ===============================
kind               from (JSON schema)                          tensor
=================  ==========================================  ===============================
int                integer (or number with airbyte_type        generic int64, shape (1,)
                   integer)
float              number                                      generic float64, shape (1,)
bool               boolean                                     generic bool, shape (1,)
text               string                                      text
timestamp_tz       date-time / timestamp_with_timezone         int64 microseconds, the
timestamp_ntz      timestamp_without_timezone                  representation of
date               date                                        `lakeformat.temporal` (tensor
time               time_without_timezone (or format time)      info says which)
time_tz            time_with_timezone                          text as sent (its offset kept),
                                                               info lakeformat_type time
int_array          array of integers                           generic int64, shape (n,)
float_array        array of numbers                            generic float64, shape (n,)
json               object, other arrays, mixed or no type      json
override / link    `tensor_overrides` / `link_fields`          as configured
=================  ==========================================  ===============================

A null is stored as a null: a null text, a JSON null; numeric, time and array tensors get
None, which the format stores as a placeholder plus True in the tensor's validity tensor
(lakeformat.core.nulls), so the column reads as one dense array with `isnull()`. A value that does not fit its tensor is nulled and named in the row's
`_airbyte_meta.changes`; an integer column that receives a fractional number widens to float.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np

from lakeformat import naming, temporal
from lakeformat import types as logical

INT = "int"
FLOAT = "float"
BOOL = "bool"
TEXT = "text"
TIMESTAMP_TZ = "timestamp_tz"
TIMESTAMP_NTZ = "timestamp_ntz"
DATE = "date"
TIME = "time"
TIME_TZ = "time_tz"
INT_ARRAY = "int_array"
FLOAT_ARRAY = "float_array"
JSON = "json"
OVERRIDE = "override"
LINK = "link"

TIME_KINDS = {TIMESTAMP_TZ: ("timestamp", "UTC"), TIMESTAMP_NTZ: ("timestamp", None), DATE: ("date", None), TIME: ("time", None)}
# a tensor of the key kind holds every value of the value kinds too (widening rewrites it)
WIDENS_TO = {INT: FLOAT, INT_ARRAY: FLOAT_ARRAY}

TYPECAST_ERROR = "DESTINATION_TYPECAST_ERROR"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1



# ------------------------------------------------------------------------------------ schemas
def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if t is None:
        return []
    return [t] if isinstance(t, str) else list(t)


def _ref_kind(ref: str) -> str | None:
    name = ref.rsplit("/", 1)[-1]
    return {
        "Integer": INT, "Number": FLOAT, "Boolean": BOOL, "String": TEXT, "BinaryData": TEXT,
        "Date": DATE, "TimestampWithTimezone": TIMESTAMP_TZ, "TimestampWithoutTimezone": TIMESTAMP_NTZ,
        "TimeWithTimezone": TIME_TZ, "TimeWithoutTimezone": TIME,
    }.get(name)


def kind_of(schema: Any) -> str:
    """The kind of one field's JSON schema (see the table in the module docstring)."""
    if not isinstance(schema, dict):
        return JSON
    if "$ref" in schema:
        return _ref_kind(str(schema["$ref"])) or JSON
    if any(k in schema for k in ("oneOf", "anyOf", "allOf")):
        options = [s for s in schema.get("oneOf") or schema.get("anyOf") or [] if isinstance(s, dict) and _types(s) != ["null"]]
        if len(options) == 1 and "allOf" not in schema:
            return kind_of(options[0])
        return JSON
    types = [t for t in _types(schema) if t != "null"]
    if len(types) != 1:
        if set(types) == {"integer", "number"}:
            return FLOAT
        return JSON
    t = types[0]
    airbyte_type = schema.get("airbyte_type")
    if t == "integer" or (t == "number" and airbyte_type == "integer"):
        return INT
    if t == "number":
        return FLOAT
    if t == "boolean":
        return BOOL
    if t == "string":
        fmt = schema.get("format")
        if airbyte_type == "timestamp_without_timezone":
            return TIMESTAMP_NTZ
        if airbyte_type == "timestamp_with_timezone" or fmt == "date-time":
            return TIMESTAMP_TZ
        if fmt == "date":
            return DATE
        if airbyte_type == "time_with_timezone":
            return TIME_TZ  # an offset a time of day in microseconds cannot hold
        if fmt == "time" or airbyte_type == "time_without_timezone":
            return TIME
        return TEXT
    if t == "array":
        items = schema.get("items")
        if isinstance(items, dict):
            k = kind_of(items)
            if k == INT:
                return INT_ARRAY
            if k == FLOAT:
                return FLOAT_ARRAY
        return JSON
    return JSON


def kind_of_value(v: Any) -> str:
    """The kind of a field that no schema declared, from its first non-null value."""
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int):
        return INT
    if isinstance(v, float):
        return FLOAT
    if isinstance(v, str):
        return TEXT
    return JSON


def tensor_args(kind: str) -> dict[str, Any]:
    """create_tensor keyword arguments and the tensor info of a kind."""
    if kind == INT or kind == INT_ARRAY:
        return {"htype": "generic", "dtype": "int64"}
    if kind == FLOAT or kind == FLOAT_ARRAY:
        return {"htype": "generic", "dtype": "float64"}
    if kind == BOOL:
        return {"htype": "generic", "dtype": "bool"}
    if kind == TEXT or kind == TIME_TZ:
        return {"htype": "text"}
    if kind in TIME_KINDS:
        return {"htype": "generic", "dtype": "int64"}
    return {"htype": "json"}


def tensor_info(kind: str, field_name: str) -> dict[str, Any]:
    # every column may be null in Airbyte: numeric ones keep typed nulls (lakeformat.core.nulls)
    info: dict[str, Any] = {"airbyte_kind": kind, "airbyte_field": field_name, "nullable": True}
    if kind in TIME_KINDS:
        info.update(logical.temporal_info(*TIME_KINDS[kind]))
    if kind in (INT_ARRAY, FLOAT_ARRAY):  # a null array stays an empty sample (the mask tells it from [])
        info["null_placeholder"] = "empty"
    if kind == TIME_TZ:  # ISO text with its offset; Tensor.datetime64() reads it as UTC
        info.update(logical.time_with_offset_info())
    return info


# the layout's own names and the hidden-tensor pattern: one definition, shared with the SQL
# backfill (lakeformat.naming)
LAYOUT_NAMES = naming.LAYOUT_NAMES
unsafe_name = naming.unsafe_name


def tensor_name(field_name: str, taken: dict[str, str], reserved: Any) -> str:
    """A valid, unused tensor name for a field (the field's own name when it can be). Names
    that are not tensor names, or that are the layout's own file names or hidden-tensor names,
    get a safe name: the same name for the same field and fields, whatever else the stream has."""
    name = field_name if naming.is_valid_name(field_name) else naming.replace_bad_chars(field_name or "field") or "field"
    if not naming.is_valid_name(name):
        name = "f_" + name
    if name.startswith("_airbyte_") and field_name not in taken:
        name = "src" + name
    if unsafe_name(name):
        name = "f_" + name
    base, k = name, 1
    while name in reserved or unsafe_name(name) or (name in taken.values() and taken.get(field_name) != name):
        name = f"{base}_{k}" if not base.endswith("_") else f"{base}{k}"
        k += 1
    return name


# ------------------------------------------------------------------------------------ values
class ColumnResult:
    """A converted column: what to pass to ds.extend, and the rows nulled on the way."""

    __slots__ = ("nulled", "values", "widen")

    def __init__(self, values: Any, nulled: list[int] | None = None, widen: str | None = None):
        self.values = values
        self.nulled = nulled or []
        self.widen = widen


_NONE = type(None)
_ONE_US = dt.timedelta(microseconds=1)
_fromiso = dt.datetime.fromisoformat


def _scalar(col: list[Any], dtype: Any, ok: Callable[[Any], bool], allowed: set) -> ColumnResult:
    types = set(map(type, col))
    if types <= allowed:
        try:
            return ColumnResult(np.asarray(col, dtype=dtype).reshape(-1, 1))
        except (OverflowError, ValueError, TypeError):
            pass
    out: list[Any] = []
    nulled: list[int] = []
    for i, v in enumerate(col):
        if v is None:
            out.append(None)
        elif ok(v):
            out.append(np.asarray([v], dtype=dtype))
        else:
            out.append(None)
            nulled.append(i)
    if not nulled and None not in out:
        return ColumnResult(np.concatenate(out).reshape(-1, 1) if out else np.zeros((0, 1), dtype))
    return ColumnResult(out, nulled)


def _is_int(v: Any) -> bool:
    return type(v) is int and INT64_MIN <= v <= INT64_MAX


def _is_intlike_float(v: Any) -> bool:
    return type(v) is float and v.is_integer() and INT64_MIN <= v <= INT64_MAX


def _is_num(v: Any) -> bool:
    return type(v) in (int, float) and (type(v) is float or INT64_MIN * 2**10 <= v <= INT64_MAX * 2**10)


def convert_int(col: list[Any]) -> ColumnResult:
    types = set(map(type, col))
    if float in types and any(type(v) is float and not v.is_integer() for v in col):
        return ColumnResult(None, widen=FLOAT)
    return _scalar(col, np.int64, lambda v: _is_int(v) or _is_intlike_float(v), {int})


def convert_float(col: list[Any]) -> ColumnResult:
    return _scalar(col, np.float64, _is_num, {int, float})


def convert_bool(col: list[Any]) -> ColumnResult:
    return _scalar(col, np.bool_, lambda v: type(v) is bool, {bool})


def convert_text(col: list[Any]) -> ColumnResult:
    types = set(map(type, col))
    if types <= {str, _NONE}:
        return ColumnResult(col)
    import orjson

    # Airbyte's rule for string columns: any JSON value casts to its JSON text
    return ColumnResult([v if v is None or type(v) is str else orjson.dumps(v).decode() for v in col])


def _micros_tz(s: str) -> int:
    d = _fromiso(s)
    if d.tzinfo is None:
        return (d - temporal.EPOCH_NAIVE) // _ONE_US
    return (d - temporal.EPOCH) // _ONE_US


def _micros_ntz(s: str) -> int:
    d = _fromiso(s)
    return (d.replace(tzinfo=None) - temporal.EPOCH_NAIVE) // _ONE_US


_UTC_SUFFIXES = ("+00:00", "Z", "+0000")


def _numpy_times(col: list[Any], kind: str) -> np.ndarray | None:
    """The common case in bulk: every value a str of one length, in UTC (one suffix) for a
    timestamp with time zone, or without offset for one without; numpy parses them in C.
    None when the batch is anything else (the per-value path then decides)."""
    if kind not in (TIMESTAMP_TZ, TIMESTAMP_NTZ) or not col:
        return None
    first = col[0]
    if type(first) is not str or len(first) < 19 or first[10] != "T":
        return None
    if set(map(type, col)) != {str} or len(set(map(len, col))) != 1:
        return None
    if kind == TIMESTAMP_TZ:
        suffix = next((x for x in _UTC_SUFFIXES if first.endswith(x)), None)
        if suffix is None or not all(v.endswith(suffix) for v in col):
            return None
        cut = len(first) - len(suffix)
        body = [v[:cut] for v in col]
    else:
        if first[-1] == "Z" or "+" in first[19:] or "-" in first[19:]:
            return None
        body = col
    try:
        arr = np.array(body, dtype="datetime64[us]")
    except ValueError:
        return None
    return arr.astype(np.int64).reshape(-1, 1)


def convert_time(col: list[Any], kind: str) -> ColumnResult:
    """ISO-8601 strings -> int64 microseconds, exactly as `lakeformat.temporal.to_micros`."""
    bulk = _numpy_times(col, kind)
    if bulk is not None:
        return ColumnResult(bulk)
    tkind = TIME_KINDS[kind][0]
    fast = _micros_tz if kind == TIMESTAMP_TZ else _micros_ntz if kind == TIMESTAMP_NTZ else None
    out: list[Any] = []
    nulled: list[int] = []
    has_null = False
    for i, v in enumerate(col):
        if v is None:
            out.append(None)
            has_null = True
            continue
        if type(v) is not str:
            out.append(None)
            nulled.append(i)
            continue
        try:
            if fast is not None and len(v) > 10:
                out.append(fast(v))
            else:
                out.append(temporal.to_micros(v, tkind) if kind != TIMESTAMP_NTZ else _ntz_slow(v))
        except (ValueError, OverflowError, TypeError):
            try:
                out.append(temporal.to_micros(v, tkind) if kind != TIMESTAMP_NTZ else _ntz_slow(v))
            except (ValueError, OverflowError, TypeError):
                out.append(None)
                nulled.append(i)
    if not nulled and not has_null:
        return ColumnResult(np.asarray(out, dtype=np.int64).reshape(-1, 1))
    return ColumnResult([None if v is None else np.asarray([v], dtype=np.int64) for v in out], nulled)


def _ntz_slow(s: str) -> int:
    d = temporal.parse_iso(s, "timestamp")
    if isinstance(d, dt.datetime) and d.tzinfo is not None:
        d = d.replace(tzinfo=None)
    return temporal.to_micros(d, "timestamp")


def convert_array(col: list[Any], kind: str) -> ColumnResult:
    dtype = np.int64 if kind == INT_ARRAY else np.float64
    out: list[Any] = []
    nulled: list[int] = []
    for i, v in enumerate(col):
        if v is None:
            out.append(None)
            continue
        if type(v) is list:
            if kind == INT_ARRAY and any(type(x) is float and not x.is_integer() for x in v):
                return ColumnResult(None, widen=FLOAT_ARRAY)
            if all(type(x) in (int, float) for x in v):
                try:
                    out.append(np.asarray(v, dtype=dtype))
                    continue
                except (OverflowError, ValueError):
                    pass
        out.append(None)
        nulled.append(i)
    return ColumnResult(out, nulled)


def convert_json(col: list[Any]) -> ColumnResult:
    return ColumnResult(col)


def convert(kind: str, col: list[Any]) -> ColumnResult:
    """One column of a batch, as values for ds.extend (see the module docstring)."""
    if kind == INT:
        return convert_int(col)
    if kind == FLOAT:
        return convert_float(col)
    if kind == BOOL:
        return convert_bool(col)
    if kind == TEXT or kind == TIME_TZ:
        return convert_text(col)
    if kind in TIME_KINDS:
        return convert_time(col, kind)
    if kind in (INT_ARRAY, FLOAT_ARRAY):
        return convert_array(col, kind)
    return convert_json(col)


def value_of(kind: str, v: Any) -> Any:
    """A stored sample (as read with numpy(aslist=True)) -> the Python value it stands for."""
    if kind in (JSON, TEXT, TIME_TZ, OVERRIDE, LINK) or v is None:
        return v
    a = np.asarray(v)
    if kind in (INT_ARRAY, FLOAT_ARRAY):
        return a.tolist()
    if a.size == 0:
        return None
    return a.reshape(-1)[0].item()


def widen_values(values: list[Any], to_kind: str) -> list[Any]:
    """Samples of an int tensor, as samples of the wider kind."""
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        a = np.asarray(v)
        out.append(None if a.size == 0 and to_kind == FLOAT else a.astype(np.float64))
    return out


def convert_override(ov: Any, col: list[Any]) -> ColumnResult:
    """Values for a tensor made by `tensor_overrides`: a base64 string into an image tensor
    becomes its decoded file bytes, a list into a numeric tensor an array of its dtype. The
    tensor itself judges the result (a rejected sample is nulled by the sink)."""
    import base64

    from lakeformat.core.sample import Sample
    from lakeformat.htypes import TEXT_HTYPES, parse_htype

    base = parse_htype(ov.htype)[0] if ov.htype else "generic"
    if base in TEXT_HTYPES:
        return ColumnResult(col)
    dtype = np.dtype(ov.dtype) if ov.dtype else None
    out: list[Any] = []
    nulled: list[int] = []
    for i, v in enumerate(col):
        if v is None:
            out.append(None)
            continue
        try:
            if isinstance(v, str) and base.startswith("image"):
                out.append(Sample(buffer=base64.b64decode(v, validate=True)))
            elif isinstance(v, (list, int, float)) and not isinstance(v, bool) or isinstance(v, bool) and dtype == np.bool_:
                out.append(np.asarray(v, dtype=dtype) if dtype is not None else np.asarray(v))
            else:
                raise ValueError(type(v).__name__)
        except (ValueError, TypeError, OverflowError):
            out.append(None)
            nulled.append(i)
    return ColumnResult(out, nulled)
