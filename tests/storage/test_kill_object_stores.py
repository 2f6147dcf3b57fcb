"""Write paths killed (SIGKILL) at their storage writes on an object store (moto's S3): the
format's append and commit (tests/core/kill_writer.py scenarios, through
`check_kill_path(..., store=S3KillStore)`), and the Airbyte destination's append sync
(tests/connectors/test_kill_destination.py's checks, its dataset on S3). The kill switch
counts the object store's mutations (PUT, DELETE, conditional PUT; a batch of PUTs per
object, a kill mid-batch lets the objects before it land). After each kill: the dataset opens,
verifies, holds the state of its last acknowledged step (or the next one), and a rerun
completes. The default run samples the kill points; LAKEFORMAT_KILL_EXHAUSTIVE=1 (`make
test-long`) tries every one.
"""
from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from tests.connectors import test_kill_destination as KD
from tests.connectors.destination.helpers import write
from tests.core.kill_harness import check_kill_path, kill_points, recorded_writes, run_call

# kill points per path in `make test`: the write in the middle (a point costs 30-60 s of
# requests to moto on a busy 2-core machine: the killed run, verify, the state of every
# branch, a rerun); `make test-long` (LAKEFORMAT_KILL_EXHAUSTIVE=1) tries every one
SAMPLE = 1


class S3KillStore:
    """`check_kill_path`'s datasets under one prefix of a moto bucket. Children find the
    server through the AWS_* environment (botocore's AWS_ENDPOINT_URL), as the test does."""

    def __init__(self, server: Any, bucket: str) -> None:
        import s3fs

        self.bucket = bucket
        self.root = f"{bucket}/{uuid.uuid4().hex[:10]}"
        self.env: Dict[str, str] = {"AWS_ENDPOINT_URL": server.endpoint_url, "AWS_ACCESS_KEY_ID": server.access_key,
                                    "AWS_SECRET_ACCESS_KEY": server.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}
        self.fs = s3fs.S3FileSystem(**server.storage_options, skip_instance_cache=True)

    def path(self, name: str) -> str:
        return f"s3://{self.root}/{name}"

    def _find(self, path: str) -> list:
        self.fs.invalidate_cache()
        return list(self.fs.find(path.replace("s3://", "")))

    def copy(self, src: str, dst: str) -> str:
        s, d = src.replace("s3://", ""), dst.replace("s3://", "")
        found = self._find(src)
        if found:
            self.fs.copy(found, [d + f[len(s):] for f in found])
        return dst

    def drop_locks(self, path: str) -> None:
        locks = self._find(path.rstrip("/") + "/locks")
        if locks:
            self.fs.rm(locks)

    def remove(self, path: str) -> None:
        found = self._find(path)
        if found:
            self.fs.rm(found)


@pytest.fixture
def s3_kill(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3KillStore]:
    store = S3KillStore(s3_server, s3_server.make_bucket("kills"))
    for k, v in store.env.items():
        monkeypatch.setenv(k, v)  # this process's checks (verify, state_of) reach the same server
    yield store
    store.remove(f"s3://{store.root}")


@pytest.mark.parametrize("scenario", ["append", "commit"])
def test_format_paths_killed_at_every_write_on_s3(tmp_path: Path, s3_kill: S3KillStore, scenario: str) -> None:
    seen = check_kill_path(tmp_path, scenario, sample=SAMPLE, store=s3_kill)
    assert seen["points"] >= min(seen["writes"], SAMPLE), seen
    assert seen["before"] + seen["after"] == seen["points"]


def _sync(s3: S3KillStore, tmp: Path, lake: str, msgs: list, kill_at: int, tag: str, record: str = None) -> tuple:
    cfg, cat = tmp / f"{tag}.cfg.json", tmp / f"{tag}.cat.json"
    cfg.write_text(json.dumps({"path": lake, "flush_every_records": KD.FLUSH_EVERY}))
    cat.write_text(json.dumps(KD.catalog_for("append", 2, 2)))
    out = tmp / f"{tag}.out"
    rc = run_call(KD.CHILD, [str(cfg), str(cat), KD.write_lines(tmp / f"{tag}.in", msgs), str(out), str(tmp / f"{tag}.log")],
                  kill_at, record, env=s3.env)
    return rc, out


def _log(tmp: Path, tag: str) -> str:
    p = tmp / f"{tag}.log"
    return p.read_text()[-3000:] if p.exists() else ""


def test_destination_append_killed_at_its_writes_on_s3(tmp_path: Path, s3_kill: S3KillStore) -> None:
    mode = "append"
    template = s3_kill.path("template/lake")
    write({"path": template, "flush_every_records": KD.FLUSH_EVERY}, KD.catalog_for(mode, 1, 1), KD.messages(KD.first_sync()))
    s3_kill.drop_locks(f"{template}/{KD.STREAM}")
    msgs = KD.messages(KD.second_sync())
    full = s3_kill.copy(template, s3_kill.path("full/lake"))
    rec = str(tmp_path / "record.json")
    rc, out = _sync(s3_kill, tmp_path, full, msgs, 0, "sync", rec)
    assert rc == 0, f"the recording sync failed (exit {rc}): {_log(tmp_path, 'sync')}"
    assert KD.acked(out) == KD.SECOND
    KD.check_final(mode, f"{full}/{KD.STREAM}", KD.SECOND)
    n_writes = recorded_writes(rec)
    assert n_writes > 20, n_writes
    points = kill_points(n_writes, SAMPLE)
    for k in points:
        lake = s3_kill.copy(template, s3_kill.path(f"k{k}/lake"))
        path = f"{lake}/{KD.STREAM}"
        rc, out = _sync(s3_kill, tmp_path, lake, msgs, k, f"k{k}")
        assert rc == -signal.SIGKILL, f"the sync meant to die at write {k} of {n_writes} exited {rc}: {_log(tmp_path, f'k{k}')}"
        pos = KD.acked(out)
        try:
            KD.check_killed(mode, path, pos)
        except AssertionError as e:
            raise AssertionError(f"killed at write {k} of {n_writes} (acked {pos}): {e}") from None
        rc, _ = _sync(s3_kill, tmp_path, lake, KD.resend_from(msgs, pos), 0, f"k{k}.rerun")
        assert rc == 0, f"the rerun after a kill at write {k} of {n_writes} failed: {_log(tmp_path, f'k{k}.rerun')}"
        try:
            KD.check_final(mode, path, pos)
        except AssertionError as e:
            raise AssertionError(f"after a kill at write {k} of {n_writes} (acked {pos}) and a rerun: {e}") from None
        s3_kill.remove(lake)
    assert points
