"""Backfills from PostgreSQL and MariaDB with NULL in every scalar type: dense typed columns
with their nulls, NaN stored on purpose distinct from NULL (session fixtures start the servers)."""
from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import sqlalchemy as sa

import lakeformat
from connectors.sql import backfill, compare_with_source

N = 36
PG_DDL = ("CREATE TABLE nullable (id integer PRIMARY KEY, s smallint, i integer, b bigint, r real, f double precision, "
          "n numeric(10,2), ok boolean, d date, tm time, ts timestamp, tstz timestamptz, iv interval, ai integer[], raw bytea, ttz timetz)")
MY_DDL = ("CREATE TABLE nullable (id INT PRIMARY KEY, s SMALLINT, i INT, b BIGINT, r FLOAT, f DOUBLE, n DECIMAL(10,2), "
          "ok BOOLEAN, d DATE, tm TIME(6), ts DATETIME(6), raw BLOB)")


def _rows(pg: bool) -> list:
    out = []
    for k in range(N):
        null = k % 3 == 1
        row = dict(id=k, s=None if null else k - 5, i=None if null else 0, b=None if null else 2**40 + k,
                   r=None if null else k / 4, f=None if null else (float("nan") if pg and k == 3 else k / 3),
                   n=None if null else decimal.Decimal(f"{k}.05"), ok=None if null else k % 2 == 0,
                   d=None if null else dt.date(1970, 1, 1) + dt.timedelta(days=k * 30),
                   tm=None if null else dt.time(k % 24, 1, 2, k), ts=None if null else dt.datetime(1970, 1, 1) + dt.timedelta(hours=k),
                   raw=None if null else (b"" if k % 3 == 0 else bytes([k]) * 3))
        if pg:
            row.update(tstz=None if null else dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))) + dt.timedelta(hours=k),
                       iv=None if null else dt.timedelta(seconds=k), ai=None if null else ([] if k % 3 == 0 else [k, 1]),
                       ttz=None if null else dt.time(k % 24, 5, tzinfo=dt.timezone(dt.timedelta(hours=k % 5 - 2))))
        out.append(row)
    return out


def _load(url: str, ddl: str, pg: bool) -> None:
    e = sa.create_engine(url)
    with e.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS nullable")
        c.exec_driver_sql(ddl)
        rows = _rows(pg)
        c.execute(sa.text(f"INSERT INTO nullable ({', '.join(rows[0])}) VALUES ({', '.join(':' + x for x in rows[0])})"), rows)
    e.dispose()


def _check(ds, scalars) -> None:
    want = [k % 3 == 1 for k in range(N)]
    for name in scalars:
        t = ds[name]
        assert t.numpy().shape == (N, 1), name
        assert t.isnull().tolist() == want, name
        assert t.numpy(nulls="mask").mask.ravel().tolist() == want, name
        assert t.nullable and ", nullable" in ds.summary(print_out=False)
    assert ds["raw"].isnull().tolist() == want  # b"" (rows 0, 3, ...) is not null
    assert ds["ts"].datetime64()[0] == np.datetime64("1970-01-01T00:00:00", "us")
    assert np.isnat(ds["ts"].datetime64()).tolist() == want
    assert int(ds["i"].numpy()[0, 0]) == 0 and not ds["i"].isnull()[0]


def test_postgres_nulls_in_every_type(postgres_server, tmp_path):
    url = postgres_server.create_database("lf_nulls")
    _load(url, PG_DDL, True)
    dest = str(tmp_path / "pg")
    backfill(url, dest, table="nullable", batch_size=10)
    ds = lakeformat.load(dest, read_only=True)
    _check(ds, ["s", "i", "b", "r", "f", "n", "ok", "d", "tm", "ts", "tstz", "iv"])
    assert np.isnan(ds["f"].numpy()[3, 0]) and not ds["f"].isnull()[3]  # NaN stored on purpose
    assert ds["ai"].isnull().tolist() == [k % 3 == 1 for k in range(N)]
    assert ds["tstz"].logical_type == "timestamp[us, UTC]" and ds["n"].logical_type == "decimal(10,2)"
    assert compare_with_source(ds, url, table="nullable", key="id") == []
    # a time with time zone keeps its offset
    assert ds["ttz"].values()[3] == "03:05:00+01:00" and ds["ttz"].logical_type == "time[us, tz]"
    assert ds["ttz"].isnull().tolist() == [k % 3 == 1 for k in range(N)]
    assert ds["ttz"].datetime64()[3] == np.timedelta64(2 * 3600 + 5 * 60, "s")


def test_mariadb_nulls_in_every_type(mariadb_server, tmp_path):
    url = mariadb_server.create_database("lf_nulls")
    _load(url, MY_DDL, False)
    dest = str(tmp_path / "my")
    backfill(url, dest, table="nullable", batch_size=10)
    ds = lakeformat.load(dest, read_only=True)
    _check(ds, ["s", "i", "b", "r", "f", "n", "ok", "d", "tm", "ts"])
    assert compare_with_source(ds, url, table="nullable", key="id") == []
