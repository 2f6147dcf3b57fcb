"""Through the fault proxy: the read cache never serves the version tree or a lock from
memory (every read reaches the store), and two writers, each with its own cache, lose no
branch or commit while requests fail around them."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat import constants as C
from lakeformat.storage import storage_from_url
from tests.storage.conftest import LONG
from tests.support.fault_proxy import FaultSchedule


def _gets(proxy, name: str) -> int:
    return sum(1 for _, m, p, _ in proxy.log if m == "GET" and p.split("?")[0].endswith(name))


def test_cache_reads_shared_objects_from_the_store(faulty_store):
    url, opts, _, proxy = faulty_store(FaultSchedule())
    proxy.keep_log = True
    store = storage_from_url(url, creds=opts)
    shared = [C.VERSION_CONTROL_INFO_FILENAME, "locks/main.lock", "lakeformat_flush.json"]
    for key in shared + ["x/chunks/abc"]:
        store.set(key, b"v1")
    for _ in range(3):
        for key in shared + ["x/chunks/abc"]:
            assert store.get(key) == b"v1"
    for key in shared:
        assert _gets(proxy, key) == 3, key
    assert _gets(proxy, "x/chunks/abc") == 1  # plain chunks are cached


@pytest.mark.parametrize("faulty_store", ["s3"] + (["azure"] if LONG else []), indirect=True)
def test_two_cached_writers_lose_nothing_under_faults(faulty_store):
    schedule = FaultSchedule(seed=5, rate=0.0, kinds=("500", "503", "slowdown", "reset", "reset_after", "truncate"))
    url, opts, direct, proxy = faulty_store(schedule)
    with lakeformat.empty(url, creds=opts) as ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(3))
    ds.commit("base")
    ds.close()
    schedule.rate = 0.1
    a = lakeformat.load(url, creds=opts)
    a.checkout("a", create=True)  # A reads (and could cache) the tree
    b = lakeformat.load(url, creds=opts, lock=False)
    b.checkout("b1", create=True)
    b.x.append(7)
    first_b = b.commit("b one")
    a.x.append(5)
    a.commit("a one")
    a.checkout("a2", create=True)
    b.x.append(8)
    b.commit("b two")
    schedule.rate = 0.0
    a.close()
    b.close()
    assert proxy.injected
    fresh = lakeformat.load(url, creds=direct, read_only=True)
    assert set(fresh.branches) == {"main", "a", "a2", "b1"}
    fresh.checkout("b1")
    assert [e["message"] for e in fresh.log()][:2] == ["b two", "b one"]
    assert fresh.x.numpy().ravel().tolist() == [0, 1, 2, 7, 8]
    assert first_b in fresh.version_state.tree.commits
    fresh.checkout("a")
    assert fresh.x.numpy().ravel().tolist() == [0, 1, 2, 5]
