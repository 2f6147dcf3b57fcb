"""A bulk pop and a bulk update killed (SIGKILL) at each of their storage writes: the dataset
opens, verifies, and holds exactly the state before the flush or after it; the same writes
then run again to the end. Uses the kill switch and state helpers of tests/core/kill_harness.py,
with a child process of its own (the harness's scenario table belongs to its writer module)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

import lakeformat
from lakeformat.verify import verify
from tests.core.kill_harness import copy_dataset, kill_points, state_of

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, json, numpy as np, lakeformat
from tests.core.kill_harness import install_kill_switch
path, kill_at, progress = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ds = lakeformat.load(path)
count = install_kill_switch(kill_at)
def ack():
    with open(progress, "a") as f:
        f.write("ack\n")
n = len(ds)
with ds:
    ds.pop(sorted({i for i in (0, 2, 3, 4, 9, 15, 21, n - 1) if i < n}))
ack()
with ds:
    m = len(ds)
    ds.ints[[1, 2, m - 1]] = [np.array([-1]), np.array([-2]), np.array([-3])]
    ds.txt[[0, 5]] = ["bulk replaced", "x" * 40]
ack()
print(json.dumps({"writes": count[0]}))
"""


def _setup(path: str, commit: bool) -> None:
    ds = lakeformat.empty(path, overwrite=True, lock=False)
    with ds:
        ds.create_tensor("ints", dtype="int64", max_chunk_size=40)
        ds.create_tensor("txt", htype="text", max_chunk_size=50)
        ds.create_tensor("imgs", htype="image", sample_compression="png", max_chunk_size=400)
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int16", max_chunk_size=30)
        rng = np.random.default_rng(0)
        ds.extend({
            "ints": np.arange(12).reshape(12, 1),
            "txt": [f"t{i}" * (i % 4) for i in range(12)],
            "imgs": [rng.integers(0, 255, (4, 3 + i % 3, 3)).astype(np.uint8) for i in range(12)],
            "seq": [[np.full(2, i, np.int16)] * (i % 3) for i in range(12)],
        })
    if commit:
        ds.commit("base")
    with ds:
        ds.extend({
            "ints": np.arange(12, 24).reshape(12, 1),
            "txt": [f"u{i}" for i in range(12)],
            "imgs": [np.full((5, 5, 3), i, np.uint8) for i in range(12)],
            "seq": [[np.full(2, i, np.int16)] for i in range(12)],
        })
    shutil.rmtree(os.path.join(path, "locks"), ignore_errors=True)


def _run(path: str, kill_at: int, progress: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", CHILD, path, str(kill_at), progress], capture_output=True, text=True,
                          timeout=120, cwd=str(REPO), env=env)


def _acks(progress: str) -> int:
    return len(Path(progress).read_text().splitlines()) if os.path.exists(progress) else 0


@pytest.mark.parametrize("commit", [False, True], ids=["fresh", "after_commit"])
def test_kill_bulk_pop_and_update(tmp_path, commit):
    template = str(tmp_path / "template")
    _setup(template, commit)
    states: List[Any] = [state_of(template)]
    full = copy_dataset(template, str(tmp_path / "full"))
    # the recording run: the state after each flush (by replaying it on copies)
    proc = _run(full, 0, str(tmp_path / "full.progress"))
    assert proc.returncode == 0, proc.stderr
    n_writes = json.loads(proc.stdout.strip().splitlines()[-1])["writes"]
    assert n_writes > 10
    after_first = copy_dataset(template, str(tmp_path / "first"))
    ds = lakeformat.load(after_first)
    n = len(ds)
    ds.pop(sorted({i for i in (0, 2, 3, 4, 9, 15, 21, n - 1) if i < n}))
    ds.close()
    states += [state_of(after_first), state_of(full)]
    assert states[1]["main"]["tensors"]["ints"] != states[0]["main"]["tensors"]["ints"]
    assert states[2]["main"]["tensors"]["ints"][0] == [-1] or states[2]["main"]["tensors"]["ints"][1] == [-1]
    seen = {"before": 0, "after": 0}
    for k in kill_points(n_writes, 14):
        path = copy_dataset(template, str(tmp_path / f"k{k}"))
        progress = str(tmp_path / f"k{k}.progress")
        proc = _run(path, k, progress)
        assert proc.returncode == -signal.SIGKILL, (k, n_writes, proc.returncode, proc.stderr[-2000:])
        j = _acks(progress)
        report = verify(path)
        assert report.ok, (k, n_writes, report.lines())
        st = state_of(path)
        assert st in states[j : j + 2], f"killed at write {k} of {n_writes} after {j} acks: a state no flush made"
        seen["before" if st == states[j] else "after"] += 1
        rerun = _run(path, 0, progress + ".rerun")  # still writable: the same edits run to the end
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert verify(path).ok
        shutil.rmtree(path)
    assert seen["before"] and seen["after"], seen
