"""`handle.to_arrow()` / `to_pandas()`: every column type, nulls, row order, errors, and a
round trip through DuckDB (and Polars where installed)."""
from __future__ import annotations

import datetime as dt
import json
import sys

import numpy as np
import pyarrow as pa
import pytest

import lakeformat
from lakeformat import temporal
from lakeformat.core.arrow_export import ArrowExportError
from lakeformat.errors import LakeFormatError

N = 6


@pytest.fixture
def ds():
    ds = lakeformat.empty("memory://arrow_export", overwrite=True)
    with ds:
        ds.create_tensor("i", dtype="int64")
        ds.create_tensor("f", dtype="float32")
        ds.create_tensor("b", dtype="bool")
        ds.create_tensor("n", dtype="int32", nullable=True)
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "bird"])
        ds.create_tensor("multi", htype="class_label", class_names=["a", "b", "c"])
        ds.create_tensor("text", htype="text")
        ds.create_tensor("props", htype="json")
        ds.create_tensor("tags", htype="list")
        ds.create_tensor("emb", htype="embedding", dtype="float32")
        ds.create_tensor("grid", dtype="uint8")
        ds.create_tensor("boxes", htype="bbox", dtype="float32")
        ds.create_tensor("grp/v", dtype="int16")
        ds.create_tensor("ts", dtype="int64", nullable=True)
        ds.ts.info.update(temporal.info_for("timestamp", "UTC"))
        ds.create_tensor("day", dtype="int64", nullable=True)
        ds.day.info.update(temporal.info_for("date", None))
        ds.extend({
            "i": np.arange(N) * 10,
            "f": np.array([0.5, np.nan, -1.25, 3.0, 0.0, 7.5], np.float32),
            "b": np.array([True, False, True, True, False, False]),
            "n": [1, None, 3, None, 5, 6],
            "labels": ["cat", "dog", [], "bird", "cat", "dog"],
            "multi": [[0], [0, 2], [], [1], [2, 1, 0], [1]],
            "text": ["héllo", None, "", "猫", "a_b", "50%"],
            "props": [{"k": 1, "s": "ü"}, None, {}, [1, 2], {"k": None}, "x"],
            "tags": [["a", "b"], [], ["ç"], ["x"], [], ["y", "z"]],
            "emb": np.arange(N * 3, dtype=np.float32).reshape(N, 3),
            "grid": np.arange(N * 2 * 3, dtype=np.uint8).reshape(N, 2, 3),
            "boxes": [np.full((k % 3, 4), k, np.float32) for k in range(N)],
            "grp/v": np.arange(N, dtype=np.int16),
            "ts": [temporal.to_micros("2024-01-02T03:04:05Z", "timestamp"), None] + [0] * (N - 2),
            "day": [temporal.to_micros("2024-02-29", "date"), None] + [0] * (N - 2),
        })
    return ds


def test_every_column_type(ds):
    t = ds.to_arrow()
    assert t.num_rows == N and t.column_names == list(ds.tensors)
    s = t.schema
    assert s.field("i").type == pa.int64() and t["i"].to_pylist() == [0, 10, 20, 30, 40, 50]
    f = t["f"].to_pylist()
    assert s.field("f").type == pa.float32() and np.isnan(f[1]) and t["f"].null_count == 0  # NaN is a value, not a null
    assert t["b"].to_pylist() == [True, False, True, True, False, False]
    assert t["n"].to_pylist() == [1, None, 3, None, 5, 6] and s.field("n").type == pa.int32()
    assert s.field("labels").type == pa.dictionary(pa.int32(), pa.string())
    assert t["labels"].to_pylist() == ["cat", "dog", None, "bird", "cat", "dog"]  # an empty sample is NULL
    assert t["multi"].to_pylist() == [["a"], ["a", "c"], [], ["b"], ["c", "b", "a"], ["b"]]
    assert t["text"].to_pylist() == ["héllo", None, "", "猫", "a_b", "50%"]
    assert s.field("props").type == pa.string()
    assert [None if v is None else json.loads(v) for v in t["props"].to_pylist()] == [{"k": 1, "s": "ü"}, None, {}, [1, 2], {"k": None}, "x"]
    assert t["tags"].to_pylist() == [["a", "b"], [], ["ç"], ["x"], [], ["y", "z"]]
    assert s.field("emb").type == pa.list_(pa.float32(), 3)
    assert np.array_equal(np.array(t["emb"].to_pylist()), ds.emb.numpy())
    assert isinstance(s.field("grid").type, pa.FixedShapeTensorType) and s.field("grid").type.shape == [2, 3]
    assert np.array_equal(t["grid"].combine_chunks().to_numpy_ndarray(), ds.grid.numpy())
    assert s.field("boxes").type == pa.list_(pa.list_(pa.float32(), 4))
    assert [np.array(b, np.float32).reshape(-1, 4).tolist() for b in t["boxes"].to_pylist()] == [b.tolist() for b in ds.boxes.numpy(aslist=True)]
    assert t["grp/v"].to_pylist() == list(range(N))


def test_time_columns_carry_their_type_and_zone(ds):
    t = ds.to_arrow(tensors=["ts", "day"])
    assert t.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert t["ts"][0].as_py() == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc) and t["ts"][1].as_py() is None
    assert t.schema.field("day").type == pa.date32()
    assert t["day"].to_pylist()[:3] == [dt.date(2024, 2, 29), None, dt.date(1970, 1, 1)]


def test_times_of_day_and_intervals():
    from lakeformat.types import interval_info

    ds = lakeformat.empty("memory://arrow_export_times", overwrite=True)
    ds.create_tensor("at", dtype="int64", nullable=True)
    ds.at.info.update(temporal.info_for("time", None))
    ds.create_tensor("took", dtype="int64", nullable=True)
    ds.took.info.update(interval_info())
    ds.extend({"at": [temporal.to_micros("13:45:30.5", "time"), None], "took": [90_000_000, None]})
    t = ds.to_arrow()
    assert t.schema.field("at").type == pa.time64("us") and t["at"].to_pylist() == [dt.time(13, 45, 30, 500000), None]
    assert t.schema.field("took").type == pa.duration("us") and t["took"].to_pylist() == [dt.timedelta(seconds=90), None]


def test_rows_come_in_the_handles_order(ds):
    assert ds[[4, 0, 2]].to_arrow(tensors=["i", "text"]).to_pylist() == [{"i": 40, "text": "a_b"}, {"i": 0, "text": "héllo"}, {"i": 20, "text": ""}]
    assert ds[3].to_arrow(tensors=["i"]).to_pylist() == [{"i": 30}]
    assert ds[1:5:2].to_arrow(tensors=["labels"])["labels"].to_pylist() == ["dog", "bird"]
    view = ds.query("SELECT * WHERE i > 5 ORDER BY f DESC LIMIT 3")
    assert view.to_arrow(tensors=["i"])["i"].to_pylist() == [50, 30, 40]  # NaN last
    assert ds["grp"].to_arrow().column_names == ["v"]


def test_a_query_view_exports_its_rows(ds):
    view = ds.query("SELECT i, text WHERE i == 10 OR i >= 50")
    t = view.to_arrow(tensors=["i", "text"])
    assert t.column_names == ["i", "text"] and t.to_pylist() == [{"i": 10, "text": None}, {"i": 50, "text": "50%"}]
    with pytest.raises(LakeFormatError, match="no tensor 'nope'"):
        view.to_arrow(tensors=["nope"])


def test_class_labels_as_ids(ds):
    t = ds.to_arrow(tensors=["labels", "multi"], class_labels="ids")
    assert t["labels"].to_pylist() == [0, 1, None, 2, 0, 1]
    assert t["multi"].to_pylist()[:2] == [[0], [0, 2]]
    with pytest.raises(LakeFormatError, match="class_labels"):
        ds.to_arrow(class_labels="names")


def test_labels_stay_a_list_when_every_sample_holds_as_many():
    ds = lakeformat.empty("memory://arrow_export_pairs", overwrite=True)
    ds.create_tensor("pairs", htype="class_label", class_names=["a", "b", "c"])
    ds.create_tensor("props", htype="json")
    ds.pairs.extend([[0, 1], [2, 1]])
    ds.props.extend([{"v": np.int64(3)}, {"v": [1.5]}])
    t = ds.to_arrow()
    assert t["pairs"].to_pylist() == [["a", "b"], ["c", "b"]] and ds.to_arrow(class_labels="ids")["pairs"].to_pylist() == [[0, 1], [2, 1]]
    assert [json.loads(v) for v in t["props"].to_pylist()] == [{"v": 3}, {"v": [1.5]}]


def test_to_pandas(ds):
    df = ds.to_pandas(tensors=["i", "f", "n", "labels", "text", "emb"])
    assert list(df.columns) == ["i", "f", "n", "labels", "text", "emb"] and len(df) == N
    assert str(df["labels"].dtype) == "category" and df["labels"].isna().tolist() == [False, False, True, False, False, False]
    assert df["n"].isna().tolist() == [False, True, False, True, False, False]
    assert df["text"].tolist() == ["héllo", None, "", "猫", "a_b", "50%"]
    assert df["emb"][1].tolist() == [3.0, 4.0, 5.0]


def test_tensors_without_an_exact_column_are_named(ds, tmp_path):
    with ds:
        ds.create_tensor("img", htype="image", sample_compression="png")
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int32")
        ds.create_tensor("odd", dtype="float32")
    ds.img.extend([np.zeros((2, 2, 3), np.uint8)] * N)
    ds.seq.extend([[np.int32(1)]] * N)
    ds.odd.extend([np.zeros((1, k + 1), np.float32) for k in range(N)])
    for name, why in (("img", "does not decode media"), ("seq", "is a sequence"), ("odd", "differ in shape beyond their first axis")):
        with pytest.raises(ArrowExportError, match=f"tensor '{name}'.*{why}"):
            ds.to_arrow()  if name == "img" else ds.to_arrow(tensors=["i", name])
    assert ds.to_arrow(tensors=["i"]).num_rows == N  # leaving them out works
    with pytest.raises(LakeFormatError, match="list of tensor names"):
        ds.to_arrow(tensors="i")
    with pytest.raises(LakeFormatError, match="no tensor 'nope'"):
        ds.to_arrow(tensors=["nope"])


def test_link_tensors_are_refused(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "links"))
    ds.create_tensor("l", htype="link[image]", sample_compression="png")
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(ArrowExportError, match="tensor 'l' holds links"):
        ds.to_arrow()


def test_a_longer_tensor_exports_the_datasets_rows(ds):
    ds.i.extend([60, 70])  # `i` has N + 2 samples; the dataset has N rows
    assert len(ds) == N and ds.to_arrow(tensors=["i", "text"]).num_rows == N
    assert ds.to_arrow(tensors=["i"])["i"].to_pylist()[-1] == 50


def test_empty_dataset_and_empty_selection(ds):
    t = ds[[]].to_arrow(tensors=["i", "text", "emb", "labels"])
    assert t.num_rows == 0 and t.column_names == ["i", "text", "emb", "labels"]
    assert lakeformat.empty("memory://arrow_export_empty", overwrite=True).to_arrow().num_columns == 0


def test_round_trip_through_duckdb(ds):
    import duckdb  # the test extra installs it
    t = ds.to_arrow(tensors=["i", "f", "n", "labels", "text", "emb", "ts"])
    con = duckdb.connect()
    con.register("t", t)
    got = con.execute("SELECT i, n, labels, text, emb[2] AS e FROM t WHERE n IS NOT NULL AND text <> '' ORDER BY i DESC").fetchall()
    assert got == [(50, 6, "dog", "50%", 16.0), (40, 5, "cat", "a_b", 13.0), (0, 1, "cat", "héllo", 1.0)]
    back = con.execute("SELECT * FROM t").arrow()
    back = back.read_all() if hasattr(back, "read_all") else back
    assert back["i"].to_pylist() == t["i"].to_pylist() and back["text"].to_pylist() == t["text"].to_pylist()
    assert back["n"].to_pylist() == t["n"].to_pylist() and back["labels"].to_pylist() == t["labels"].to_pylist()
    assert con.execute("SELECT count(*) FROM t WHERE ts = TIMESTAMPTZ '2024-01-02 03:04:05+00'").fetchone() == (1,)


def test_round_trip_through_polars(ds):
    import polars as pl  # the test extra installs it
    df = pl.from_arrow(ds.to_arrow(tensors=["i", "n", "text", "labels"]))
    assert df.filter(pl.col("n").is_not_null())["i"].to_list() == [0, 20, 40, 50]
    assert df["text"].to_list() == ["héllo", None, "", "猫", "a_b", "50%"]


def test_missing_pyarrow_or_pandas_names_the_extra(ds, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(LakeFormatError, match=r"needs pandas.*\[arrow\]"):
        ds.to_pandas(tensors=["i"])
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(LakeFormatError, match=r"needs pyarrow.*\[arrow\]"):
        ds.to_arrow(tensors=["i"])


@pytest.mark.parametrize("dtype", ["int64", "float32", "bool"])
def test_tensor_to_arrow_of_no_rows_is_an_empty_column(tmp_path, dtype):
    """An empty tensor (or an empty slice) gives an empty array of its type, as ds.to_arrow()
    and text columns did; it raised "not samples of shape ()"."""
    ds = lakeformat.empty(str(tmp_path / "d"))
    ds.create_tensor("x", dtype=dtype, nullable=True)
    empty = ds.x.to_arrow()
    assert len(empty) == 0 and empty.type == pa.from_numpy_dtype(np.dtype(dtype))
    ds.x.extend(np.ones(3, dtype=dtype))
    assert len(ds.x[3:].to_arrow()) == 0 and len(ds.x[1:].to_arrow()) == 2
