"""The SQL backfill's incremental run updates known keys with bulk updates (one per batch and
tensor): the lake equals the source after many updates spread over many chunks, with NULLs
set and cleared, values growing and shrinking, and rows appended in the same batches."""
from __future__ import annotations

import random

import sqlalchemy as sa

import lakeformat
from connectors.sql import backfill, compare_with_source

COLUMNS = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, score REAL, blob BLOB, ok BOOLEAN, updated_at DATETIME)"
INSERT = "INSERT INTO t VALUES (:id, :name, :qty, :score, :blob, :ok, :updated_at)"


def _row(rnd: random.Random, i: int, stamp: str) -> dict:
    return {
        "id": i,
        "name": None if rnd.random() < 0.15 else "n" * rnd.randrange(0, 40) + str(i),
        "qty": None if rnd.random() < 0.15 else rnd.randrange(-10**9, 10**9),
        "score": None if rnd.random() < 0.15 else rnd.random(),
        "blob": None if rnd.random() < 0.15 else bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 30))),
        "ok": None if rnd.random() < 0.15 else rnd.random() < 0.5,
        "updated_at": stamp,
    }


def test_incremental_bulk_updates_match_source(tmp_path):
    rnd = random.Random(4)
    url = f"sqlite:///{tmp_path / 'src.db'}"
    e = sa.create_engine(url)
    with e.begin() as c:
        c.exec_driver_sql(COLUMNS)
        c.execute(sa.text(INSERT), [_row(rnd, i, "2024-01-01 00:00:00") for i in range(1, 601)])
    dest = str(tmp_path / "lake")
    assert backfill(url, dest, table="t", cursor_field="updated_at", batch_size=97).rows == 600
    for run, stamp in enumerate(["2024-02-01 00:00:00", "2024-03-01 00:00:00"]):
        changed = rnd.sample(range(1, 601 + 20 * run), 250)
        with e.begin() as c:
            for i in changed:
                c.execute(sa.text("DELETE FROM t WHERE id = :i"), {"i": i})
            c.execute(sa.text(INSERT), [_row(rnd, i, stamp) for i in changed])
            c.execute(sa.text(INSERT), [_row(rnd, i, stamp) for i in range(601 + 20 * run, 621 + 20 * run)])
        r = backfill(url, dest, table="t", cursor_field="updated_at", batch_size=64)
        assert (r.rows, r.updated, r.appended) == (270, 250, 20)
        ds = lakeformat.load(dest, read_only=True)
        assert len(ds) == 620 + 20 * run
        assert compare_with_source(ds, url, table="t", key="id") == []
