"""`backend="torch"` gives the NumPy backend's results: the same rows, and computed columns
equal exactly for integers and booleans and to rounding for floats, on random data with
integers of several widths, NaN, NULL rows and ragged rows. The torch paths must actually
run (counted), and `import lakeformat` must not import torch."""
from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, List

import numpy as np
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.tql.values import Value, pack

import torch  # make setup installs the pinned CPU build
from lakeformat.tql import torch_backend  # noqa: E402

N = 300
FIXED = {"i8": np.int8, "i32": np.int32, "i64": np.int64, "u8": np.uint8, "f32": np.float32, "f64": np.float64, "b": np.bool_}


def make(seed: int) -> Dict[str, Any]:
    rng = np.random.default_rng(seed)
    cols: Dict[str, Any] = {}
    for name, dt in FIXED.items():
        if np.dtype(dt) == np.bool_:
            cols[name] = rng.random((N, 1)) < 0.5
        elif np.dtype(dt).kind == "f":
            x = np.round(rng.normal(0, 5, (N, 1)), 2).astype(dt)
            x[rng.random(N) < 0.05] = np.nan
            cols[name] = x
        else:
            info = np.iinfo(dt)
            cols[name] = rng.integers(max(int(info.min), -100), min(int(info.max), 100) + 1, (N, 1)).astype(dt)
    cols["emb"] = rng.normal(size=(N, 12)).astype(np.float32)
    cols["img"] = rng.integers(0, 255, (N, 3, 4)).astype(np.uint8)
    cols["boxes"] = [np.round(rng.uniform(0, 9, (int(rng.integers(0, 4)), 4)), 1).astype(np.float32) for _ in range(N)]
    cols["null_at"] = rng.random(N) < 0.1
    return cols


class Reader:
    """Columns straight from memory: `f64n` is f64 with NULL rows (as a nullable column
    or a json comparison gives)."""

    def __init__(self, cols: Dict[str, Any]):
        self.cols = cols

    def __call__(self, name: str, rows: np.ndarray) -> Value:
        if name == "boxes":
            return pack([self.cols["boxes"][int(r)] for r in rows])
        if name == "f64n":
            return Value("array", self.cols["f64"][rows], None, self.cols["null_at"][rows])
        return Value("array", self.cols[name][rows])


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A dataset with the tensor names (the planner checks names; the Reader gives values)."""
    ds = lakeformat.empty(str(tmp_path_factory.mktemp("torch") / "ds"), overwrite=True)
    with ds:
        for name in list(FIXED) + ["emb", "img", "boxes", "f64n"]:
            ds.create_tensor(name, dtype="float32")
        ds.extend({name: np.zeros((N, 1), np.float32) for name in list(FIXED) + ["emb", "img", "boxes", "f64n"]})
    return ds


QUERIES = [
    "SELECT i8 + i32 AS a, i64 * 3 - u8 AS b, f32 / 3 AS c, i32 % 7 AS d, f64 % 2.5 AS e, b + 1 AS f, -i8 AS g",
    "SELECT * WHERE i8 > 3 AND f32 <= 1.5",
    "SELECT * WHERE f64n > 0 OR i64 < -50",
    "SELECT f64n * 2 AS x, f64n > 1 AS y WHERE u8 != 7",
    "SELECT SUM(emb) AS s, MEAN(emb) AS m, MAX(img) AS mx, MIN(img, 1) AS mn, PROD(i8) AS p, AMAX(emb, 0) AS am",
    "SELECT SUM(img, 0) AS s0, AVG(img, -1) AS a1, SUM(b) AS sb, MAX(b) AS mb",
    "SELECT DOT(emb, ARRAY[1, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3]) AS d",
    "SELECT * ORDER BY COSINE_SIMILARITY(emb, ARRAY[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]) DESC LIMIT 10",
    "SELECT * WHERE i32 > 0 ORDER BY L2_DISTANCE(emb, ARRAY[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) LIMIT 25",
    "SELECT * ORDER BY i8 DESC LIMIT 40",
    "SELECT * ORDER BY f32 LIMIT 33",
    "SELECT * ORDER BY f64n DESC LIMIT 290",
    "SELECT * WHERE ANY(boxes[:, 2] * boxes[:, 3] > 30)",
    "SELECT SUM(boxes, 0) AS s, boxes[:, 0] + f32 AS t WHERE SHAPE(boxes)[0] >= 1",
    "SELECT L2_NORM(emb) AS n, i8 == 3 AS e, u8 >= i8 AS g, f32 != f64 AS ne",
]


def assert_same(a: Any, b: Any, what: str) -> None:
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), what
        for x, y in zip(a, b):
            if x is None or y is None:
                assert x is None and y is None, what
            else:
                assert_same(np.asarray(x), np.asarray(y), what)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind == "f":
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-5, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(b, a, err_msg=what)


@pytest.mark.parametrize("seed", range(4))
def test_torch_results_equal_numpy_results(shell: Any, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    cols = make(seed)
    used: List[str] = []
    for meth in ("_binary", "_reduce", "_vector"):
        orig = getattr(torch_backend.TorchBackend, meth)

        def spy(self: Any, *a: Any, _orig: Any = orig, _m: str = meth) -> Any:
            out = _orig(self, *a)
            if out is not None:
                used.append(_m)
            return out
        monkeypatch.setattr(torch_backend.TorchBackend, meth, spy)
    for q in QUERIES:
        want = tql.run(shell, q, reader=Reader(cols))
        got = tql.run(shell, q, reader=Reader(cols), backend="torch")
        assert got.indices.tolist() == want.indices.tolist(), q
        assert set(got.columns) == set(want.columns), q
        for k in want.columns:
            assert_same(want.columns[k], got.columns[k], f"{q} [{k}]")
    assert {"_binary", "_reduce", "_vector"} <= set(used)  # the torch paths ran
    backends: List[Any] = []
    orig_el = torch_backend.TorchBackend._elementwise

    def el(self: Any, *a: Any) -> Any:
        backends.append(self)
        return orig_el(self, *a)
    monkeypatch.setattr(torch_backend.TorchBackend, "_elementwise", el)
    q = "SELECT boxes[:, 2] * boxes[:, 3] - 1 AS a, boxes[:, 0] > f32 AS g, boxes % 3 AS m WHERE ANY(boxes[:, 2] > 2)"
    want, got = tql.run(shell, q, reader=Reader(cols)), tql.run(shell, q, reader=Reader(cols), backend="torch")
    assert got.indices.tolist() == want.indices.tolist()
    for k in want.columns:
        assert_same(want.columns[k], got.columns[k], f"{q} [{k}]")
    assert backends and backends[0].ragged_calls > 0  # ragged rows ran on torch


def test_top_k_on_torch_equals_the_stable_sort() -> None:
    rng = np.random.default_rng(0)
    from lakeformat.tql.executor import sort_permutation, top_k
    be = torch_backend.TorchBackend()
    for _ in range(30):
        n = int(rng.integers(1, 200))
        vals = rng.integers(0, 10, n).astype(rng.choice([np.int64, np.float32, np.int16]))
        null = rng.random(n) < 0.1
        for k in (1, 3, n // 2, n):
            for desc in (False, True):
                assert be.top_k(vals, null, k, desc, top_k).tolist() == sort_permutation([(vals, null, desc)])[:k].tolist()


def test_import_lakeformat_does_not_import_torch() -> None:
    code = "import sys, lakeformat, lakeformat.tql; from lakeformat.tql import executor; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_device_is_cuda_where_present() -> None:
    assert torch_backend.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
