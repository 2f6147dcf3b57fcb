"""A writer appending, flushing and committing through the fault proxy, on moto and azurite:
it succeeds or raises a typed error; either way the dataset opens and verifies, every row
flushed and every commit made before the fault is there, and a writer without faults can
carry on."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import pytest

import lakeformat
from lakeformat.errors import LakeFormatError
from lakeformat.verify import verify
from lakeformat.version_control.locks import release_branch_lock
from tests.storage.conftest import LONG
from tests.support.fault_proxy import FaultSchedule

STEP = 16
#: every kind but the hang, which costs a client timeout each (the long variant has them all)
QUICK_KINDS = ("500", "503", "slowdown", "reset", "reset_after", "truncate")


def _write(ds, steps: int, acked: List[int], commits: List[Tuple[str, int]]) -> None:
    for step in range(steps):
        n = acked[0]
        with ds:  # one flush for both tensors
            ds.x.extend(np.arange(n, n + STEP, dtype=np.int64))
            ds.label.extend([f"row {i}" for i in range(n, n + STEP)])
        acked[0] = n + STEP  # acknowledged: the flush returned
        if step % 2:
            commits.append((ds.commit(f"up to {acked[0]}"), acked[0]))


def _check(url: str, direct: dict, acked: int, commits: List[Tuple[str, int]]) -> None:
    report = verify(url, creds=direct)
    assert report.ok, report.lines()
    ds = lakeformat.load(url, creds=direct, read_only=True)
    x = ds.x.numpy().ravel()
    # all-or-nothing flushes: acknowledged rows, plus at most the one flush that failed
    assert len(x) in (acked, acked + STEP), (len(x), acked)
    assert (x == np.arange(len(x))).all()
    assert ds.label.numpy().ravel().tolist() == [f"row {i}" for i in range(len(x))]
    for cid, n in commits:
        old = lakeformat.load(url, creds=direct, read_only=True, version=cid)
        assert (old.x.numpy().ravel() == np.arange(n)).all(), cid


def _run(faulty_store, schedule: FaultSchedule, steps: int = 3) -> Tuple[str, int, int]:
    url, opts, direct, proxy = faulty_store(schedule)
    rate, schedule.rate = schedule.rate, 0.0
    ds = lakeformat.empty(url, creds=opts)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("label", htype="text")
    acked, commits = [0], []
    schedule.rate = rate
    failure = None
    try:
        _write(ds, steps, acked, commits)
    except LakeFormatError as e:  # a typed error is an allowed outcome; anything else fails the test
        failure = e
    schedule.rate = 0.0
    release_branch_lock(ds.storage, ds.branch)
    _check(url, direct, acked[0], commits)
    # a writer without faults carries on from what is there
    again = lakeformat.load(url, creds=opts)
    n = len(again.x)
    with again:
        again.x.extend(np.arange(n, n + STEP, dtype=np.int64))
        again.label.extend([f"row {i}" for i in range(n, n + STEP)])
    again.commit("after the faults")
    release_branch_lock(again.storage, again.branch)
    _check(url, direct, n + STEP, commits)
    return type(failure).__name__ if failure else "ok", len(proxy.injected), proxy.requests


@pytest.mark.parametrize("seed", [11] + (list(range(12, 20)) if LONG else []))
def test_writer_survives_random_faults(faulty_store, seed):
    _, faults, requests = _run(faulty_store, FaultSchedule(seed=seed, rate=0.1, kinds=QUICK_KINDS))
    assert faults > 0, f"{requests} requests, none failed: the schedule tested nothing"


@pytest.mark.parametrize("faulty_store", ["s3"] + (["azure"] if LONG else []), indirect=True)
@pytest.mark.parametrize("seed", [21] + (list(range(22, 26)) if LONG else []))
def test_writer_out_of_retries_fails_typed(faulty_store, seed):
    """Half the requests fail and retries are few: the writer gives up with a typed error at
    some point, and nothing acknowledged before it is lost."""
    url_opts = faulty_store
    schedule = FaultSchedule(seed=seed, rate=0.5, kinds=QUICK_KINDS)

    def fewer_retries(s):
        url, opts, direct, proxy = url_opts(s)
        return url, {**opts, "retry": {"attempts": 2, "base_delay_s": 0.0}}, direct, proxy

    outcome, faults, _ = _run(fewer_retries, schedule)
    assert outcome == "TransientStorageError" and faults > 0


if LONG:  # collected by make test-long only

    @pytest.mark.parametrize("seed", range(100, 106))
    def test_writer_survives_random_faults_with_hangs(faulty_store, seed):
        """Every kind, timeouts included, more often, more steps."""
        _, faults, _ = _run(faulty_store, FaultSchedule(seed=seed, rate=0.15), steps=8)
        assert faults > 0
