"""SQL backfills from a real MariaDB (started by the session fixture `mariadb_server`)."""
import datetime as dt
import decimal
import json

import pymysql
import pytest
import sqlalchemy as sa

import lakeformat
from connectors.sql import SourceConnectionError, backfill, compare_with_source, read_rows

DDL = """CREATE TABLE items (
  id INT UNSIGNED PRIMARY KEY, tiny TINYINT, big BIGINT, f DOUBLE, dec2 DECIMAL(10,2), decw DECIMAL(30,5),
  name VARCHAR(40), body TEXT, d DATE, at DATETIME(6), stamp TIMESTAMP(6) NULL, tm TIME(6), meta JSON, raw BLOB,
  updated_at DATETIME(6) NOT NULL)"""


def _rows(start, n, stamp):
    out = []
    for k in range(start, start + n):
        null = k % 8 == 0
        out.append(dict(
            id=k, tiny=None if null else k % 100 - 50, big=None if null else 2**50 + k, f=None if null else k / 3,
            dec2=None if null else decimal.Decimal(f"{k}.{k % 100:02d}"), decw=None if null else decimal.Decimal(f"1234567890123456789012345.{k % 100000:05d}"),
            name=None if null else ("" if k % 5 == 0 else f"n{k}"), body=None if null else "é" * (k % 7), d=None if null else dt.date(2000, 1 + k % 12, 1 + k % 28),
            at=None if null else dt.datetime(2021, 3, 4, 5, 6, 7, k), stamp=None if null else dt.datetime(2022, 1, 1, 0, 0, k % 60), tm=None if null else dt.time(k % 24, 1, 2, k),
            meta=None if null else json.dumps({"k": k}), raw=None if null else (b"" if k % 5 == 0 else bytes([k % 256, 1, 2])), updated_at=stamp,
        ))
    return out


INSERT = "INSERT INTO items VALUES (:id,:tiny,:big,:f,:dec2,:decw,:name,:body,:d,:at,:stamp,:tm,:meta,:raw,:updated_at)"


@pytest.fixture
def maria(mariadb_server):
    url = mariadb_server.create_database("lf_sql_tests")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS items")
        c.exec_driver_sql(DDL)
        c.execute(sa.text(INSERT), _rows(1, 300, dt.datetime(2024, 1, 1)))
    yield url, engine
    engine.dispose()


def test_types_nulls_and_incremental(maria, tmp_path):
    url, engine = maria
    dest = str(tmp_path / "lake")
    r = backfill(url, dest, table="items", cursor_field="updated_at", batch_size=64, tensors={"meta": "json"})
    assert r.rows == 300
    ds = lakeformat.load(dest, read_only=True)
    t = ds.tensors
    assert t["id"].meta.dtype == "uint32" and t["tiny"].meta.dtype == "int8" and t["dec2"].meta.dtype == "float64"
    assert t["decw"].htype == "text" and t["meta_"].htype == "json" and t["at"].info["lakeformat_type"] == "timestamp"
    rows = {x["id"]: x for x in read_rows(ds)}
    assert rows[8]["name"] is None and rows[5]["name"] == "" and rows[8]["raw"] is None and rows[5]["raw"] == b""
    assert rows[3]["meta"] == {"k": 3} and rows[3]["tm"] == dt.time(3, 1, 2, 3)
    diffs = [d for d in compare_with_source(ds, url, table="items", key="id") if "column meta" not in d]
    assert diffs == []  # meta: JSON text in MariaDB, parsed JSON in the lake
    with engine.begin() as c:
        c.execute(sa.text(INSERT), _rows(301, 20, dt.datetime(2024, 2, 1)))
        c.exec_driver_sql("UPDATE items SET name = 'upd', updated_at = '2024-03-01' WHERE id IN (10, 20, 30)")
    r2 = backfill(url, dest, table="items", cursor_field="updated_at", tensors={"meta": "json"})
    assert (r2.appended, r2.updated) == (20, 3)
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 320
    assert [d for d in compare_with_source(ds, url, table="items", key="id") if "column meta" not in d] == []


def test_wrong_password_is_named_and_hidden(mariadb_server, maria, tmp_path):
    conn = pymysql.connect(host=mariadb_server.host, port=mariadb_server.port, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'lfuser'@'%' IDENTIFIED BY 'right-pass'")
            cur.execute("GRANT ALL ON lf_sql_tests.* TO 'lfuser'@'%'")
    finally:
        conn.close()
    base = f"mysql+pymysql://lfuser:{{}}@{mariadb_server.host}:{mariadb_server.port}/lf_sql_tests"
    with pytest.raises(SourceConnectionError) as ei:
        backfill(base.format("wrong-pass-xyz"), str(tmp_path / "a"), table="items")
    assert "wrong-pass-xyz" not in str(ei.value) and "password" in str(ei.value) and "lfuser" in str(ei.value)
    r = backfill(base.format("right-pass"), str(tmp_path / "b"), table="items")
    assert r.rows == 300
    log = lakeformat.load(str(tmp_path / "b"), read_only=True).log()
    assert "right-pass" not in log[0]["message"] and "lfuser@" in log[0]["message"]
