"""Each kind of fault, on each request kind, through FsspecStorage on moto and azurite: the
answer is the stored value or a typed error, never a wrong value."""
from __future__ import annotations

import pytest

from lakeformat.errors import KeyNotFoundInStorageError, TransientStorageError
from lakeformat.storage import FsspecStorage
from tests.storage.conftest import LONG
from tests.support.fault_proxy import KINDS, FaultSchedule

VALUE = bytes(range(256)) * 40  # 10 KiB: a body worth truncating


def _stores(faulty_store, schedule):
    url, opts, direct, proxy = faulty_store(schedule)
    return FsspecStorage(url, opts), FsspecStorage(url, direct), proxy


def _next_fault(schedule: FaultSchedule, kind: str) -> None:
    schedule.kinds = (kind,)
    schedule.max_faults = (schedule.max_faults or 0) + 1


def test_reads_survive_every_fault(faulty_store):
    schedule = FaultSchedule(rate=1.0, methods=("GET", "HEAD"), max_faults=0)
    store, direct, proxy = _stores(faulty_store, schedule)
    direct.set("a/chunk", VALUE)
    for kind in KINDS:
        _next_fault(schedule, kind)
        assert store.get("a/chunk") == VALUE, kind
        _next_fault(schedule, kind)
        assert store.get_range("a/chunk", 100, 5000) == VALUE[100:5000], kind
    for kind in ("truncate", "reset", "503"):
        _next_fault(schedule, kind)
        assert store.get_ranges("a/chunk", [0, 7000], [3000, 10240]) == [VALUE[:3000], VALUE[7000:]], kind
        _next_fault(schedule, kind)
        assert store.get_many(["a/chunk", "a/none"], missing_ok=True) == {"a/chunk": VALUE, "a/none": None}, kind
        _next_fault(schedule, kind)
        assert store.exists("a/chunk") and not store.exists("a/none"), kind
    injected = [k for *_, k in proxy.injected]
    assert set(injected) == set(KINDS) and len(injected) == 2 * len(KINDS) + 9, injected


def test_writes_survive_every_fault(faulty_store):
    schedule = FaultSchedule(rate=1.0, methods=("PUT", "DELETE", "POST"), max_faults=0)
    store, direct, proxy = _stores(faulty_store, schedule)
    for kind in KINDS:
        _next_fault(schedule, kind)
        store.set(f"w/{kind}", VALUE)
        assert direct.get(f"w/{kind}") == VALUE, kind
    for kind in ("reset_after", "500", "reset"):
        _next_fault(schedule, kind)
        store.delete(f"w/{kind}")
        assert not direct.exists(f"w/{kind}"), kind
        _next_fault(schedule, kind)
        store.set_many({f"w/{kind}-y": b"1", f"w/{kind}-z": b"2"})
        assert direct.get_many([f"w/{kind}-y", f"w/{kind}-z"]) == {f"w/{kind}-y": b"1", f"w/{kind}-z": b"2"}
    assert len(store.list("w/")) == len(KINDS) - 3 + 6
    assert set(k for *_, k in proxy.injected) == set(KINDS)


@pytest.mark.parametrize("kind", ["reset_after"] + (["reset", "timeout", "500", "truncate"] if LONG else []))
def test_conditional_create_retried_after_its_answer_was_lost(faulty_store, kind):
    """The first attempt of an If-None-Match create may land with its answer lost: the retry
    then meets the object it wrote itself, which is success, not "taken by someone else"."""
    schedule = FaultSchedule(rate=1.0, kinds=(kind,), methods=("PUT",), max_faults=1)
    store, direct, proxy = _stores(faulty_store, schedule)
    assert store.set_if_absent("locks/main.lock", b"mine") is True
    assert proxy.injected and proxy.injected[0][3] == kind
    assert direct.get("locks/main.lock") == b"mine"
    assert store.set_if_absent("locks/main.lock", b"theirs") is False  # a real second creator loses
    # a conditional replace whose answer was lost is not applied twice nor reported lost
    _, version = store.get_versioned("locks/main.lock")
    schedule.max_faults += 1
    assert store.set_if_match("locks/main.lock", b"mine, refreshed", version) is True
    assert direct.get("locks/main.lock") == b"mine, refreshed"
    assert store.set_if_match("locks/main.lock", b"stale", version) is False
    _, version = store.get_versioned("locks/main.lock")
    schedule.kinds = ("reset_after",)
    schedule.methods = ("DELETE",)
    schedule.max_faults += 1
    assert store.delete_if_match("locks/main.lock", version) is True
    assert not direct.exists("locks/main.lock")


def test_retry_budget_ends_in_a_typed_transient_error(faulty_store):
    store, direct, proxy = _stores(faulty_store, FaultSchedule(rate=1.0, kinds=("503",), methods=("GET",)))
    direct.set("k", b"v")
    with pytest.raises(TransientStorageError, match="'k'"):
        store.get("k")
    assert len(proxy.injected) == store.retry.attempts


def test_missing_keys_are_not_retried(faulty_store):
    store, _, proxy = _stores(faulty_store, FaultSchedule())
    with pytest.raises(KeyNotFoundInStorageError):
        store.get("absent")
    assert proxy.requests == 1
