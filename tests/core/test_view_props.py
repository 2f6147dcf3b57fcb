"""Row selections equal NumPy's: random chains of ints (negative too), slices with steps and
negative bounds, lists of ints and boolean masks, applied to a dataset handle and to its View,
select the rows `arange(n)[k1][k2]...` selects and read the values NumPy reads from the stored
array; each View round-trips through JSON and pickle and reopens to the same values."""
from __future__ import annotations

import json
import pickle
from typing import Any, List, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakeformat
from lakeformat.core.index import RowSelection
from lakeformat.core.view import View

N_ROWS = 13
EXAMPLES = 200


@pytest.fixture(scope="module")
def lake(tmp_path_factory: Any) -> Tuple[Any, np.ndarray, List[np.ndarray]]:
    rng = np.random.default_rng(11)
    ds = lakeformat.empty(str(tmp_path_factory.mktemp("viewprops") / "ds"))
    values = rng.integers(-1000, 1000, size=(N_ROWS, 3)).astype(np.int32)
    ragged = [np.arange(k + 1, dtype=np.int16) * (k + 1) for k in range(N_ROWS)]
    with ds:
        ds.create_tensor("v", dtype="int32")
        ds.v.extend(values)
        ds.create_tensor("r", dtype="int16")
        ds.r.extend(ragged)
    ds.commit("stored")
    return ds, values, ragged


def _key(draw: Any, n: int) -> Any:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.integers(-n - 1, n)) if draw(st.integers(0, 9)) == 0 else (draw(st.integers(-n, n - 1)) if n else 0)
    if kind == 1:
        bound = st.one_of(st.none(), st.integers(-n - 3, n + 3))
        return slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3, 5])))
    if kind == 2:
        return draw(st.lists(st.integers(-n, n - 1), max_size=6)) if n else []
    if kind == 3:
        size = n if draw(st.integers(0, 9)) else n + 1  # now and then a mask of the wrong length
        return np.asarray(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool)
    return slice(None)


@st.composite
def chains(draw: Any) -> List[Any]:
    """Up to five row keys, each drawn for the rows the keys before it leave."""
    ref = np.arange(N_ROWS)
    keys: List[Any] = []
    for _ in range(draw(st.integers(1, 5))):
        key = _key(draw, len(ref))
        keys.append(key)
        try:
            ref = ref[key]
        except IndexError:
            break
        if ref.ndim == 0:
            break
    return keys


def _same_values(handle: Any, rows: np.ndarray, values: np.ndarray, ragged: List[np.ndarray]) -> None:
    got = np.asarray(handle.v.numpy())
    want = values[rows]
    assert got.shape == want.shape and got.dtype == want.dtype and np.array_equal(got, want)
    got_r = handle.r.numpy(aslist=True)
    if rows.ndim == 0:
        assert np.array_equal(np.asarray(got_r), ragged[int(rows)])
    else:
        assert len(got_r) == len(rows) and all(np.array_equal(a, ragged[i]) for a, i in zip(got_r, rows))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=chains())
def test_dataset_and_view_chains_equal_numpy(lake: Any, keys: List[Any]) -> None:
    ds, values, ragged = lake
    ref: np.ndarray = np.arange(N_ROWS)
    handle: Any = ds
    view = ds.view
    for key in keys:
        try:
            ref_next = ref[key]
        except IndexError:
            with pytest.raises(IndexError):  # ours: IndexOutOfRangeError / InvalidIndexError
                handle[key]
            with pytest.raises(IndexError):
                view[key]
            return
        handle, view, ref = handle[key], view[key], ref_next
        assert handle.view == view  # the handle's rows and the View's composition agree
        assert view.row_indices().tolist() == np.atleast_1d(ref).tolist()
        assert len(view) == np.size(ref) and view.is_single == (ref.ndim == 0)
        _same_values(handle, ref, values, ragged)
        back = View.from_dict(json.loads(json.dumps(view.to_dict())))
        assert back == view and hash(back) == hash(view) and pickle.loads(pickle.dumps(view)) == view
        _same_values(back.open(ds), ref, values, ragged)
        if ref.ndim == 0:
            return


@st.composite
def row_arrays(draw: Any) -> np.ndarray:
    """Rows made of runs (ascending, descending, strided) and scattered values."""
    parts: List[np.ndarray] = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            start, k, step = draw(st.integers(0, 50)), draw(st.integers(1, 12)), draw(st.sampled_from([1, 2, 3, -1, -2]))
            run = start + step * np.arange(k)
            parts.append(run[run >= 0])
        else:
            parts.append(np.asarray(draw(st.lists(st.integers(0, 60), max_size=6)), dtype=np.int64))
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(rows=row_arrays(), data=st.data())
def test_row_selection_holds_the_rows_and_composes_like_numpy(rows: np.ndarray, data: Any) -> None:
    compact = RowSelection.from_array(rows)
    plain = RowSelection(indices=rows)
    assert compact.to_array().tolist() == rows.tolist() and len(compact) == len(rows)
    assert compact == plain and hash(compact) == hash(plain)
    if compact.ranges is not None:
        assert len(compact.ranges) == 1 or 3 * len(compact.ranges) <= len(rows)
        assert RowSelection(ranges=compact.ranges) == compact
    for sel in (compact, plain):
        assert RowSelection.from_dict(json.loads(json.dumps(sel.to_dict()))) == sel
        bounds = sel.bounds()
        assert bounds == ((int(rows.min()), int(rows.max())) if len(rows) else None)
    key = _key(data.draw, len(rows))
    try:
        want = np.arange(len(rows))[key]
    except IndexError:
        with pytest.raises(IndexError):
            compact.select(key)
        return
    for sel in (compact, plain):
        got = sel.select(key)
        assert got.to_array().tolist() == np.atleast_1d(rows[want]).tolist()
        assert got.single == (np.ndim(want) == 0)
