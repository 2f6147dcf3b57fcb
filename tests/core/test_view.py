"""The View value: made from handles (slices, lists, ints, groups, queries, filter), round-trips
through JSON and pickle, reopens at its commit with the same values, refuses to reopen a view of
uncommitted changes once its head moved, and feeds the torch loader unchanged."""
from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest

import lakeformat
from lakeformat.core.index import InvalidIndexError, RowSelection
from lakeformat.core.view import FilterError, StaleViewError, View, ViewError
from lakeformat.errors import IndexOutOfRangeError, LakeFormatError, TensorDoesNotExistError

N = 20


def _fill(ds: Any) -> None:
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(N, dtype=np.int64))
        ds.create_tensor("img", dtype="uint8")
        ds.img.extend([np.full((2, 3), i, np.uint8) for i in range(N)])
        ds.create_tensor("g/y", dtype="float32")
        ds.g.y.extend(np.arange(N, dtype=np.float32) * 2)


@pytest.fixture
def local(tmp_path: Any) -> Any:
    ds = lakeformat.empty(str(tmp_path / "ds"))
    _fill(ds)
    ds.commit("twenty rows")
    return ds


def _roundtrip(v: View) -> View:
    back = View.from_dict(json.loads(json.dumps(v.to_dict())))
    assert back == v and hash(back) == hash(v)
    assert pickle.loads(pickle.dumps(v)) == v
    assert View.from_json(v.to_json()) == v
    return back


def _x(h: Any) -> np.ndarray:
    return np.asarray(h.x.numpy()).reshape(-1)


@pytest.mark.parametrize("key", [slice(None), slice(3, 15, 4), slice(None, None, -1), slice(-3, 2, -2), [5, 1, 5, 19], [0, 1, 2, 3],
                                 np.arange(N) % 3 == 0, 7, -1])
def test_handle_view_roundtrip_and_open(local: Any, key: Any) -> None:
    h = local[key]
    v = _roundtrip(h.view)
    want = np.arange(N)[key]
    assert len(v) == np.size(want)
    assert v.row_indices().tolist() == np.atleast_1d(want).tolist()
    assert v.commit_id == local.commit_id and not v.uncommitted and v.branch == "main"
    for opened in (v.open(local), v.open(), v.open(local.path)):
        assert np.array_equal(np.asarray(opened.x.numpy()), np.asarray(h.x.numpy()))
        assert np.array_equal(np.asarray(opened.img.numpy()), np.asarray(h.img.numpy()))
        assert opened.view == v


def test_rows_held_as_ranges_when_compact(local: Any) -> None:
    assert local[3:15:4].view.rows.ranges == ((3, 15, 4),)
    assert local.view.rows.ranges == ((0, N, 1),)
    assert local[[5, 1, 5, 19]].view.rows.indices is not None
    assert local[list(range(0, 10)) + list(range(19, 9, -1))].view.rows.ranges == ((0, 10, 1), (19, 9, -1))
    # equal whatever the representation
    a, b = RowSelection(ranges=[(0, 3, 1), (3, 6, 1)]), RowSelection(indices=np.arange(6))
    assert a == b and hash(a) == hash(b) and a.ranges == ((0, 6, 1),)
    assert RowSelection(ranges=[(4, 5, 1)]) != RowSelection.one(4)


def test_group_tensors_and_query_open(local: Any) -> None:
    v = local.g[2:6].view
    assert v.group == "g"
    assert np.asarray(v.open(local).y.numpy()).reshape(-1).tolist() == [4.0, 6.0, 8.0, 10.0]
    q = local.query("SELECT * WHERE x >= 15 ORDER BY x DESC")
    v = View(local.path, local.commit_id, q.view.rows, N, ("x",), "", "SELECT * WHERE x >= 15 ORDER BY x DESC")
    h = _roundtrip(v).open(local)
    assert list(h.tensors) == ["x"] and _x(h).tolist() == [19, 18, 17, 16, 15]
    assert h.view == v  # tensors and query come back with the handle
    with pytest.raises(TensorDoesNotExistError):
        _ = h["img"]
    with pytest.raises(AttributeError):
        _ = h.img
    sub = h[1:3]
    assert list(sub.tensors) == ["x"] and _x(sub).tolist() == [18, 17]
    assert sub.view.query is None and sub.view.tensors == ("x",)  # the query no longer describes the rows
    assert h.view[1:3] == sub.view
    w = View(local.path, local.commit_id, RowSelection.all(N), N, ("g/y",))
    hg = w.open(local)
    assert list(hg.tensors) == ["g/y"] and list(hg.g.tensors) == ["y"]


def test_view_compose_equals_numpy(local: Any) -> None:
    v = local[2:18].view
    ref = np.arange(N)[2:18]
    for key in ([3, 0, -1], slice(None, None, -2), np.arange(16) % 2 == 1, 4, slice(-3, 100)):
        got = v[key]
        assert got.row_indices().tolist() == np.atleast_1d(ref[key]).tolist()
        assert np.array_equal(np.asarray(got.open(local).x.numpy()), np.asarray(local[2:18][key].x.numpy()))
    with pytest.raises(IndexOutOfRangeError):
        v[16]
    with pytest.raises(InvalidIndexError):
        v[3][0]
    with pytest.raises(InvalidIndexError):
        v[1:2, 0]


def test_pinned_view_survives_later_commits(local: Any) -> None:
    v = local[::3].view
    with local:
        local.x[0] = 100
        local.extend({"x": np.array([50]), "img": [np.zeros((2, 3), np.uint8)], "g/y": np.array([1.0], np.float32)})
    local.commit("changed")
    h = v.open(local)  # reopened at the view's commit: the old values
    assert _x(h).tolist() == list(range(0, N, 3))
    assert h.read_only
    with pytest.raises(ViewError):
        v.open(local.path, read_only=False)


def test_uncommitted_view_goes_stale(tmp_path: Any) -> None:
    ds = lakeformat.empty(str(tmp_path / "u"))
    _fill(ds)
    v = ds[1:4].view
    assert v.uncommitted and v.branch == "main" and "uncommitted" in repr(v)
    assert _x(v.open(ds)).tolist() == [1, 2, 3]
    ds.flush()
    assert _x(v.open(ds.path)).tolist() == [1, 2, 3]
    ds.append({"x": 5, "img": np.zeros((2, 3), np.uint8), "g/y": np.float32(1)})
    with pytest.raises(StaleViewError):
        v.open(ds)
    v2 = ds[1:4].view
    ds.commit("pin")
    with pytest.raises(StaleViewError):
        v2.open(ds)
    with pytest.raises(StaleViewError):
        v2.open(ds.path)
    assert not ds[1:4].view.uncommitted  # the head has no changes now: pinned to the commit


def test_bad_views_are_refused(local: Any) -> None:
    with pytest.raises(ViewError):
        _ = local[0:5, 1].view  # indexes within samples: not a row selection
    good = local[1:3].view.to_dict()
    for bad in ({**good, "rows": {"ranges": [[0, 1]]}}, {**good, "rows": {"indices": ["a"]}}, {**good, "format": 9},
                {k: val for k, val in good.items() if k != "commit_id"}, {**good, "source_length": -1}, {**good, "tensors": "x"}):
        with pytest.raises(ViewError):
            View.from_dict(bad)
    with pytest.raises(IndexOutOfRangeError):
        View(local.path, local.commit_id, RowSelection(indices=np.array([3, N])), N)
    with pytest.raises(ViewError):
        View(local.path, local.commit_id, RowSelection.all(N), N - 1 + 2).open(local)  # row count differs
    with pytest.raises(ViewError):
        View(local.path, local.commit_id, RowSelection.all(N), N, ("nope",)).open(local)
    with pytest.raises(ViewError):
        local.view.open(local[2:5])
    with pytest.raises(ViewError):
        View.from_json("{not json")
    assert issubclass(ViewError, LakeFormatError)


def _even(sample: Any) -> bool:
    return int(np.asarray(sample.x.numpy()).reshape(-1)[0]) % 2 == 0


def _boom(sample: Any) -> bool:
    if int(np.asarray(sample.x.numpy()).reshape(-1)[0]) == 7:
        raise RuntimeError("seven")
    return True


def test_filter_function_serial_threads_processes(local: Any) -> None:
    base = local[1:17]
    want = [x for x in range(1, 17) if x % 2 == 0]
    assert _x(base.filter(_even)).tolist() == want
    assert _x(base.filter(_even, num_workers=3)).tolist() == want
    assert _x(base.filter(_even, num_workers=2, scheduler="processed")).tolist() == want
    got = base.filter(_even).view
    assert got.row_indices().tolist() == want and got == base.filter(_even, num_workers=2).view
    assert len(local.filter(lambda s: False)) == 0
    assert _x(local[::-1].filter(lambda s: _x(s)[0] > 15)).tolist() == [19, 18, 17, 16]


def test_filter_errors(local: Any) -> None:
    with pytest.raises(RuntimeError, match="seven"):
        local.filter(_boom)
    with pytest.raises(FilterError) as e:
        local.filter(_boom, num_workers=2)
    assert isinstance(e.value.__cause__, RuntimeError)
    with pytest.raises(ViewError):
        local[3].filter(_even)
    with pytest.raises(ViewError):
        local.filter(42)  # type: ignore[arg-type]
    with pytest.raises(ViewError):
        local.filter(_even, num_workers=1, scheduler="gpu")
    mem = lakeformat.empty("memory://view-filter-processed", overwrite=True)
    _fill(mem)
    with pytest.raises(ViewError):
        mem.filter(_even, num_workers=2, scheduler="processed")


def test_filter_tql_string(local: Any) -> None:
    h = local.filter("x >= 3 AND x < 6")
    assert _x(h).tolist() == [3, 4, 5]
    assert h.view.query == "SELECT * WHERE x >= 3 AND x < 6"
    assert _x(local.filter("SELECT * WHERE x < 2 ORDER BY x DESC")).tolist() == [1, 0]


def test_loader_reads_an_opened_view(local: Any) -> None:
    import lakeformat.integrations.torch as torch_integration  # imported here: torch loads only for this test
    v = View(local.path, local.commit_id, RowSelection(indices=np.array([9, 2, 14, 3, 3])), N, ("x", "img"))
    h = v.open(local.path)
    seen = []
    for batch in torch_integration.dataloader(h).batch(2).pytorch(num_workers=0):
        assert set(batch) == {"x", "img"}
        seen += batch["x"].reshape(-1).tolist()
        assert batch["img"].shape[1:] == (2, 3)
    assert seen == [9, 2, 14, 3, 3]
    loaded = [int(b["x"].reshape(-1)[0]) for b in h.pytorch(batch_size=1, num_workers=0)]
    assert loaded == [9, 2, 14, 3, 3]
