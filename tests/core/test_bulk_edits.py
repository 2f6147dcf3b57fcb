"""Bulk pops (`ds.pop([...])`, `ds.delete_rows`, `t.pop([...])`) and bulk updates
(`t[[...]] = values`) against the same edits done one at a time: equal values, lengths, hidden
tensors, commit diffs and merges, on fresh data and on data of an older commit; deeplake 3.9.52
reads the result."""
from __future__ import annotations

import shutil
import tempfile
from typing import Any, Dict, List

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakeformat
from lakeformat.core.chunk_deletes import commit_diff_pop_many, dedup_last, sequence_items
from lakeformat.errors import DuplicateIndexError, IndexOutOfRangeError, LakeFormatError
from lakeformat.version_control.objects import CommitDiff
from tests.interop.deeplake3 import run_deeplake3

KINDS = ("fixed", "ragged", "text", "json", "img", "seq", "tiled")


def _value(kind: str, rng: np.random.Generator, i: int) -> Any:
    if kind == "fixed":
        return rng.integers(-99, 99, size=3).astype(np.int32)
    if kind == "ragged":
        return rng.integers(0, 1000, size=int(rng.integers(0, 7))).astype(np.int64)
    if kind == "text":
        return "w" * int(rng.integers(0, 9)) + str(i)
    if kind == "json":
        return {"i": i, "v": [int(x) for x in rng.integers(0, 9, size=int(rng.integers(0, 4)))]}
    if kind == "img":
        h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        return rng.integers(0, 255, size=(h, w, 3)).astype(np.uint8)
    if kind == "seq":
        return [rng.integers(0, 9, size=2).astype(np.int16) for _ in range(int(rng.integers(0, 4)))]
    if kind == "tiled":  # every 5th sample is bigger than the tiling threshold
        n = 60 if i % 5 == 0 else int(rng.integers(0, 6))
        return rng.integers(0, 255, size=n).astype(np.uint8)
    raise AssertionError(kind)


def _create(ds: Any, kind: str) -> None:
    args: Dict[str, Any] = {
        "fixed": dict(dtype="int32", max_chunk_size=40),
        "ragged": dict(dtype="int64", max_chunk_size=120),
        "text": dict(htype="text", max_chunk_size=50),
        "json": dict(htype="json", max_chunk_size=120),
        "img": dict(htype="image", sample_compression="png", max_chunk_size=200),
        "seq": dict(htype="sequence[generic]", dtype="int16", max_chunk_size=40),
        "tiled": dict(dtype="uint8", max_chunk_size=48, tiling_threshold=40),
    }[kind]
    ds.create_tensor(kind, **args)


def build(path: str, kinds: List[str], n: int, seed: int, commit: bool) -> None:
    rng = np.random.default_rng(seed)
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        for k in kinds:
            _create(ds, k)
        half = n // 2  # two extends: chunks from two flushes (and commits)
        ds.extend({k: [_value(k, rng, i) for i in range(half)] for k in kinds})
    if commit:
        ds.commit("first half")
    with ds:
        ds.extend({k: [_value(k, rng, i) for i in range(half, n)] for k in kinds})
    # the lock goes now: left to the collector, its reaper thread deleted it while a copy of
    # the folder was listing it (copytree then failed on the vanished file)
    ds.close()


def _py(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return ("a", v.dtype.str, v.shape, v.tolist())
    if isinstance(v, list):
        return [_py(x) for x in v]
    return v


def dump(ds: Any) -> Dict[str, Any]:
    """Every tensor's values, hidden ones (ids, shapes, infos) included."""
    return {k: [_py(v) for v in ds[k].numpy(aslist=True)] for k in ds.meta.tensors}


def _copy(src: str) -> str:
    dst = tempfile.mkdtemp()
    shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("locks"))  # a copy is no writer
    return dst


@pytest.fixture()
def workdir():
    d = tempfile.mkdtemp(prefix="bulk-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4, unique=True),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**31),
    commit=st.booleans(),
    frac=st.floats(0.0, 1.0),
)
def test_bulk_pop_equals_single_pops(workdir, kinds, n, seed, commit, frac):
    base = f"{workdir}/base-{seed}-{n}"
    build(base, kinds, n, seed, commit)
    a_path, b_path = _copy(base), _copy(base)
    rng = np.random.default_rng(seed + 1)
    idx = sorted(rng.choice(n, size=int(round(frac * n)), replace=False).tolist())
    a, b = lakeformat.load(a_path), lakeformat.load(b_path)
    for i in reversed(idx):
        a.pop(i)
    b.pop(list(rng.permutation(idx).tolist()))  # any order, as deeplake's pop takes
    assert len(a) == len(b) == n - len(idx)
    want = dump(a)
    assert dump(b) == want
    assert b.diff(as_dict=True)["sides"][0]["tensors"] == a.diff(as_dict=True)["sides"][0]["tensors"]
    reopened = lakeformat.load(b_path, read_only=True)
    assert dump(reopened) == want
    assert reopened.diff(as_dict=True)["sides"][0]["tensors"] == a.diff(as_dict=True)["sides"][0]["tensors"]
    # the ids of the popped samples are the ones gone
    base_ds = lakeformat.load(base, read_only=True)
    for k in kinds:
        ids = base_ds[f"_{k}_id"].numpy().reshape(-1)
        assert np.array_equal(reopened[f"_{k}_id"].numpy().reshape(-1), np.delete(ids, idx))
    for p in (a_path, b_path, base):
        shutil.rmtree(p, ignore_errors=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from(tuple(k for k in KINDS if k != "seq")), min_size=1, max_size=4, unique=True),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**31),
    commit=st.booleans(),
    m=st.integers(1, 30),
)
def test_bulk_update_equals_single_updates(workdir, kinds, n, seed, commit, m):
    base = f"{workdir}/base-{seed}-{n}"
    build(base, kinds, n, seed, commit)
    a_path, b_path = _copy(base), _copy(base)
    rng = np.random.default_rng(seed + 2)
    idx = rng.integers(0, n, size=m).tolist()  # repeats allowed: the last value wins
    a, b = lakeformat.load(a_path), lakeformat.load(b_path)
    for k in kinds:
        vals = [_value(k, rng, 1000 + j) for j in range(m)]
        for i, v in zip(idx, vals):
            a[k][i] = v
        b[k][idx] = vals
    a.flush()
    b.flush()
    want = dump(a)
    assert dump(b) == want
    assert b.diff(as_dict=True)["sides"][0]["tensors"] == a.diff(as_dict=True)["sides"][0]["tensors"]
    assert dump(lakeformat.load(b_path, read_only=True)) == want
    for p in (a_path, b_path, base):
        shutil.rmtree(p, ignore_errors=True)


def test_bulk_pop_then_merge_equals_single_pops(workdir):
    kinds = ["ragged", "text", "tiled", "seq"]
    base = f"{workdir}/base"
    build(base, kinds, 30, 7, commit=True)
    out = []
    for bulk in (False, True):
        ds = lakeformat.load(_copy(base))
        ds.commit("base")
        ds.checkout("alt", create=True)
        idx = [0, 3, 4, 5, 17, 29]
        if bulk:
            ds.pop(idx)
        else:
            for i in reversed(idx):
                ds.pop(i)
        ds.text[[1, 2]] = ["one", "two"]
        ds.commit("popped on alt")
        ds.checkout("main")
        ds.extend({k: [_value(k, np.random.default_rng(1), 99)] for k in kinds})
        ds.merge("alt")
        out.append((dump(ds), len(ds)))
    # the ids of the sample appended on main differ; everything else is equal
    (da, la), (db, lb) = out
    assert la == lb == 25
    for k in da:
        if k.endswith("_id"):
            assert da[k][:-1] == db[k][:-1]
        else:
            assert da[k] == db[k], k


def test_tensor_pop_list_and_errors(workdir):
    ds = lakeformat.empty(f"{workdir}/e", overwrite=True)
    with ds:
        ds.create_tensor("x", max_chunk_size=40)
        ds.create_tensor("y", max_chunk_size=40)
        ds.extend({"x": np.arange(20).reshape(20, 1), "y": np.arange(20).reshape(20, 1)})
    ds.x.extend(np.arange(20, 25).reshape(5, 1))  # x is longer: y keeps what it does not have
    with pytest.raises(DuplicateIndexError, match="duplicate pop index 3") as e:
        ds.pop([3, 3])
    assert isinstance(e.value, ValueError) and isinstance(e.value, LakeFormatError)
    with pytest.raises(IndexOutOfRangeError, match="negative"):
        ds.pop([1, -1])
    with pytest.raises(IndexOutOfRangeError, match="25 is out of range"):
        ds.pop([25])
    assert len(ds.x) == 25  # nothing was removed by a failed call
    ds.pop([0, 22, 19])
    assert ds.x.numpy().ravel().tolist() == [i for i in range(25) if i not in (0, 22, 19)]
    assert ds.y.numpy().ravel().tolist() == [i for i in range(20) if i not in (0, 19)]
    ds.x.pop([0, 1])
    assert ds.x.numpy().ravel().tolist()[:2] == [3, 4]
    ds.pop([])  # nothing to do
    assert len(ds.x) == 20
    with pytest.raises(IndexOutOfRangeError):
        ds.x.pop([20])


def test_bulk_pop_rewrites_each_chunk_once(workdir):
    """A pop of many rows writes each affected chunk once, under a new name, and deletes the
    chunks it replaced after the flush (copy-on-write of published chunks)."""
    ds = lakeformat.empty(f"{workdir}/w", overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=800, create_id_tensor=False, create_shape_tensor=False,
                         create_sample_info_tensor=False)
        ds.extend({"x": np.arange(1000).reshape(1000, 1)})
    eng = ds.x.engine
    before = set(eng.chunk_ids.names())
    writes: List[str] = []
    orig = eng.storage.set_many

    def spy(items: Dict[str, bytes]) -> None:
        writes.extend(k for k in items if "/chunks/" in k)
        orig(items)

    eng.storage.set_many = spy
    try:
        ds.pop(list(range(0, 1000, 2)))
    finally:
        eng.storage.set_many = orig
    after = set(eng.chunk_ids.names())
    assert len(writes) == len(after) == len(before)
    assert not (after & before)
    assert ds.x.numpy().ravel().tolist() == list(range(1, 1000, 2))
    import os

    on_disk = set(os.listdir(f"{workdir}/w/x/chunks"))
    assert on_disk == after


def test_commit_diff_pop_many_matches_single_pops():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        a0 = int(rng.integers(0, n + 1))
        one, many = CommitDiff(a0), CommitDiff(a0)
        for cd in (one, many):
            cd.data_added = [a0, n]
        pre = sorted(rng.choice(40, size=int(rng.integers(0, 5)), replace=False).tolist())
        upd = set(rng.choice(n, size=int(rng.integers(0, n)), replace=False).tolist())
        for cd in (one, many):
            cd.data_deleted = set(pre)
            cd.data_updated = set(upd)
        idx = np.sort(rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False))
        ids = rng.integers(0, 2**40, size=len(idx))
        for j in range(len(idx) - 1, -1, -1):
            one.pop(int(idx[j]), int(ids[j]))
        commit_diff_pop_many(many, idx, ids)
        assert (one.data_added, one.data_deleted, one.data_updated, one.data_deleted_ids) == \
            (many.data_added, many.data_deleted, many.data_updated, many.data_deleted_ids)


def test_helpers():
    assert sequence_items(np.array([0, 5, 9]), np.array([2, 5, 12])).tolist() == [0, 1, 9, 10, 11]
    u, last = dedup_last(np.array([4, 1, 4, 2, 1]))
    assert u.tolist() == [1, 2, 4] and last.tolist() == [4, 3, 2]


DL_DUMP = """
import deeplake
ds = deeplake.load(INPUT["path"], read_only=True)
out = {}
for k in INPUT["tensors"]:
    out[k] = [v.tolist() for v in ds[k].numpy(aslist=True)]
emit({"len": len(ds), "values": out})
"""


def test_deeplake3_reads_bulk_edited_dataset(workdir):
    kinds = ["fixed", "ragged", "text", "json", "img", "tiled"]
    path = f"{workdir}/dl"
    build(path, kinds, 40, 11, commit=True)
    ds = lakeformat.load(path)
    ds.pop(list(range(0, 40, 3)))
    rng = np.random.default_rng(5)
    for k in kinds:
        ds[k][[1, 4, 6, 7]] = [_value(k, rng, 500 + j) for j in range(4)]
    ds.flush()
    ours = {k: [np.asarray(v).tolist() for v in ds[k].numpy(aslist=True)] for k in kinds}
    theirs = run_deeplake3(DL_DUMP, inputs={"path": path, "tensors": kinds})
    assert theirs["len"] == len(ds) == 26
    for k in kinds:
        assert theirs["values"][k] == ours[k], k


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(("int", "text", "json")),
    compression=st.sampled_from((None, "lz4")),
    n=st.integers(1, 700),
    seed=st.integers(0, 2**31),
    m=st.integers(1, 6),
    extra=st.integers(1, 300),
    commit=st.booleans(),
)
def test_bulk_update_then_append_in_one_flush(workdir, kind, compression, n, seed, m, extra, commit):
    """Bulk updates then appends before one flush (what a merge of a branch does): the last
    chunk, staged by the bulk edit, is the one the appends extend. A stale staged copy once
    replaced it at the flush: the chunk held fewer samples than its index said."""
    rng = np.random.default_rng(seed)

    def val(i: int) -> Any:
        if kind == "int":
            return np.array([i], np.int64)
        if kind == "text":
            return "t" * int(rng.integers(0, 12)) + str(i)
        return {"i": i, "pad": "p" * int(rng.integers(0, 12))}

    path = f"{workdir}/ua-{seed}"
    ds = lakeformat.empty(path, overwrite=True)
    htype = {"int": "generic", "text": "text", "json": "json"}[kind]
    ds.create_tensor("x", htype=htype, dtype="int64" if kind == "int" else None, chunk_compression=compression, max_chunk_size=2048)
    want = [val(i) for i in range(n)]
    ds.x.extend(want)
    if commit:
        ds.commit("base")
    idx = sorted(set(rng.integers(0, n, size=m).tolist()) | {n - 1})  # the last chunk among them
    new = [val(-1 - i) for i in idx]
    tail = [val(10_000 + j) for j in range(extra)]
    with ds:
        ds.x[idx] = new
        ds.x.extend(tail)
    for i, v in zip(idx, new):
        want[i] = v
    want += tail

    def canon(v: Any) -> Any:
        return v.tolist() if isinstance(v, np.ndarray) else v

    expected = [canon(v) for v in want]
    got = [canon(v) for v in ds.x.numpy(aslist=True)] if kind == "int" else ds.x.data()["value"]
    assert got == expected
    again = lakeformat.load(path, read_only=True)
    got = [canon(v) for v in again.x.numpy(aslist=True)] if kind == "int" else again.x.data()["value"]
    assert got == expected
    shutil.rmtree(path, ignore_errors=True)
