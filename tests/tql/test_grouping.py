"""GROUP BY and UNGROUP BY (lakeformat/tql/grouping.py, grouped_view.py) against references
computed by hand in Python (and pandas for the aggregates), on random data: ints, floats with
NaN, unicode text with None, class labels with empty samples, ragged boxes, sequences."""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.tql import GroupedView, ItemView, TQLError

CLASSES = ["cat", "dog", "bird"]
WORDS = ["héllo", "wörld", "猫", "", "naïve", "CAT"]
SEEDS = range(int(os.environ.get("LF_GROUPING_SEEDS", "6")))  # 40 when run by hand before a change lands


def make(seed: int, n: int = 50) -> Tuple[Any, Dict[str, List[Any]]]:
    rng = np.random.default_rng(seed)
    data: Dict[str, List[Any]] = {
        "k": [int(x) for x in rng.integers(0, 4, n)],
        "v": [int(x) for x in rng.integers(-100, 100, n)],
        "w": [float("nan") if rng.random() < 0.2 else float(np.round(rng.normal(0, 5), 2)) for _ in range(n)],
        "s": [None if rng.random() < 0.2 else str(rng.choice(WORDS)) for _ in range(n)],
        "lab": [[] if rng.random() < 0.2 else [int(rng.integers(0, len(CLASSES)))] for _ in range(n)],
        "boxes": [np.round(rng.uniform(0, 9, (int(rng.integers(0, 3)), 4)), 1).astype(np.float32) for _ in range(n)],
    }
    ds = lakeformat.empty(f"memory://grouping-{seed}", overwrite=True)
    with ds:
        ds.create_tensor("k", dtype="int64")
        ds.create_tensor("v", dtype="int64")
        ds.create_tensor("w", dtype="float64")
        ds.create_tensor("s", htype="text")
        ds.create_tensor("lab", htype="class_label", class_names=CLASSES)
        ds.create_tensor("boxes", htype="bbox", dtype="float32")
        ds.extend({"k": np.array(data["k"], np.int64), "v": np.array(data["v"], np.int64), "w": np.array(data["w"]),
                   "s": data["s"], "lab": [np.array(x, np.uint32) for x in data["lab"]], "boxes": data["boxes"]})
    return ds, data


def key_of(data: Dict[str, List[Any]], name: str, r: int) -> Any:
    """A row's key as the reference sees it: None for NULL, class labels by name."""
    if name == "lab":
        return CLASSES[data["lab"][r][0]] if data["lab"][r] else None
    if name == "k % 3":
        return data["k"][r] % 3
    if name == "v > 0":
        return data["v"][r] > 0
    x = data[name][r]
    return None if isinstance(x, float) and math.isnan(x) else x


def reference_groups(data: Dict[str, List[Any]], rows: List[int], keys: List[str]) -> List[Tuple[Tuple[Any, ...], List[int]]]:
    out: Dict[Tuple[Any, ...], List[int]] = {}
    for r in rows:
        out.setdefault(tuple(key_of(data, k, r) for k in keys), []).append(r)
    return list(out.items())  # insertion order: first appearance


def agg(fn: str, xs: List[Optional[float]]) -> Optional[float]:
    present = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if fn == "COUNT":
        return len(present)
    if not present:
        return None
    return {"SUM": sum, "MIN": min, "MAX": max, "MEAN": lambda p: sum(p) / len(p)}[fn](present)


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=1e-9))


KEYSETS = [["k"], ["lab"], ["s"], ["w"], ["k", "lab"], ["k % 3", "s", "v > 0"]]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("keys", KEYSETS, ids=["_".join(k) for k in KEYSETS])
def test_group_by_matches_a_reference(seed: int, keys: List[str]) -> None:
    ds, data = make(seed)
    cut = int(np.random.default_rng(seed + 100).integers(-60, 60))
    text = (f"SELECT COUNT(*) AS n, COUNT(w) AS nw, SUM(v) AS sv, MEAN(w) AS mw, AVG(v) AS av, MIN(v) AS lo, MAX(w) AS hi "
            f"WHERE v > {cut} GROUP BY {', '.join(keys)}")
    res = tql.run(ds, text)
    rows = [r for r in range(len(data["v"])) if data["v"][r] > cut]
    ref = reference_groups(data, rows, keys)
    assert [g.tolist() for g in res.groups] == [members for _, members in ref]
    assert res.indices.tolist() == [members[0] for _, members in ref]
    for j, k in enumerate(keys):
        col = res.columns[k]
        got = col.tolist() if isinstance(col, np.ndarray) else list(col)
        assert got == [key[j] for key, _ in ref], k
    for name, fn, src in [("n", "COUNT", "v"), ("nw", "COUNT", "w"), ("sv", "SUM", "v"), ("mw", "MEAN", "w"),
                          ("av", "MEAN", "v"), ("lo", "MIN", "v"), ("hi", "MAX", "w")]:
        col = list(res.columns[name])
        want = [agg(fn, [data[src][r] for r in members]) for _, members in ref]
        assert len(col) == len(want) and all(same(a, b) for a, b in zip(col, want)), (name, col, want)
    # pandas agrees on the numeric aggregates (groups matched by their first row)
    df = pd.DataFrame({"v": data["v"], "w": data["w"]}).iloc[rows]
    gid = np.zeros(len(data["v"]), np.int64)
    for g, (_, members) in enumerate(ref):
        gid[members] = g
    p = df.groupby(gid[rows]).agg(sv=("v", "sum"), mw=("w", "mean"), hi=("w", "max"), nw=("w", "count"))
    assert p["sv"].tolist() == list(res.columns["sv"])
    assert all(same(None if math.isnan(a) else a, b) for a, b in zip(p["mw"].to_numpy(), res.columns["mw"]))
    assert p["nw"].tolist() == list(res.columns["nw"])


@pytest.mark.parametrize("seed", SEEDS)
def test_order_limit_offset_apply_to_groups(seed: int) -> None:
    ds, data = make(seed)
    res = tql.run(ds, "SELECT k, COUNT(*) AS n, SUM(v) AS total GROUP BY k ORDER BY n DESC, k LIMIT 3 OFFSET 1")
    ref = reference_groups(data, list(range(len(data["k"]))), ["k"])
    ordered = sorted(ref, key=lambda kv: (-len(kv[1]), kv[0][0]))[1:4]
    assert res.columns["k"].tolist() == [key[0] for key, _ in ordered]
    assert res.columns["n"].tolist() == [len(m) for _, m in ordered]
    assert res.columns["total"].tolist() == [sum(data["v"][r] for r in m) for _, m in ordered]
    # an expression of aggregates, and ordering by one that is not selected
    res = tql.run(ds, "SELECT lab, SUM(v) / COUNT(*) AS mean_v GROUP BY lab ORDER BY MAX(v) DESC")
    ref = reference_groups(data, list(range(len(data["k"]))), ["lab"])
    ordered = sorted(ref, key=lambda kv: -max(data["v"][r] for r in kv[1]))
    assert list(res.columns["lab"]) == [key[0] for key, _ in ordered]
    assert np.allclose(res.columns["mean_v"], [sum(data["v"][r] for r in m) / len(m) for _, m in ordered])


@pytest.mark.parametrize("seed", SEEDS)
def test_grouped_view_reads_each_groups_samples(seed: int) -> None:
    ds, data = make(seed)
    res = tql.run(ds, "SELECT * WHERE v % 2 == 0 GROUP BY s")
    gv = res.view
    assert isinstance(gv, GroupedView) and len(gv) == len(res.groups) and res.view.query_text.startswith("SELECT")
    boxes = gv["boxes"].numpy(aslist=True)
    texts = gv["s"].numpy(aslist=True)
    for g, members in enumerate(res.groups):
        assert len(boxes[g]) == len(members)
        for b, r in zip(boxes[g], members):
            assert np.array_equal(b, data["boxes"][r])
        assert [t.reshape(-1)[0] for t in texts[g]] == [data["s"][r] for r in members]
        assert gv[g].v.numpy().ravel().tolist() == [data["v"][r] for r in members]
    assert [len(list(part.v.numpy())) for part in gv] == [len(m) for m in res.groups]
    sub = gv[1:3]
    assert isinstance(sub, GroupedView) and [g.tolist() for g in sub.groups] == [g.tolist() for g in res.groups[1:3]]
    assert gv["v"][0].numpy().ravel().tolist() == [data["v"][r] for r in res.groups[0]]
    assert gv[0, -1].v.numpy().ravel().tolist() == [data["v"][int(res.groups[0][-1])]]


@pytest.mark.parametrize("seed", SEEDS)
def test_group_then_ungroup_gives_back_the_filtered_rows(seed: int) -> None:
    ds, data = make(seed)
    res = tql.run(ds, "SELECT * WHERE w > -3 GROUP BY k, lab")
    back = tql.run(res.view, "SELECT * UNGROUP BY boxes")
    flat = np.concatenate(res.groups) if res.groups else np.zeros(0, np.int64)
    assert back.view.v.numpy().ravel().tolist() == [data["v"][r] for r in flat]
    assert sorted(flat.tolist()) == [r for r in range(len(data["w"])) if data["w"][r] > -3]
    for b, r in zip(back.view.boxes.numpy(aslist=True), flat):
        assert np.array_equal(b, data["boxes"][r])
    assert res.view.ungroup().v.numpy().ravel().tolist() == [data["v"][r] for r in flat]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_grouped_view_is_queried_again(seed: int) -> None:
    ds, data = make(seed)
    gv = tql.run(ds, "SELECT * GROUP BY k").view
    res = tql.run(gv, "SELECT * WHERE ANY(lab == 'dog') AND SHAPE(v)[0] >= 2")
    want = [g for g, m in enumerate(gv.groups) if len(m) >= 2 and any(data["lab"][r] == [1] for r in m)]
    assert res.indices.tolist() == want
    assert isinstance(res.view, GroupedView) and [g.tolist() for g in res.view.groups] == [gv.groups[g].tolist() for g in want]
    # all of a group's boxes are one value: their count is SHAPE(boxes)[0]
    res = tql.run(gv, "SELECT * WHERE SHAPE(boxes)[0] > 5")
    assert res.indices.tolist() == [g for g, m in enumerate(gv.groups) if sum(len(data["boxes"][r]) for r in m) > 5]


def make_sequences(seed: int, n: int = 30) -> Tuple[Any, Dict[str, List[Any]]]:
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(0, 4, n)]
    data: Dict[str, List[Any]] = {
        "frames": [[int(x) for x in rng.integers(0, 50, m)] for m in lengths],
        "tags": [[str(rng.choice(WORDS)) for _ in range(m)] for m in lengths],
        "labs": [[int(rng.integers(0, len(CLASSES))) for _ in range(m)] for m in lengths],
        "video": [int(x) for x in rng.integers(0, 3, n)],
    }
    ds = lakeformat.empty(f"memory://sequences-{seed}", overwrite=True)
    with ds:
        ds.create_tensor("frames", htype="sequence[generic]", dtype="int64")
        ds.create_tensor("tags", htype="sequence[text]")
        ds.create_tensor("labs", htype="sequence[class_label]", class_names=CLASSES)
        ds.create_tensor("video", dtype="int64")
        ds.frames.extend(data["frames"])
        ds.tags.extend(data["tags"])
        ds.labs.extend([[CLASSES[i] for i in x] for x in data["labs"]])
        ds.video.extend(np.array(data["video"], np.int64))
    return ds, data


@pytest.mark.parametrize("seed", SEEDS)
def test_ungroup_by_splits_sequences_into_items(seed: int) -> None:
    ds, data = make_sequences(seed)
    cut = 25
    res = tql.run(ds, f"SELECT * WHERE ANY(frames > {cut}) UNGROUP BY frames, labs")
    pairs = [(r, j) for r in range(len(data["frames"])) if any(x > cut for x in data["frames"][r]) for j in range(len(data["frames"][r]))]
    assert list(zip(res.indices.tolist(), res.items.tolist())) == pairs
    iv = res.view
    assert isinstance(iv, ItemView) and len(iv) == len(pairs)
    assert iv.frames.numpy().ravel().tolist() == [data["frames"][r][j] for r, j in pairs]
    assert iv.video.numpy().ravel().tolist() == [data["video"][r] for r, _ in pairs]
    assert [t.reshape(-1)[0] for t in iv.tags.numpy(aslist=True)] == [data["tags"][r][j] for r, j in pairs]
    # the items are queried again: text, class labels, numbers, one item per row
    again = tql.run(iv, "SELECT * WHERE labs == 'dog' OR tags == '猫'")
    want = [k for k, (r, j) in enumerate(pairs) if data["labs"][r][j] == 1 or data["tags"][r][j] == "猫"]
    assert again.indices.tolist() == want
    assert [int(a[0]) for a in again.view.frames.numpy(aslist=True)] == [data["frames"][pairs[k][0]][pairs[k][1]] for k in want]
    # items grouped back by their source row give the rows' sequences
    regroup = tql.run(iv, "SELECT video, COUNT(*) AS n, MAX(frames) AS top GROUP BY video")
    ref = reference_groups({"video": [data["video"][r] for r, _ in pairs]}, list(range(len(pairs))), ["video"])
    assert regroup.columns["n"].tolist() == [len(m) for _, m in ref]
    assert regroup.columns["top"].tolist() == [max(data["frames"][pairs[k][0]][pairs[k][1]] for k in m) for _, m in ref]
    lim = tql.run(ds, "SELECT * UNGROUP BY frames LIMIT 3 OFFSET 2")
    every = [(r, j) for r in range(len(data["frames"])) for j in range(len(data["frames"][r]))]
    assert list(zip(lim.indices.tolist(), lim.items.tolist())) == every[2:5]


@pytest.mark.parametrize("seed", SEEDS)
def test_where_over_a_sequence_sees_the_rows_items(seed: int) -> None:
    ds, data = make_sequences(seed)
    n = len(data["frames"])
    rows = lambda text: tql.run(ds, text).indices.tolist()  # noqa: E731
    assert rows("SELECT * WHERE ANY(frames > 40)") == [r for r in range(n) if any(x > 40 for x in data["frames"][r])]
    assert rows("SELECT * WHERE ALL_STRICT(frames < 30)") == [r for r in range(n) if data["frames"][r] and all(x < 30 for x in data["frames"][r])]
    assert rows("SELECT * WHERE SHAPE(frames)[0] == 2") == [r for r in range(n) if len(data["frames"][r]) == 2]
    assert rows("SELECT * WHERE ANY(labs == 'bird')") == [r for r in range(n) if 2 in data["labs"][r]]
    assert rows("SELECT * WHERE SUM(frames) > 60") == [r for r in range(n) if data["frames"][r] and sum(data["frames"][r]) > 60]
    assert rows("SELECT * WHERE CONTAINS(labs, 'dog')") == [r for r in range(n) if 1 in data["labs"][r]]
    assert rows("SELECT * WHERE frames IS NULL") == [r for r in range(n) if not data["frames"][r]]


def test_keys_nulls_and_edge_cases() -> None:
    ds = lakeformat.empty("memory://grouping-edges", overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="float32")
        ds.create_tensor("lab", htype="class_label", class_names=["a", "b"])
        ds.create_tensor("t", htype="text")
        ds.extend({"x": np.array([1, np.nan, 1, 2, np.nan], np.float32), "lab": [[0], [], [1], [], [0]], "t": ["é", None, "é", "e", None]})
    res = tql.run(ds, "SELECT x, t, COUNT(*) AS n GROUP BY x, t")
    assert [g.tolist() for g in res.groups] == [[0, 2], [1, 4], [3]]          # NULL keys make one group
    assert res.columns["x"] == [1.0, None, 2.0] and res.columns["t"] == ["é", None, "e"]
    res = tql.run(ds, "SELECT lab AS name GROUP BY lab ORDER BY lab DESC")
    assert res.columns["lab"] == res.columns["name"] == ["b", "a", None]       # by id, NULL last, shown by name
    res = tql.run(ds, "SELECT COUNT(*) AS n, SUM(x) AS s FROM (SELECT ROW_NUMBER() % 2 AS odd WHERE ROW_NUMBER() < 4) GROUP BY odd")
    assert res.columns["odd"].tolist() == [0, 1] and res.columns["n"].tolist() == [2, 2] and res.columns["s"].tolist() == [2.0, 2.0]
    res = tql.run(ds, "SELECT t, COUNT(*) AS n GROUP BY t ORDER BY t")
    assert res.columns["t"] == ["e", "é", None] and res.columns["n"].tolist() == [1, 2, 2]   # code point order, NULL last
    empty = tql.run(ds, "SELECT COUNT(*) AS n WHERE x > 10 GROUP BY x")
    assert len(empty) == 0 and empty.groups == [] and len(empty.view) == 0
    res = tql.run(ds, "SELECT SUM(x) AS s, MIN(x) AS lo, COUNT(x) AS c GROUP BY t")
    assert res.columns["s"] == [2.0, None, 2.0] and res.columns["lo"] == [1.0, None, 2.0]  # all-NULL group: NULL
    assert res.columns["c"].tolist() == [2, 0, 1]
    res = tql.run(ds, "SELECT COUNT(lab) AS c, COUNT(t) AS ct GROUP BY x")   # rows whose x is not NULL
    assert res.columns["c"].tolist() == [2, 1, 0] and res.columns["ct"].tolist() == [2, 0, 1]
    gv = tql.run(ds, "SELECT * GROUP BY t").view
    assert gv.x.shape == (3, None, 1) and gv.lab.shape[:2] == (3, None)
    assert "group by: lab" in tql.explain(ds, "SELECT COUNT(*) GROUP BY lab")


def test_grouped_view_round_trips_through_to_dict(tmp_path: Any) -> None:
    ds = lakeformat.empty(str(tmp_path / "g"), overwrite=True)
    with ds:
        ds.create_tensor("k", dtype="int64")
        ds.create_tensor("v", dtype="int64")
        ds.extend({"k": np.array([2, 1, 2, 3, 1]), "v": np.arange(5)})
    ds.commit("five rows")
    gv = tql.run(ds, "SELECT * WHERE v > 0 GROUP BY k").view
    v = gv.view
    assert v.query == "SELECT * WHERE v > 0 GROUP BY k" and v.row_indices().tolist() == [1, 4, 2, 3]
    back = GroupedView.from_dict(gv.to_dict())
    assert [len(g) for g in back.groups] == [2, 1, 1]
    assert [[int(x[0]) for x in g] for g in back["v"].numpy(aslist=True)] == [[1, 4], [2], [3]]


ERRORS = [
    ("SELECT * GROUP BY boxes", 19, "GROUP BY needs one value per row"),
    ("SELECT SUM(boxes) GROUP BY k", 12, "SUM over a group needs one value per row"),
    ("SELECT SUM(s) GROUP BY k", 12, "SUM over a group takes numbers"),
    ("SELECT COUNT(*) GROUP BY nope", 26, "unknown tensor 'nope'"),
    ("SELECT MAX(nope) GROUP BY k", 12, "unknown tensor 'nope'"),
    ("SELECT v + 1 GROUP BY k", 8, "'v' is not a GROUP BY key"),
    ("SELECT COUNT(*) GROUP BY k ORDER BY w", 37, "'w' is not a GROUP BY key"),
    ("SELECT SUM(v, 0) GROUP BY k", 8, "SUM over a group takes one value per row"),
    ("SELECT * UNGROUP BY k", 21, "UNGROUP BY takes sequence tensors"),
    ("SELECT * UNGROUP BY k + 1", 23, "UNGROUP BY takes sequence tensors (names)"),
    ("SELECT * GROUP BY k UNGROUP BY v", 32, "GROUP BY and UNGROUP BY in one SELECT"),
    ("SELECT * GROUP BY k SAMPLE BY MAX_WEIGHT(k > 0: 1) LIMIT 3", 21, "SAMPLE BY with GROUP BY"),
    ("(SELECT * GROUP BY k) UNION (SELECT * WHERE k > 1)", 23, "combines rows, not groups"),
    ("SELECT * FROM (SELECT * GROUP BY k) WHERE k > 1", 15, "a sub-query with GROUP BY"),
    ("SELECT COUNT(*, v) GROUP BY k", 15, "expected ')'"),
    ("SELECT COUNT(v, w) GROUP BY k", 8, "COUNT takes * or one value per row"),
    ("SELECT COUNT(*) AS n WHERE k > 1", 8, "COUNT counts the rows of a group: it needs GROUP BY"),
]


@pytest.mark.parametrize("text,col,msg", ERRORS)
def test_errors_name_the_position(text: str, col: int, msg: str) -> None:
    ds, _ = make(0, 10)
    with pytest.raises(TQLError) as ei:
        tql.run(ds, text)
    assert msg in str(ei.value), str(ei.value)
    assert (ei.value.line, ei.value.column) == (1, col), str(ei.value)


def test_a_text_sequence_is_ungrouped_before_where() -> None:
    ds, _ = make_sequences(0)
    with pytest.raises(TQLError, match="UNGROUP BY tags") as ei:
        tql.run(ds, "SELECT * WHERE tags == 'x'")
    assert ei.value.column == 16


def test_grouping_from_the_dataset_api_and_on_views(tmp_path: Any) -> None:
    ds, data = make_sequences(3)
    part = ds[5:20]
    res = tql.run(part, "SELECT * UNGROUP BY frames")
    pairs = [(r, j) for r in range(15) for j in range(len(data["frames"][r + 5]))]
    assert list(zip(res.indices.tolist(), res.items.tolist())) == pairs          # rows of the view queried
    assert res.view.frames.numpy().ravel().tolist() == [data["frames"][r + 5][j] for r, j in pairs]
    gv = part.query("SELECT * GROUP BY video")
    assert isinstance(gv, GroupedView)
    assert [g.tolist() for g in gv.groups] == [m for _, m in reference_groups({"video": data["video"][5:20]}, list(range(15)), ["video"])]
    assert [len(x) for x in gv.query("SELECT * WHERE SUM(video) > 0").groups] == [len(g) for g in gv.groups if data["video"][5 + int(g[0])] > 0]
    path = str(tmp_path / "named")
    named = lakeformat.empty(path, overwrite=True)
    with named:
        named.create_tensor("k", dtype="int64")
        named.k.extend(np.array([3, 1, 3]))
    named.commit("three rows")
    view = lakeformat.query(f'SELECT * FROM "{path}" GROUP BY k')
    assert [g.tolist() for g in view.groups] == [[0, 2], [1]]
