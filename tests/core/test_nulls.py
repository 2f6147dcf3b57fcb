"""Nulls of numeric tensors: dense columns, a validity tensor, and reads of older datasets."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat import errors, temporal
from lakeformat.verify import verify


@pytest.fixture
def ds(tmp_path):
    return lakeformat.empty(str(tmp_path / "ds"))


def _columns(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.create_tensor("f", dtype="float64", nullable=True)
    ds.create_tensor("b", dtype="bool", nullable=True)
    ds.create_tensor("t", dtype="int64", nullable=True)
    ds.t.info.update(temporal.info_for("timestamp", "UTC"))


def test_nulls_read_dense_and_distinct_from_every_value(ds, tmp_path):
    _columns(ds)
    with ds:
        # real values that look like nulls elsewhere: 0, NaN on purpose, False, the epoch
        ds.extend({"i": [0, None, 7], "f": [np.nan, None, 1.5], "b": [False, None, True], "t": [0, None, 86_400_000_000]})
        ds.extend({"i": np.ma.MaskedArray([[5], [6]], mask=[[True], [False]]), "f": [2.0, 3.0], "b": [True, False], "t": [None, 1]})
    back = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    for name in ("i", "f", "b", "t"):
        assert back[name].numpy().shape == (5, 1)
        assert back[name].nullable
    assert back.i.isnull().tolist() == [False, True, False, True, False]
    assert back.f.isnull().tolist() == [False, True, False, False, False]
    assert back.b.isnull().tolist() == [False, True, False, False, False]
    assert back.t.isnull().tolist() == [False, True, False, True, False]
    m = back.i.numpy(nulls="mask")
    assert isinstance(m, np.ma.MaskedArray) and m.shape == (5, 1)
    assert m.mask.ravel().tolist() == [False, True, False, True, False]
    assert m.compressed().tolist() == [0, 7, 6]
    f = back.f.numpy(nulls="mask")
    assert np.isnan(f.data[0, 0]) and not f.mask[0, 0] and f.mask[1, 0]  # NaN stored on purpose is a value
    assert back.b.values() == [np.array([False]), None, np.array([True]), np.array([True]), np.array([False])]
    times = back.t.datetime64()
    assert times.dtype == np.dtype("datetime64[us]") and times.shape == (5,)
    assert times[0] == np.datetime64("1970-01-01T00:00:00", "us")  # the epoch is a value
    assert np.isnat(times).tolist() == [False, True, False, True, False]
    assert back.i.numpy(nulls="nan").ravel()[1] != back.i.numpy(nulls="nan").ravel()[1]
    assert back.i[1].isnull() is True and back.i[2].isnull() is False
    assert back.i[1:3].numpy(nulls="mask").mask.ravel().tolist() == [True, False]
    assert back.i.numpy(aslist=True, nulls="mask")[1] is None
    assert verify(str(tmp_path / "ds")).ok


def test_placeholders_are_what_other_readers_see(ds):
    _columns(ds)
    ds.extend({"i": [None], "f": [None], "b": [None], "t": [None]})
    assert ds.i.numpy().tolist() == [[0]]
    assert np.isnan(ds.f.numpy()[0, 0])
    assert ds.b.numpy().tolist() == [[False]]
    assert ds.t.numpy().tolist() == [[np.iinfo(np.int64).min]]  # NaT as datetime64
    assert ds.i.info["null_mask"] in ds.meta.hidden_tensors


def test_empty_array_stored_on_purpose_is_not_null(ds):
    ds.create_tensor("a", dtype="int64", nullable=True)
    ds.a.extend([np.array([1, 2]), np.zeros(0, np.int64), None, np.array([3])])
    assert ds.a.isnull().tolist() == [False, False, True, False]
    vals = ds.a.values()
    assert vals[1].tolist() == [] and vals[2] is None


def test_columns_without_nulls_keep_no_mask(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.i.extend(np.arange(4))
    assert ds.i.nullable and "null_mask" not in ds.i.info  # declared; no validity tensor until a null
    assert ds.i.isnull().tolist() == [False] * 4
    assert ds.i.numpy(nulls="mask").mask.any() == np.False_


def test_first_null_backfills_and_later_rows_follow(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.i.extend([1, 2])
    ds.i.extend([None])
    ds.i.extend(np.array([4, 5]))
    assert ds.i.isnull().tolist() == [False, False, True, False, False]
    assert ds[ds.i.info["null_mask"]].num_samples == 5


def test_updates_pops_and_deletes_keep_the_mask_aligned(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.i.extend([1, None, 3, 4, None])
    ds.i[0] = None
    ds.i[1] = 9
    ds.i[[2, 3]] = np.ma.MaskedArray([[0], [0]], mask=[[True], [False]])
    assert ds.i.isnull().tolist() == [True, False, True, False, True]
    ds.pop(1)
    assert ds.i.isnull().tolist() == [True, True, False, True]
    ds.delete_rows([0, 2])
    assert ds.i.isnull().tolist() == [True, True]
    ds.i.pop()
    assert ds.i.isnull().tolist() == [True]
    assert ds.i.numpy().shape == (1, 1)


@pytest.mark.parametrize("seed", range(20))
def test_random_edits_match_an_oracle(tmp_path, seed):
    rng = np.random.default_rng(seed)
    ds = lakeformat.empty(str(tmp_path / "r"))
    ds.create_tensor("x", dtype="float64", nullable=True)
    oracle: list = []
    for _ in range(25):
        op = rng.integers(0, 4)
        if op == 0 or not oracle:
            vals = [None if rng.random() < 0.3 else float(rng.integers(0, 5)) for _ in range(int(rng.integers(1, 6)))]
            ds.x.extend(vals)
            oracle += vals
        elif op == 1:
            i = int(rng.integers(0, len(oracle)))
            v = None if rng.random() < 0.5 else float(rng.integers(0, 5))
            ds.x[i] = v
            oracle[i] = v
        elif op == 2:
            i = int(rng.integers(0, len(oracle)))
            ds.pop(i)
            oracle.pop(i)
        else:
            k = min(len(oracle), int(rng.integers(1, 3)))
            idx = sorted(rng.choice(len(oracle), size=k, replace=False).tolist())
            ds.delete_rows(idx)
            for i in reversed(idx):
                oracle.pop(i)
    back = lakeformat.load(str(tmp_path / "r"), read_only=True)
    got = back.x.numpy(nulls="mask")
    assert got.mask.ravel().tolist() == [v is None for v in oracle]
    assert got.compressed().tolist() == [v for v in oracle if v is not None]


def test_a_failed_extend_leaves_no_mask(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.create_tensor("s", htype="class_label", class_names=["a"])
    with pytest.raises(errors.LakeFormatError):
        ds.extend({"i": [None], "s": ["not a class"]})
    assert ds.i.num_samples == 0 and "null_mask" not in ds.i.info


def test_older_empty_samples_read_as_nulls(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.i.extend([np.array([1]), np.zeros(0, np.int64), np.array([3])])
    ds.i.info.update({"null_mask": None})  # as a dataset from before validity tensors
    with pytest.raises(errors.DynamicShapeError):
        ds.i.numpy()
    assert ds.i.isnull().tolist() == [False, True, False]
    m = ds.i.numpy(nulls="mask")
    assert m.shape == (3, 1) and m.mask.ravel().tolist() == [False, True, False]
    ds.i.append(None)  # the first null since: the mask starts with the old rows' nulls
    assert ds.i.nullable and ds.i.isnull().tolist() == [False, True, False, True]


def test_text_and_json_nulls(ds):
    ds.create_tensor("s", htype="text")
    ds.create_tensor("j", htype="json")
    ds.extend({"s": ["", None], "j": [{}, None]})
    assert ds.s.isnull().tolist() == [False, True]
    assert ds.j.isnull().tolist() == [False, True]


def test_summary_names_logical_types(ds):
    ds.create_tensor("created_at", dtype="int64", nullable=True)
    ds.created_at.info.update(temporal.info_for("timestamp", "UTC"))
    ds.create_tensor("price", dtype="float64", nullable=True)
    ds.price.info.update({"lakeformat_type": "decimal", "precision": 10, "scale": 2})
    ds.extend({"created_at": [1, None], "price": [1.5, 2.25]})
    text = ds.summary(print_out=False)
    assert "timestamp[us, UTC], nullable" in text and "decimal(10,2)" in text
    assert ds.price.logical_type == "decimal(10,2)" and ds.created_at.logical_type == "timestamp[us, UTC]"


def test_bad_nulls_mode_and_not_a_time_column(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.i.extend([1])
    with pytest.raises(errors.LakeFormatError, match="nulls="):
        ds.i.numpy(nulls="zero")
    with pytest.raises(errors.LakeFormatError, match="not a time column"):
        ds.i.datetime64()


def test_deleting_a_tensor_drops_its_mask(ds):
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.i.extend([None])
    mask = ds.i.info["null_mask"]
    ds.delete_tensor("i")
    assert mask not in ds.meta.tensors
    ds.create_tensor("i", dtype="int64", nullable=True)
    ds.i.extend([1, None])
    assert ds.i.isnull().tolist() == [False, True]


def test_to_arrow_carries_the_validity_bitmap(ds):
    import datetime as dt

    import pyarrow as pa  # a test dependency: required, never skipped
    _columns(ds)
    ds.create_tensor("day", dtype="int64", nullable=True)
    ds.day.info.update(temporal.info_for("date", None))
    ds.create_tensor("s", htype="text")
    ds.extend({"i": [0, None], "f": [np.nan, None], "b": [False, None], "t": [0, None], "day": [temporal.DAY_US, None], "s": ["", None]})
    i = ds.i.to_arrow()
    assert i.type == pa.int64() and i.to_pylist() == [0, None] and i.null_count == 1
    f = ds.f.to_arrow()
    assert f.null_count == 1 and f.is_null().to_pylist() == [False, True]  # NaN on purpose stays a value
    assert ds.b.to_arrow().to_pylist() == [False, None]
    t = ds.t.to_arrow()
    assert t.type == pa.timestamp("us", tz="UTC") and t.to_pylist()[0] == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) and t.to_pylist()[1] is None
    assert ds.day.to_arrow().to_pylist() == [dt.date(1970, 1, 2), None]
    assert ds.s.to_arrow().to_pylist() == ["", None]


def test_masked_arrays_cast_as_the_tensor_says(ds):
    ds.create_tensor("f", dtype="float32", nullable=True)
    ds.create_tensor("i", dtype="int32", nullable=True)
    ds.f.extend(np.ma.MaskedArray(np.array([1, 2], np.int64), mask=[False, True]))
    assert ds.f.numpy(nulls="mask").mask.ravel().tolist() == [False, True] and ds.f.numpy().dtype == np.float32
    with pytest.raises(errors.SampleError):  # a lossy cast is refused as without nulls
        ds.i.extend(np.ma.MaskedArray(np.array([1.5, 2.0]), mask=[False, True]))
    assert ds.i.num_samples == 0
    ds.i.extend(x for x in [1, None])  # any iterable
    assert ds.i.isnull().tolist() == [False, True]


def test_merge_carries_nulls(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "vc"))
    ds.create_tensor("a", dtype="int64", nullable=True)
    ds.a.extend([1, 2])
    ds.commit("c1")
    ds.checkout("b", create=True)
    ds.a.extend([None, 4])
    ds.a[0] = None
    ds.commit("c2")
    ds.checkout("main")
    ds.a.extend([5])
    ds.commit("c3")
    ds.merge("b")
    assert ds.a.numpy().shape == (5, 1)  # the merged null is a placeholder, not an empty sample
    assert ds.a.isnull().tolist() == [True, False, False, True, False]
    assert ds.a.numpy(nulls="mask").compressed().tolist() == [2, 5, 4]


def test_blob_columns_keep_nulls_as_empty_samples(ds):
    ds.create_tensor("blob", dtype="uint8", nullable=True)
    ds.blob.info.update({"null_placeholder": "empty"})
    ds.blob.extend([np.frombuffer(b"ab", np.uint8), None, np.zeros(0, np.uint8)])
    assert [v.size for v in ds.blob.numpy(aslist=True)] == [2, 0, 0]
    assert ds.blob.isnull().tolist() == [False, True, False]  # b"" is not null
