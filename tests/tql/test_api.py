"""run / explain / parameters / user functions / FROM "<url>"@version / errors with positions,
and the executor's pieces (top-k, the column-reader seam)."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.tql import TQLError
from lakeformat.tql import executor as ex
from lakeformat.tql.reader import DatasetColumnReader
from tests.tql.tql_data import build, make_data


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    d = make_data(11)
    path = str(tmp_path_factory.mktemp("tqlapi") / "ds")
    return d, build(path, d), path


def test_result_carries_view_query_and_commit(lake, tmp_path):
    d, ds, _ = lake
    text = "SELECT * WHERE i > 0 ORDER BY i LIMIT 3"
    res = tql.run(ds, text)
    assert isinstance(res, tql.QueryResult) and len(res) == len(res.view) == 3
    assert res.query == text and res.tensors is None and res.columns == {}
    assert res.view.i.numpy().reshape(-1).tolist() == sorted(int(x) for x in d.i if x > 0)[:3]
    assert res.commit_id == ds.commit_id
    w = lakeformat.empty(str(tmp_path / "w"), overwrite=True)
    w.create_tensor("x", dtype="int64")
    w.x.extend(np.arange(5))
    first = w.commit("five")
    assert tql.run(w, "SELECT * WHERE x > 2").commit_id == first
    # the view is queried again
    again = tql.run(tql.run(w, "SELECT * WHERE x > 1").view, "SELECT * WHERE x < 4")
    assert again.view.x.numpy().reshape(-1).tolist() == [2, 3]


def test_explain_lists_reads_filter_order_limit(lake):
    _, ds, _ = lake
    plan = tql.explain(ds, "SELECT COSINE_SIMILARITY(emb, ARRAY[1, 0, 0, 0, 0, 0, 0, 0]) AS score WHERE lab == 'cat' AND i > 0 ORDER BY score DESC LIMIT 10")
    assert "read tensors: lab, i, emb" in plan
    assert "filter: (lab == 'cat') AND (i > 0)" in plan
    assert "order: COSINE_SIMILARITY(emb, ARRAY[1, 0, 0, 0, 0, 0, 0, 0]) DESC by top-k" in plan
    assert "limit: 10" in plan and "computed columns: score = " in plan
    plan = tql.explain(ds, "(SELECT * WHERE i > 0 ORDER BY i, f DESC) UNION (SELECT s FROM (SELECT * WHERE f > 0) LIMIT 5 PERCENT OFFSET 2)")
    assert plan.splitlines()[0] == "UNION"
    assert "stable sort" in plan and "from sub-query:" in plan and "limit: 5 PERCENT" in plan and "offset: 2" in plan and "tensors in the view: s" in plan


def test_top_k_never_sorts_everything(lake, monkeypatch):
    d, ds, _ = lake
    want = tql.run(ds, "SELECT * ORDER BY f DESC").indices[:5].tolist()

    def no_full_sort(*a, **k):
        raise AssertionError("a top-k query ran a full sort")
    monkeypatch.setattr(ex, "sort_permutation", no_full_sort)
    assert tql.run(ds, "SELECT * ORDER BY f DESC LIMIT 5").indices.tolist() == want


@pytest.mark.parametrize("seed", range(30))
def test_top_k_equals_the_stable_sort(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    kind = seed % 4
    if kind == 0:
        vals = rng.integers(-3, 3, n).astype(np.int64)  # many ties
    elif kind == 1:
        vals = rng.integers(0, 4, n).astype(np.uint8)
    elif kind == 2:
        vals = rng.choice([0.5, -1.0, np.nan, 2.0], n).astype(np.float32)
    else:
        vals = rng.random(n) < 0.5
    null = rng.random(n) < 0.1
    for desc in (False, True):
        full = ex.sort_permutation([(vals, null | (np.isnan(vals) if vals.dtype.kind == "f" else False), desc)])
        for k in {0, 1, 2, 5, n // 2, n, n + 3}:
            got = ex.top_k(vals, null | (np.isnan(vals) if vals.dtype.kind == "f" else False), k, desc)
            assert got.tolist() == full[:k].tolist(), (seed, desc, k)


def test_reader_seam_reads_only_what_is_needed(lake):
    d, ds, _ = lake
    calls = []
    base = DatasetColumnReader(ds)

    def reader(name, rows):
        calls.append((name, len(rows)))
        return base(name, rows)
    res = tql.run(ds, "SELECT L2_NORM(emb) AS norm, i * 2 AS twice WHERE f > 0 ORDER BY i DESC LIMIT 3", reader=reader)
    assert len(res) == 3
    names = [c[0] for c in calls]
    assert sorted(set(names)) == ["emb", "f", "i"]
    assert ("f", d.n) in calls  # the filter reads every row
    assert ("emb", 3) in calls  # computed columns read only the rows that survive LIMIT
    assert names.count("i") == 1  # ORDER BY's i is reused for the computed column


def test_parameters(lake):
    d, ds, _ = lake
    assert tql.run(ds, "SELECT * WHERE i > ? LIMIT ?", params=[0, 2]).indices.tolist() == [k for k in range(d.n) if d.i[k] > 0][:2]
    assert len(tql.run(ds, "SELECT * WHERE s IN (?)", params=[["cat", "dog"]])) == sum(1 for s in d.s if s in ("cat", "dog"))
    assert len(tql.run(ds, "SELECT * WHERE i > ?", params=[np.int64(3)])) == int((d.i > 3).sum())
    with pytest.raises(TQLError, match="1 parameter"):
        tql.run(ds, "SELECT * WHERE i > ?")
    with pytest.raises(TQLError, match="2 parameters"):
        tql.run(ds, "SELECT * WHERE i > ? AND f < ?", params=[1, 2, 3])
    with pytest.raises(TQLError, match="a parameter must be"):
        tql.run(ds, "SELECT * WHERE i > ?", params=[object()])


def test_user_functions(lake):
    d, ds, _ = lake
    tql.register_function("area", lambda b: b[..., 2] * b[..., 3])
    tql.register_function("plus", lambda a, b=1: a + b)
    tql.register_function("shout", lambda t: np.asarray([x.upper() if x is not None else None for x in t], dtype=object))
    try:
        got = tql.run(ds, "SELECT * WHERE ANY(area(boxes) > 100)").indices.tolist()
        assert got == [k for k in range(d.n) if np.any(d.boxes[k][:, 2] * d.boxes[k][:, 3] > 100)]
        got = tql.run(ds, "SELECT * WHERE PLUS(i, 10) > 40 AND plus(f) > 0").indices.tolist()
        assert got == [k for k in range(d.n) if d.i[k] + 10 > 40 and d.f[k] + 1 > 0]
        assert tql.run(ds, "SELECT * WHERE shout(s) == 'CAT'").indices.tolist() == [k for k in range(d.n) if d.s[k] is not None and d.s[k].upper() == "CAT"]
        with pytest.raises(TQLError, match="PLUS takes 1 to 2 arguments, got 3") as ei:
            tql.run(ds, "SELECT * WHERE plus(i, 1, 2) > 0")
        assert ei.value.column == 16
        tql.register_function("bad", lambda x: x[:1])
        with pytest.raises(TQLError, match="BAD returned 1 values for 40 rows"):
            tql.run(ds, "SELECT * WHERE bad(i) > 0")
        tql.register_function("boom", lambda x: 1 / 0)
        with pytest.raises(TQLError, match="function BOOM failed: ZeroDivisionError"):
            tql.run(ds, "SELECT * WHERE boom(i) > 0")
        with pytest.raises(TQLError, match="built-in"):
            tql.register_function("sum", np.sum)
        with pytest.raises(TQLError, match="not an identifier"):
            tql.register_function("no way", np.sum)
    finally:
        for name in ("area", "plus", "shout", "bad", "boom"):
            tql.unregister_function(name)
    with pytest.raises(TQLError, match="unknown function AREA"):
        tql.run(ds, "SELECT * WHERE area(boxes) > 1")


def test_from_url_and_version(tmp_path):
    path = str(tmp_path / "v")
    ds = lakeformat.empty(path, overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(10))
    first = ds.commit("ten")
    ds.x.extend(np.arange(10, 20))
    ds.commit("twenty")
    ds.checkout("side", create=True)
    ds.x.extend(np.arange(100, 103))
    ds.commit("side")
    del ds
    assert len(tql.run(None, f'SELECT * FROM "{path}" WHERE x >= 5')) == 15
    assert tql.run(None, f'SELECT * FROM "{path}"@{first} WHERE x >= 5').view.x.numpy().reshape(-1).tolist() == [5, 6, 7, 8, 9]
    assert len(tql.run(None, f'SELECT * FROM "{path}"@side WHERE x >= 100')) == 3
    assert tql.explain(None, f'SELECT * FROM "{path}"@side').splitlines()[1] == f"  from dataset: {path} @ side"
    with pytest.raises(TQLError, match="cannot open") as ei:
        tql.run(None, f'SELECT * FROM "{path}"@nosuchbranch')
    assert ei.value.column == 15
    with pytest.raises(TQLError, match="cannot open"):
        tql.run(None, f'SELECT * FROM "{tmp_path}/missing"')
    with pytest.raises(TQLError, match="no dataset"):
        tql.run(None, "SELECT * WHERE x > 1")
    opened = lakeformat.load(path, read_only=True)
    with pytest.raises(TQLError, match="run it with run"):
        tql.run(opened, f'SELECT * FROM "{path}"')


@pytest.mark.parametrize("text,col,msg", [
    ("SELECT * WHERE nope > 1", 16, "unknown tensor 'nope'"),
    ("SELECT * WHERE i > 1 ORDER BY nope", 31, "unknown tensor 'nope'"),
    ("SELECT * WHERE FOO(i) > 1", 16, "unknown function FOO"),
    ("SELECT * WHERE SUM() > 1", 16, "SUM takes 1 to 2 arguments, got 0"),
    ("SELECT * WHERE COSINE_SIMILARITY(emb) > 1", 16, "takes 2 arguments, got 1"),
    ("SELECT * WHERE i == 'cat'", 18, "cannot compare a numeric tensor with a string"),
    ("SELECT * WHERE s > 3", 18, "cannot compare a text tensor with a number"),
    ("SELECT * WHERE lab == 'horse'", 20, "'horse' is not one of the tensor's class names"),
    ("SELECT * WHERE s + 1 > 0", 18, "expected a number or a numeric tensor, got a text tensor"),
    ("SELECT * WHERE s", 16, "expected a condition, got a text tensor"),
    ("SELECT * WHERE i == NULL", 18, "IS NULL"),
    ("SELECT * ORDER BY emb", 19, "ORDER BY needs one value per row"),
    ("SELECT * ORDER BY boxes", 19, "ORDER BY needs one value per row"),
    ("SELECT * WHERE img[0, 0, 0, 0] > 1", 19, "4 indices for samples of 3 dimensions"),
    ("SELECT * WHERE i['k'] > 1", 17, "a string key applies to a json tensor"),
    ("SELECT * WHERE emb[i] > 1", 20, "integer constant"),
    ("SELECT * WHERE emb[::0] > 1", 22, "step cannot be zero"),
    ("SELECT * WHERE emb + ARRAY[1, 2, 3] > 1", 20, "sample shapes (8,) and (3,) do not broadcast"),
    ("SELECT * WHERE SUM(emb, 3) > 1", 16, "axis 3 is out of range"),
    ("SELECT * WHERE SUM(emb, i) > 1", 16, "axis must be an integer constant"),
    ("SELECT * WHERE IOU(emb, ARRAY[1, 2, 3, 4]) > 1", 16, "IOU takes boxes of 4 numbers"),
    ("SELECT * WHERE s LIKE i", 18, "LIKE takes a string pattern"),
    ("SELECT * WHERE i IN (f)", 18, "IN takes constants"),
    ("SELECT * WHERE CONTAINS(i, 'x')", 16, "CONTAINS with a string needs"),
    ("SELECT * LIMIT -1", 16, "expected a number or ?"),
    ("SELECT * LIMIT ?", 16, "LIMIT takes a whole number"),
    ("SELECT * LIMIT 2.5", 16, "LIMIT takes a whole number"),
    ("SELECT * LIMIT 150 PERCENT", 16, "0 to 100"),
    ("SELECT * GROUP BY emb", 19, "GROUP BY needs one value per row"),
    ("SELECT * UNGROUP BY lab", 21, "UNGROUP BY takes sequence tensors"),
    ("SELECT * SAMPLE BY MAX_WEIGHT(i > 0: -1) LIMIT 3", 38, "weights must be finite numbers >= 0"),
    ("SELECT * SAMPLE BY MAX_WEIGHT(i > 0: 1 / 0) LIMIT 3", 40, "weights must be finite numbers >= 0"),
    ("SELECT * SAMPLE BY MAX_WEIGHT(i > 0: 'x') LIMIT 3", 38, "weight is a number"),
    ("SELECT * SAMPLE BY MAX_WEIGHT(i > 0: emb) LIMIT 3", 38, "one value per row"),
    ("SELECT * SAMPLE BY MAX_WEIGHT(s: 1) LIMIT 3", 31, "expected a condition"),
    ("SELECT * SAMPLE BY MAX_WEIGHT(i > 0: 1) LIMIT 3 OFFSET 1", 56, "OFFSET does not apply"),
    ("SELECT * FROM (SELECT * WHERE i > 0) EXPAND BY 1 1", 38, "EXPAND BY adds the dataset's neighbouring rows"),
    ("SELECT * EXPAND BY -1 1", 10, "counts >= 0"),
    ("SELECT * WHERE i@nope > 1", 16, "unknown version 'nope'"),
    ("SELECT i * 2 AS x, f AS x", 20, "two columns named 'x'"),
    ("(SELECT i * 2 AS x) UNION (SELECT * WHERE i > 1)", 21, "computed columns are not carried"),
    ("SELECT * WHERE ARRAY[i] > 1", 16, "ARRAY[...] takes numbers"),
])
def test_errors_name_the_position(lake, text, col, msg):
    _, ds, _ = lake
    with pytest.raises(TQLError) as ei:
        tql.run(ds, text, params=[-1] if "?" in text else None)
    assert msg in str(ei.value)
    assert (ei.value.line, ei.value.column) == (1, col), str(ei.value)
    assert "^" in str(ei.value)


def test_dotted_names_find_groups_and_tensors_named_with_dots(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "dots"), overwrite=True)
    ds.create_tensor("a.b", dtype="int64")
    ds.create_tensor("g/c", dtype="int64")
    ds.create_tensor("group", dtype="int64")
    ds.extend({"a.b": np.arange(4), "g/c": np.arange(4) * 10, "group": np.arange(4)})
    assert tql.run(ds, "SELECT * WHERE a.b > 1 AND g.c < 30").indices.tolist() == [2]
    assert tql.run(ds, 'SELECT * WHERE "a.b" == 3 OR "g/c" == 0').indices.tolist() == [0, 3]
    assert tql.run(ds, 'SELECT * ORDER BY "group" DESC LIMIT 1').indices.tolist() == [3]
    assert "read tensors: a.b, g/c" in tql.explain(ds, "SELECT * WHERE a.b > 1 AND g.c < 30")


def test_regressions_found_by_the_executor_fuzz(lake):
    d, ds, _ = lake
    # booleans count as 0 and 1 in arithmetic
    assert tql.run(ds, "SELECT * WHERE (i > 0) - (f > 0) == 1").indices.tolist() == [k for k in range(d.n) if d.i[k] > 0 and not d.f[k] > 0]
    assert tql.run(ds, "SELECT * WHERE -(i > 0) == -1").indices.tolist() == [k for k in range(d.n) if d.i[k] > 0]
    # a json value never equals an array; constants are repeated per row in a computed column
    assert tql.run(ds, "SELECT * WHERE j == ARRAY[1, 2]").indices.tolist() == []
    res = tql.run(ds, "SELECT ARRAY[1, 2] AS a, 'x' AS t, 3 AS n LIMIT 3")
    assert res.columns["a"].tolist() == [[1, 2]] * 3 and res.columns["t"] == ["x"] * 3 and res.columns["n"].tolist() == [3] * 3
    # zero rows reaching array conditions, a sample and an expansion
    for text in ["SELECT * FROM (SELECT * WHERE i > 1000) WHERE emb > 0 AND CONTAINS(lab, 'cat')",
                 "SELECT * WHERE i > 1000 SAMPLE BY MAX_WEIGHT(emb > 0: 1)", "SELECT * WHERE NOT i EXPAND BY 1 1 SAMPLE BY MAX_WEIGHT(i: 2, emb > 0: 1)"]:
        assert tql.run(ds, text).indices.tolist() == [] or "EXPAND" in text
    for text, msg in [("SELECT * WHERE ARRAY[1, 2] == ARRAY[1, 2, 3]", "do not broadcast"), ("SELECT * WHERE CONTAINS(ml, ARRAY[1, 2])", "one value")]:
        with pytest.raises(TQLError, match=msg):
            tql.run(ds, text)


def test_uneven_tensors_groups_and_compressed_images(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "uneven"), overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("y", dtype="int64")
    ds.create_tensor("g/z", dtype="int64")
    ds.create_tensor("img", htype="image", sample_compression="png")
    ds.x.extend(np.arange(5))
    ds.y.extend(np.arange(3) * 10)
    ds["g/z"].extend(np.arange(4))
    ds.img.extend(np.stack([np.full((2, 3, 3), k * 60, np.uint8) for k in range(4)]))
    assert len(ds) == 3  # the shortest tensor decides the dataset's length
    assert tql.run(ds, "SELECT * WHERE x >= 0").indices.tolist() == [0, 1, 2]
    assert tql.run(ds, "SELECT * ORDER BY x DESC LIMIT 2").indices.tolist() == [2, 1]
    assert tql.run(ds, "SELECT * WHERE MEAN(img) > 50").indices.tolist() == [1, 2]
    group = ds["g"]
    assert tql.run(group, "SELECT * WHERE z > 1").indices.tolist() == [2, 3]
    with pytest.raises(TQLError, match="unknown tensor 'x'"):
        tql.run(group, "SELECT * WHERE x > 1")
