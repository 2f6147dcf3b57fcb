"""Column conversion without a database: every kind, NULLs, bad values."""
import datetime as dt
import decimal

import numpy as np

from connectors.sql.types import ColumnData, ColumnPlan, apply_override, convert_column, decode_values, plan_from_values, tensor_name_for
from lakeformat import temporal


def _fail(i, v, reason):
    raise AssertionError(f"unexpected bad value {v!r} at {i}: {reason}")


def _plan(kind, dtype=None, htype="generic", info=None):
    return ColumnPlan("c", "c", kind, htype, dtype, info or {})


def test_ints_dense_and_with_nulls():
    cd = convert_column(_plan("int", "int32"), (1, 2, 3), _fail)
    assert cd.mask is None and cd.values.dtype == np.int32 and cd.values.tolist() == [1, 2, 3]
    cd = convert_column(_plan("int", "int64"), (1, None, 3), _fail)
    assert cd.mask.tolist() == [False, True, False]
    vals = cd.extend_values(3)
    assert isinstance(vals, np.ma.MaskedArray) and vals.mask.tolist() == [False, True, False]
    assert vals.data[0] == 1 and vals.data[2] == 3
    assert cd.value_at(2).tolist() == [3] and cd.value_at(1) is None


def test_int_out_of_range_is_reported_at_its_row():
    bad = []
    cd = convert_column(_plan("int", "int16"), (1, 70000, 3), lambda i, v, r: bad.append((i, v)))
    assert bad == [(1, 70000)]
    assert cd.mask.tolist() == [False, True, False]


def test_timestamps_dates_times():
    aware = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    cd = convert_column(_plan("timestamptz", "int64"), (aware, None), _fail)
    assert cd.values.tolist() == [temporal.to_micros(aware, "timestamp")]
    naive = dt.datetime(1969, 12, 31, 23, 59, 59, 999999)
    cd = convert_column(_plan("timestamp", "int64"), (naive,), _fail)
    assert cd.values.tolist() == [-1]
    cd = convert_column(_plan("date", "int64"), (dt.date(1970, 1, 2), dt.date(1969, 12, 31)), _fail)
    assert cd.values.tolist() == [temporal.DAY_US, -temporal.DAY_US]
    cd = convert_column(_plan("time", "int64"), (dt.time(1, 2, 3, 4), dt.timedelta(hours=1)), _fail)
    assert cd.values.tolist() == [3723000004, 3600 * 10**6]


def test_text_null_vs_empty_and_coercion():
    cd = convert_column(_plan("text", htype="text"), ("a", "", None), _fail)
    assert cd.values == ["a", "", None]
    cd = convert_column(_plan("text", htype="text"), ("a", 5, None), _fail)
    assert cd.values == ["a", "5", None]


def test_decimals():
    cd = convert_column(_plan("decimal_float", "float64"), (decimal.Decimal("1.25"), None), _fail)
    assert cd.values.tolist() == [1.25]
    cd = convert_column(_plan("decimal_text", htype="text"), (decimal.Decimal("12345678901234567890.123"), None), _fail)
    assert cd.values == ["12345678901234567890.123", None]
    back = decode_values(["12345678901234567890.123", None], {"lakeformat_type": "decimal"})
    assert back == [decimal.Decimal("12345678901234567890.123"), None]


def test_arrays_and_bytes_have_masks():
    cd = convert_column(_plan("array", "int32"), ([1, 2], [], None), _fail)
    assert cd.mask.tolist() == [False, False, True]
    assert cd.values[0].dtype == np.int32 and cd.values[1].shape == (0,)
    bad = []
    convert_column(_plan("array", "int32"), ([1, None],), lambda i, v, r: bad.append(i))
    assert bad == [0]
    cd = convert_column(_plan("bytes", "uint8"), (b"ab", b"", None), _fail)
    assert cd.values[0].tobytes() == b"ab" and cd.values[1].size == 0 and cd.mask.tolist() == [False, False, True]


def test_inference_from_values():
    assert plan_from_values("x", [None, 1, 2]).kind == "int"
    assert plan_from_values("x", [1.5, 2]).kind == "float"
    assert plan_from_values("x", [decimal.Decimal("1.5")]).kind == "decimal_text"
    assert plan_from_values("x", [dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)]).kind == "timestamptz"
    assert plan_from_values("x", [{"a": 1}]).kind == "json"
    assert plan_from_values("x", [[1, 2], [3]]).kind == "array"
    assert plan_from_values("x", [None, None]).kind == "text"


def test_overrides_and_names():
    p = ColumnPlan("photo", "photo", "bytes", "generic", "uint8", sql_type="BYTEA")
    q = apply_override(p, "image:jpeg")
    assert (q.kind, q.htype, q.sample_compression) == ("image", "image", "jpeg")
    q = apply_override(ColumnPlan("u", "u", "text", "text"), "link[image]")
    assert (q.kind, q.htype) == ("link", "link[image]")
    q = apply_override(ColumnPlan("s", "s", "float", "generic", "float64"), "generic:float32")
    assert q.dtype == "float32"
    assert tensor_name_for("my col!") == "my_col_"
    assert tensor_name_for("info") == "info_"
    assert tensor_name_for("a", ["a"]) == "a_"


def test_take_keeps_alignment():
    from connectors.sql.writing import _take

    cd = ColumnData(np.array([10, 30, 40]), np.array([False, True, False, False]))
    t = _take(cd, np.array([1, 3]), 4)
    assert t.mask.tolist() == [True, False] and t.values.tolist() == [40]
