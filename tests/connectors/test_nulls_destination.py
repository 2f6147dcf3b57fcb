"""The Airbyte destination with nulls in every kind of field: scalar columns read back as
dense typed arrays with their nulls, on the columnar fast path and on the Python path alike."""
from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

import lakeformat
from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.destination import run_write
from tests.connectors.destination.helpers import catalog, record, state, stream

PROPS = {
    "id": {"type": "integer"},
    "n": {"type": ["null", "integer"]},
    "x": {"type": ["null", "number"]},
    "ok": {"type": ["null", "boolean"]},
    "s": {"type": ["null", "string"]},
    "at": {"type": ["null", "string"], "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
    "local": {"type": ["null", "string"], "airbyte_type": "timestamp_without_timezone"},
    "day": {"type": ["null", "string"], "format": "date"},
    "tm": {"type": ["null", "string"], "format": "time", "airbyte_type": "time_without_timezone"},
    "ints": {"type": ["null", "array"], "items": {"type": "integer"}},
    "obj": {"type": ["null", "object"]},
}
N = 30


def _data(k: int) -> dict[str, Any]:
    null = k % 3 == 1
    return {
        "id": k, "n": None if null else (0 if k == 0 else k), "x": None if null else k / 2, "ok": None if null else k % 2 == 0,
        "s": None if null else ("" if k == 0 else f"s{k}"),
        "at": None if null else ("1970-01-01T00:00:00Z" if k == 0 else f"2024-01-{1 + k % 28:02d}T10:00:00Z"),
        "local": None if null else f"2024-02-{1 + k % 28:02d}T10:00:00", "day": None if null else f"2024-03-{1 + k % 28:02d}",
        "tm": None if null else f"{k % 24:02d}:30:00", "ints": None if null else ([] if k == 0 else [k, k]),
        "obj": None if null else {"k": k},
    }


def _sync(path: str, fast: bool, missing_field: bool = False) -> lakeformat.Dataset:
    msgs = []
    for k in range(N):
        d = _data(k)
        if missing_field and k % 3 == 1:
            d.pop("n")  # a field absent from a record is null too
        msgs.append(record("s", d))
        if k % 7 == 6:
            msgs.append(state("s", {"k": k}))
    msgs.append(state("s", {"k": N}))
    cfg = DestinationConfig.from_mapping({"path": path, "flush_every_records": 8})
    out: list = []
    for _ in run_write(cfg, catalog(stream("s", PROPS)), (orjson.dumps(m) for m in msgs), out.append, fast=fast):
        pass
    return lakeformat.load(f"{path}/s", read_only=True)


@pytest.mark.parametrize("fast", [True, False])
def test_every_kind_with_nulls_reads_dense(tmp_path, fast):
    ds = _sync(str(tmp_path / "lake"), fast)
    want = [k % 3 == 1 for k in range(N)]
    for name in ("n", "x", "ok", "at", "local", "day", "tm"):
        t = ds[name]
        assert t.numpy().shape == (N, 1), name
        assert t.isnull().tolist() == want, name
        assert t.numpy(nulls="mask").mask.ravel().tolist() == want, name
    for name in ("s", "ints", "obj"):
        assert ds[name].isnull().tolist() == want, name
    assert int(ds.n.numpy()[0, 0]) == 0 and ds.s.values()[0] == "" and ds.ints.values()[0].tolist() == []
    at = ds.at.datetime64()
    assert at.dtype == np.dtype("datetime64[us]") and at[0] == np.datetime64("1970-01-01T00:00:00", "us")
    assert np.isnat(at).tolist() == want
    assert np.isnat(ds.day.datetime64()).tolist() == want
    assert ds.at.logical_type == "timestamp[us, UTC]" and ds.local.logical_type == "timestamp[us]" and ds.day.logical_type == "date"
    assert "timestamp[us, UTC], nullable" in ds.summary(print_out=False)


def test_fast_and_python_paths_store_the_same(tmp_path):
    a, b = _sync(str(tmp_path / "a"), True), _sync(str(tmp_path / "b"), False)
    for name in ("n", "x", "ok", "at", "local", "day", "tm"):
        assert a[name].numpy().tobytes() == b[name].numpy().tobytes(), name
        assert a[name].isnull().tolist() == b[name].isnull().tolist(), name


def test_missing_fields_and_widening_keep_nulls(tmp_path):
    ds = _sync(str(tmp_path / "lake"), True, missing_field=True)
    assert ds.n.isnull().tolist() == [k % 3 == 1 for k in range(N)]
    path = str(tmp_path / "lake")
    msgs = [record("s", dict(_data(1), id=100, n=None)), record("s", dict(_data(2), id=101, n=2.5)), state("s", {"k": 2})]
    cfg = DestinationConfig.from_mapping({"path": path, "flush_every_records": 8})
    for _ in run_write(cfg, catalog(stream("s", PROPS)), (orjson.dumps(m) for m in msgs), [].append):
        pass
    ds = lakeformat.load(f"{path}/s", read_only=True)
    assert ds.n.dtype == np.dtype("float64")  # widened from int by 2.5
    assert ds.n.isnull().tolist() == [k % 3 == 1 for k in range(N)] + [True, False]
    assert ds.n.numpy(nulls="mask").compressed()[-1] == 2.5


def test_time_with_timezone_keeps_its_offset(tmp_path):
    props = {"id": {"type": "integer"}, "tm": {"type": ["null", "string"], "airbyte_type": "time_with_timezone"}}
    vals = ["10:30:00+02:00", None, "23:15:00.5Z", "00:10:00-01:00"]
    msgs = [record("s", {"id": k, "tm": v}) for k, v in enumerate(vals)] + [state("s", {"k": 1})]
    for fast in (True, False):
        path = str(tmp_path / f"lake{fast}")
        cfg = DestinationConfig.from_mapping({"path": path, "flush_every_records": 8})
        for _ in run_write(cfg, catalog(stream("s", props)), (orjson.dumps(m) for m in msgs), [].append, fast=fast):
            pass
        ds = lakeformat.load(f"{path}/s", read_only=True)
        assert ds.tm.values() == vals  # the offset as sent
        assert ds.tm.logical_type == "time[us, tz]" and ds.tm.isnull().tolist() == [False, True, False, False]
        us = ds.tm.datetime64()
        assert us.dtype == np.dtype("timedelta64[us]") and np.isnat(us).tolist() == [False, True, False, False]
        assert us[0] == np.timedelta64(8 * 3600 + 30 * 60, "s") and us[3] == np.timedelta64(70 * 60, "s")


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("flush_every", [2, 1000])
def test_widening_keeps_nulls_as_placeholders(tmp_path, fast, flush_every):
    """Nulls written while a field was int stay typed nulls once it widens to float: NaN
    placeholders in (1,) samples plus the mask, never deeplake 3's empty sample (which would
    make the column ragged for deeplake 3.9.52), on both paths and at any flush size."""
    props = {"id": {"type": "integer"}, "n": {"type": ["null", "integer"]}}
    vals = [None, 3, None, 2.5, None]
    msgs = [record("s", {"id": k, "n": v}) for k, v in enumerate(vals)] + [state("s", {"k": 1})]
    path = str(tmp_path / "lake")
    cfg = DestinationConfig.from_mapping({"path": path, "flush_every_records": flush_every})
    for _ in run_write(cfg, catalog(stream("s", props)), (orjson.dumps(m) for m in msgs), [].append, fast=fast):
        pass
    ds = lakeformat.load(f"{path}/s", read_only=True)
    assert ds.n.dtype == np.dtype("float64")
    _, shapes = ds.n.engine.read_items_bytes(np.arange(len(vals)))
    assert np.asarray(shapes).tolist() == [[1]] * len(vals)
    assert ds.n.isnull().tolist() == [v is None for v in vals]
    raw = ds.n.numpy()  # what is stored: the placeholders
    assert raw.shape == (len(vals), 1) and np.isnan(raw[[0, 2, 4], 0]).all() and raw[[1, 3], 0].tolist() == [3.0, 2.5]
