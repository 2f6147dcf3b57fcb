"""A dedup's bulk delete (and a backfill's bulk update) serializes each rewritten chunk at
once and, past `chunk_deletes.STAGED_LIMIT`, writes it before the flush under its new name.
With the limit at 0 (every chunk written early): the result equals the same edits done one
by one, and a writer that stops before its flush leaves the dataset as it was (the early
chunks are unreferenced), verified."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat.core import chunk_deletes
from lakeformat.verify import verify


def _build(path: str, n: int) -> None:
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("num", dtype="int64", max_chunk_size=400)
        ds.create_tensor("txt", htype="text", max_chunk_size=300)
        ds.extend({"num": np.arange(n, dtype=np.int64).reshape(-1, 1), "txt": [f"row {i} " + "x" * (i % 7) for i in range(n)]})
    ds.commit("base")


def _dump(path: str) -> tuple[list[int], list[str]]:
    ds = lakeformat.load(path, read_only=True)
    return ds.num.numpy().reshape(-1).tolist(), list(ds.txt.values())


@pytest.fixture
def early_writes(monkeypatch):
    monkeypatch.setattr(chunk_deletes, "STAGED_LIMIT", 0)


def test_bulk_edits_with_early_chunk_writes_equal_single_edits(tmp_path, early_writes):
    n = 300
    rng = np.random.default_rng(5)
    drop = np.sort(rng.choice(n, 120, replace=False))
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _build(a, n)
    _build(b, n)
    ds = lakeformat.load(a)
    with ds:
        for i in drop[::-1].tolist():
            ds.pop(i)
        ds.num[[0, 5, 17]] = np.array([[-1], [-2], [-3]])
        ds.txt[[1, 2]] = ["one", "two"]
    ds = lakeformat.load(b)
    with ds:
        ds.delete_rows(drop)
        ds.num[[0, 5, 17]] = np.array([[-1], [-2], [-3]])
        ds.txt[[1, 2]] = ["one", "two"]
    assert _dump(b) == _dump(a)
    assert verify(b).ok


def test_a_writer_stopping_before_its_flush_leaves_the_dataset_as_it_was(tmp_path, early_writes):
    path = str(tmp_path / "d")
    _build(path, 200)
    before = _dump(path)
    files = {p for p in (tmp_path / "d").rglob("*") if p.is_file()}
    ds = lakeformat.load(path)
    ds.__enter__()  # as the sink holds it: one flush at the end, which never comes
    ds.delete_rows(np.arange(0, 200, 2))
    ds.num[[1, 3]] = np.array([[7], [8]])
    early = {p for p in (tmp_path / "d").rglob("*") if p.is_file()} - files
    assert any("chunks" in p.parts for p in early)  # rewritten chunks went to storage before any flush
    assert _dump(path) == before  # a reader sees the published state only
    report = verify(path)
    assert report.ok, report.lines()


DL_READ = """
import deeplake
ds = deeplake.load(INPUT["path"], read_only=True)
emit({"num": [int(x) for x in ds.num.numpy().reshape(-1)], "txt": [str(t) for t in ds.txt.numpy().reshape(-1)], "n": len(ds)})
"""


def test_deeplake3_reads_what_bulk_edits_rewrote(tmp_path, early_writes):
    from tests.interop.deeplake3 import run_deeplake3

    path = str(tmp_path / "d")
    _build(path, 250)
    ds = lakeformat.load(path)
    with ds:
        ds.delete_rows(np.arange(1, 250, 3))
        ds.num[[0, 9, 40]] = np.array([[-5], [-6], [-7]])
        ds.txt[[2, 3]] = ["bulk", ""]
    ds.commit("bulk edits")
    nums, txts = _dump(path)
    assert run_deeplake3(DL_READ, inputs={"path": path}) == {"num": nums, "txt": txts, "n": len(nums)}
