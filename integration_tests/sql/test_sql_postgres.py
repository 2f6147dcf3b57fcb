"""SQL backfills from a real PostgreSQL 15 (started by the session fixture `postgres_server`)."""
import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
import sqlalchemy as sa

import lakeformat
from connectors.sql import (
    SourceConnectionError,
    SourceNotFoundError,
    backfill,
    compare_with_source,
    read_rows,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIG = 1_000_000

ALLTYPES_DDL = """
CREATE TABLE alltypes (
  id integer PRIMARY KEY, s smallint, i integer, b bigint, r real, f double precision,
  n numeric(10,2), nwide numeric(30,10), nfree numeric, ok boolean, t text, v varchar(20), c char(4),
  d date, tm time, ts timestamp, tstz timestamptz, iv interval, j json, jb jsonb,
  ai integer[], af double precision[], at text[], raw bytea, u uuid, url text
)"""


def _alltypes_rows(n=120):
    rows = []
    for k in range(n):
        null = k % 9 == 0
        rows.append(dict(
            id=k, s=None if null else (k % 200) - 100, i=None if null else k * 1000 - 5, b=None if null else 2**40 + k,
            r=None if null else k / 4, f=None if null else k / 3 - 1e10, n=None if null else decimal.Decimal(f"{k}.{k % 100:02d}"),
            nwide=None if null else decimal.Decimal(f"12345678901234567890.{k:010d}"), nfree=None if null else decimal.Decimal(f"-{k}.000123456789012345"),
            ok=None if null else k % 2 == 0, t=None if null else ("" if k % 4 == 0 else f"text é {k}"), v=None if null else f"v{k}", c=None if null else "ab",
            d=None if null else dt.date(1960 + k % 80, 1 + k % 12, 1 + k % 28), tm=None if null else dt.time(k % 24, k % 60, k % 60, k * 7),
            ts=None if null else dt.datetime(1965 + k % 70, 1 + k % 12, 1 + k % 28, k % 24, 5, 6, k),
            tstz=None if null else dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=k % 5 - 2))) + dt.timedelta(hours=k, microseconds=k),
            iv=None if null else dt.timedelta(days=k, seconds=k, microseconds=k),
            j=None if null else json.dumps({"k": k, "nested": {"a": [1, 2, None]}}), jb=None if null else json.dumps([k, "x", {"y": True}]),
            ai=None if null else ([] if k % 4 == 0 else [k, -k, 3]), af=None if null else [k / 2] * (k % 3), at=None if null else ([] if k % 4 == 0 else ["a", f"b{k}"]),
            raw=None if null else (b"" if k % 4 == 0 else bytes(range(k % 256))), u=None if null else uuid.UUID(int=k), url=None if null else f"https://example.com/{k}.png",
        ))
    return rows


@pytest.fixture(scope="session")
def pg(postgres_server):
    url = postgres_server.create_database("lf_sql_tests")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS alltypes, big, part, inc, killme")
        c.exec_driver_sql(ALLTYPES_DDL)
        cols = list(_alltypes_rows(1)[0])
        c.execute(sa.text(f"INSERT INTO alltypes ({', '.join(cols)}) VALUES ({', '.join(f'CAST(:{x} AS json)' if x in ('j', 'jb') else ':' + x for x in cols)})"), _alltypes_rows())
        # the million rows are made by the server itself: no round trip per row
        c.exec_driver_sql("CREATE TABLE big (id bigint PRIMARY KEY, a integer, x double precision, label text, at timestamptz, price numeric(12,2))")
        c.exec_driver_sql(f"""INSERT INTO big SELECT g, (g %% 1000)::int, g * 0.5, CASE WHEN g %% 97 = 0 THEN NULL ELSE 'row ' || g END,
            timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', CASE WHEN g %% 13 = 0 THEN NULL ELSE ((g %% 100000) / 100.0)::numeric(12,2) END
            FROM generate_series(1, {BIG}) g""")
        c.exec_driver_sql("ANALYZE big")
    yield url, engine
    engine.dispose()


def test_every_type_round_trips(pg, tmp_path):
    url, _ = pg
    dest = str(tmp_path / "lake")
    r = backfill(url, dest, table="alltypes", batch_size=50, link_columns={"url": "link[image]"})
    assert r.rows == 120
    ds = lakeformat.load(dest, read_only=True)
    assert compare_with_source(ds, url, table="alltypes", key="id") == []
    t = ds.tensors
    assert t["s"].meta.dtype == "int16" and t["i"].meta.dtype == "int32" and t["b"].meta.dtype == "int64"
    assert t["n"].meta.dtype == "float64" and t["nwide"].htype == "text" and t["nfree"].htype == "text"
    assert t["tstz"].info["timezone"] == "UTC" and t["ts"].info["timezone"] is None
    assert t["d"].info["lakeformat_type"] == "date" and t["tm"].info["lakeformat_type"] == "time"
    assert t["jb"].htype == "json" and t["ai"].meta.dtype == "int32" and t["url"].htype == "link[image]"
    rows = {x["id"]: x for x in read_rows(ds)}
    # NULL stays distinct from empty, for every kind
    assert rows[0]["t"] is None and rows[4]["t"] == ""
    assert rows[0]["ai"] is None and rows[4]["ai"] == [] if isinstance(rows[4]["ai"], list) else rows[4]["ai"].size == 0
    assert rows[0]["raw"] is None and rows[4]["raw"] == b""
    assert rows[0]["at"] is None and rows[4]["at"] == []
    assert rows[0]["i"] is None and rows[0]["ok"] is None and rows[0]["tstz"] is None
    assert rows[1]["jb"] == [1, "x", {"y": True}] and rows[1]["j"] == {"k": 1, "nested": {"a": [1, 2, None]}}
    assert rows[5]["nwide"] == decimal.Decimal("12345678901234567890.0000000005")
    # the time representation is the shared one
    from lakeformat.temporal import to_micros

    k = 7
    assert int(ds["tstz"][k].numpy()[0]) == to_micros(_alltypes_rows()[k]["tstz"], "timestamp")


def test_dry_run_and_image_column(pg, tmp_path):
    url, engine = pg
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((4, 5, 3), 7, np.uint8)).save(buf, format="PNG")
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS pics")
        c.exec_driver_sql("CREATE TABLE pics (id int PRIMARY KEY, img bytea)")
        c.execute(sa.text("INSERT INTO pics VALUES (:i, :b)"), [{"i": 1, "b": buf.getvalue()}, {"i": 2, "b": None}])
    p = subprocess.run([sys.executable, "-m", "lakeformat.cli", "ingest", "sql", "--url", url, "--table", "pics", "--tensor", "img=image", "--dry-run"], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "img" in p.stdout and "image" in p.stdout and "png" in p.stdout
    dest = str(tmp_path / "pics")
    backfill(url, dest, table="pics", tensors={"img": "image"})
    ds = lakeformat.load(dest, read_only=True)
    assert ds["img"][0].numpy().shape == (4, 5, 3) and int(ds["img"][0].numpy()[0, 0, 0]) == 7
    assert ds["img"][1].numpy().size == 0


def test_million_rows(pg, tmp_path):
    url, _ = pg
    dest = str(tmp_path / "big")
    r = backfill(url, dest, table="big", batch_size=50_000)
    assert r.rows == BIG and r.appended == BIG
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == BIG
    # every value, row by row, against the source (vectorised for the numeric columns)
    ids = ds["id"].numpy().reshape(-1)
    assert np.array_equal(ids, np.arange(1, BIG + 1))
    assert np.array_equal(ds["a"].numpy().reshape(-1), ids % 1000)
    assert np.array_equal(ds["x"].numpy().reshape(-1), ids * 0.5)
    at = ds["at"].numpy().reshape(-1)
    assert np.array_equal(at, 1704067200 * 10**6 + ids * 10**6)
    labels = ds["label"].numpy(aslist=True)
    assert all(lab == (None if i % 97 == 0 else f"row {i}") for i, lab in zip(ids.tolist(), labels))
    # a NULL price is a typed null (lakeformat.core.nulls): dense values, the mask says null
    prices = ds["price"].numpy(nulls="mask").reshape(-1)
    want_null = ids % 13 == 0
    assert np.array_equal(np.ma.getmaskarray(prices), want_null)
    assert all(float(p) == round((i % 100000) / 100.0, 2) for i, p in zip(ids[~want_null].tolist(), prices.compressed().tolist()))
    assert "1000000 rows" in ds.log()[0]["message"]


def test_incremental_inserts_and_updates(pg, tmp_path):
    url, engine = pg
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS inc")
        c.exec_driver_sql("CREATE TABLE inc (id int PRIMARY KEY, name text, score double precision, updated_at timestamptz NOT NULL)")
        c.exec_driver_sql("INSERT INTO inc SELECT g, 'n' || g, g / 7.0, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute' FROM generate_series(1, 5000) g")
    dest = str(tmp_path / "inc")
    r1 = backfill(url, dest, table="inc", cursor_field="updated_at", batch_size=700)
    assert r1.rows == 5000
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO inc SELECT g, 'n' || g, g / 7.0, timestamptz '2025-01-01 00:00+00' FROM generate_series(5001, 5300) g")
        c.exec_driver_sql("UPDATE inc SET name = NULL, score = -1, updated_at = timestamptz '2025-02-01 00:00+00' WHERE id %% 500 = 0")
    r2 = backfill(url, dest, table="inc", cursor_field="updated_at", batch_size=64)
    assert (r2.appended, r2.updated) == (300, 10)
    assert r2.cursor_high == dt.datetime(2025, 2, 1, tzinfo=dt.timezone.utc)
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 5300
    assert compare_with_source(ds, url, table="inc", key="id") == []
    log = ds.log()
    assert len(log) == 2 and "updated_at in (2024-01-04T11:20:00+00:00, 2025-02-01T00:00:00+00:00]" in log[0]["message"]
    assert "postgres@" in log[0]["message"] and "310 rows (300 appended, 10 updated)" in log[0]["message"]


def test_killed_run_resumes(pg, tmp_path):
    url, engine = pg
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS killme")
        c.exec_driver_sql("CREATE TABLE killme (id int PRIMARY KEY, v text, w numeric(8,3))")
        c.exec_driver_sql("INSERT INTO killme SELECT g, md5(g::text), g / 1000.0 FROM generate_series(1, 30000) g")
    dest = str(tmp_path / "kill")
    args = [sys.executable, "-m", "lakeformat.cli", "ingest", "sql", "--url", url, "--table", "killme", "--dest", dest, "--batch-size", "2500", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    p = subprocess.run(args, cwd=ROOT, env={**env, "LAKEFORMAT_SQL_KILL_AFTER_BATCHES": "5"}, capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr
    assert len(lakeformat.load(dest, read_only=True)) == 12500
    p = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["resumed"] and rep["rows"] == 30000
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 30000 and compare_with_source(ds, url, table="killme", key="id") == []
    assert len(ds.log()) == 1


def test_partitioned_run(pg, tmp_path):
    url, engine = pg
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS part")
        c.exec_driver_sql("CREATE TABLE part (id bigint PRIMARY KEY, v text, x real, at date)")
        c.exec_driver_sql("INSERT INTO part SELECT g * 3, 'v' || g, g / 2.0, date '2000-01-01' + (g %% 5000) FROM generate_series(1, 100000) g")
    dest = str(tmp_path / "part")
    r = backfill(url, dest, table="part", partitions=2, batch_size=10_000)
    assert r.rows == 100_000 and r.partitions == 2
    ds = lakeformat.load(dest, read_only=True)
    assert compare_with_source(ds, url, table="part", key="id") == []
    assert len(ds.info["lakeformat_sql"]["last_run"]) and ds.info["lakeformat_sql"]["run"] is None


def test_query_with_cursor(pg, tmp_path):
    url, _ = pg
    dest = str(tmp_path / "q")
    q = "SELECT id, label, price, at FROM big WHERE id <= 20000"
    r = backfill(url, dest, query=q, primary_key="id", cursor_field="at", batch_size=3000)
    assert r.rows == 20000
    ds = lakeformat.load(dest, read_only=True)
    assert compare_with_source(ds, url, query=q, key="id") == []
    assert ds["price"].htype == "text"  # a query's numeric precision is unknown: exact text
    assert backfill(url, dest, query=q, primary_key="id", cursor_field="at").rows == 0


def test_connection_errors_never_show_the_password(pg, postgres_server, tmp_path):
    url, _ = pg
    bad_db = f"postgresql+psycopg://postgres:s3cretpw@127.0.0.1:{postgres_server.port}/no_such_db"
    with pytest.raises(SourceNotFoundError) as ei:
        backfill(bad_db, str(tmp_path / "a"), table="big")
    assert "s3cretpw" not in str(ei.value) and "no_such_db" in str(ei.value)
    from tests.support.services import find_free_port

    bad_port = f"postgresql+psycopg://postgres:s3cretpw@127.0.0.1:{find_free_port()}/x"
    with pytest.raises(SourceConnectionError) as ei:
        backfill(bad_port, str(tmp_path / "b"), table="big")
    assert "s3cretpw" not in str(ei.value) and "cannot connect" in str(ei.value)
    with pytest.raises(SourceNotFoundError, match="nosuchtable"):
        backfill(url, str(tmp_path / "c"), table="nosuchtable")
    with pytest.raises(SourceNotFoundError, match="nosuchschema"):
        backfill(url, str(tmp_path / "d"), table="big", schema="nosuchschema")
    p = subprocess.run([sys.executable, "-m", "lakeformat.cli", "ingest", "sql", "--url", bad_db, "--table", "big", "--dest", str(tmp_path / "e")], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "s3cretpw" not in p.stderr + p.stdout and "no_such_db" in p.stderr
