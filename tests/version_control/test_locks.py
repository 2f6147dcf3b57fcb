"""Branch locks between processes, and branch creation by concurrent writers."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import lakeformat
from lakeformat.constants import FIRST_COMMIT_ID
from lakeformat.errors import LockedError
from lakeformat.version_control.locks import lock_key

from ._helpers import REPO

HOLDER = r'''
import sys, time, lakeformat
ds = lakeformat.load(sys.argv[1])
ds.x.append(99)           # flushed, not committed: readers see it
print("READY", flush=True)
time.sleep(float(sys.argv[2]))
'''


def _spawn(code: str, *args: str, env=None) -> subprocess.Popen:
    import os

    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO)
    e.update(env or {})
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)


def _make(path: str) -> None:
    ds = lakeformat.empty(path, overwrite=True, lock=False)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(5))
    ds.commit("base")


def test_second_writer_gets_locked_error_and_readers_are_not_blocked(tmp_path):
    path = str(tmp_path / "ds")
    _make(path)
    # a short validity: the holder's refresh thread must keep the lock alive past it
    # (2 s, refreshed every 0.67 s: the slack lets a loaded machine's refresher run late)
    p = _spawn(HOLDER, path, "6", env={"LAKEFORMAT_LOCK_VALIDITY": "2"})
    try:
        assert p.stdout.readline().strip() == "READY"
        time.sleep(2.5)
        with pytest.raises(LockedError) as e:
            lakeformat.load(path)
        assert f"pid {p.pid}" in str(e.value) and "main" in str(e.value)
        ro = lakeformat.load(path, read_only=True)
        assert ro.x.numpy().ravel().tolist() == [0, 1, 2, 3, 4, 99]
        # another branch is free to write
        ds = lakeformat.load(path, lock=False)
        ds.checkout("side", create=True)
        ds.x.append(7)
        ds.commit("side work")
    finally:
        p.wait(timeout=30)
    ds = lakeformat.load(path)  # the holder exited and released it
    assert ds.x.numpy().ravel().tolist() == [0, 1, 2, 3, 4, 99]


def test_lock_of_dead_or_expired_writer_is_taken_over(tmp_path):
    path = str(tmp_path / "ds")
    _make(path)
    p = _spawn(HOLDER, path, "60")
    assert p.stdout.readline().strip() == "READY"
    p.kill()
    p.wait()
    lakeformat.load(path).x.append(1)  # the dead pid's lock is stale
    # a writer on another host: only its expiry frees the lock
    storage = lakeformat.load(path, read_only=True).storage
    storage.read_only = False
    from lakeformat.version_control.locks import release_all

    def foreign_lock(expires: float) -> None:
        record = {"owner": "elsewhere", "host": socket.gethostname() + "-other", "pid": 1, "expires": expires}
        storage.set(lock_key("main"), json.dumps(record).encode())

    release_all()
    # no fixed sleep: a loaded machine once took over a 1 s validity before the assert ran
    foreign_lock(time.time() + 300.0)
    with pytest.raises(LockedError, match="host"):
        lakeformat.load(path)
    foreign_lock(time.time() - 0.1)
    lakeformat.load(path).x.append(2)


MAKER = r'''
import sys, lakeformat
path, who, base = sys.argv[1], sys.argv[2], sys.argv[3]
ds = lakeformat.load(path, lock=False)
for j in range(3):
    ds.checkout(base)
    ds.checkout(f"{who}-{j}", create=True)
    ds.x.append(j)
    ds.commit(f"{who} {j}")
print("OK")
'''


def test_concurrent_branch_creation_is_never_lost(tmp_path):
    path = str(tmp_path / "ds")
    _make(path)
    base = lakeformat.load(path, read_only=True).commit_id
    procs = [_spawn(MAKER, path, f"w{i}", base) for i in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    ds = lakeformat.load(path, read_only=True)
    want = {"main"} | {f"w{i}-{j}" for i in range(4) for j in range(3)}
    assert set(ds.branches) == want
    tree = ds.version_state.tree
    for b in want - {"main"}:
        ds.checkout(b)
        assert [e["message"] for e in ds.log()][0].startswith(b.split("-")[0])
        assert tree.commits[tree.branches[b]]["parent"] in tree.commits
    # every node's children list names only nodes that exist, and every node is reachable
    reach, stack = set(), [FIRST_COMMIT_ID]
    while stack:
        c = stack.pop()
        reach.add(c)
        stack += tree.commits[c]["children"]
    assert reach == set(tree.commits)
