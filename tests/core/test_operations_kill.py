"""Commit operations killed (SIGKILL) at sampled storage writes (every write with
LAKEFORMAT_KILL_EXHAUSTIVE=1): chunks written by a worker and published by AppendChunks, a
DeleteRows of many rows, a ReplaceTensor. After a kill the dataset opens, verifies, and holds
exactly the state before the operation or after it; the same operations then run to the end.
The write path runs in a child forked by tests/core/kill_harness.py (`run_call`)."""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

import lakeformat
from lakeformat.verify import verify
from tests.core.kill_harness import copy_dataset, kill_points, recorded_writes, run_call, state_of

TARGET = "tests.core.test_operations_kill:run_operations"


def run_operations(path: str, progress: str, states_file: str) -> None:
    """The write path (run in the killed child): one ack line after each operation; with
    `states_file`, the state after each too (the recording run)."""
    from lakeformat.version_control.operations import (
        AppendChunks, DeleteRows, ReplaceTensor, commit_operation, read_version, write_chunks)

    ds = lakeformat.load(path)
    states: List[Any] = []

    def ack() -> None:
        with open(progress, "a") as f:
            f.write("ack\n")
        if states_file:
            states.append(state_of(path))

    n = len(ds)
    m = write_chunks(path, ds.pending_commit_id, {
        "ints": np.arange(100, 130).reshape(30, 1), "txt": [f"w{i}" for i in range(30)],
        "seq": [[np.full(2, i, np.int16)] * (i % 2 + 1) for i in range(30)],
    })
    commit_operation(ds, AppendChunks((m,)), read_version(ds))
    ack()
    n = len(ds)
    commit_operation(ds, DeleteRows.of([i for i in range(n) if i % 3 == 0 or i > n - 5]), read_version(ds))
    ack()
    m = write_chunks(path, ds.pending_commit_id, {"txt": [f"r{i}" for i in range(7)]})
    commit_operation(ds, ReplaceTensor("txt", m), read_version(ds))
    ack()
    if states_file:
        with open(states_file, "w") as f:
            json.dump(states, f)


def _setup(path: str, commit: bool) -> None:
    ds = lakeformat.empty(path, overwrite=True, lock=False)
    with ds:
        ds.create_tensor("ints", dtype="int64", max_chunk_size=60)
        ds.create_tensor("txt", htype="text", max_chunk_size=50)
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int16", max_chunk_size=40)
        ds.extend({
            "ints": np.arange(20).reshape(20, 1),
            "txt": [f"t{i}" * (i % 4) for i in range(20)],
            "seq": [[np.full(2, i, np.int16)] * (i % 3) for i in range(20)],
        })
    if commit:
        ds.commit("base")
        ds.extend({"ints": np.array([[-1]]), "txt": ["head"], "seq": [[np.zeros(2, np.int16)]]})
    ds.close()
    shutil.rmtree(os.path.join(path, "locks"), ignore_errors=True)


def _acks(progress: str) -> int:
    return len(Path(progress).read_text().splitlines()) if os.path.exists(progress) else 0


@pytest.mark.parametrize("commit", [False, True], ids=["fresh", "after_commit"])
def test_kill_commit_operations(tmp_path, commit):
    template = str(tmp_path / "template")
    _setup(template, commit)
    full = copy_dataset(template, str(tmp_path / "full"))
    rec, states_file = str(tmp_path / "rec.json"), str(tmp_path / "states.json")
    assert run_call(TARGET, [full, str(tmp_path / "full.progress"), states_file], 0, rec) == 0
    n_writes = recorded_writes(rec)
    states = [state_of(template)] + json.loads(Path(states_file).read_text())
    assert len(states) == 4 and n_writes > 20
    assert states[2]["main"]["tensors"]["ints"] != states[1]["main"]["tensors"]["ints"]  # the delete took rows
    seen = {"before": 0, "after": 0}
    for k in kill_points(n_writes, 16):
        path = copy_dataset(template, str(tmp_path / f"k{k}"))
        progress = str(tmp_path / f"k{k}.progress")
        rc = run_call(TARGET, [path, progress, ""], k)
        assert rc == -signal.SIGKILL, (k, n_writes, rc)
        j = _acks(progress)
        report = verify(path)
        assert report.ok, (k, n_writes, report.lines())
        st = state_of(path)
        assert st in states[j : j + 2], f"killed at write {k} of {n_writes} after {j} acks: a state no operation made"
        seen["before" if st == states[j] else "after"] += 1
        # still writable: the operations run again, to the end
        assert run_call(TARGET, [path, progress + ".rerun", ""], 0) == 0
        assert verify(path).ok
        shutil.rmtree(path)
    assert seen["before"] and seen["after"], seen
