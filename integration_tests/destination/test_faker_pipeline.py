"""A real Airbyte source into destination-deeplake: airbyte-source-faker (PyPI, its own venv,
airbyte-cdk<7) piped into `destination-deeplake write`, per sync mode; then PyAirbyte."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

import airbyte_cdk  # noqa: F401 - required: a missing CDK fails the run, never skips it
# PyAirbyte reads these when it is imported: no registry lookups, no telemetry
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

import lakeformat
from lakeformat import temporal

REPO = Path(__file__).resolve().parents[2]
COUNT = 50


@pytest.fixture(scope="session")
def faker_exe() -> str:
    out = subprocess.run(["bash", str(REPO / "scripts" / "setup_faker_venv.sh")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def destination_exe(tmp_path_factory) -> str:
    found = shutil.which("destination-deeplake")
    if found:
        return found
    wrapper = tmp_path_factory.mktemp("bin") / "destination-deeplake"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -m connectors.destination_deeplake "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(wrapper)


@pytest.fixture(scope="session")
def faker_catalog(faker_exe, tmp_path_factory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("faker")
    (d / "c.json").write_text(json.dumps({"count": COUNT, "seed": 42}))
    out = subprocess.run([faker_exe, "discover", "--config", str(d / "c.json")], capture_output=True, text=True, timeout=300, check=True)
    return next(json.loads(line)["catalog"] for line in out.stdout.splitlines() if '"CATALOG"' in line)


def configured(catalog: dict[str, Any], mode: str, generation: int = 1, minimum: int = 0, sync_id: int = 1) -> dict[str, Any]:
    return {"streams": [{
        "stream": s, "sync_mode": "incremental" if mode != "overwrite" else "full_refresh",
        "destination_sync_mode": mode, "cursor_field": ["updated_at"], "primary_key": [["id"]],
        "generation_id": generation, "minimum_generation_id": minimum, "sync_id": sync_id,
    } for s in catalog["streams"]]}


@pytest.fixture(scope="session")
def faker_reads(faker_exe, faker_catalog, tmp_path_factory) -> List[bytes]:
    """Two reads of the source (the sync mode is the destination's business: faker's output is
    the same for every mode), reused by every test."""
    d = tmp_path_factory.mktemp("faker-reads")
    (d / "c.json").write_text(json.dumps({"count": COUNT, "seed": 42}))
    (d / "cat.json").write_text(json.dumps(configured(faker_catalog, "append")))
    return [subprocess.run([faker_exe, "read", "--config", str(d / "c.json"), "--catalog", str(d / "cat.json")],
                           capture_output=True, timeout=300, check=True).stdout for _ in range(2)]


def sync(source_output: bytes, destination_exe: str, work: Path, lake: Path, cat: Dict[str, Any]):
    """source-faker's recorded output | destination-deeplake write; returns (source records, destination output)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "d.json").write_text(json.dumps({"path": str(lake), "flush_every_records": 40}))
    (work / "cat.json").write_text(json.dumps(cat))
    dst = subprocess.run([destination_exe, "write", "--config", str(work / "d.json"), "--catalog", str(work / "cat.json")],
                         input=source_output, capture_output=True, timeout=300)
    assert dst.returncode == 0, dst.stderr.decode()[-3000:] + dst.stdout.decode()[-3000:]
    out = [json.loads(line) for line in dst.stdout.splitlines()]
    records = [json.loads(line)["record"] for line in source_output.splitlines() if line.startswith(b'{"type":"RECORD"')]
    return records, out


def _values(ds, name):
    from connectors.destination_deeplake import schema as S

    t = ds[name]
    kind = t.info.get("airbyte_kind", S.JSON)
    return [S.value_of(kind, v) for v in t.numpy(aslist=True)]


def _log(ds):
    from lakeformat.version_control import api as vc

    return vc.log(ds)


@pytest.mark.parametrize("mode", ["append", "append_dedup", "overwrite"])
def test_faker_into_lake(mode, faker_reads, destination_exe, faker_catalog, tmp_path):
    lake = tmp_path / "lake"
    first, out1 = sync(faker_reads[0], destination_exe, tmp_path / "s1", lake, configured(faker_catalog, mode, 1, 1 if mode == "overwrite" else 0, 1))
    states = [m for m in out1 if m["type"] == "STATE"]
    assert states and sum(m["state"]["destinationStats"]["recordCount"] for m in states) == len(first) == 3 * COUNT
    assert all(m["type"] in ("STATE", "LOG") for m in out1)
    second, _ = sync(faker_reads[1], destination_exe, tmp_path / "s2", lake, configured(faker_catalog, mode, 2, 2 if mode == "overwrite" else 0, 2))
    users = lakeformat.load(str(lake / "users"), read_only=True)
    expected_rows = {"append": 2 * COUNT, "append_dedup": COUNT, "overwrite": COUNT}[mode]
    assert len(users) == expected_rows
    ids = _values(users, "id")
    if mode != "append":
        assert sorted(ids) == list(range(1, COUNT + 1))
    # values: the last sync's record of each id, timestamps as the same instants
    latest = {r["data"]["id"]: r["data"] for r in second if r["stream"] == "users"}
    names, updated, address = _values(users, "name"), _values(users, "updated_at"), _values(users, "address")
    for i, uid in enumerate(ids):
        if mode == "append" and i < COUNT:
            continue
        src = latest[uid]
        assert names[i] == src["name"] and address[i] == src["address"]
        assert updated[i] == temporal.to_micros(src["updated_at"], "timestamp")
    assert _values(users, "_airbyte_generation_id")[-1] == 2
    assert _values(users, "_airbyte_meta")[-1] == {"sync_id": 2, "changes": []}
    # lineage: one commit per sync and dataset, naming the sync, the stream, counts and the state
    log = _log(users)
    assert len(log) == 2
    assert "sync 2: stream users" in log[0]["message"] and f"{COUNT} written" in log[0]["message"] and "last state" in log[0]["message"]
    assert "sync 1: stream users" in log[1]["message"]
    cli = subprocess.run([sys.executable, "-m", "lakeformat.cli", "log", str(lake / "users")], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert cli.returncode == 0 and "sync 2: stream users" in cli.stdout
    for name in ("products", "purchases"):
        assert len(lakeformat.load(str(lake / name), read_only=True)) == expected_rows


def test_pyairbyte_drives_the_destination(faker_exe, destination_exe, tmp_path, monkeypatch):
    import airbyte as ab
    source = ab.get_source("source-faker", config={"count": COUNT, "seed": 42}, local_executable=faker_exe)
    source.select_all_streams()
    lake = tmp_path / "lake"
    destination = ab.get_destination("destination-deeplake", config={"path": str(lake)}, local_executable=destination_exe)
    result = destination.write(source, cache=False)
    assert result is not None
    users = lakeformat.load(str(lake / "users"), read_only=True)
    assert len(users) == COUNT
    assert sorted(_values(users, "id")) == list(range(1, COUNT + 1))
    assert "stream users" in _log(users)[0]["message"]
