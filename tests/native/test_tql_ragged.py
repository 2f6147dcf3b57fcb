"""The TQL numeric kernels of native/tql_ragged.c against NumPy computed row by row:
segment reductions (every op, every integer width, floats with NaN, bools, empty rows,
reductions along an axis), one vector against every row of a matrix, and the top-k heap.
Bad arguments raise, never crash."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import numpy as np
import pytest

from lakeformat import _native

DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float32, np.float64, np.bool_]
OPS = {"SUM": 0, "PROD": 1, "MIN": 2, "MAX": 3, "ANY": 4, "ALL": 5, "MEAN": 6, "L1": 7, "L2": 8, "LINF": 9, "COUNT": 10}


def _l2(x: np.ndarray) -> Any:
    if x.dtype.kind in "iub":
        return np.sqrt(np.sum(np.square(x.astype(np.float64))))
    return np.sqrt(np.sum(np.square(x)))


# NumPy's own definition of each op, per row (what TQL's functions compute)
REFERENCE: Dict[str, Callable[[np.ndarray], Any]] = {
    "SUM": np.sum, "PROD": np.prod, "MIN": np.min, "MAX": np.max, "ANY": np.any, "ALL": np.all,
    "MEAN": np.mean, "L1": lambda x: np.sum(np.abs(x)), "L2": _l2, "LINF": lambda x: np.max(np.abs(x)),
    "COUNT": lambda x: np.int64(np.count_nonzero(x)),
}


def random_rows(rng: np.random.Generator, dtype: Any, n: int) -> List[np.ndarray]:
    rows = []
    for _ in range(n):
        k = int(rng.choice([0, 1, 1, 2, 5, 17]))
        if np.dtype(dtype) == np.bool_:
            rows.append(rng.random(k) < 0.5)
        elif np.dtype(dtype).kind == "f":
            r = rng.normal(0, 3, k).astype(dtype)
            if k and rng.random() < 0.2:
                r[int(rng.integers(0, k))] = np.nan
            rows.append(r)
        else:
            info = np.iinfo(dtype)
            lo, hi = max(int(info.min), -100), min(int(info.max), 100)
            r = rng.integers(lo, hi + 1, k).astype(dtype)
            if k and rng.random() < 0.3:  # the extremes: wrapping sums, abs of the minimum
                r[int(rng.integers(0, k))] = info.min if rng.random() < 0.5 else info.max
            rows.append(r)
    return rows


def flat(rows: List[np.ndarray], dtype: Any) -> tuple:
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    values = np.concatenate(rows).astype(dtype) if rows else np.zeros(0, dtype)
    return values, offsets


def out_dtype(op: str, dtype: Any) -> np.dtype:
    with np.errstate(all="ignore"):
        return np.asarray(REFERENCE[op](np.ones(1, dtype))).dtype


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", list(OPS))
def test_segment_reduce_equals_numpy_row_by_row(seed: int, dtype: Any, op: str) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, dtype, 40)
    values, offsets = flat(rows, dtype)
    want_dtype = out_dtype(op, dtype)
    out = np.empty(len(rows), want_dtype)
    arg = values.view(np.uint8) if values.dtype == np.bool_ else values
    _native.segment_reduce(arg.data, offsets.data, OPS[op], out.view(np.uint8).data if want_dtype == np.bool_ else out.data)
    for i, r in enumerate(rows):
        if r.size == 0:
            continue  # an empty row is NULL in TQL: the caller never reads its slot
        with np.errstate(all="ignore"):
            ref = np.asarray(REFERENCE[op](r)).astype(want_dtype)
        if want_dtype.kind == "f":
            np.testing.assert_allclose(out[i], ref, rtol=2e-6 if want_dtype == np.float32 else 1e-12, atol=1e-5, equal_nan=True, err_msg=f"row {i}: {r!r}")
        else:
            assert out[i] == ref, (i, r, out[i], ref)


@pytest.mark.parametrize("seed", range(5))
def test_segment_reduce_along_an_axis(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(-9, 9, (int(rng.integers(1, 4)), 3, int(rng.integers(1, 3)))).astype(np.int16) for _ in range(20)]
    values, offsets = flat([r.reshape(-1) for r in rows], np.int16)
    for axis in range(3):
        geom = np.array([(int(np.prod(r.shape[:axis])), r.shape[axis], int(np.prod(r.shape[axis + 1:]))) for r in rows], np.int64).reshape(-1)
        sizes = [r.size // r.shape[axis] for r in rows]
        out_off = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(sizes, out=out_off[1:])
        for op in ("SUM", "MAX", "ALL"):
            dt = np.int64 if op == "SUM" else np.int16 if op == "MAX" else np.bool_
            out = np.empty(int(out_off[-1]), dt)
            _native.segment_reduce(values.data, offsets.data, OPS[op], out.view(np.uint8).data if dt == np.bool_ else out.data, geom.data, out_off.data)
            for i, r in enumerate(rows):
                ref = REFERENCE[op](np.moveaxis(r, axis, -1).reshape(-1, r.shape[axis]), axis=-1) if op != "SUM" else np.moveaxis(r, axis, -1).sum(-1).reshape(-1)
                np.testing.assert_array_equal(out[out_off[i]:out_off[i + 1]], np.asarray(ref).reshape(-1).astype(dt))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 3, 16, 33, 384])
def test_rows_vector_equals_numpy(dtype: Any, d: int) -> None:
    rng = np.random.default_rng(d)
    m = rng.normal(size=(57, d)).astype(dtype)
    m[3] = 0  # a zero row: cosine 0/0 is NaN, as NumPy gives
    v = rng.normal(size=d).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    refs = {0: m @ v, 2: np.linalg.norm(m - v, axis=1)}
    with np.errstate(all="ignore"):
        refs[1] = (m @ v) / (np.linalg.norm(m, axis=1) * np.linalg.norm(v))
    for op, ref in refs.items():
        out = np.empty(57, dtype)
        _native.rows_vector(m.data, v.data, op, out.data)
        np.testing.assert_allclose(out, ref.astype(dtype), rtol=tol, atol=tol, equal_nan=True)


def stable_first_k(keys: np.ndarray, valid: np.ndarray, k: int, desc: bool) -> np.ndarray:
    rows = [i for i in range(len(keys)) if valid[i] and not (keys.dtype.kind == "f" and np.isnan(keys[i]))]
    rows.sort(key=lambda i: (-keys[i] if desc else keys[i], i)) if keys.dtype.kind == "f" else rows.sort(key=lambda i: (-int(keys[i]) if desc else int(keys[i]), i))
    return np.asarray(rows[:k], np.int64)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.float32, np.float64])
def test_top_k_equals_a_stable_sort(seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    keys = rng.integers(0, 20, n).astype(dtype)  # many ties
    if np.dtype(dtype).kind == "f" and n:
        keys[rng.random(n) < 0.1] = np.nan
    valid = rng.random(n) < 0.9
    for k in (0, 1, 5, n // 2, n, n + 3):
        for desc in (False, True):
            out = np.empty(max(k, 1), np.int64)
            got = _native.top_k(keys.data, k, desc, out.data, valid.view(np.uint8).data)
            np.testing.assert_array_equal(out[:got], stable_first_k(keys, valid, k, desc))


def test_bad_arguments_raise() -> None:
    v = np.arange(6, dtype=np.float32)
    off = np.array([0, 2, 6], np.int64)
    out = np.empty(2, np.float32)
    with pytest.raises(ValueError, match="op must be"):
        _native.segment_reduce(v.data, off.data, 99, out.data)
    with pytest.raises(ValueError, match="decreases"):
        _native.segment_reduce(v.data, np.array([0, 4, 2], np.int64).data, 0, out.data)
    with pytest.raises(IndexError, match="past the"):
        _native.segment_reduce(v.data, np.array([0, 2, 7], np.int64).data, 0, out.data)
    with pytest.raises(ValueError, match="negative"):
        _native.segment_reduce(v.data, np.array([-1, 2, 6], np.int64).data, 0, out.data)
    with pytest.raises(ValueError, match="fewer than"):
        _native.segment_reduce(v.data, off.data, 0, np.empty(1, np.float32).data)
    with pytest.raises(TypeError, match="unsupported item type"):
        _native.segment_reduce(v.astype(np.float16).data, off.data, 0, out.data)
    with pytest.raises(TypeError):
        _native.segment_reduce(v.data, off.astype(np.int32).data, 0, out.data)
    with pytest.raises(ValueError, match="share memory"):
        _native.segment_reduce(v.data, off.data, 0, v[:2].data)
    with pytest.raises(ValueError, match="geometry"):
        _native.segment_reduce(v.data, off.data, 0, out.data, np.array([1, 2, 1, 1, 3, 1], np.int64).data, np.array([0, 1, 2], np.int64).data)
    with pytest.raises(ValueError, match="go together"):
        _native.segment_reduce(v.data, off.data, 0, out.data, np.array([1, 2, 1, 1, 4, 1], np.int64).data)
    with pytest.raises(ValueError, match="geometry"):  # an overflowing product
        _native.segment_reduce(v.data, off.data, 0, out.data, np.array([2**62, 4, 1, 1, 4, 1], np.int64).data, np.array([0, 1, 2], np.int64).data)
    with pytest.raises(ValueError, match="not rows of"):
        _native.rows_vector(v.data, np.ones(4, np.float32).data, 0, out.data)
    with pytest.raises(TypeError, match="share one float type"):
        _native.rows_vector(v.data, np.ones(3, np.float64).data, 0, out.data)
    with pytest.raises(ValueError, match="out has"):
        _native.rows_vector(v.data, np.ones(3, np.float32).data, 0, np.empty(3, np.float32).data)
    with pytest.raises(ValueError, match="k must be"):
        _native.top_k(v.astype(np.float64).data, -1, False, np.empty(2, np.int64).data)
    with pytest.raises(ValueError, match="fewer than k"):
        _native.top_k(v.astype(np.float64).data, 4, False, np.empty(2, np.int64).data)
    with pytest.raises(ValueError, match="one byte per key"):
        _native.top_k(v.astype(np.float64).data, 2, False, np.empty(2, np.int64).data, np.ones(5, np.uint8).data)
    with pytest.raises(TypeError, match="unsupported item type"):
        _native.top_k(v.astype(np.int32).data, 2, False, np.empty(2, np.int64).data)
    with pytest.raises(TypeError):
        _native.top_k(v.astype(np.float64).data, 2, False, np.empty(2, np.float32).data)
