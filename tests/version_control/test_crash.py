"""SIGKILL a process at many points inside `commit` and `merge`: the dataset must open at
the state before or the state after, never one between, and `lakeformat verify` must pass."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import lakeformat
from lakeformat.verify import verify

from ._helpers import run_lakeformat

# counts the storage writes of the verb and kills itself (SIGKILL) before write number KILL_AT
CHILD = r'''
import os, signal, sys
import lakeformat
from lakeformat.storage.local import LocalStorage
path, verb, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
ds = lakeformat.load(path)
count = [0]
def hooked(orig):
    def f(self, *a, **k):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return orig(self, *a, **k)
    return f
for m in ("set", "set_many", "delete", "delete_prefix"):
    setattr(LocalStorage, m, hooked(getattr(LocalStorage, m)))
if verb == "commit":
    ds.commit("the commit")
else:
    ds.merge("alt", conflict_resolution="theirs")
print("WRITES", count[0])
'''


def _template(path: str) -> None:
    ds = lakeformat.empty(path, overwrite=True, lock=False)
    ds.create_tensor("x", dtype="int64", max_chunk_size=400)  # several chunks
    ds.create_tensor("t", htype="text")
    ds.extend({"x": np.arange(120), "t": [f"s{i}" for i in range(120)]})
    ds.commit("base")
    ds.checkout("alt", create=True)
    ds.x[3] = -3
    ds.pop(10)
    ds.extend({"x": [500, 501], "t": ["n0", "n1"]})
    ds.create_tensor("y", dtype="float32")
    ds.y.extend(np.arange(len(ds.x), dtype=np.float32))
    ds.commit("alt work")
    ds.checkout("main")
    ds.x[50] = -50
    ds.t[60] = "changed"
    ds.pop(0)
    ds.flush()  # the head's changes are on disk, uncommitted


def _state(path: str) -> dict:
    ds = lakeformat.load(path, read_only=True)
    return {
        "branches": sorted(ds.branches),
        "log": [e["message"] for e in ds.log()],
        "head_changes": ds.has_head_changes,
        "data": {n: [np.asarray(v).tolist() for v in t.numpy(aslist=True)] for n, t in sorted(ds.tensors.items())},
    }


def _copy(src: str, dst: str) -> str:
    shutil.copytree(src, dst)
    shutil.rmtree(f"{dst}/locks", ignore_errors=True)
    return dst


@pytest.mark.parametrize("verb", ["commit", "merge"])
def test_sigkill_during_verb_leaves_before_or_after(tmp_path, verb):
    template = str(tmp_path / "template")
    _template(template)
    before = _state(template)
    full = _copy(template, str(tmp_path / "full"))
    proc = run_lakeformat(CHILD, full, verb, "0")
    assert proc.returncode == 0, proc.stderr
    n_writes = int(proc.stdout.split("WRITES")[1])
    after = _state(full)
    assert after != before
    points = 8 if verb == "commit" else 12
    kill_points = sorted({int(round(x)) for x in np.linspace(1, n_writes, points)})
    seen = {"before": 0, "after": 0}
    for k in kill_points:
        path = _copy(template, str(tmp_path / f"kill{k}"))
        proc = run_lakeformat(CHILD, path, verb, str(k))
        assert proc.returncode == -9, (k, proc.returncode, proc.stderr[-2000:])
        report = verify(path)
        assert report.ok, (k, report.lines())
        state = _state(path)
        assert state in (before, after), f"killed before write {k} of {n_writes}: a state between"
        seen["before" if state == before else "after"] += 1
        # the dataset stays writable: the dead writer's lock is taken over
        ds = lakeformat.load(path)
        ds.commit("next", allow_empty=True)
        lakeformat.load(path, read_only=True).x.numpy()
    assert seen["before"] and seen["after"], seen
