"""SQL backfills with NULL in every scalar type: each column reads back as one dense typed
array with its nulls (SQLite here; PostgreSQL and MariaDB in test_nulls_sql_servers.py)."""
from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pytest
import sqlalchemy as sa

import lakeformat
from connectors.sql import backfill, compare_with_source, read_rows

DDL = ("CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, f REAL, n NUMERIC(10,2), ok BOOLEAN, "
       "at DATETIME, d DATE, tm TIME, blob BLOB, s TEXT, updated_at DATETIME)")
INSERT = "INSERT INTO t VALUES (:id,:i,:f,:n,:ok,:at,:d,:tm,:blob,:s,:updated_at)"


def _rows(n: int, stamp: str = "2024-01-01 00:00:00") -> list:
    out = []
    for k in range(n):
        null = k % 4 == 1
        out.append(dict(
            id=k, i=None if null else k - 2 * (k % 2) * k,  # 0 for k=0: a real zero
            f=None if null else (0.0 if k == 2 else k / 4),  # (SQLite stores NaN as NULL)
            n=None if null else f"{k}.25", ok=None if null else k % 2 == 0,
            at=None if null else ("1970-01-01 00:00:00.000000" if k == 0 else f"2024-01-{1 + k % 28:02d} 10:00:00.000000"),
            d=None if null else ("1970-01-01" if k == 0 else f"2023-{1 + k % 12:02d}-15"),
            tm=None if null else f"{k % 24:02d}:30:00.000000",
            blob=None if null else (b"" if k % 4 == 0 else bytes([k % 256]) * 2),
            s=None if null else ("" if k % 4 == 0 else f"s{k}"), updated_at=stamp))
    return out


@pytest.fixture
def src(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    e = sa.create_engine(url)
    with e.begin() as c:
        c.exec_driver_sql(DDL)
        c.execute(sa.text(INSERT), _rows(40))
    yield url, e
    e.dispose()


def check_dense_nulls(ds, columns, null_rows) -> None:
    """Each scalar column is one (n, 1) array, its nulls exactly `null_rows`."""
    n = len(ds)
    want = np.zeros(n, bool)
    want[list(null_rows)] = True
    for name in columns:
        t = ds[name]
        assert t.numpy().shape == (n, 1), name
        assert t.isnull().tolist() == want.tolist(), name
        m = t.numpy(nulls="mask")
        assert m.shape == (n, 1) and m.mask.ravel().tolist() == want.tolist(), name


def test_every_scalar_type_reads_dense_with_its_nulls(src, tmp_path):
    url, _ = src
    dest = str(tmp_path / "lake")
    backfill(url, dest, table="t", batch_size=7)
    ds = lakeformat.load(dest, read_only=True)
    nulls = [k for k in range(40) if k % 4 == 1]
    check_dense_nulls(ds, ["i", "f", "n", "ok", "at", "d", "tm"], nulls)
    assert ds["blob"].isnull().tolist() == [k % 4 == 1 for k in range(40)]
    assert ds["s"].isnull().tolist() == [k % 4 == 1 for k in range(40)]
    # real values that look like nulls: 0, 0.0, false, the epoch, b"", ""
    assert int(ds["i"].numpy()[0, 0]) == 0 and not ds["i"].isnull()[0]
    assert ds["f"].numpy()[2, 0] == 0.0 and not ds["f"].isnull()[2] and np.isnan(ds["f"].numpy()[1, 0])
    assert ds["at"].datetime64()[0] == np.datetime64("1970-01-01T00:00:00", "us")
    assert np.isnat(ds["at"].datetime64()).tolist() == [k % 4 == 1 for k in range(40)]
    assert ds["d"].datetime64().dtype == np.dtype("datetime64[us]")
    assert ds["tm"].datetime64().dtype == np.dtype("timedelta64[us]")
    rows = {r["id"]: r for r in read_rows(ds)}
    assert rows[0]["blob"] == b"" and rows[1]["blob"] is None and rows[0]["s"] == "" and rows[1]["s"] is None
    assert rows[1]["at"] is None and rows[0]["at"] == dt.datetime(1970, 1, 1) and rows[4]["n"] == decimal.Decimal("4.25")
    assert compare_with_source(ds, url, table="t", key="id") == []
    text = ds.summary(print_out=False)
    assert "decimal(10,2), nullable" in text and "timestamp[us], nullable" in text and "date, nullable" in text


def test_incremental_updates_set_and_clear_nulls(src, tmp_path):
    url, e = src
    dest = str(tmp_path / "lake")
    backfill(url, dest, table="t", cursor_field="updated_at", batch_size=9)
    with e.begin() as c:
        c.exec_driver_sql("UPDATE t SET i = NULL, at = NULL, updated_at = '2024-02-01 00:00:00' WHERE id IN (0, 2)")
        c.exec_driver_sql("UPDATE t SET i = 7, at = '2024-03-01 00:00:00.000000', updated_at = '2024-02-01 00:00:00' WHERE id = 1")
        c.execute(sa.text(INSERT), [dict(r, id=r["id"] + 100, updated_at="2024-02-02 00:00:00") for r in _rows(3)])
    r2 = backfill(url, dest, table="t", cursor_field="updated_at", batch_size=4)
    assert (r2.appended, r2.updated) == (3, 3)
    ds = lakeformat.load(dest, read_only=True)
    assert compare_with_source(ds, url, table="t", key="id") == []
    ids = ds["id"].numpy().ravel().tolist()
    pos = {k: ids.index(k) for k in (0, 1, 2, 101)}
    isnull = ds["i"].isnull()
    assert isnull[pos[0]] and isnull[pos[2]] and not isnull[pos[1]] and isnull[pos[101]]
    assert int(ds["i"].numpy()[pos[1], 0]) == 7
    assert np.isnat(ds["at"].datetime64()[pos[0]]) and not np.isnat(ds["at"].datetime64()[pos[1]])
