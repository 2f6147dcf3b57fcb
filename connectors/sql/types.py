"""SQL column types -> tensors, and batches of SQL values -> tensor values.

Each source column gets a `ColumnPlan`: the tensor it becomes (htype, dtype, tensor info) and a
`kind` that says how its values are converted. Conversion works on a whole batch column at once
(NumPy where it can) and falls back to one value at a time only to find and name a bad value.

| SQL type                          | kind           | tensor                                             |
|-----------------------------------|----------------|----------------------------------------------------|
| smallint / integer / bigint       | int            | generic int16 / int32 / int64 (unsigned: uint*)    |
| real / double / float             | float          | generic float64                                    |
| numeric(p<=15, s)                 | decimal_float  | generic float64, info lakeformat_type "decimal"    |
| numeric (wider or unbounded)      | decimal_text   | text holding the exact decimal                     |
| boolean                           | bool           | generic bool                                       |
| char / varchar / text / enum/uuid | text           | text                                               |
| date / time / timestamp[tz]       | date/time/...  | int64 microseconds (lakeformat.temporal)           |
| time with time zone               | timetz         | text (ISO, offset kept), info with_offset          |
| interval                          | interval       | int64 microseconds, info lakeformat_type interval  |
| json / jsonb                      | json           | json                                               |
| numeric/bool arrays               | array          | generic, dynamic shape, + hidden null mask         |
| text arrays                       | text_array     | json (a list of strings)                           |
| bytea / blob / binary             | bytes          | generic uint8, + hidden null mask                  |

NULL: text and json store a null (reads None, distinct from "" and {}); numeric, time, array
and bytes columns are given to `ds.extend` as masked arrays / None, which the format stores as
a placeholder (an empty sample for a ragged array) and True in the tensor's hidden validity
tensor (lakeformat.core.nulls), so a NULL stays distinct from 0, NaN, the epoch, [] and b"".
Datasets from earlier versions (`_<name>__null` tensors, empty samples) read the same.
"""
from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import operator
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from lakeformat import naming, temporal
from lakeformat import types as logical
from connectors.sql.errors import SourceConfigError

US_TD = dt.timedelta(microseconds=1)
_ORDINAL_1970 = dt.date(1970, 1, 1).toordinal()

SCALAR_NUMERIC_KINDS = ("int", "float", "bool", "decimal_float", "timestamp", "timestamptz", "date", "time", "interval", "generic")
LIST_KINDS = ("text", "timetz", "decimal_text", "json", "json_text", "text_array", "list", "class_label", "link", "image")
MASKED_KINDS = ("array", "bytes")
DECIMAL_MODES = ("auto", "float", "text")
# doubles hold every decimal of up to 15 significant digits exactly (round trip through repr)
FLOAT_SAFE_DIGITS = 15


@dataclass
class ColumnPlan:
    """How one source column is stored."""

    source: str
    tensor: str
    kind: str
    htype: str = "generic"
    dtype: Optional[str] = None
    info: Dict[str, Any] = field(default_factory=dict)
    sample_compression: Optional[str] = None
    chunk_compression: Optional[str] = None
    sql_type: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ColumnPlan":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def describe(self) -> str:
        extra = f" {self.dtype}" if self.dtype else ""
        comp = f" ({self.sample_compression})" if self.sample_compression else ""
        return f"{self.source} [{self.sql_type or '?'}] -> {self.tensor}: {self.htype}{extra}{comp} ({self.kind})"


# ----------------------------------------------------------------------------------- naming


def tensor_name_for(column: str, taken: Sequence[str] = ()) -> str:
    """A valid, unused tensor name for a SQL column (spaces and symbols become '_'; names of
    Dataset attributes such as `info` or `index` get a trailing '_')."""
    from lakeformat.core.dataset import Dataset

    name = naming.replace_bad_chars(column) or "_"
    if name[0] in ".-":
        name = "_" + name
    while name in dir(Dataset) or name in taken:
        name += "_"
    return name


# ----------------------------------------------------------------------------------- mapping
def plan_for_sa_type(column: str, satype: Any, *, dialect: str, decimal_mode: str = "auto") -> ColumnPlan:
    """The plan for a column whose SQLAlchemy type is `satype` (reflected or declared)."""
    import sqlalchemy as sa

    name = tensor_name_for(column)
    sql_type = _type_text(satype, dialect)
    p = ColumnPlan(source=column, tensor=name, kind="text", htype="text", sql_type=sql_type)
    if isinstance(satype, sa.Boolean):
        p.kind, p.htype, p.dtype = "bool", "generic", "bool"
    elif isinstance(satype, sa.Integer):
        p.kind, p.htype, p.dtype = "int", "generic", _int_dtype(satype, dialect)
    elif isinstance(satype, sa.Float):
        p.kind, p.htype, p.dtype = "float", "generic", "float64"
    elif isinstance(satype, sa.Numeric):
        precision = getattr(satype, "precision", None)
        scale = getattr(satype, "scale", None)
        fits = precision is not None and precision <= FLOAT_SAFE_DIGITS
        as_float = decimal_mode == "float" or (decimal_mode == "auto" and fits)
        p.info = logical.decimal_info(precision, scale)
        if as_float:
            p.kind, p.htype, p.dtype = "decimal_float", "generic", "float64"
            if not fits:
                p.info["lossy"] = True
        else:
            p.kind, p.htype = "decimal_text", "text"
    elif isinstance(satype, sa.DateTime):
        tz = bool(getattr(satype, "timezone", False))
        p.kind = "timestamptz" if tz else "timestamp"
        p.htype, p.dtype = "generic", "int64"
        p.info = logical.temporal_info("timestamp", "UTC" if tz else None)
    elif isinstance(satype, sa.Date):
        p.kind, p.htype, p.dtype = "date", "generic", "int64"
        p.info = logical.temporal_info("date", None)
    elif isinstance(satype, sa.Time) and getattr(satype, "timezone", False):
        p.kind, p.htype = "timetz", "text"  # ISO text: the offset an int64 of microseconds drops
        p.info = logical.time_with_offset_info()
    elif isinstance(satype, sa.Time):
        p.kind, p.htype, p.dtype = "time", "generic", "int64"
        p.info = logical.temporal_info("time", None)
    elif isinstance(satype, sa.Interval) or type(satype).__name__ in ("INTERVAL",):
        p.kind, p.htype, p.dtype = "interval", "generic", "int64"
        p.info = logical.interval_info()
    elif isinstance(satype, sa.JSON):
        p.kind, p.htype = "json", "json"
    elif isinstance(satype, sa.ARRAY):
        item = satype.item_type
        if isinstance(item, sa.Boolean):
            p.kind, p.htype, p.dtype = "array", "generic", "bool"
        elif isinstance(item, sa.Integer):
            p.kind, p.htype, p.dtype = "array", "generic", _int_dtype(item, dialect)
        elif isinstance(item, (sa.Numeric, sa.Float)):  # floats and decimals
            p.kind, p.htype, p.dtype = "array", "generic", "float64"
        else:
            p.kind, p.htype = "text_array", "json"
        p.info = logical.array_info() if p.kind == "array" else logical.text_array_info()
    elif isinstance(satype, sa.types._Binary) or isinstance(satype, sa.LargeBinary):
        p.kind, p.htype, p.dtype = "bytes", "generic", "uint8"
        p.info = logical.bytes_info()
    elif isinstance(satype, sa.Uuid):
        p.kind, p.htype = "text", "text"
        p.info = logical.uuid_info()
    elif isinstance(satype, sa.types.NullType):
        p.kind = "infer"
    # String, Text, Enum and anything unknown: text (unknown values are stored as str(value))
    return p


def _type_text(satype: Any, dialect: str) -> str:
    try:
        return str(satype)
    except Exception:  # noqa: BLE001 - some types do not render without their dialect
        return type(satype).__name__


def _int_dtype(satype: Any, dialect: str) -> str:
    import sqlalchemy as sa

    unsigned = bool(getattr(satype, "unsigned", False))
    if dialect == "sqlite":
        return "int64"  # SQLite integers are 64-bit whatever their declared name
    if isinstance(satype, sa.BigInteger):
        bits = 64
    elif isinstance(satype, sa.SmallInteger):
        bits = 16
    else:
        name = type(satype).__name__.upper()
        bits = {"TINYINT": 8, "MEDIUMINT": 32, "YEAR": 16}.get(name, 32)
    if unsigned:
        return f"uint{bits}"
    return f"int{bits}"


def plan_from_values(column: str, values: Sequence[Any], *, decimal_mode: str = "auto") -> ColumnPlan:
    """The plan for a column known only by its values (a query, or an untyped SQLite column):
    the type of its first non-null values decides; an all-null sample becomes text."""
    name = tensor_name_for(column)
    p = ColumnPlan(source=column, tensor=name, kind="text", htype="text", sql_type="(inferred)")
    sample = [v for v in values if v is not None][:1000]
    if not sample:
        return p
    types = {type(v) for v in sample}
    first = sample[0]
    if types <= {bool}:
        p.kind, p.htype, p.dtype = "bool", "generic", "bool"
    elif types <= {int, bool}:
        p.kind, p.htype, p.dtype = "int", "generic", "int64"
    elif types <= {float, int}:
        p.kind, p.htype, p.dtype = "float", "generic", "float64"
    elif types <= {decimal.Decimal, int}:
        p.info = logical.decimal_info(None, None)
        if decimal_mode == "float":
            p.kind, p.htype, p.dtype = "decimal_float", "generic", "float64"
            p.info["lossy"] = True
        else:
            # a query column's precision is unknown: keep the exact decimal as text
            p.kind, p.htype = "decimal_text", "text"
    elif types <= {dt.datetime}:
        tz = first.tzinfo is not None
        p.kind = "timestamptz" if tz else "timestamp"
        p.htype, p.dtype = "generic", "int64"
        p.info = logical.temporal_info("timestamp", "UTC" if tz else None)
    elif types <= {dt.date}:
        p.kind, p.htype, p.dtype = "date", "generic", "int64"
        p.info = logical.temporal_info("date", None)
    elif types <= {dt.time} and first.tzinfo is not None:
        p.kind, p.htype = "timetz", "text"
        p.info = logical.time_with_offset_info()
    elif types <= {dt.time}:
        p.kind, p.htype, p.dtype = "time", "generic", "int64"
        p.info = logical.temporal_info("time", None)
    elif types <= {dt.timedelta}:
        p.kind, p.htype, p.dtype = "interval", "generic", "int64"
        p.info = logical.interval_info()
    elif types <= {dict, list}:
        if types == {list} and all(_numeric_list(v) for v in sample):
            p.kind, p.htype, p.dtype = "array", "generic", _array_dtype(sample)
            p.info = logical.array_info()
        else:
            p.kind, p.htype = "json", "json"
    elif types <= {bytes, bytearray, memoryview}:
        p.kind, p.htype, p.dtype = "bytes", "generic", "uint8"
        p.info = logical.bytes_info()
    elif types <= {uuid.UUID}:
        p.info = logical.uuid_info()
    return p


def _numeric_list(v: Any) -> bool:
    flat = np.asarray(v, dtype=object).reshape(-1) if v else []
    return all(isinstance(x, (int, float, bool)) and x is not None for x in flat)


def _array_dtype(sample: Sequence[list]) -> str:
    flat = [x for v in sample for x in np.asarray(v, dtype=object).reshape(-1)]
    if flat and all(isinstance(x, bool) for x in flat):
        return "bool"
    if all(isinstance(x, int) for x in flat):
        return "int64"
    return "float64"


_OVERRIDE_HTYPES = ("generic", "text", "json", "list", "class_label", "image", "embedding")


def apply_override(p: ColumnPlan, spec: str) -> ColumnPlan:
    """`--tensor COL=htype[:dtype]` (for image, `image[:png|jpeg]`) and `--link-column
    COL=link[htype]`: replace the mapped tensor type of one column."""
    htype, _, arg = spec.partition(":")
    htype = htype.strip()
    arg = arg.strip() or None
    base_info = {"source_sql_type": p.sql_type}
    if htype.startswith("link[") and htype.endswith("]"):
        return ColumnPlan(p.source, p.tensor, "link", htype, None, {"lakeformat_type": "link", **base_info}, sql_type=p.sql_type)
    if htype not in _OVERRIDE_HTYPES:
        raise SourceConfigError(f"column {p.source!r}: htype {htype!r} is not one of {', '.join(_OVERRIDE_HTYPES)} or link[...]")
    if htype == "image":
        comp = (arg or "png").lower().replace("jpg", "jpeg")
        if comp not in ("png", "jpeg"):
            raise SourceConfigError(f"column {p.source!r}: image compression is png or jpeg, not {arg!r}")
        return ColumnPlan(p.source, p.tensor, "image", "image", "uint8", {}, sample_compression=comp, sql_type=p.sql_type)
    if htype == "text":
        return ColumnPlan(p.source, p.tensor, "text", "text", None, dict(base_info), sql_type=p.sql_type)
    if htype == "json":
        kind = "json" if p.kind in ("json", "text_array", "array") else "json_text"
        return ColumnPlan(p.source, p.tensor, kind, "json", None, dict(base_info), sql_type=p.sql_type)
    if htype == "list":
        return ColumnPlan(p.source, p.tensor, "list", "list", None, dict(base_info), sql_type=p.sql_type)
    if htype == "class_label":
        return ColumnPlan(p.source, p.tensor, "class_label", "class_label", None, dict(base_info), sql_type=p.sql_type)
    # generic / embedding with a dtype
    if arg is not None:
        try:
            np.dtype(arg)
        except TypeError:
            raise SourceConfigError(f"column {p.source!r}: unknown dtype {arg!r}") from None
    if p.kind in ("array", "bytes") or htype == "embedding":
        return ColumnPlan(p.source, p.tensor, "array", htype, arg or p.dtype or "float32", {"lakeformat_type": "array", **base_info}, sql_type=p.sql_type)
    if p.kind in ("timestamp", "timestamptz", "date", "time", "interval") and arg in (None, "int64"):
        return p
    return ColumnPlan(p.source, p.tensor, "generic", "generic", arg or p.dtype or "float64", dict(base_info, **({"lakeformat_type": "decimal"} if p.kind.startswith("decimal") else {})), sql_type=p.sql_type)


# ----------------------------------------------------------------------------------- conversion
class BadValue(Exception):
    """Raised by a value converter; carries the batch position and the reason."""

    def __init__(self, index: int, value: Any, reason: str):
        super().__init__(reason)
        self.index = index
        self.value = value
        self.reason = reason


@dataclass
class ColumnData:
    """One converted batch column. `values`: an ndarray of the non-null values (numeric kinds),
    or a list with None for nulls (the others). `mask`: True where the source was NULL, or None
    when nothing was null."""

    values: Any
    mask: Optional[np.ndarray] = None

    def extend_values(self, n: int) -> Any:
        """What to hand `ds.extend` for this column."""
        if self.mask is None or not isinstance(self.values, np.ndarray):
            return self.values
        # masked entries are nulls: the format stores placeholders and a validity tensor
        full = np.zeros(n, dtype=self.values.dtype)
        full[~self.mask] = self.values
        return np.ma.MaskedArray(full, mask=self.mask)

    def value_at(self, i: int) -> Any:
        """The tensor value of row i (for in-place updates)."""
        if isinstance(self.values, np.ndarray):
            if self.mask is None:
                return self.values[i : i + 1]
            if self.mask[i]:
                return None
            k = int(np.count_nonzero(~self.mask[:i]))
            return self.values[k : k + 1]
        return self.values[i]

    def mask_values(self, n: int) -> np.ndarray:
        return self.mask.reshape(n, 1) if self.mask is not None else np.zeros((n, 1), dtype=bool)


def _td_us(d: dt.timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _one_int(p: ColumnPlan, v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        out = v
    elif isinstance(v, (float, decimal.Decimal)) and v == int(v):
        out = int(v)
    elif isinstance(v, str) and v.strip().lstrip("-").isdigit():
        out = int(v)
    else:
        raise ValueError(f"not an integer for {p.dtype}")
    info = np.iinfo(p.dtype)
    if not info.min <= out <= info.max:
        raise ValueError(f"out of range for {p.dtype}")
    return out


def _one_float(p: ColumnPlan, v: Any) -> float:
    if isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        return float(v)
    raise ValueError("not a number")


def _one_bool(p: ColumnPlan, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise ValueError("not a boolean")


def _one_timestamp(p: ColumnPlan, v: Any) -> int:
    if isinstance(v, str):
        v = temporal.parse_iso(v, "timestamp")
    if isinstance(v, dt.datetime):
        if p.kind == "timestamptz":
            if v.tzinfo is None:
                v = v.replace(tzinfo=dt.timezone.utc)  # a driver without zones hands UTC wall clock
            return _td_us(v - temporal.EPOCH)
        if v.tzinfo is not None:
            v = v.replace(tzinfo=None)
        return _td_us(v - temporal.EPOCH_NAIVE)
    if isinstance(v, dt.date):
        return temporal.to_micros(v, "timestamp")
    raise ValueError("not a timestamp")


def _one_date(p: ColumnPlan, v: Any) -> int:
    if isinstance(v, str):
        v = temporal.parse_iso(v, "date")
    if isinstance(v, dt.date):
        return (v.toordinal() - _ORDINAL_1970) * temporal.DAY_US
    raise ValueError("not a date")


def _one_time(p: ColumnPlan, v: Any) -> int:
    if isinstance(v, str):
        v = temporal.parse_iso(v, "time")
    if isinstance(v, dt.timedelta):  # MySQL TIME
        us = _td_us(v)
        if not 0 <= us < temporal.DAY_US:
            raise ValueError("a TIME outside 00:00..24:00 is not a time of day")
        return us
    if isinstance(v, dt.time):
        return ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    raise ValueError("not a time of day")


def _one_timetz(p: ColumnPlan, v: Any) -> str:
    if isinstance(v, str):
        return dt.time.fromisoformat(v.strip()).isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    raise ValueError("not a time of day")


def _one_interval(p: ColumnPlan, v: Any) -> int:
    if isinstance(v, dt.timedelta):
        return _td_us(v)
    raise ValueError("not an interval")


def _one_generic(p: ColumnPlan, v: Any) -> Any:
    if isinstance(v, decimal.Decimal):
        v = float(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time, str, bytes, dict)):
        raise ValueError(f"a {type(v).__name__} is not numeric")
    a = np.asarray(v)
    if a.dtype.kind not in "biuf":
        raise ValueError("not numeric")
    if a.size != 1:
        raise ValueError("not a scalar")
    from lakeformat.core.serialize import Context, cast_array

    return cast_array(a.reshape(-1), np.dtype(p.dtype), Context("", 0, [], False, lambda *a: 0), 0, True)[0]


def _one_text(p: ColumnPlan, v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8")
    return str(v)


def _one_decimal_text(p: ColumnPlan, v: Any) -> str:
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (int, float, str)) and not isinstance(v, bool):
        return str(decimal.Decimal(str(v)))
    raise ValueError("not a decimal")


def _one_json(p: ColumnPlan, v: Any) -> Any:
    if p.kind == "json_text" or (isinstance(v, (str, bytes)) and p.kind == "json"):
        try:
            return json.loads(v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"not JSON: {e}") from None
    json.dumps(v, default=_json_default)  # raises on what cannot be stored
    return v


def _json_default(o: Any) -> Any:
    if isinstance(o, decimal.Decimal):
        return float(o)
    raise TypeError(f"{type(o).__name__} is not JSON")


def _one_text_array(p: ColumnPlan, v: Any) -> Any:
    if not isinstance(v, (list, tuple)):
        raise ValueError("not an array")
    return [None if x is None else _one_text(p, x) for x in v]


def _one_list(p: ColumnPlan, v: Any) -> Any:
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            v = [v]
    if not isinstance(v, (list, tuple)):
        raise ValueError("not a list")
    return list(v)


def _one_array(p: ColumnPlan, v: Any) -> np.ndarray:
    if isinstance(v, (str, bytes, dict)):
        raise ValueError("not an array")
    a = np.asarray(v)
    if a.dtype == object:
        raise ValueError("an array with NULL elements or mixed types")
    if a.dtype.kind not in "biuf":
        raise ValueError("not a numeric array")
    want = np.dtype(p.dtype)
    if a.size == 0:
        return np.zeros(a.shape if a.ndim else (0,), dtype=want)
    if a.dtype.kind == "f" and want.kind in "iub":
        raise ValueError(f"float elements in a {want} array")
    if a.size and want.kind in "iu" and a.dtype.kind in "iu":
        info = np.iinfo(want)
        if a.min() < info.min or a.max() > info.max:
            raise ValueError(f"elements out of range for {want}")
    if a.ndim == 0:
        a = a.reshape(1)
    return a.astype(want, copy=False)


def _one_bytes(p: ColumnPlan, v: Any) -> np.ndarray:
    if isinstance(v, str):
        v = v.encode("utf-8")
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise ValueError("not bytes")
    return np.frombuffer(bytes(v), dtype=np.uint8)


def _one_image(p: ColumnPlan, v: Any) -> Any:
    from lakeformat.core.sample import Sample

    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise ValueError("an image column holds encoded image bytes")
    s = Sample(buffer=bytes(v))
    if s.compression is None:
        raise ValueError("bytes that are not a PNG or JPEG image")
    return s


def _one_link(p: ColumnPlan, v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("a link column holds URL strings")
    return v


def _one_label(p: ColumnPlan, v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("not a class label")
    if isinstance(v, int):
        if v < 0:
            raise ValueError("a negative class label")
        return v
    return _one_text(p, v)


ONE: Dict[str, Callable[[ColumnPlan, Any], Any]] = {
    "int": _one_int,
    "float": _one_float,
    "decimal_float": _one_float,
    "bool": _one_bool,
    "timestamp": _one_timestamp,
    "timestamptz": _one_timestamp,
    "date": _one_date,
    "time": _one_time,
    "timetz": _one_timetz,
    "interval": _one_interval,
    "generic": _one_generic,
    "text": _one_text,
    "decimal_text": _one_decimal_text,
    "json": _one_json,
    "json_text": _one_json,
    "text_array": _one_text_array,
    "list": _one_list,
    "array": _one_array,
    "bytes": _one_bytes,
    "image": _one_image,
    "link": _one_link,
    "class_label": _one_label,
}

_NUMERIC_DTYPE = {"float": "float64", "decimal_float": "float64", "bool": "bool", "timestamp": "int64", "timestamptz": "int64", "date": "int64", "time": "int64", "interval": "int64"}


def _fast(p: ColumnPlan, col: Sequence[Any]) -> Optional[ColumnData]:
    """Whole-column conversion for the common cases; None when a value needs a closer look."""
    kind = p.kind
    # identity tests in C: tuple.count(None) would call each value's __eq__ (slow for Decimal)
    isnull = np.fromiter(map(operator.is_, col, itertools.repeat(None)), dtype=bool, count=len(col))
    if isnull.any():
        mask = isnull
        present = list(itertools.compress(col, ~isnull))
    else:
        mask = None
        present = col
    types = set(map(type, present))
    if kind in ("text", "link") and types <= {str}:
        return ColumnData(list(col))
    if kind == "json" and not (types & {str, bytes, decimal.Decimal}):
        return ColumnData(list(col))
    if kind == "int" and types <= {int}:
        try:
            return ColumnData(np.array(present, dtype=p.dtype), mask)
        except OverflowError:
            return None
    if kind in ("float", "decimal_float") and types <= {float, int, decimal.Decimal}:
        return ColumnData(np.array(present, dtype=np.float64), mask)
    if kind == "bool" and types <= {bool}:
        return ColumnData(np.array(present, dtype=bool), mask)
    if kind == "timestamptz" and types <= {dt.datetime}:
        try:
            us = [(v - temporal.EPOCH) // US_TD for v in present]
        except TypeError:  # a naive value among aware ones
            return None
        return ColumnData(np.array(us, dtype=np.int64), mask)
    if kind == "timestamp" and types <= {dt.datetime}:
        try:
            us = [(v - temporal.EPOCH_NAIVE) // US_TD for v in present]
        except TypeError:
            return None
        return ColumnData(np.array(us, dtype=np.int64), mask)
    if kind == "date" and types <= {dt.date}:
        days = np.fromiter(map(dt.date.toordinal, present), dtype=np.int64, count=len(present))
        return ColumnData((days - _ORDINAL_1970) * temporal.DAY_US, mask)
    if kind == "decimal_text" and types <= {decimal.Decimal}:
        return ColumnData([None if v is None else str(v) for v in col])
    return None


def convert_column(p: ColumnPlan, col: Sequence[Any], on_bad: Callable[[int, Any, str], None]) -> ColumnData:
    """Convert one batch column. `on_bad(index, value, reason)` is called for a value that does
    not fit; it raises (stop the run) or returns (the value becomes NULL)."""
    got = _fast(p, col)
    if got is not None:
        return got
    one = ONE[p.kind]
    out: List[Any] = []
    for i, v in enumerate(col):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(one(p, v))
        except Exception as e:  # noqa: BLE001 - every converter failure is a bad value
            on_bad(i, v, str(e) or type(e).__name__)
            out.append(None)
    if p.kind in SCALAR_NUMERIC_KINDS:
        mask = np.fromiter((v is None for v in out), dtype=bool, count=len(out))
        dtype = p.dtype if p.kind in ("int", "generic") else _NUMERIC_DTYPE[p.kind]
        present = [v for v in out if v is not None]
        return ColumnData(np.array(present, dtype=dtype), mask if mask.any() else None)
    if p.kind in MASKED_KINDS:
        mask = np.fromiter((v is None for v in out), dtype=bool, count=len(out))
        return ColumnData(out, mask if mask.any() else None)
    return ColumnData(out)


def decode_values(values: List[Any], info: Dict[str, Any], mask: Optional[Sequence[Any]] = None) -> List[Any]:
    """Stored values (`t.numpy(aslist=True)`) -> Python values as the source had them: times
    back to datetime/date/time, decimals to Decimal, scalars unwrapped, nulls to None."""
    kind = (info or {}).get("lakeformat_type")
    if (info or {}).get("with_offset"):  # a time with time zone, kept as its ISO text
        return [None if v is None else dt.time.fromisoformat(v) for v in values]
    if kind in temporal.KINDS:
        return temporal.decode_tensor_values(values, info)
    out: List[Any] = []
    for k, v in enumerate(values):
        if mask is not None and np.size(mask[k]) and bool(np.asarray(mask[k]).reshape(-1)[0]):
            out.append(None)
            continue
        if isinstance(v, np.ndarray):
            if kind in ("array", "bytes"):
                out.append(v.tobytes() if kind == "bytes" else v)
                continue
            if v.size == 0:
                out.append(None)
                continue
            x = v.reshape(-1)[0].item()
            if kind == "interval":
                x = dt.timedelta(microseconds=int(x))
            elif kind == "decimal":
                x = decimal.Decimal(repr(x))
            out.append(x)
        elif kind == "decimal" and isinstance(v, str):
            out.append(decimal.Decimal(v))
        else:
            out.append(v)
    return out
