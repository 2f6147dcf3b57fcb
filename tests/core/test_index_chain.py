"""Chained indexing equals NumPy's: `t[k1][k2]...` and `ds[k1].x[k2]...` read the same values,
shape and dtype as `a[k1][k2]...` on the stacked array, for random chains of ints (negative
too), slices with steps and negative bounds, lists of ints and boolean masks, on tensors of one
to three sample dimensions. Ragged tensors get the sample-axis parts per sample."""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakeformat
from lakeformat.core.index import Index, InvalidIndexError
from lakeformat.errors import DynamicShapeError, IndexOutOfRangeError, LakeFormatError

N_ROWS = 11
SHAPES = {"u8_1": ((7,), "uint8"), "i32_2": ((4, 5), "int32"), "f32_3": ((3, 4, 2), "float32"), "u8_3": ((2, 3, 4), "uint8"), "i32_1": ((1,), "int32")}
EXAMPLES = 250


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Tuple[Any, dict]:
    rng = np.random.default_rng(7)
    ds = lakeformat.empty(str(tmp_path_factory.mktemp("chain") / "ds"))
    arrays = {}
    with ds:
        for name, (shape, dtype) in SHAPES.items():
            ds.create_tensor(name, dtype=dtype)
            a = (rng.random((N_ROWS,) + shape) * 200).astype(dtype)
            ds[name].extend(a)
            arrays[name] = a
        ds.create_tensor("rag", dtype="int32")
        ds.rag.extend([np.arange(k * 5, dtype=np.int32).reshape(k, 5) + 100 * k for k in range(1, N_ROWS + 1)])
    return ds, arrays


def _entry(draw, n: int) -> Any:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.integers(-n, n - 1)) if n else 0
    if kind == 1:
        bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
        return slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3])))
    if kind == 2:
        return draw(st.lists(st.integers(-n, n - 1), max_size=4)) if n else []
    if kind == 3:
        return np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return slice(None)


def _key(draw, shape: Tuple[int, ...], allow_ellipsis: bool = True) -> Any:
    nk = draw(st.integers(1, len(shape)))
    entries = [_entry(draw, shape[k]) for k in range(nk)]
    if allow_ellipsis and nk < len(shape) and draw(st.integers(0, 5)) == 0:
        entries.insert(draw(st.integers(0, nk)), Ellipsis)
    if len(entries) == 1 and draw(st.booleans()):
        return entries[0]
    return tuple(entries)


def _check(view: Any, want: np.ndarray) -> None:
    got = view.numpy()
    got = np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)
    assert tuple(view.shape) == want.shape
    if want.ndim and not view.index.is_single:  # len of one sample's view is 1, as in deeplake 3.x
        assert len(view) == len(want)


def _run_chain(view: Any, ref: np.ndarray, keys: List[Any]) -> None:
    """Apply keys one by one to our view and NumPy's array and compare after each."""
    for key in keys:
        try:
            ref_next = ref[key]
        except IndexError:
            with pytest.raises(IndexError):  # ours: IndexOutOfRangeError / InvalidIndexError
                view[key].numpy()
            return
        view = view[key]
        ref = ref_next
        _check(view, ref)
        if ref.ndim == 0:
            return


@st.composite
def chains(draw, shape: Tuple[int, ...]) -> List[Any]:
    """Up to four keys, each drawn for the shape the keys before it leave."""
    ref = np.zeros(shape)
    keys: List[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        if ref.ndim == 0:
            break
        key = _key(draw, ref.shape)
        keys.append(key)
        try:
            ref = ref[key]
        except IndexError:
            break
    return keys


@pytest.mark.parametrize("name", sorted(SHAPES))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_tensor_chains_equal_numpy(lake, name, data):
    ds, arrays = lake
    keys = data.draw(chains(arrays[name].shape))
    _run_chain(ds[name], arrays[name], keys)


@pytest.mark.parametrize("name", ["i32_2", "f32_3"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_dataset_view_chains_equal_numpy(lake, name, data):
    """The first keys on the dataset (on rows and sample axes: a dataset's keys reach its
    tensors), the rest on its tensor."""
    ds, arrays = lake
    ref = arrays[name]
    view: Any = ds
    for _ in range(data.draw(st.integers(1, 3))):
        key = _key(data.draw, ref.shape, allow_ellipsis=False)  # a dataset knows no ndim for '...'
        try:
            ref_next = ref[key]
        except IndexError:
            break
        view, ref = view[key], ref_next
        if view.index.is_single or view.index.row_pos or ref.ndim == 0:
            break
        assert len(view) == len(ref)
    t = view[name]
    _check(t, ref)
    if ref.ndim:
        _run_chain(t, ref, data.draw(chains(ref.shape)))


def test_examples_from_the_issue(lake):
    ds, arrays = lake
    a = arrays["f32_3"]
    t = ds.f32_3
    assert t[0:5, 1:3][:, 2:4].numpy().shape == a[0:5, 1:3][:, 2:4].shape
    np.testing.assert_array_equal(t[0:5, 1:3][:, 2:4].numpy(), a[0:5, 1:3][:, 2:4])
    np.testing.assert_array_equal(t[3][1:10][2:4].numpy(), a[3][1:10][2:4])
    np.testing.assert_array_equal(ds[2:10][::2].f32_3[1].numpy(), a[2:10][::2][1])
    np.testing.assert_array_equal(ds[[3, 1, 2]].f32_3.numpy(), a[[3, 1, 2]])
    np.testing.assert_array_equal(ds[[3, 1, 2]][-1].f32_3[::-1, 1].numpy(), a[[3, 1, 2]][-1][::-1, 1])
    # ints count as advanced indices: NumPy puts the paired axis first when they are apart
    np.testing.assert_array_equal(t[3, :, [0, 1]].numpy(), a[3, :, [0, 1]])
    np.testing.assert_array_equal(t[:, [0, 2], :, [1, 0]].numpy(), a[:, [0, 2], :, [1, 0]])
    np.testing.assert_array_equal(t[:, [0, 2], :, [1, 0]][[1, 0], -2].numpy(), a[:, [0, 2], :, [1, 0]][[1, 0], -2])
    assert t[:, [0, 2], :, [1, 0]].shape == (2, N_ROWS, 4)
    np.testing.assert_array_equal(t[..., 1].numpy(), a[..., 1])
    # index arrays on the samples axis and a sample axis pair up, element by element
    np.testing.assert_array_equal(t[[4, 1, 4], :, [0, 3, 1]].numpy(), a[[4, 1, 4], :, [0, 3, 1]])
    np.testing.assert_array_equal(t[[4, 1, 4], :, [0, 3, 1]][1:, 0].numpy(), a[[4, 1, 4], :, [0, 3, 1]][1:, 0])
    np.testing.assert_array_equal(t[[4, 1, 4], :, [0, 3, 1]][2].numpy(), a[[4, 1, 4], :, [0, 3, 1]][2])
    np.testing.assert_array_equal(t[[2, 5], 1:, [3]][:, ::-1].numpy(), a[[2, 5], 1:, [3]][:, ::-1])


def test_unsupported_and_bad_keys_raise_clear_errors(lake):
    ds, _ = lake
    t = ds.f32_3
    with pytest.raises(InvalidIndexError, match="shape mismatch"):
        t[[0, 1, 2], [0, 1]]
    with pytest.raises(IndexOutOfRangeError, match="boolean mask of length 2"):
        t[[0, 1], np.array([True, False])].numpy()
    with pytest.raises(InvalidIndexError, match="too many indices"):
        t[0, 0, 0, 0, 0]
    with pytest.raises(InvalidIndexError, match="step cannot be zero"):
        t[::0]
    with pytest.raises(InvalidIndexError, match="1-d"):
        t[np.zeros((2, 2), int)]
    with pytest.raises(InvalidIndexError, match="boolean scalar"):
        t[True]
    with pytest.raises(InvalidIndexError, match="None"):
        t[None]
    with pytest.raises(IndexOutOfRangeError):
        t[N_ROWS]
    with pytest.raises(IndexOutOfRangeError):
        t[[0, N_ROWS]]
    with pytest.raises(IndexOutOfRangeError):
        t[np.ones(3, bool)]
    with pytest.raises(IndexOutOfRangeError):
        t[0][5].numpy()
    with pytest.raises(InvalidIndexError, match="cannot index with float"):
        t[1.5]
    assert issubclass(InvalidIndexError, LakeFormatError) and issubclass(InvalidIndexError, IndexError)


def test_ragged_tensor_applies_sample_parts_per_sample(lake):
    ds, _ = lake
    samples = [np.arange(k * 5, dtype=np.int32).reshape(k, 5) + 100 * k for k in range(1, N_ROWS + 1)]
    t = ds.rag
    got = t[2:9:3][:, -1, 1:4].numpy()  # every sample has a last row: one shape per sample
    np.testing.assert_array_equal(got, np.stack([s[-1, 1:4] for s in samples[2:9:3]]))
    got = t[[5, 1]][:, ::2, [4, 0]].numpy(aslist=True)
    for g, s in zip(got, [samples[5], samples[1]]):
        np.testing.assert_array_equal(g, s[::2, [4, 0]])
    with pytest.raises(DynamicShapeError):
        t[:, 0:3].numpy()  # samples with fewer than 3 rows: the parts differ in shape
    assert t[4][1:3, 2].numpy().tolist() == samples[4][1:3, 2].tolist()
    assert t[1:3, 0].shape == (2, 5)
    assert t[1:3, 1:].shape == (2, None, 5)


def test_row_selection_composes_before_io(lake):
    """Row parts of every key compose into one index array (no per-sample ops, no reads)."""
    ds, _ = lake
    v = ds.i32_2[2:10][::-2][[0, 2]][np.array([True, False])]
    assert isinstance(v.index, Index) and not v.index.ops
    assert v.index.samples.tolist() == [9]
    assert ds[1:][1:][1:].i32_2.index.samples.tolist() == list(range(3, N_ROWS))
