"""Commit operations: workers write chunks and return manifests, one call publishes them.

- a dataset written by two worker processes through AppendChunks equals one written serially
  (values, shapes, hidden tensors), in lakeformat and in deeplake 3.9.52;
- ReplaceTensor, Overwrite and DeleteRows against a NumPy oracle, before and after a commit;
- two writers with the same read_version: the second gets CommitConflictError, and may retry.
"""
from __future__ import annotations

import multiprocessing
import pickle
from typing import Any, Dict, List

import numpy as np
import pytest

import lakeformat
from lakeformat.errors import CommitConflictError, LakeFormatError
from lakeformat.verify import verify
from lakeformat.version_control.operations import (
    AppendChunks,
    ChunkManifest,
    DeleteRows,
    Overwrite,
    ReplaceTensor,
    commit_operation,
    discard,
    read_version,
    write_chunks,
)
from tests.interop.deeplake3 import run_deeplake3

VISIBLE = ("ints", "txt", "lab", "img", "seq", "vals", "blob")


def _make(path: str) -> lakeformat.Dataset:
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("ints", dtype="int64", max_chunk_size=300)
        ds.create_tensor("txt", htype="text", max_chunk_size=200)
        ds.create_tensor("lab", htype="class_label", class_names=["cat", "dog", "eel"])
        ds.create_tensor("img", htype="image", sample_compression="png", max_chunk_size=2000)
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int16", max_chunk_size=100)
        ds.create_tensor("vals", dtype="float64", nullable=True)
        ds.create_tensor("blob", htype="json")
    # a first null makes the validity tensor, through the dataset (workers then use it)
    ds.extend(_batch(0, 3, with_null=True))
    return ds


def _batch(start: int, n: int, with_null: bool = False) -> Dict[str, Any]:
    rng = np.random.default_rng(start)
    return {
        "ints": np.arange(start, start + n, dtype=np.int64).reshape(n, 1) * 3,
        "txt": [f"row {i} " + "x" * (i % 7) for i in range(start, start + n)],
        "lab": [["cat", "dog", "eel"][i % 3] for i in range(start, start + n)],
        "img": [rng.integers(0, 255, (4 + i % 3, 5, 3)).astype(np.uint8) for i in range(start, start + n)],
        "seq": [[np.full(2, i % 100, np.int16)] * (i % 3) for i in range(start, start + n)],
        "vals": [None if (with_null and i == start) or i % 11 == 5 else float(i) / 2 for i in range(start, start + n)],
        "blob": [{"i": i, "even": i % 2 == 0} for i in range(start, start + n)],
    }


def _worker(args: Any) -> str:
    path, commit_id, start, n = args
    return write_chunks(path, commit_id, _batch(start, n)).to_json()


def _canon(v: Any) -> Any:
    a = np.asarray(v)
    if a.dtype.kind == "f":
        return [str(x) for x in a.reshape(-1).tolist()]  # NaN placeholders compare as text
    return a.tolist() if a.dtype != object else [_canon(x) for x in v]


def _values(ds: lakeformat.Dataset) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name in VISIBLE:
        t = ds[name]
        out[name] = [_canon(x) for x in t.numpy(aslist=True)]
        out[name + ".shape"] = [list(t[i].shape) for i in range(len(t))]
    out["nulls"] = np.asarray(ds["vals"].isnull()).tolist()
    return out


def _hidden(ds: lakeformat.Dataset) -> Dict[str, Any]:
    """Every hidden tensor: values, except the random sample ids (only their count)."""
    st = ds.session
    out: Dict[str, Any] = {}
    for key in st.meta.hidden_tensors:
        eng = st.engine(key)
        if key.endswith("_id"):
            out[key] = eng.num_samples
        else:
            from lakeformat.core.tensor import Tensor

            out[key] = [_canon(x) for x in Tensor(key, key, ds).numpy(aslist=True)]
    return out


DL_READ = """
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"], read_only=True, verbose=False)
out = {}
for name in INPUT["names"]:
    t = ds[name]
    if t.htype == "text":
        out[name] = [str(x) for x in t.data()["value"]]
    elif t.htype == "json":
        out[name] = [dict(x) for x in t.data()["value"]]
    elif t.htype == "sequence[generic]":
        out[name] = [np.asarray(x).tolist() for x in t.numpy(aslist=True)]
    else:
        out[name] = [[str(v) for v in np.asarray(x).reshape(-1).tolist()] for x in t.numpy(aslist=True)]
out["ids_unique"] = {k: len(set(np.asarray(ds[k].numpy()).reshape(-1).tolist())) == len(ds[k]) for k in ds._tensors(include_hidden=True) if k.endswith("_id")}
emit(out)
"""


def test_two_worker_processes_equal_a_serial_write(tmp_path):
    par = _make(str(tmp_path / "par"))
    v = read_version(par)
    jobs = [(par.path, par.pending_commit_id, 3, 40), (par.path, par.pending_commit_id, 43, 25)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        manifests = tuple(ChunkManifest.from_json(j) for j in pool.map(_worker, jobs))
    assert pickle.loads(pickle.dumps(manifests)) == manifests
    commit_operation(par, AppendChunks(manifests), v)

    ser = _make(str(tmp_path / "ser"))
    ser.extend(_batch(3, 40))
    ser.extend(_batch(43, 25))

    assert len(par) == len(ser) == 68
    assert _values(par) == _values(ser)
    assert _hidden(par) == _hidden(ser)
    reopened = lakeformat.load(par.path, read_only=True)
    assert _values(reopened) == _values(ser)
    assert verify(par.path).ok

    names = ["ints", "txt", "lab", "seq", "vals", "blob"]
    got = run_deeplake3(DL_READ, inputs={"path": par.path, "names": names})
    want = run_deeplake3(DL_READ, inputs={"path": ser.path, "names": names})
    assert all(got.pop("ids_unique").values())
    want.pop("ids_unique")
    assert got == want


def test_manifest_round_trips_and_names_its_chunks(tmp_path):
    ds = _make(str(tmp_path / "d"))
    m = write_chunks(ds.path, ds.pending_commit_id, {"ints": np.arange(50).reshape(50, 1)})
    assert ChunkManifest.from_json(m.to_json()) == m
    ints = m.tensor("ints")
    assert ints is not None and ints.num_items == 50 and len(ints.rows) >= 2  # max_chunk_size=300
    assert sum(ints.nbytes) == sum(len(ds.storage.get(k)) for k in m.chunk_keys() if "/ints/" in "/" + k)
    assert len(ds) == 3  # nothing published yet
    with pytest.raises(LakeFormatError):
        ChunkManifest.from_dict({"tensors": "nope"})


def _ints_ds(path: str, n: int, seed: int) -> lakeformat.Dataset:
    ds = lakeformat.empty(path, overwrite=True)
    rng = np.random.default_rng(seed)
    with ds:
        ds.create_tensor("a", dtype="int64", max_chunk_size=int(rng.integers(64, 400)))
        ds.create_tensor("b", htype="text", max_chunk_size=int(rng.integers(64, 400)))
        ds.extend({"a": np.arange(n, dtype=np.int64).reshape(n, 1), "b": [str(i) for i in range(n)]})
    return ds


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("after_commit", [False, True])
def test_operations_against_numpy(tmp_path, seed, after_commit):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    ds = _ints_ds(str(tmp_path / "d"), n, seed)
    a = np.arange(n, dtype=np.int64)
    b = np.array([str(i) for i in range(n)], dtype=object)
    if after_commit:
        ds.commit("base")

    # DeleteRows: many rows in one rewrite
    drop = np.unique(rng.integers(0, n, int(rng.integers(1, n))))
    commit_operation(ds, DeleteRows.of(drop), read_version(ds))
    a, b = np.delete(a, drop), np.delete(b, drop)
    assert ds.a.numpy().reshape(-1).tolist() == a.tolist()
    assert [str(x) for x in ds.b.numpy().reshape(-1)] == b.tolist()

    # AppendChunks, then ReplaceTensor of one tensor
    k = int(rng.integers(1, 30))
    m = write_chunks(ds.path, ds.pending_commit_id, {"a": 1000 + np.arange(k).reshape(k, 1), "b": [f"n{i}" for i in range(k)]})
    commit_operation(ds, AppendChunks((m,)), read_version(ds))
    a = np.concatenate([a, 1000 + np.arange(k)])
    b = np.concatenate([b, np.array([f"n{i}" for i in range(k)], dtype=object)])
    r = int(rng.integers(0, 40))
    new_a = -np.arange(r, dtype=np.int64)
    m = write_chunks(ds.path, ds.pending_commit_id, {"a": new_a.reshape(r, 1)})
    commit_operation(ds, ReplaceTensor("a", m), read_version(ds))
    a = new_a
    assert ds.a.numpy().reshape(-1).tolist() == a.tolist() and len(ds.a) == r
    assert [str(x) for x in ds.b.numpy().reshape(-1)] == b.tolist()

    # Overwrite: the branch becomes exactly these rows (every tensor)
    w = int(rng.integers(1, 25))
    m = write_chunks(ds.path, ds.pending_commit_id, {"a": np.full((w, 1), 7), "b": ["w"] * w})
    commit_operation(ds, Overwrite((m,)), read_version(ds))
    assert ds.a.numpy().reshape(-1).tolist() == [7] * w
    assert [str(x) for x in ds.b.numpy().reshape(-1)] == ["w"] * w
    again = lakeformat.load(ds.path, read_only=True)
    assert again.a.numpy().reshape(-1).tolist() == [7] * w and len(again.b) == w
    assert verify(ds.path).ok
    # and the dataset stays writable the ordinary way
    ds.extend({"a": np.array([[1]]), "b": ["z"]})
    assert ds.a.numpy().reshape(-1).tolist() == [7] * w + [1]
    if after_commit:
        assert ds.diff(as_dict=True) is not None


def test_two_writers_same_read_version_conflict(tmp_path):
    ds = _ints_ds(str(tmp_path / "d"), 10, 0)
    v = read_version(ds)
    m1 = write_chunks(ds.path, ds.pending_commit_id, {"a": np.ones((3, 1), np.int64), "b": ["x"] * 3})
    m2 = write_chunks(ds.path, ds.pending_commit_id, {"a": np.zeros((2, 1), np.int64), "b": ["y"] * 2})
    v1 = commit_operation(ds, AppendChunks((m1,)), v)
    assert v1 != v and v1 == read_version(ds)
    with pytest.raises(CommitConflictError) as e:
        commit_operation(ds, AppendChunks((m2,)), v)
    assert e.value.branch == "main" and e.value.read_version == v and e.value.current_version == v1
    assert "'main'" in str(e.value) and v in str(e.value) and v1 in str(e.value)
    assert len(ds) == 13
    # the conflicting writer's chunks stay: a retry with a fresh read_version publishes them
    commit_operation(ds, AppendChunks((m2,)), read_version(ds))
    assert ds.a.numpy().reshape(-1).tolist() == list(range(10)) + [1, 1, 1, 0, 0]
    # a plain flush of the branch moves it too, as does a commit
    v2 = read_version(ds)
    ds.extend({"a": np.array([[5]]), "b": ["q"]})
    assert read_version(ds) != v2
    v3 = read_version(ds)
    ds.commit("c")
    assert read_version(ds) != v3
    with pytest.raises(CommitConflictError):
        commit_operation(ds, DeleteRows.of([0]), v3)
    assert len(ds) == 16
    # a writer that gives up after a conflict deletes its chunks
    m3 = write_chunks(ds.path, ds.pending_commit_id, {"a": np.ones((2, 1), np.int64)})
    op = AppendChunks((m3,))
    with pytest.raises(CommitConflictError):
        commit_operation(ds, op, v3)
    assert all(ds.storage.exists(k) for k in m3.chunk_keys())
    discard(ds.storage, op)
    assert not any(ds.storage.exists(k) for k in m3.chunk_keys())
    assert len(ds) == 16 and verify(ds.path).ok


def test_a_failed_operation_changes_nothing_and_drops_its_chunks(tmp_path):
    ds = _ints_ds(str(tmp_path / "d"), 10, 1)
    stale = write_chunks(ds.path, ds.pending_commit_id, {"a": np.ones((3, 1), np.int64)})
    ds.commit("moves the head")
    before = ds.a.numpy().tolist()
    with pytest.raises(LakeFormatError, match="cannot be published"):
        commit_operation(ds, AppendChunks((stale,)), read_version(ds))
    assert ds.a.numpy().tolist() == before
    assert not any(ds.storage.exists(k) for k in stale.chunk_keys())
    good = write_chunks(ds.path, ds.pending_commit_id, {"a": np.ones((2, 1), np.int64), "b": ["p", "q"]})
    with pytest.raises(LakeFormatError, match="class names"):
        ds2 = _labels(str(tmp_path / "l"))
        write_chunks(ds2.path, ds2.pending_commit_id, {"lab": ["new"]})
    commit_operation(ds, AppendChunks((good,)), read_version(ds))
    assert len(ds) == 12 and verify(ds.path).ok


def _labels(path: str) -> lakeformat.Dataset:
    ds = lakeformat.empty(path, overwrite=True)
    ds.create_tensor("lab", htype="class_label", class_names=["a"])
    return ds


def test_read_only_and_views_refuse(tmp_path):
    ds = _ints_ds(str(tmp_path / "d"), 5, 2)
    v = read_version(ds)
    with pytest.raises(LakeFormatError):
        commit_operation(ds[1:3], DeleteRows.of([0]), v)
    ds.close()
    ro = lakeformat.load(ds.path, read_only=True)
    with pytest.raises(LakeFormatError):
        commit_operation(ro, DeleteRows.of([0]), read_version(ro))
    rows: List[int] = lakeformat.load(ds.path, read_only=True).a.numpy().reshape(-1).tolist()
    assert rows == [0, 1, 2, 3, 4]


def _staged(path: str) -> lakeformat.Dataset:
    ds = _ints_ds(path, 4, 3)
    ds.commit("base")
    ds.checkout("stage", create=True)
    ds.extend({"a": np.array([[99]]), "b": ["staged"]})
    ds.commit("staged rows")
    return ds


def test_reset_branch_moves_main_to_the_staged_commit(tmp_path):
    from lakeformat.version_control.operations import ResetBranch

    ds = _staged(str(tmp_path / "d"))
    v = read_version(ds, "main")
    commit_operation(ds, ResetBranch("main", "stage"), v)
    main = lakeformat.load(ds.path, read_only=True)
    assert main.branches == ["main"]
    assert main.a.numpy().reshape(-1).tolist() == [0, 1, 2, 3, 99]
    assert [e["message"] for e in main.log()] == ["staged rows", "base"]
    assert verify(ds.path).ok


def test_reset_branch_conflicts_when_main_moved(tmp_path):
    from lakeformat.version_control.operations import ResetBranch

    ds = _staged(str(tmp_path / "d"))
    v = read_version(ds, "main")
    other = lakeformat.load(ds.path, version="main")
    other.extend({"a": np.array([[-5]]), "b": ["on main meanwhile"]})
    other.close()
    with pytest.raises(CommitConflictError) as e:
        commit_operation(ds, ResetBranch("main", "stage"), v)
    assert e.value.branch == "main"
    main = lakeformat.load(ds.path, read_only=True)
    assert sorted(main.branches) == ["main", "stage"]
    assert main.a.numpy().reshape(-1).tolist() == [0, 1, 2, 3, -5]
