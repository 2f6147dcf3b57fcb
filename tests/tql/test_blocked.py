"""ORDER BY over wide rows, evaluated a block of rows at a time (lakeformat/tql/blocked.py),
equals the whole-column evaluation and a NumPy reference: over a run of rows (blocks along
chunk ends, chunks mapped in place), over filtered rows (blocks read into reused arrays), on
views, with unflushed rows, and where blocking must not apply."""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.core.chunk_reads import ChunkReads
from lakeformat.tql import blocked

D = 16


@pytest.fixture()
def counts(monkeypatch: pytest.MonkeyPatch) -> Dict[str, int]:
    """Small thresholds, so that a few thousand rows are "wide", and counters of the paths."""
    monkeypatch.setattr(blocked, "MIN_TOTAL_BYTES", 4096)
    monkeypatch.setattr(blocked, "MIN_ROW_BYTES", 8)
    monkeypatch.setattr(blocked, "BLOCK_BYTES", 64 * 4 * D)  # 64 rows a block when copied
    monkeypatch.setattr(blocked, "MAPPED_BLOCK_BYTES", 64 * 4 * D)
    seen = {"blocked": 0, "mapped": 0, "read": 0}
    real_eval, real_view = blocked.eval_blocked, ChunkReads.view_fixed_range

    def eval_blocked(*a: Any) -> Any:
        seen["blocked"] += 1
        return real_eval(*a)

    def view(self: Any, *a: Any) -> Any:
        out = real_view(self, *a)
        seen["mapped" if out is not None else "read"] += 1
        return out

    import lakeformat.tql.executor as ex

    monkeypatch.setattr(ex, "eval_blocked", eval_blocked)
    monkeypatch.setattr(ChunkReads, "view_fixed_range", view)
    return seen


def build(path: str, seed: int, n: int = 3000) -> Any:
    rng = np.random.default_rng(seed)
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("emb", htype="embedding", dtype="float32", max_chunk_size=200 * 4 * D)  # ~200 rows a chunk
        ds.create_tensor("x", dtype="int64")
        emb = rng.normal(size=(n, D)).astype(np.float32)
        emb[rng.integers(0, n, 5)] = emb[0]  # ties: equal scores keep row order
        ds.extend({"emb": emb, "x": rng.integers(0, 50, n)})
    return ds


def cosine(e: np.ndarray, q: np.ndarray) -> np.ndarray:
    e64, q64 = e.astype(np.float64), q.astype(np.float64)
    return (e64 @ q64) / (np.linalg.norm(e64, axis=1) * np.linalg.norm(q64))


def top(scores: np.ndarray, k: int, desc: bool) -> List[int]:
    key = -scores if desc else scores
    return [int(i) for i in np.lexsort((np.arange(len(key)), key))[:k]]


def arr(q: np.ndarray) -> str:
    return "ARRAY[" + ", ".join(repr(float(v)) for v in q) + "]"


@pytest.mark.parametrize("seed", range(3))
def test_blocked_order_by_equals_one_piece_and_numpy(tmp_path: Any, counts: Dict[str, int], seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = build(str(tmp_path / "ds"), seed)
    rng = np.random.default_rng(100 + seed)
    q = rng.normal(size=D).astype(np.float32)
    emb, x = ds.emb.numpy(), ds.x.numpy().reshape(-1)
    queries = [
        (f"SELECT * ORDER BY COSINE_SIMILARITY(emb, {arr(q)}) DESC LIMIT 9", top(cosine(emb, q), 9, True)),
        (f"SELECT * ORDER BY L2_DISTANCE(emb, {arr(q)}) LIMIT 9", top(np.linalg.norm(emb.astype(np.float64) - q, axis=1), 9, False)),
        ("SELECT * ORDER BY emb[3] DESC, x LIMIT 11", None),
        (f"SELECT * WHERE x < 20 ORDER BY COSINE_SIMILARITY(emb, {arr(q)}) DESC LIMIT 9", None),
        # DATA's one row must not land in the array the block's own read of emb returned
        ("SELECT * WHERE x > 2 ORDER BY L2_NORM(emb - DATA(emb, 5)) LIMIT 9", None),
    ]
    got = {text: tql.run(ds, text).indices.tolist() for text, _ in queries}
    blocks = counts["blocked"]
    assert blocks >= len(queries) and counts["mapped"] > 0  # `x` of the two-key order is blocked too
    for text, want in queries:
        if want is not None:
            assert got[text] == want, text
    sub = np.flatnonzero(x < 20)
    assert got[queries[3][0]] == [int(sub[i]) for i in top(cosine(emb[sub], q), 9, True)]
    sub = np.flatnonzero(x > 2)
    assert got[queries[4][0]] == [int(sub[i]) for i in top(np.linalg.norm(emb[sub].astype(np.float64) - emb[5], axis=1), 9, False)]
    # the same queries in one piece
    monkeypatch.setattr(blocked, "MIN_TOTAL_BYTES", 1 << 60)
    for text, _ in queries:
        assert tql.run(ds, text).indices.tolist() == got[text], text
    assert counts["blocked"] == blocks


def test_views_and_unflushed_rows_read_instead_of_mapping(tmp_path: Any, counts: Dict[str, int]) -> None:
    ds = build(str(tmp_path / "ds"), 7)
    q = np.ones(D, np.float32)
    view = ds[100:2500]
    res = tql.run(view, f"SELECT * ORDER BY COSINE_SIMILARITY(emb, {arr(q)}) DESC LIMIT 5")
    assert res.indices.tolist() == top(cosine(view.emb.numpy(), q), 5, True)
    assert counts["blocked"] == 1 and counts["mapped"] == 0  # a view's rows are not the chunks' own
    with ds:
        extra = np.full((300, D), 3.0, np.float32)
        ds.extend({"emb": extra, "x": np.zeros(300, np.int64)})
        res = tql.run(ds, f"SELECT * ORDER BY COSINE_SIMILARITY(emb, {arr(q)}) DESC LIMIT 4")  # unflushed rows score 1.0
        assert res.indices.tolist() == [3000, 3001, 3002, 3003]
    assert counts["read"] > 0


def test_not_row_local_expressions_are_not_split(tmp_path: Any, counts: Dict[str, int]) -> None:
    ds = build(str(tmp_path / "ds"), 3)
    one = tql.run(ds, "SELECT * ORDER BY emb[0] + RANDOM() LIMIT 5", seed=5).indices.tolist()
    assert tql.run(ds, "SELECT * ORDER BY emb[0] + RANDOM() LIMIT 5", seed=5).indices.tolist() == one
    tql.register_function("center", lambda e: e - e.mean(axis=0))  # looks at the whole column
    try:
        tql.run(ds, "SELECT * ORDER BY SUM(CENTER(emb)) LIMIT 5")
    finally:
        tql.unregister_function("center")
    assert counts["blocked"] == 0


@pytest.mark.parametrize("seed", range(4))
def test_blocked_top_k_of_a_narrow_key_equals_a_full_sort(tmp_path: Any, counts: Dict[str, int], monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(blocked, "MIN_REDUCED_BYTES", 1024)
    rng = np.random.default_rng(seed)
    n = 5000
    ds = lakeformat.empty(str(tmp_path / "ds"), overwrite=True)
    with ds:
        ds.create_tensor("v", dtype="float64", max_chunk_size=300 * 8)
        ds.create_tensor("i", dtype="int16", max_chunk_size=700 * 2)
        ds.create_tensor("m", dtype="int64", nullable=True)
        v = rng.integers(0, 40, n).astype(np.float64)  # many ties
        v[rng.integers(0, n, 50)] = np.nan  # NaN sorts last, as NULL
        m = [None if rng.random() < 0.3 else int(x) for x in rng.integers(-5, 5, n)]
        ds.extend({"v": v, "i": rng.integers(-300, 300, n).astype(np.int16), "m": m})
    queries = ["SELECT * ORDER BY v LIMIT 37", "SELECT * ORDER BY v DESC LIMIT 250 OFFSET 10", "SELECT * ORDER BY i * 2 - v DESC LIMIT 64",
               "SELECT * WHERE i > 0 ORDER BY v LIMIT 30", "SELECT * ORDER BY m DESC LIMIT 4000", "SELECT * ORDER BY ABS(i) LIMIT 9000"]
    got = {q: tql.run(ds, q).indices.tolist() for q in queries}
    assert counts["blocked"] == 0 and counts["mapped"] > 0  # the top-k path, not eval_blocked
    monkeypatch.setattr(blocked, "MIN_REDUCED_BYTES", 1 << 60)
    for q in queries:
        assert tql.run(ds, q).indices.tolist() == got[q], q
    # and against NumPy: NULL and NaN last, ties in row order
    key = np.where(np.isnan(v), np.inf, v)
    assert got[queries[0]] == [int(x) for x in np.lexsort((np.arange(n), key))[:37]]
