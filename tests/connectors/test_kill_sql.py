"""The SQL backfill killed (SIGKILL) at its storage writes: a first full load, and an incremental
run that updates rows in place and appends new ones (SQLite source, `lakeformat ingest sql`
in a child that SIGKILLs itself at its k-th storage write; tests/core/kill_harness.py).

After each kill: the dataset opens and verifies (or nothing of it was written yet), the state
it saved says what it holds (a finished run: the source as that run read it; a run under way:
the rows before it with every source row of its cursor range up to the recorded position
applied), and a rerun completes with the table's exact content. The default run samples the
kill points; LAKEFORMAT_KILL_EXHAUSTIVE=1 (`make test-long`) tries every one.
"""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import sqlalchemy as sa

import lakeformat
from connectors.sql import read_rows
from connectors.sql import state as S
from lakeformat.verify import verify
from tests.core.kill_harness import copy_dataset, kill_points, recorded_writes, run_call

CHILD = "tests.connectors.kill_sql_child:ingest"
BATCH = 7
FIRST = 30  # rows of the first load
DDL = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, updated_at INTEGER NOT NULL)"

Row = Dict[str, Any]


def _row(i: int, stamp: int, tag: str = "") -> Row:
    return {"id": i, "name": None if i % 5 == 0 else f"name {i}{tag}", "qty": None if i % 4 == 0 else i * 10,
            "updated_at": stamp}


def make_source(path: Path) -> str:
    url = f"sqlite:///{path}"
    e = sa.create_engine(url)
    with e.begin() as c:
        c.exec_driver_sql(DDL)
        c.execute(sa.text("INSERT INTO items VALUES (:id, :name, :qty, :updated_at)"),
                  [_row(i, 1 + i // 10) for i in range(1, FIRST + 1)])
    e.dispose()
    return url


def change_source(url: str) -> None:
    """Updates spread over the key range (some to NULL) and new rows past it."""
    e = sa.create_engine(url)
    with e.begin() as c:
        for i in range(2, FIRST + 1, 3):
            r = _row(i, 10 + i % 4, " v2")
            if i % 6 == 2:
                r["qty"] = None
            c.execute(sa.text("UPDATE items SET name = :name, qty = :qty, updated_at = :updated_at WHERE id = :id"), r)
        c.execute(sa.text("INSERT INTO items VALUES (:id, :name, :qty, :updated_at)"),
                  [_row(i, 10 + i % 3) for i in range(FIRST + 1, FIRST + 16)])
    e.dispose()


def source_rows(url: str) -> List[Row]:
    e = sa.create_engine(url)
    with e.connect() as c:
        rows = [dict(r._mapping) for r in c.execute(sa.text("SELECT id, name, qty, updated_at FROM items ORDER BY id"))]
    e.dispose()
    return rows


def dataset_rows(dest: str) -> List[Row]:
    ds = lakeformat.load(dest, read_only=True)
    rows = [{k: _plain(v) for k, v in r.items()} for r in read_rows(ds)]
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids), f"rows twice: {sorted(i for i in set(ids) if ids.count(i) > 1)}"
    return sorted(rows, key=lambda r: r["id"])


def _plain(v: Any) -> Any:
    if hasattr(v, "tolist"):
        v = v.tolist()
    while isinstance(v, list) and len(v) == 1:
        v = v[0]
    return v


def exists(dest: str) -> bool:
    """Whether a dataset was begun at `dest` (what a creation writes first may be a checksum
    side file; the dataset exists once its meta or its version tree does)."""
    return any(os.path.exists(os.path.join(dest, f)) for f in ("dataset_meta.json", "version_control_info.json"))


def state_of(dest: str) -> Optional[Dict[str, Any]]:
    return S.read_state(lakeformat.load(dest, read_only=True))


# -- what must hold ----------------------------------------------------------------------------
def check_killed(dest: str, before: List[Row], source: List[Row], before_cursor: Any) -> None:
    """What a killed run left: its state says what the dataset holds."""
    if not before and not exists(dest):
        return  # killed before the dataset's first object: nothing to open, the rerun starts afresh
    report = verify(dest)
    assert report.ok, report.lines()
    st = state_of(dest)
    got = dataset_rows(dest)
    if st is None:
        assert not before and not got, "a dataset without a backfill state holds rows"
        ds = lakeformat.load(dest, read_only=True)
        assert not list(ds.tensors), f"tensors without a backfill state (a rerun refuses them): {sorted(ds.tensors)}"
        return
    run = st.get("run")
    if run is None:
        if st.get("cursor") == before_cursor and got == before:
            return  # the run's first state write never landed
        assert got == source, "a finished run's state over rows that differ from the source"
        assert S.decode_value(st["cursor"]) == max(r["updated_at"] for r in source)
        return
    assert S.decode_value(st.get("cursor")) == before_cursor
    assert int(run["rows"]) == len(got), f"the state counts {run['rows']} rows, the dataset holds {len(got)}"
    low, high = S.decode_value(run.get("low")), S.decode_value(run.get("high"))
    want = {r["id"]: r for r in before}
    for part in run["parts"]:  # one, or a primary-key range per partition ([lo, hi))
        position = S.decode_value(part.get("position"))
        lo, hi = S.decode_value(part.get("lo")), S.decode_value(part.get("hi"))
        for r in source:
            in_range = (low is None or r["updated_at"] > low) and r["updated_at"] <= high
            in_part = (lo is None or r["id"] >= lo) and (hi is None or r["id"] < hi)
            if in_range and in_part and position is not None and r["id"] <= position[0]:
                want[r["id"]] = r
    assert got == sorted(want.values(), key=lambda r: r["id"]), "the dataset is not what its state says it holds"


def check_final(dest: str, source: List[Row]) -> None:
    report = verify(dest)
    assert report.ok, report.lines()
    assert dataset_rows(dest) == source, "the dataset differs from the table"
    st = state_of(dest)
    assert st is not None and st.get("run") is None
    assert S.decode_value(st["cursor"]) == max(r["updated_at"] for r in source)
    assert not lakeformat.load(dest, read_only=True).has_head_changes, "the run ended with uncommitted changes"


# -- the test ----------------------------------------------------------------------------------
def _ingest(url: str, dest: str, kill_at: int, out: str, record: Optional[str] = None, partitions: int = 1,
            env: Optional[Dict[str, str]] = None) -> int:
    return run_call(CHILD, [url, dest, BATCH, out, partitions], kill_at, record, env=env)


def _processes_tagged(tag: str) -> List[int]:
    """Live processes whose environment carries `tag` (what a killed run left behind)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if tag.encode() in env and ") Z " not in stat:  # a zombie has exited already
            out.append(int(pid))
    return out


def _no_orphans(tag: str, what: str) -> None:
    """The partition workers of a killed writer exit: none may wait forever on its queue."""
    import time

    deadline = time.monotonic() + 20
    while _processes_tagged(tag):
        assert time.monotonic() < deadline, f"{what}: partition workers {_processes_tagged(tag)} outlived their writer"
        time.sleep(0.2)


def _tail(path: str) -> str:
    return Path(path).read_text()[-3000:] if os.path.exists(path) else ""


@pytest.mark.parametrize("run", ["full_load", "incremental_with_updates"])
def test_sql_backfill_killed_at_its_writes(tmp_path: Path, run: str) -> None:
    url = make_source(tmp_path / "src.db")
    template = tmp_path / "template"
    template.mkdir()
    dest_of = lambda d: str(Path(d) / "items")  # noqa: E731
    before: List[Row] = []
    before_cursor = None
    if run == "incremental_with_updates":
        assert _ingest(url, dest_of(template), 0, str(tmp_path / "first.out")) == 0, _tail(str(tmp_path / "first.out"))
        before = dataset_rows(dest_of(template))
        assert before == source_rows(url)
        before_cursor = S.decode_value(state_of(dest_of(template))["cursor"])
        change_source(url)
    source = source_rows(url)
    full = copy_dataset(str(template), str(tmp_path / "full"))
    rec = str(tmp_path / "record.json")
    rc = _ingest(url, dest_of(full), 0, str(tmp_path / "full.out"), rec)
    assert rc == 0, _tail(str(tmp_path / "full.out"))
    check_final(dest_of(full), source)
    n_writes = recorded_writes(rec)
    assert n_writes > 10, n_writes
    points = kill_points(n_writes)
    for k in points:
        d = copy_dataset(str(template), str(tmp_path / f"k{k}"))
        out = str(tmp_path / f"k{k}.out")
        rc = _ingest(url, dest_of(d), k, out)
        assert rc == -signal.SIGKILL, f"{run}: meant to die at write {k} of {n_writes}, exited {rc}: {_tail(out)}"
        try:
            check_killed(dest_of(d), before, source, before_cursor)
        except AssertionError as e:
            raise AssertionError(f"{run}: killed at write {k} of {n_writes}: {e}") from None
        rc = _ingest(url, dest_of(d), 0, out + ".rerun")
        assert rc == 0, f"{run}: the rerun after a kill at write {k} of {n_writes} failed: {_tail(out + '.rerun')}"
        try:
            check_final(dest_of(d), source)
        except AssertionError as e:
            raise AssertionError(f"{run}: after a kill at write {k} of {n_writes} and a rerun: {e}") from None
        shutil.rmtree(d)
    assert len(points) >= min(n_writes, 10)


def test_partitioned_sql_backfill_killed_at_its_writes(tmp_path: Path) -> None:
    """The full load read by 3 partition workers (spawned processes; the killed process alone
    writes): every kill leaves what its state says, the workers exit with it, a rerun ends
    with the table."""
    import uuid

    parts = 3
    url = make_source(tmp_path / "src.db")
    template = tmp_path / "template"
    template.mkdir()
    dest_of = lambda d: str(Path(d) / "items")  # noqa: E731
    source = source_rows(url)
    full = copy_dataset(str(template), str(tmp_path / "full"))
    rec = str(tmp_path / "record.json")
    assert _ingest(url, dest_of(full), 0, str(tmp_path / "full.out"), rec, parts) == 0, _tail(str(tmp_path / "full.out"))
    check_final(dest_of(full), source)
    n_writes = recorded_writes(rec)
    assert n_writes > 10, n_writes
    points = kill_points(n_writes, 4)
    for k in points:
        d = copy_dataset(str(template), str(tmp_path / f"k{k}"))
        out = str(tmp_path / f"k{k}.out")
        tag = f"LAKEFORMAT_KILL_TAG={uuid.uuid4().hex}"
        rc = _ingest(url, dest_of(d), k, out, partitions=parts, env={"LAKEFORMAT_KILL_TAG": tag.split("=", 1)[1]})
        assert rc == -signal.SIGKILL, f"partitioned: meant to die at write {k} of {n_writes}, exited {rc}: {_tail(out)}"
        _no_orphans(tag, f"partitioned: killed at write {k} of {n_writes}")
        try:
            check_killed(dest_of(d), [], source, None)
        except AssertionError as e:
            raise AssertionError(f"partitioned: killed at write {k} of {n_writes}: {e}") from None
        rc = _ingest(url, dest_of(d), 0, out + ".rerun", partitions=parts)
        assert rc == 0, f"partitioned: the rerun after a kill at write {k} of {n_writes} failed: {_tail(out + '.rerun')}"
        try:
            check_final(dest_of(d), source)
        except AssertionError as e:
            raise AssertionError(f"partitioned: after a kill at write {k} of {n_writes} and a rerun: {e}") from None
        shutil.rmtree(d)
    assert len(points) >= min(n_writes, 4)
