"""Conditional writes, the primitive under branch locks and version-tree updates: one suite run
against every store (local folder, memory, moto S3, azurite, the GCS emulator), and real
processes racing for one key. And the read cache never serves shared mutable objects."""
from __future__ import annotations

import multiprocessing as mp
import uuid

import pytest

from lakeformat.storage import LRUCache, LocalStorage, MemoryStorage, StorageProvider, storage_from_url
from lakeformat.storage.base import update_object
from lakeformat.storage.lru_cache import is_shared_mutable


def _ctx():
    """Processes forked from a server that imported the libraries once: each starts in a
    fraction of a spawn's time (the preload only takes if this session starts the server)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["lakeformat", "numpy", "fsspec", "s3fs", "adlfs", "gcsfs"])
    return ctx


def _open(url: str, opts: dict | None) -> StorageProvider:
    return storage_from_url(url, opts)


def _race_create(url: str, opts: dict | None, keys: list, who: int, barrier, out) -> None:
    """One contender for every key in turn: all contenders start each key together."""
    st = _open(url, opts)
    for key in keys:
        barrier.wait(60)
        out.put((key, who, st.set_if_absent(key, f"{who}".encode())))


def _race_increment(url: str, opts: dict | None, key: str, times: int, go, out) -> None:
    st = _open(url, opts)
    go.wait()
    for _ in range(times):
        update_object(st, key, lambda raw: (str(int(raw or b"0") + 1).encode(), None))
    out.put(True)


class ConditionalWriteTests:
    """Subclasses provide `location`: (url, storage options) of an empty place."""

    def test_create_replace_delete_contract(self, location):
        st = _open(*location)
        assert st.set_if_absent("locks/a.lock", b"one")
        assert not st.set_if_absent("locks/a.lock", b"two")
        data, v1 = st.get_versioned("locks/a.lock")
        assert data == b"one"
        assert st.set_if_match("locks/a.lock", b"three", v1)
        assert not st.set_if_match("locks/a.lock", b"four", v1)  # v1 is gone
        data, v3 = st.get_versioned("locks/a.lock")
        assert data == b"three" and v3 != v1
        assert not st.delete_if_match("locks/a.lock", v1)
        assert st.delete_if_match("locks/a.lock", v3)
        assert not st.exists("locks/a.lock")
        assert not st.set_if_match("locks/a.lock", b"x", v3)  # absent never matches
        with pytest.raises(KeyError):
            st.get_versioned("locks/a.lock")
        assert [k for k in st.list("") if ".mutex/" in k] == []  # no tickets left behind


class TestLocal(ConditionalWriteTests):
    """Processes racing on the bare primitive; on the object stores the branch-lock races of
    tests/version_control/test_concurrent_writers.py run the same primitive, 25 rounds each."""

    @pytest.fixture
    def location(self, tmp_path):
        return str(tmp_path / "store"), None

    def test_processes_racing_to_create_exactly_one_wins(self, location):
        ctx = _ctx()
        n, rounds = 4, 10
        keys = [f"locks/race-{r}-{uuid.uuid4().hex[:6]}.lock" for r in range(rounds)]
        barrier, out = ctx.Barrier(n + 1), ctx.Queue()
        procs = [ctx.Process(target=_race_create, args=(*location, keys, i, barrier, out)) for i in range(n)]
        for p in procs:
            p.start()
        try:
            for key in keys:
                barrier.wait(120)
                got = [out.get(timeout=60) for _ in procs]
                winners = [who for k, who, ok in got if ok]
                assert {k for k, _, _ in got} == {key}
                assert len(winners) == 1, f"{key}: {got}"
                assert _open(*location).get(key) == str(winners[0]).encode()
        finally:
            for p in procs:
                p.join(30)
                if p.is_alive():
                    p.kill()

    def test_read_modify_write_loses_no_update(self, location):
        ctx = _ctx()
        go, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_race_increment, args=(*location, "counter.json", 5, go, out)) for _ in range(3)]
        for p in procs:
            p.start()
        go.set()
        for _ in procs:
            assert out.get(timeout=120)
        for p in procs:
            p.join(30)
        assert _open(*location).get("counter.json") == b"15"


class TestS3(ConditionalWriteTests):
    @pytest.fixture
    def location(self, s3_url):
        return s3_url


class TestAzure(ConditionalWriteTests):
    @pytest.fixture
    def location(self, az_url):
        return az_url


class TestGCS(ConditionalWriteTests):
    @pytest.fixture
    def location(self, gcs_url):
        return gcs_url


def test_memory_store_conditional_writes():
    st = MemoryStorage(f"memory://cond-{uuid.uuid4().hex}")
    assert st.set_if_absent("k", b"1") and not st.set_if_absent("k", b"2")
    _, v = st.get_versioned("k")
    assert st.set_if_match("k", b"3", v) and not st.set_if_match("k", b"4", v)
    assert update_object(st, "k", lambda raw: (raw + b"!", len(raw))) == 1
    assert st.get("k") == b"3!"


def test_cache_reads_shared_objects_through(tmp_path):
    base = LocalStorage(str(tmp_path / "s"))
    cache = LRUCache(base, 1 << 20)
    for key in ("version_control_info.json", "locks/main.lock", "versions/abc/commit_info.json", "x.mutex/1-a"):
        assert is_shared_mutable(key)
        base.set(key, b"old")
        assert cache.get(key) == b"old"
        base.set(key, b"new")  # another process's write
        assert cache.get(key) == b"new" and cache.get_many([key])[key] == b"new"
    # ordinary immutable objects are still cached
    assert not is_shared_mutable("x/chunks/abc") and not is_shared_mutable("dataset_meta.json.bak")
    base.set("x/chunks/abc", b"chunk")
    assert cache.get("x/chunks/abc") == b"chunk"
    base.set("x/chunks/abc", b"other")
    assert cache.get("x/chunks/abc") == b"chunk"
