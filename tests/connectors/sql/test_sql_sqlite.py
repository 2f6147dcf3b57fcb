"""End to end against SQLite: types, NULLs, incremental runs, resume after a kill, errors, CLI."""
import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import sqlalchemy as sa

import lakeformat
from connectors.sql import (
    SourceConfigError,
    SourceNotFoundError,
    ValueMappingError,
    backfill,
    compare_with_source,
    read_rows,
)
from connectors.sql import state as S

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _items(n, start=1, stamp="2024-01-01 00:00:00"):
    return [
        dict(
            id=i,
            name=None if i % 5 == 0 else ("" if i % 7 == 0 else f"name {i}"),
            price=None if i % 3 == 0 else f"{i}.25",
            qty=None if i % 4 == 0 else i * 10,
            ok=None if i % 11 == 0 else i % 2 == 0,
            at=f"2024-01-{1 + i % 28:02d} 10:00:00.{i % 1000000:06d}",
            d=f"2023-{1 + i % 12:02d}-15",
            blob=None if i % 6 == 0 else (b"" if i % 4 == 0 else bytes([i % 256]) * 3),
            meta=json.dumps({"i": i, "tags": ["a", "b"]}) if i % 2 else None,
            score=i / 3,
            updated_at=stamp,
        )
        for i in range(start, start + n)
    ]


DDL = (
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC(10,2), qty INTEGER, ok BOOLEAN, "
    "at DATETIME, d DATE, blob BLOB, meta JSON, score REAL, updated_at DATETIME)"
)
INSERT = "INSERT INTO items VALUES (:id,:name,:price,:qty,:ok,:at,:d,:blob,:meta,:score,:updated_at)"


@pytest.fixture
def src(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    e = sa.create_engine(url)
    with e.begin() as c:
        c.exec_driver_sql(DDL)
        c.execute(sa.text(INSERT), _items(100))
    yield url, e
    e.dispose()


def test_full_backfill_matches_source(src, tmp_path):
    url, _ = src
    dest = str(tmp_path / "lake")
    r = backfill(url, dest, table="items", batch_size=17)
    assert (r.rows, r.appended, r.updated) == (100, 100, 0)
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 100
    assert compare_with_source(ds, url, table="items", key="id") == []
    rows = {row["id"]: row for row in read_rows(ds)}
    assert rows[5]["name"] is None and rows[7]["name"] == "" and rows[1]["name"] == "name 1"
    assert rows[6]["blob"] is None and rows[4]["blob"] == b""
    assert rows[4]["qty"] is None and rows[3]["price"] is None and rows[11]["ok"] is None
    assert rows[1]["meta"] == {"i": 1, "tags": ["a", "b"]} and rows[2]["meta"] is None
    assert ds.at.info["lakeformat_type"] == "timestamp" and ds.at.info["timezone"] is None
    assert ds.d.info["lakeformat_type"] == "date"
    assert ds.price.info["lakeformat_type"] == "decimal"
    assert ds.qty.meta.dtype == "int64"
    log = ds.log()
    assert len(log) == 1 and "table items" in log[0]["message"] and "100 rows" in log[0]["message"]


def test_incremental_cursor_and_primary_key_updates(src, tmp_path):
    url, e = src
    dest = str(tmp_path / "lake")
    r1 = backfill(url, dest, table="items", cursor_field="updated_at", batch_size=30)
    assert r1.rows == 100
    ds = lakeformat.load(dest, read_only=True)
    assert S.decode_value(ds.info["lakeformat_sql"]["cursor"]) == dt.datetime(2024, 1, 1)
    with e.begin() as c:
        c.execute(sa.text(INSERT), _items(10, start=101, stamp="2024-02-01 00:00:00"))
        c.execute(sa.text("UPDATE items SET name = 'changed', qty = NULL, updated_at = '2024-02-02 00:00:00' WHERE id IN (3, 50)"))
    r2 = backfill(url, dest, table="items", cursor_field="updated_at", batch_size=4)
    assert (r2.rows, r2.appended, r2.updated) == (12, 10, 2)
    assert r2.cursor_low == dt.datetime(2024, 1, 1) and r2.cursor_high == dt.datetime(2024, 2, 2)
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 110
    assert compare_with_source(ds, url, table="items", key="id") == []
    r3 = backfill(url, dest, table="items", cursor_field="updated_at")
    assert r3.rows == 0
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds.log()) == 3 and len(ds) == 110


def test_cursor_without_key_never_splits_equal_cursor_values(tmp_path):
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    e = sa.create_engine(url)
    with e.begin() as c:
        c.exec_driver_sql("CREATE TABLE events (seq INTEGER, payload TEXT)")
        c.execute(sa.text("INSERT INTO events VALUES (:s, :p)"), [{"s": i // 7, "p": f"p{i}"} for i in range(100)])
    dest = str(tmp_path / "lake")
    r = backfill(url, dest, table="events", cursor_field="seq", batch_size=5)
    assert r.rows == 100
    with e.begin() as c:
        c.execute(sa.text("INSERT INTO events VALUES (:s, :p)"), [{"s": 100, "p": "late"}])
    assert backfill(url, dest, table="events", cursor_field="seq").rows == 1
    ds = lakeformat.load(dest, read_only=True)
    assert sorted(ds.payload.numpy(aslist=True)) == sorted([f"p{i}" for i in range(100)] + ["late"])


def _run_cli(args, env=None):
    return subprocess.run([sys.executable, "-m", "lakeformat.cli", *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, **(env or {})}, capture_output=True, text=True, timeout=120)


def test_killed_run_resumes_without_loss_or_duplicates(src, tmp_path):
    url, _ = src
    dest = str(tmp_path / "lake")
    p = _run_cli(["ingest", "sql", "--url", url, "--table", "items", "--dest", dest, "--batch-size", "9", "--no-progress"], env={"LAKEFORMAT_SQL_KILL_AFTER_BATCHES": "4"})
    assert p.returncode == -9, p.stderr
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 36 and ds.info["lakeformat_sql"]["run"]["rows"] == 36
    p = _run_cli(["ingest", "sql", "--url", url, "--table", "items", "--dest", dest, "--batch-size", "9", "--no-progress"])
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["resumed"] and report["rows"] == 100
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 100 and compare_with_source(ds, url, table="items", key="id") == []
    assert len(ds.log()) == 1


def test_kill_inside_a_flush_is_cut_back(src, tmp_path):
    """Data flushed without its state (a kill between the tensors and the info) is dropped
    on resume, and read again."""
    url, _ = src
    dest = str(tmp_path / "lake")
    os.environ["LAKEFORMAT_SQL_KILL_AFTER_BATCHES"] = ""
    p = _run_cli(["ingest", "sql", "--url", url, "--table", "items", "--dest", dest, "--batch-size", "10", "--no-progress"], env={"LAKEFORMAT_SQL_KILL_AFTER_BATCHES": "3"})
    assert p.returncode == -9
    ds = lakeformat.load(dest)
    assert len(ds) == 30
    # what a kill inside the next flush leaves: rows in (some) tensors, the state unchanged
    ds.id.extend(np.arange(1000, 1010))
    ds.name.extend(["x"] * 10)
    ds.flush()
    del ds
    from lakeformat.version_control import locks

    locks._HELD.clear()
    r = backfill(url, dest, table="items", batch_size=10)
    assert r.resumed and r.rows == 100
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 100 and ds.id.num_samples == 100
    assert compare_with_source(ds, url, table="items", key="id") == []


def test_query_source_and_overrides(src, tmp_path):
    url, _ = src
    dest = str(tmp_path / "lake")
    q = "SELECT id, name, meta, 'http://x/' || id || '.png' AS url FROM items WHERE id <= 40"
    r = backfill(url, dest, query=q, primary_key="id", link_columns={"url": "link[image]"}, tensors={"meta": "json"})
    assert r.rows == 40
    ds = lakeformat.load(dest, read_only=True)
    # "meta" is a Dataset attribute: the tensor is "meta_", and the source name is kept
    assert ds["url"].htype == "link[image]" and ds["meta_"].htype == "json"
    assert ds["meta_"].info["source_column"] == "meta"
    rows = {x["id"]: x for x in read_rows(ds)}
    assert rows[1]["meta"] == {"i": 1, "tags": ["a", "b"]} and rows[2]["meta"] is None
    assert rows[3]["url"] == "http://x/3.png"


def test_bad_value_stops_after_flushing_earlier_rows_or_is_nulled(tmp_path):
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    e = sa.create_engine(url)
    with e.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
        c.execute(sa.text("INSERT INTO t VALUES (:i, :n)"), [{"i": i, "n": "oops" if i == 25 else i} for i in range(1, 41)])
    dest = str(tmp_path / "lake")
    with pytest.raises(ValueMappingError) as ei:
        backfill(url, dest, table="t", batch_size=10)
    msg = str(ei.value)
    assert "'t'" in msg and "primary key 25" in msg and "column 'n'" in msg
    ds = lakeformat.load(dest, read_only=True)
    assert len(ds) == 24
    from lakeformat.version_control import locks

    locks._HELD.clear()
    r = backfill(url, str(tmp_path / "lake2"), table="t", batch_size=10, on_error="null")
    assert r.rows == 40 and r.nulled == {"n": 1}
    rows = {x["id"]: x["n"] for x in read_rows(lakeformat.load(str(tmp_path / "lake2"), read_only=True))}
    assert rows[25] is None and rows[24] == 24


def test_errors_name_the_problem(src, tmp_path):
    url, _ = src
    with pytest.raises(SourceNotFoundError, match="nope"):
        backfill(url, str(tmp_path / "l1"), table="nope")
    with pytest.raises(SourceConfigError):
        backfill("notadb://x", str(tmp_path / "l2"), table="items")
    with pytest.raises(SourceConfigError):
        backfill(url, str(tmp_path / "l3"), table="items", query="SELECT 1")
    with pytest.raises(SourceConfigError, match="zzz"):
        backfill(url, str(tmp_path / "l4"), table="items", cursor_field="zzz")


def test_cli_dry_run_prints_schema(src):
    url, _ = src
    p = _run_cli(["ingest", "sql", "--url", url, "--table", "items", "--dry-run", "--tensor", "blob=image"])
    assert p.returncode == 0, p.stderr
    assert "price" in p.stdout and "decimal" in p.stdout and "blob" in p.stdout and "image" in p.stdout


def test_partitions_on_sqlite(src, tmp_path):
    url, _ = src
    dest = str(tmp_path / "lake")
    r = backfill(url, dest, table="items", partitions=3, batch_size=8)
    assert r.rows == 100
    ds = lakeformat.load(dest, read_only=True)
    assert compare_with_source(ds, url, table="items", key="id") == []
