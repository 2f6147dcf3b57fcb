"""A `destination-deeplake write` killed (SIGKILL) mid-sync and run again from the last STATE
it emitted: no record lost, and under append_dedup none duplicated."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import airbyte_cdk  # noqa: F401 - required: a missing CDK fails the run, never skips it

import lakeformat
from tests.connectors.destination.helpers import catalog, record, state, stream

REPO = Path(__file__).resolve().parents[3]
N = 300
STATE_EVERY = 30


def source_messages():
    """N records (ids 0..N/2-1, each twice, the second with a later cursor), a state every 30."""
    msgs = []
    for i in range(N):
        msgs.append(record("t", {"id": i % (N // 2), "u": i, "v": f"v{i}"}))
        if (i + 1) % STATE_EVERY == 0:
            msgs.append(state("t", {"pos": i + 1}))
    return msgs


def run_cli(tmp_path: Path, messages, kill_after_states=None):
    """Feed messages to the CLI; SIGKILL it after that many STATE lines. Returns the states."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "connectors.destination_deeplake", "write", "--config", str(tmp_path / "d.json"),
                             "--catalog", str(tmp_path / "cat.json")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)

    def feed():
        try:
            for m in messages:
                proc.stdin.write(json.dumps(m).encode() + b"\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    states = []
    for line in proc.stdout:
        m = json.loads(line)
        if m["type"] == "STATE":
            states.append(m["state"]["stream"]["stream_state"])
            if kill_after_states is not None and len(states) >= kill_after_states:
                proc.kill()
                break
    proc.wait(timeout=120)
    t.join(timeout=10)
    if kill_after_states is None:
        assert proc.returncode == 0
    return states


@pytest.mark.parametrize("mode,kill_after", [("append_dedup", 2), ("append_dedup", 6), ("append", 4)])
def test_killed_sync_resumes_without_loss_or_duplicates(tmp_path, mode, kill_after):
    (tmp_path / "d.json").write_text(json.dumps({"path": str(tmp_path / "lake"), "flush_every_records": 7}))
    (tmp_path / "cat.json").write_text(json.dumps(catalog(stream(
        "t", {"id": {"type": "integer"}, "u": {"type": "integer"}, "v": {"type": "string"}}, mode=mode, pk=[["id"]], cursor=["u"]))))
    msgs = source_messages()
    states = run_cli(tmp_path, msgs, kill_after_states=kill_after)
    assert len(states) == kill_after
    pos = states[-1]["pos"]
    # the source restarts from the last acknowledged state: everything after it, again
    start = next(k for k, m in enumerate(msgs) if m["type"] == "STATE" and m["state"]["stream"]["stream_state"]["pos"] == pos) + 1
    run_cli(tmp_path, msgs[start:])
    ds = lakeformat.load(str(tmp_path / "lake" / "t"), read_only=True)
    rows = list(zip((int(x[0]) for x in ds.id.numpy()), (int(x[0]) for x in ds.u.numpy())))
    if mode == "append_dedup":
        assert len(rows) == N // 2 and len({r[0] for r in rows}) == N // 2
        assert all(u == i + N // 2 for i, u in rows)  # the latest record of each id
    else:
        assert {u for _, u in rows} == set(range(N))  # nothing lost (append is at-least-once)
