"""Pushdown (tql/pushdown.py): chunks skipped by statistics and the LIMIT short-circuit never
change a result. Random data (many small chunks, NaN, empty samples, nulls, time columns,
class labels), random edits (updates, pops, appends left unflushed, a commit), random
predicates: every query's rows equal those of the same query with pushdown off.
`LF_PUSHDOWN_SEED_BASE=k` shifts the seeds (to explore more of them)."""
from __future__ import annotations

import os
from typing import Any, List

import numpy as np
import pytest

import lakeformat
from lakeformat import temporal
from lakeformat.tql import TQLError, explain, run
from lakeformat.tql.reader import DatasetColumnReader

BASE = int(os.environ.get("LF_PUSHDOWN_SEED_BASE", "0"))
NAMES = ["cat", "dog", "bird", "fish"]
DAY = temporal.DAY_US


def _dataset(path: str, rng: np.random.Generator) -> Any:
    n = int(rng.integers(300, 900))
    ds = lakeformat.empty(path, overwrite=True)
    small = {"max_chunk_size": int(rng.choice([400, 800, 2000]))}
    with ds:
        ds.create_tensor("s", dtype="int64", **small)  # sorted: statistics skip most chunks
        ds.create_tensor("i", dtype="int32", **small)
        ds.create_tensor("f", dtype="float64", **small)
        ds.create_tensor("b", dtype="bool", **small)
        ds.create_tensor("labels", htype="class_label", class_names=NAMES, **small)  # multi-label: no pushdown
        ds.create_tensor("lab", htype="class_label", class_names=NAMES, **small)  # one label a row
        ds.create_tensor("n", dtype="int64", nullable=True, **small)
        ds.create_tensor("t", dtype="int64", nullable=True, **small)
        ds.t.info.update(temporal.info_for("date", None))
        ds.create_tensor("txt", htype="text")
        ds.extend(_rows(rng, n, 0))
    return ds


def _rows(rng: np.random.Generator, n: int, start: int) -> dict:
    f = rng.normal(0, 10, n)
    f[rng.random(n) < 0.05] = np.nan
    labels: List[Any] = []
    for _ in range(n):
        k = int(rng.integers(0, 3))
        labels.append(sorted(rng.choice(4, size=k, replace=False).tolist()) if k else [])
    return {
        "s": np.arange(start, start + n, dtype=np.int64) * 2,
        "i": rng.integers(-50, 50, n).astype(np.int32),
        "f": f,
        "b": rng.random(n) < 0.3,
        "labels": labels,
        "lab": rng.integers(0, 4, n).astype(np.uint32),
        "n": [None if rng.random() < 0.1 else int(x) for x in rng.integers(0, 100, n)],
        "t": [None if rng.random() < 0.1 else int(x) * DAY for x in rng.integers(19000, 19400, n)],
        "txt": [str(x) for x in rng.integers(0, 30, n)],
    }


def _edit(ds: Any, rng: np.random.Generator) -> None:
    """Updates, pops, a commit, appends (the last of them left unflushed at HEAD)."""
    with ds:
        for _ in range(int(rng.integers(0, 4))):
            r = int(rng.integers(0, len(ds)))
            ds.s[r] = int(rng.integers(-10, 5000))
            ds.f[r] = float(rng.normal(0, 100))
            ds.labels[r] = [int(rng.integers(0, 4))]
            ds.lab[r] = int(rng.integers(0, 4))
    if rng.random() < 0.5:
        ds.pop(int(rng.integers(0, len(ds))))
    if rng.random() < 0.5:
        ds.commit("some rows")
        with ds:
            ds.extend(_rows(rng, int(rng.integers(1, 200)), 10_000))
    if rng.random() < 0.5:
        ds.extend(_rows(rng, int(rng.integers(1, 50)), 20_000))  # flushed by the extend itself
    if rng.random() < 0.5:
        ds.__enter__()  # hold the next append in memory: queries see uncommitted, unflushed rows
        ds.extend(_rows(rng, int(rng.integers(1, 50)), 30_000))


def _const(rng: np.random.Generator, col: str) -> str:
    if col == "s":
        return str(int(rng.integers(-20, 2500)))
    if col == "i":
        return str(int(rng.integers(-60, 60)))
    if col == "f":
        return f"{rng.normal(0, 12):.3f}"
    if col == "b":
        return str(rng.choice(["TRUE", "FALSE", "0", "1"]))
    if col in ("labels", "lab"):
        return f"'{rng.choice(NAMES)}'" if rng.random() < 0.6 else str(int(rng.integers(0, 5)))
    if col == "n":
        return str(int(rng.integers(-5, 105)))
    if col == "t":
        return f"'{np.datetime64(int(rng.integers(18990, 19410)), 'D')}'"  # an ISO date
    return f"'{int(rng.integers(0, 30))}'"


def _leaf(rng: np.random.Generator) -> str:
    col = str(rng.choice(["s", "s", "i", "f", "b", "labels", "lab", "lab", "n", "t", "txt"]))
    kind = rng.random()
    if kind < 0.55:
        op = str(rng.choice(["==", "=", "<", "<=", ">", ">=", "!="]))
        c = _const(rng, col)
        return f"{c} {op} {col}" if rng.random() < 0.2 else f"{col} {op} {c}"
    if kind < 0.7:
        a, b = sorted([_const(rng, col), _const(rng, col)], key=lambda x: (len(x), x))
        return f"{col} {'NOT ' if rng.random() < 0.2 else ''}BETWEEN {a} AND {b}"
    if kind < 0.85:
        items = ", ".join(_const(rng, col) for _ in range(int(rng.integers(1, 4))))
        return f"{col} {'NOT ' if rng.random() < 0.2 else ''}IN ({items})"
    return f"{col} IS {'NOT ' if rng.random() < 0.5 else ''}NULL"


def _predicate(rng: np.random.Generator, depth: int = 0) -> str:
    r = rng.random()
    if depth >= 3 or r < 0.4:
        return _leaf(rng)
    if r < 0.5:
        return f"NOT ({_predicate(rng, depth + 1)})"
    op = "AND" if r < 0.8 else "OR"
    return f"({_predicate(rng, depth + 1)}) {op} ({_predicate(rng, depth + 1)})"


def _run(target: Any, q: str, pushdown: bool) -> Any:
    reader = DatasetColumnReader(target)
    reader.pushdown = pushdown
    try:
        return run(target, q, reader=reader).indices.tolist(), reader
    except TQLError as e:
        return ("error", str(e)), reader


@pytest.mark.parametrize("seed", range(BASE, BASE + 4))
def test_pushdown_never_changes_a_result(tmp_path, seed):
    rng = np.random.default_rng(seed)
    ds = _dataset(str(tmp_path / "d"), rng)
    _edit(ds, rng)
    skipped = 0
    for k in range(50):
        target = ds
        if k % 5 == 4:  # a view of the dataset, in a shuffled order
            target = ds[np.sort(rng.choice(len(ds), size=len(ds) // 2, replace=False)) if k % 2 else rng.permutation(len(ds))]
        # the first: a filter that statistics decide for most chunks
        q = "SELECT * WHERE s < 40" if k == 0 else f"SELECT * WHERE {_predicate(rng)}"
        if k and rng.random() < 0.4:
            q += f" LIMIT {int(rng.integers(0, 40))}" + (f" OFFSET {int(rng.integers(0, 20))}" if rng.random() < 0.5 else "")
        got, reader = _run(target, q, True)
        want, _ = _run(target, q, False)
        assert got == want, (seed, q)
        skipped += sum(c[2] for r in reader.pushdown_reports for c in r.chunks.values())
    assert skipped > 0  # statistics did rule chunks out


def _sorted_dataset(tmp_path: Any) -> Any:
    ds = lakeformat.empty(str(tmp_path / "sorted"), overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=800)  # 100 rows a chunk
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"], max_chunk_size=800)
        ds.extend({"x": np.arange(1000), "labels": np.repeat([0, 1], 500).astype(np.uint32)})
    return ds


class CountingReader(DatasetColumnReader):
    """Records every row each tensor is read at."""

    def __init__(self, ds: Any) -> None:
        super().__init__(ds)
        self.read: dict = {}

    def __call__(self, name: str, rows: np.ndarray) -> Any:
        self.read.setdefault(name, []).extend(np.asarray(rows).tolist())
        return super().__call__(name, rows)


def test_skipped_chunks_are_never_read(tmp_path):
    ds = _sorted_dataset(tmp_path)
    reader = CountingReader(ds)
    res = run(ds, "SELECT * WHERE x >= 250 AND x < 300 OR labels == 'cat' AND x > 990", reader=reader)
    assert res.indices.tolist() == list(range(250, 300))
    assert set(reader.read["x"]) <= set(range(200, 300))  # one chunk of ten: no 'cat' row has x > 990
    (rep,) = reader.pushdown_reports
    assert rep.chunks["x"] == (10, 10, 9, 1)  # total, with statistics, skipped, read


def test_limit_short_circuit_stops_early(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "big"), overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=80_000)  # 10,000 rows a chunk
        ds.extend({"x": np.arange(100_000) % 7})
    reader = CountingReader(ds)
    res = run(ds, "SELECT * WHERE x == 3 LIMIT 5 OFFSET 2", reader=reader)
    assert res.indices.tolist() == [17, 24, 31, 38, 45]
    assert max(reader.read["x"]) < 10_000  # one chunk read, not ten
    assert reader.pushdown_reports[0].limit_scan == 7 and reader.pushdown_reports[0].rows_scanned == 10_000
    # ORDER BY needs every row: no short-circuit
    reader = CountingReader(ds)
    assert run(ds, "SELECT * WHERE x == 3 ORDER BY x LIMIT 5", reader=reader).indices.tolist() == [3, 10, 17, 24, 31]
    assert len(reader.read["x"]) >= 100_000


def test_statistics_are_not_trusted_after_an_unflushed_edit(tmp_path):
    ds = _sorted_dataset(tmp_path)
    with ds:
        ds.x[5] = 5000  # in memory only: the chunk now holds a value its old statistics miss
        ds.append({"x": 7000, "labels": 0})
        assert run(ds, "SELECT * WHERE x >= 5000").indices.tolist() == [5, 1000]
    assert run(ds, "SELECT * WHERE x >= 5000").indices.tolist() == [5, 1000]


def test_random_and_registered_functions_are_not_pushed_down(tmp_path):
    ds = _sorted_dataset(tmp_path)
    reader = CountingReader(ds)
    run(ds, "SELECT * WHERE x < 10 AND RANDOM() < 2", reader=reader, seed=1)
    assert reader.pushdown_reports[0].pushed == [] and len(reader.read["x"]) == 1000


def test_explain_says_what_is_pushed_down(tmp_path):
    ds = _sorted_dataset(tmp_path)
    text = explain(ds, "SELECT * WHERE x BETWEEN 120 AND 180 AND labels == 'cat'")
    assert "pushed down: x BETWEEN 120 AND 180; labels == 'cat'" in text
    assert "chunks of x: 10 total, 10 with statistics, 9 skipped by statistics, 1 to read" in text
    assert "chunks of labels: 5 total, 5 with statistics, 4 skipped by statistics, 1 to read" in text  # 200 labels a chunk
    text = explain(ds, "SELECT * WHERE x > 3 LIMIT 4")
    assert "limit: short-circuit" in text
    text = explain(ds, "SELECT * WHERE x > 3 ORDER BY x LIMIT 4")
    assert "short-circuit" not in text and "top-k" in text
    assert "pushed down: (none)" in explain(ds, "SELECT * WHERE NOT x > 3")
    assert "RANDOM() or a registered function" in explain(ds, "SELECT * WHERE RANDOM() < 0.5")


@pytest.mark.parametrize("seed", range(BASE, BASE + 3))
def test_where_in_parallel_blocks_equals_one_piece(tmp_path, seed, monkeypatch):
    """WHERE evaluated a block of rows at a time on threads (tql/blocked.py: every few rows
    here) keeps exactly the rows, and raises exactly the error, of one evaluation over all
    rows: on the dataset, on views, over a sub-query's rows, with pushdown on and off."""
    from lakeformat.tql import blocked

    rng = np.random.default_rng(1000 + seed)
    ds = _dataset(str(tmp_path / "d"), rng)
    _edit(ds, rng)
    calls = {"blocks": 0}
    real = blocked.mask_blocked

    def counting(fn, frame, blocks):
        calls["blocks"] += len(blocks)
        return real(fn, frame, blocks)

    monkeypatch.setattr("lakeformat.tql.pushdown.mask_blocked", counting)
    extra = ["CONTAINS(txt, '1')", "txt LIKE '2%'", "i * 2 + f > 3", "ABS(i) % 7 == 1", "txt > 5", "f / 0 > 1", "ABS(i - DATA(i, 3)) < 20"]
    for k in range(40):
        target = ds
        if k % 5 == 4:
            target = ds[np.sort(rng.choice(len(ds), size=len(ds) // 2, replace=False)) if k % 2 else rng.permutation(len(ds))]
        pred = str(rng.choice(extra)) if k % 3 == 0 else _predicate(rng)
        q = f"SELECT * WHERE {pred}"
        if k % 7 == 6:
            q = f"SELECT * FROM (SELECT *, i + 1 AS j WHERE i > -40) WHERE j > 0 AND ({pred})"
        pushdown = bool(k % 2)
        monkeypatch.setattr(blocked, "MIN_PARALLEL_ROWS", 1 << 60)
        want, _ = _run(target, q, pushdown)
        monkeypatch.setattr(blocked, "MIN_PARALLEL_ROWS", 2)
        monkeypatch.setattr(blocked, "MIN_WHERE_BLOCK_ROWS", int(rng.integers(1, 90)))
        got, _ = _run(target, q, pushdown)
        assert got == want, (seed, q)
    assert calls["blocks"] > 40  # the blocked path did run
