"""Ragged values: the flat representation (`lakeformat.tql.ragged.Ragged`) and every operator
and function over it, against NumPy computed by hand row by row, on random rows with empty
samples, single rows, NaN, integers of every width and bools; then end to end on a dataset."""
from __future__ import annotations

from typing import Any, Callable, List

import numpy as np
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.tql import operators as ops
from lakeformat.tql.functions import CallContext, lookup
from lakeformat.tql.ragged import Ragged
from lakeformat.tql.values import Value, const, pack, ragged_list

INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
DTYPES = INTS + [np.float32, np.float64, np.bool_]


def random_rows(rng: np.random.Generator, dtype: Any, n: int, inner: tuple = ()) -> List[np.ndarray]:
    out = []
    for _ in range(n):
        k = int(rng.choice([0, 1, 1, 2, 3, 6]))
        shape = (k,) + inner
        if np.dtype(dtype) == np.bool_:
            out.append(rng.random(shape) < 0.5)
        elif np.dtype(dtype).kind == "f":
            r = np.round(rng.normal(0, 4, shape), 1).astype(dtype)
            if r.size and rng.random() < 0.15:
                r.reshape(-1)[int(rng.integers(0, r.size))] = np.nan
            out.append(r)
        else:
            info = np.iinfo(dtype)
            out.append(rng.integers(max(int(info.min), -20), min(int(info.max), 20) + 1, shape).astype(dtype))
    return out


def ragged(rows: List[np.ndarray]) -> Value:
    v = Value("ragged", Ragged.from_rows(rows))
    assert len(v) == len(rows)
    return v


def per_row(v: Value, n: int) -> List[np.ndarray]:
    """A result as one array per row (NULL: an empty array)."""
    if v.kind == "ragged":
        return ragged_list(v)
    if v.kind == "const":
        return [np.asarray(v.data)] * n
    rows = [np.asarray(x) for x in v.data]
    if v.null is not None:
        rows = [np.zeros((0,)) if z else r for r, z in zip(rows, v.null)]
    return rows


def assert_rows(got: List[np.ndarray], want: List[np.ndarray], what: str) -> None:
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        if w.size == 0:
            assert g.size == 0, f"{what} row {i}: want NULL, got {g!r}"
            continue
        assert g.shape == w.shape, f"{what} row {i}: shape {g.shape} != {w.shape}"
        if w.dtype.kind == "f" or g.dtype.kind == "f":
            # float32 sums cancel: the kernel adds in float64, NumPy in float32 (pairwise)
            atol = 5e-5 if np.float32 in (w.dtype, g.dtype) else 1e-9
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-5, atol=atol, equal_nan=True, err_msg=f"{what} row {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{what} row {i}")


def call(name: str, *args: Value) -> Value:
    spec = lookup(name)
    assert spec is not None
    n = next((len(a) for a in args if a.kind != "const"), 0)
    return spec.impl(CallContext(n, np.arange(n), np.random.default_rng(0)), list(args))


def quiet(fn: Callable[..., Any], *a: Any) -> Any:
    with np.errstate(all="ignore"):
        return fn(*a)


# ------------------------------------------------------------------------------ the representation
def test_ragged_rows_take_and_pack_keep_their_behaviour() -> None:
    rows = [np.arange(6, dtype=np.int16).reshape(3, 2), np.zeros((0, 2), np.int16), np.array([[7, 8]], np.int16)]
    v = pack(rows)
    assert v.kind == "ragged" and v.data.dtype == np.int16
    assert [r.tolist() for r in ragged_list(v)] == [r.tolist() for r in rows]
    assert v.row(0).shape == (3, 2) and v.row(1).shape == (0, 2)
    t = v.take(np.array([2, 2, 0, 1]))
    assert [r.tolist() for r in ragged_list(t)] == [[[7, 8]], [[7, 8]], rows[0].tolist(), []]
    assert pack([np.ones(2), np.zeros(2)]).kind == "array"  # one shape: a plain array
    assert [r.shape for r in v.to_python()] == [(3, 2), (0, 2), (1, 2)]
    mixed = Ragged.from_rows([np.float32(1.5), np.zeros((0,), np.float32)])  # ranks differ
    assert mixed.uniform_ndim() is None and mixed.row(0).shape == () and mixed.row(1).shape == (0,)
    with pytest.raises(TypeError):
        ragged_list(const(1))


def test_from_buffers_checks_what_a_reader_hands_over() -> None:
    r = Ragged.from_buffers(np.arange(10, dtype=np.float32), np.array([0, 4, 4, 10]), np.array([[2, 2], [0, 2], [3, 2]]))
    assert [x.shape for x in r.rows()] == [(2, 2), (0, 2), (3, 2)]
    with pytest.raises(ValueError, match="product"):
        Ragged.from_buffers(np.arange(10), np.array([0, 4, 10]), np.array([[2, 2], [2, 2]]))
    with pytest.raises(ValueError, match="offsets"):
        Ragged.from_buffers(np.arange(4), np.array([0, 5, 4]), np.array([[5], [0]]))
    with pytest.raises(ValueError, match="same rows"):
        Ragged.from_buffers(np.arange(4), np.array([0, 4]), np.array([[2], [2]]))


@pytest.mark.parametrize("seed", range(4))
def test_take_and_emptied_equal_row_picks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, np.int32, 30, (2,))
    r = Ragged.from_rows(rows)
    pos = rng.integers(0, 30, 50)
    assert_rows(r.take(pos).rows(), [rows[p] for p in pos], "take")
    mask = rng.random(30) < 0.3
    assert_rows(r.emptied(mask).rows(), [np.zeros(0) if m else x for x, m in zip(rows, mask)], "emptied")


# ------------------------------------------------------------------------------ reductions
REDUCTIONS = {
    "SUM": np.sum, "MEAN": np.mean, "AVG": np.mean, "PROD": np.prod, "MIN": np.min, "MAX": np.max,
    "AMIN": np.min, "AMAX": np.max, "ANY": np.any, "ALL": np.all, "ALL_STRICT": np.all,
}
EMPTY = {"ANY": False, "ALL": True, "ALL_STRICT": False}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_reductions_equal_numpy_row_by_row(seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, dtype, 25)
    v = ragged(rows)
    for name, fn in REDUCTIONS.items():
        if np.dtype(dtype) == np.bool_ and name in ("MEAN", "AVG", "PROD", "SUM"):
            pass  # NumPy defines them on bools too: counted
        want = [np.asarray(EMPTY[name]) if r.size == 0 and name in EMPTY else np.zeros(0) if r.size == 0 else np.asarray(quiet(fn, r)) for r in rows]
        assert_rows(per_row(call(name, v), len(rows)), want, name)
    norms = {
        "L1_NORM": lambda x: np.sum(np.abs(x)),
        "L2_NORM": lambda x: np.sqrt(np.sum(np.square(x.astype(np.float64) if x.dtype.kind in "iub" else x))),
        "LINF_NORM": lambda x: np.max(np.abs(x)),
    }
    for name, fn in norms.items():
        want = [np.zeros(0) if r.size == 0 else np.asarray(quiet(fn, r)) for r in rows]
        assert_rows(per_row(call(name, v), len(rows)), want, name)


@pytest.mark.parametrize("seed", range(5))
def test_reductions_along_an_axis(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for dtype in (np.float32, np.int8, np.bool_):
        rows = random_rows(rng, dtype, 20, (3,))
        v = ragged(rows)
        for name, fn in REDUCTIONS.items():
            for axis in (0, 1, -1):
                want = [np.asarray(EMPTY[name]) if r.size == 0 and name in EMPTY else np.zeros(0) if r.size == 0 else np.asarray(quiet(fn, r, axis)) for r in rows]
                assert_rows(per_row(call(name, v, const(axis)), len(rows)), want, f"{name} axis {axis}")
        with pytest.raises(tql.TQLError, match="axis 2 is out of range"):
            call("SUM", v, const(2))


# ------------------------------------------------------------------------------ element-wise
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_arithmetic_and_comparison_with_a_constant_and_a_per_row_scalar(seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    n = 25
    rows = random_rows(rng, dtype, n, (2,))
    v = ragged(rows)
    scalar = np.asarray(3, np.int64)[()]
    per = rng.integers(1, 5, (n, 1)).astype(np.int32)
    counted = [r.astype(np.int64) if r.dtype == bool else r for r in rows]
    for op in ("+", "-", "*", "/", "%"):
        got = ops.arithmetic(op, v, Value("const", scalar), n)
        assert_rows(per_row(got, n), [quiet(ops.ARITH_UFUNCS[op], r, scalar) for r in counted], f"x {op} 3")
        got = ops.arithmetic(op, Value("const", scalar), v, n)
        assert_rows(per_row(got, n), [quiet(ops.ARITH_UFUNCS[op], scalar, r) for r in counted], f"3 {op} x")
        got = ops.arithmetic(op, v, Value("array", per), n)
        assert_rows(per_row(got, n), [quiet(ops.ARITH_UFUNCS[op], r, p) for r, p in zip(counted, per)], f"x {op} per-row")
    for op in ("==", "!=", "<", "<=", ">", ">="):
        got = ops.compare(op, v, Value("const", np.asarray(1.5)[()]), n)
        assert_rows(per_row(got, n), [quiet(ops._CMP[op], r, 1.5) for r in rows], f"x {op} 1.5")
    vec = Value("const", np.array([1, -1], np.int16))
    assert_rows(per_row(ops.arithmetic("*", v, vec, n), n), [quiet(np.multiply, r, np.array([1, -1], np.int16)) for r in counted], "x * ARRAY")
    two = ragged(rows)
    assert_rows(per_row(ops.arithmetic("+", v, two, n), n), [r + r for r in counted], "x + x")


def test_a_null_per_row_operand_gives_null_rows() -> None:
    rows = [np.array([1.0, 2.0]), np.array([3.0]), np.zeros(0)]
    v = ragged(rows)
    other = Value("array", np.array([[10.0], [20.0], [30.0]]), None, np.array([False, True, False]))
    assert_rows(per_row(ops.arithmetic("+", v, other, 3), 3), [np.array([11.0, 12.0]), np.zeros(0), np.zeros(0)], "null")


@pytest.mark.parametrize("seed", range(5))
def test_subscripts_equal_numpy_per_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, np.float32, 30, (4,))
    v = ragged(rows)
    n = len(rows)

    def ref(index: tuple) -> List[np.ndarray]:
        out = []
        for r in rows:
            try:
                out.append(np.asarray(r[index]))
            except IndexError:
                out.append(np.zeros(0))
        return out
    for index in [(slice(None), 2), (slice(None), slice(1, 3)), (0,), (-1, 0), (1, 2), (slice(None, None, -1), 0),
                  (slice(1, None, 2),), (slice(-2, None),), (slice(None), 7), (5,), (-7, 1), (slice(3, 0, -2), slice(None, None, 3))]:
        assert_rows(per_row(ops.subscript(v, index, n), n), ref(index), f"x[{index}]")
    # rows of rank 0 (a box's element) beside NULL rows of rank 1, with a per-row (n, 1) operand
    per = rng.integers(-3, 3, (n, 1)).astype(np.int64)
    got = ops.arithmetic("+", ops.subscript(v, (1, 2), n), Value("array", per), n)
    assert_rows(per_row(got, n), [r[1, 2] + p if len(r) > 1 else np.zeros(0) for r, p in zip(rows, per)], "x[1, 2] + per-row")
    assert all(g.shape == (1,) for g, r in zip(per_row(got, n), rows) if len(r) > 1)
    area = ops.arithmetic("*", ops.subscript(v, (slice(None), 2), n), ops.subscript(v, (slice(None), 3), n), n)
    assert_rows(per_row(area, n), [r[:, 2] * r[:, 3] for r in rows], "area")
    mask = ops.row_mask(ops.compare(">", area, const(20), n), n)
    assert mask.tolist() == [bool(np.any(r[:, 2] * r[:, 3] > 20)) for r in rows]


@pytest.mark.parametrize("seed", range(5))
def test_shape_nonzero_iou_hamming_contains_in_isnull(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, np.int16, 30, (4,))
    v = ragged(rows)
    n = len(rows)
    assert per_row(call("SHAPE", v), n) and [x.tolist() for x in per_row(call("SHAPE", v), n)] == [list(r.shape) for r in rows]
    assert_rows(per_row(call("NONZERO", v), n), [np.flatnonzero(r) for r in rows], "NONZERO")
    fixed = rng.integers(0, 2, (n, 2, 3))
    assert_rows(per_row(call("NONZERO", Value("array", fixed)), n), [np.flatnonzero(x) for x in fixed], "NONZERO fixed")
    assert call("NONZERO", const([0, 3, 0, 1])).data.tolist() == [1, 3]
    box = np.array([2, 3, 10, 8])
    from lakeformat.tql.functions import iou_xywh
    assert_rows(per_row(call("IOU", v, Value("const", box)), n), [iou_xywh(r, box) if r.size else np.zeros(0) for r in rows], "IOU")
    ref = Value("const", np.array([0, 1, 2, 3], np.int16))
    assert_rows(per_row(call("HAMMING_DISTANCE", v, ref), n), [np.zeros(0) if r.size == 0 else np.asarray(np.count_nonzero(r != np.arange(4))) for r in rows], "HAMMING")
    assert call("CONTAINS", v, const(3)).data.tolist() == [bool((r == 3).any()) for r in rows]
    assert ops.row_mask(ops.in_list(v, [const(1), const(-2)], n), n).tolist() == [bool(np.isin(r, [1, -2]).any()) for r in rows]
    assert ops.is_null(v, n).data.tolist() == [r.size == 0 for r in rows]
    assert_rows(per_row(call("ABS", v), n), [np.abs(r) for r in rows], "ABS")
    assert_rows(per_row(call("SQRT", call("ABS", v)), n), [quiet(np.sqrt, np.abs(r)) for r in rows], "SQRT")
    dot = call("DOT", v, ref)
    assert_rows(per_row(dot, n), [np.zeros(0) if r.size == 0 else np.asarray(np.sum(r * np.arange(4, dtype=np.int16))) for r in rows], "DOT")
    dist = call("L2_DISTANCE", v, ref)
    assert_rows(per_row(dist, n), [np.zeros(0) if r.size == 0 else np.asarray(np.sqrt(np.sum(np.square((r - np.arange(4, dtype=np.int16)).astype(np.float64))))) for r in rows], "L2_DISTANCE")


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Any:
    rng = np.random.default_rng(11)
    n = 60
    data = {"boxes": random_rows(rng, np.float32, n, (4,)), "emb": rng.normal(size=(n, 8)).astype(np.float32)}
    for dt in INTS + [np.bool_]:
        data[f"r_{np.dtype(dt).name}"] = random_rows(rng, dt, n)
    data["boxes"] = [np.abs(np.nan_to_num(b)) for b in data["boxes"]]
    ds = lakeformat.empty(str(tmp_path_factory.mktemp("ragged") / "ds"), overwrite=True)
    with ds:
        ds.create_tensor("boxes", htype="bbox", dtype="float32")
        ds.create_tensor("emb", htype="embedding", dtype="float32")
        for dt in INTS + [np.bool_]:
            ds.create_tensor(f"r_{np.dtype(dt).name}", dtype=np.dtype(dt).name)
        ds.extend(data)
    return ds, data


def test_queries_on_a_dataset_equal_row_by_row_references(lake: Any) -> None:
    ds, d = lake
    n = len(d["emb"])

    def rows(text: str) -> List[int]:
        return tql.run(ds, text).indices.tolist()

    def where(pred: Callable[[int], bool]) -> List[int]:
        return [k for k in range(n) if pred(k)]
    b = d["boxes"]
    assert rows("SELECT * WHERE ANY(boxes[:, 2] * boxes[:, 3] > 20)") == where(lambda k: bool(np.any(b[k][:, 2] * b[k][:, 3] > 20)))
    assert rows("SELECT * WHERE MAX(IOU(boxes, ARRAY[1, 1, 4, 4])) > 0.1") == where(lambda k: b[k].size > 0 and bool((np.asarray(_iou(b[k], [1, 1, 4, 4])) > 0.1).any()))
    assert rows("SELECT * WHERE SHAPE(boxes)[0] == 2 AND SUM(boxes, 0)[1] > 3") == where(lambda k: len(b[k]) == 2 and b[k].sum(0)[1] > 3)
    assert rows("SELECT * WHERE L2_NORM(emb - DATA(emb, 5)) < 4") == where(lambda k: np.linalg.norm(d["emb"][k] - d["emb"][5]) < 4)
    for dt in INTS + [np.bool_]:
        name = f"r_{np.dtype(dt).name}"
        r = d[name]
        assert rows(f"SELECT * WHERE SUM({name}) > 2") == where(lambda k, r=r: r[k].size > 0 and r[k].sum() > 2), name
        assert rows(f"SELECT * WHERE ALL_STRICT({name} != 0)") == where(lambda k, r=r: r[k].size > 0 and bool(np.all(r[k] != 0))), name
        assert rows(f"SELECT * WHERE SHAPE(NONZERO({name}))[0] >= 2") == where(lambda k, r=r: np.count_nonzero(r[k]) >= 2), name
        res = tql.run(ds, f"SELECT * ORDER BY MAX({name}) DESC LIMIT 7")
        keys = [(0 if r[k].size == 0 else 1, -int(r[k].max()) if r[k].size else 0, k) for k in range(n)]
        want = [k for _, _, k in sorted(keys, key=lambda t: (-t[0], t[1], t[2]))][:7]
        assert res.indices.tolist() == want, name


def _iou(a: np.ndarray, b: List[float]) -> np.ndarray:
    from lakeformat.tql.functions import iou_xywh
    return iou_xywh(a, np.asarray(b, np.float64))


@pytest.mark.parametrize("seed", range(3))
def test_vector_top_k_equals_a_full_sort(seed: int, tmp_path: Any) -> None:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(500, 16)).astype(np.float32)
    emb[7] = 0  # cosine NaN: NULL, sorted last
    ds = lakeformat.empty(str(tmp_path / "ds"), overwrite=True)
    with ds:
        ds.create_tensor("emb", htype="embedding", dtype="float32")
        ds.create_tensor("i", dtype="int64")
        ds.extend({"emb": emb, "i": np.arange(500)})
    q = rng.normal(size=16).astype(np.float32)
    arr = ", ".join(repr(float(x)) for x in q)
    with np.errstate(all="ignore"):
        cos = (emb @ q) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(q))
    l2 = np.linalg.norm(emb - q, axis=1)
    order = sorted(range(500), key=lambda k: (np.isnan(cos[k]), -cos[k] if not np.isnan(cos[k]) else 0, k))
    assert tql.run(ds, f"SELECT * WHERE i % 3 != 1 ORDER BY COSINE_SIMILARITY(emb, ARRAY[{arr}]) DESC LIMIT 10").indices.tolist() == [k for k in order if k % 3 != 1][:10]
    assert tql.run(ds, f"SELECT * ORDER BY L2_DISTANCE(emb, ARRAY[{arr}]) LIMIT 10").indices.tolist() == sorted(range(500), key=lambda k: (l2[k], k))[:10]
    text = f"SELECT * ORDER BY COSINE_SIMILARITY(emb, ARRAY[{arr}]) DESC LIMIT 600"
    assert tql.run(ds, text).indices.tolist() == order  # k above the rows: NULL (NaN) last


def test_unknown_backend_is_a_tql_error(lake: Any) -> None:
    ds, _ = lake
    with pytest.raises(tql.TQLError, match="unknown backend 'jax'"):
        tql.run(ds, "SELECT *", backend="jax")
    assert ds.query("SELECT * LIMIT 2", backend="numpy") is not None




def test_null_rows_stay_null_through_abs_and_in_and_decide_with_a_ragged_side(tmp_path: Any) -> None:
    ds = lakeformat.empty(str(tmp_path / "nulls"), overwrite=True)
    empty, cat = np.zeros(0, np.uint32), np.array([0], np.uint32)
    with ds:
        ds.create_tensor("lab", htype="class_label", class_names=["cat", "dog"])
        ds.create_tensor("s", htype="text")
        ds.create_tensor("n", dtype="int64", nullable=True)
        ds.extend({"lab": [empty, empty, cat, cat], "s": [None, "x", None, "y"], "n": [None, None, 1, None]})

    def rows(text: str) -> List[int]:
        return tql.run(ds, text).indices.tolist()
    assert rows("SELECT * WHERE ABS(n) IS NULL") == [0, 1, 3]
    assert rows("SELECT * WHERE ABS(n) > -1") == [2]
    assert rows("SELECT * WHERE n IN (0, 1)") == [2]
    assert rows("SELECT * WHERE NOT (n NOT IN (0, 5))") == []
    # NULL OR TRUE is TRUE, NULL AND FALSE is FALSE, an empty label (NULL) included
    assert rows("SELECT * WHERE s == 'x' OR lab == 'cat'") == [1, 2, 3]
    assert rows("SELECT * WHERE n > 5 OR lab == 'cat'") == [2, 3]
    assert rows("SELECT * WHERE NOT (s == 'x' AND lab == 'dog')") == [2, 3]
    assert rows("SELECT * WHERE s == 'y' AND lab == 'cat'") == [3]
    assert rows("SELECT * WHERE (s == 'x' OR lab == 'dog') IS NULL") == [0, 2]


@pytest.mark.parametrize("seed", range(3))
def test_read_ragged_equals_the_tensor_api(seed: int, tmp_path: Any) -> None:
    from lakeformat.tql.ragged_reader import read_ragged
    rng = np.random.default_rng(seed)
    ds = lakeformat.empty(str(tmp_path / "rr"), overwrite=True)
    names = ["int8", "uint16", "int64", "float32", "bool"]
    with ds:
        for dt in names:
            ds.create_tensor("x_" + dt, dtype=dt, max_chunk_size=1500, chunk_compression="lz4" if dt == "int64" else None)
        ds.create_tensor("img", dtype="uint8", sample_compression="png")
        ds.create_tensor("t", htype="text")
        ks = rng.integers(0, 4, 200)
        cols = {"x_" + dt: [(rng.integers(0, 9, (k, 3)) if dt != "bool" else rng.random((k, 3)) < .5).astype(dt) for k in ks] for dt in names}
        ds.extend({**cols, "img": [rng.integers(0, 255, (2, 2, 3)).astype(np.uint8) for _ in ks], "t": ["a"] * 200})
        ds.x_int8[5] = np.ones((7, 3), np.int8)  # an update, in a chunk of its own
        ds.x_int8[6] = np.zeros((0, 3), np.int8)
    pos = rng.integers(0, 200, 300)
    for dt in names:
        t = ds["x_" + dt]
        r = read_ragged(t, pos)
        assert r is not None
        every = t.numpy(aslist=True)
        want = [every[p] for p in pos]
        assert [(x.shape, x.dtype, x.tolist()) for x in r.rows()] == [(x.shape, x.dtype, x.tolist()) for x in want], dt
    assert read_ragged(ds.img, pos) is None and read_ragged(ds.t, pos) is None  # decoded by the Tensor API
