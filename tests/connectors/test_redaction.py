"""Credentials never reach stored files or output: SQL backfill URLs and the destination's path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.redaction import redact_url, scrub, url_secrets

ROOT = str(Path(__file__).resolve().parents[2])
PW, QPW, TOK, SSL = "hunter2-pw", "qs-pass-77", "tok-abc-123", "ssl-pw-9"


@pytest.mark.parametrize("url, want", [
    ("postgresql+psycopg://me:pw1@db:5432/x", "postgresql+psycopg://me@db:5432/x"),
    ("postgresql://me@db/x?password=pw2&sslmode=require", "postgresql://me@db/x?password=***&sslmode=require"),
    ("mysql+pymysql://db/x?passwd=s-aa&pwd=s-bb&sslpassword=s-cc&api_key=s-dd&X-Amz-Security-Token=s-ee&sig=s-ff&charset=utf8",
     "mysql+pymysql://db/x?passwd=***&pwd=***&sslpassword=***&api_key=***&X-Amz-Security-Token=***&sig=***&charset=utf8"),
    ("s3://AKIAKEY:SECRET%2Fx@bucket/lake", "s3://AKIAKEY@bucket/lake"),
    ("sqlite:///tmp/a.db", "sqlite:///tmp/a.db"),
    ("/local/folder", "/local/folder"),
])
def test_redact_url(url, want):
    got = redact_url(url)
    assert got == want
    for secret in url_secrets(url):
        assert secret not in got


def test_scrub_masks_raw_and_decoded_secrets():
    url = "s3://AKIAKEY:SE%2FCRET@bucket/lake?token=t%2Bk"
    secrets = url_secrets(url)
    assert {"SE%2FCRET", "SE/CRET", "t%2Bk", "t+k"} <= set(secrets)
    assert scrub("failed at s3://AKIAKEY:SE/CRET@bucket (token t+k)", secrets) == "failed at s3://AKIAKEY:***@bucket (token ***)"


def _run(args, **kw):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                          text=True, timeout=180, **kw)


def _assert_nowhere(root: Path, texts: list[str], secrets: list[str]) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for s in secrets:
                assert s.encode() not in data, f"{s!r} stored in {p.relative_to(root)}"
    for t in texts:
        for s in secrets:
            assert s not in t


def test_sql_ingest_never_stores_or_prints_url_secrets(tmp_path):
    import sqlalchemy as sa

    db = tmp_path / "src.db"
    e = sa.create_engine(f"sqlite:///{db}")
    with e.begin() as c:
        c.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
        c.exec_driver_sql("INSERT INTO items VALUES (1, 'a'), (2, 'b')")
    e.dispose()
    url = f"sqlite:///{db}?password={QPW}&x_token={TOK}&sslpassword={SSL}"
    dest = tmp_path / "lake"
    texts = []
    for _ in range(2):  # a second run resumes: lineage read back and written again
        p = _run(["-m", "lakeformat.cli", "ingest", "sql", "--url", url, "--table", "items", "--dest", str(dest), "--no-progress"])
        assert p.returncode == 0, p.stderr
        texts += [p.stdout, p.stderr]
    log = _run(["-m", "lakeformat.cli", "log", str(dest)])
    assert log.returncode == 0, log.stderr
    assert "password=***" in log.stdout
    info = _run(["-m", "lakeformat.cli", "info", str(dest)])
    texts += [log.stdout, log.stderr, info.stdout, info.stderr]
    names = {p.name for p in dest.rglob("*.json")}
    assert {"dataset_info.json", "version_control_info.json", "commit_info.json"} <= names
    _assert_nowhere(dest, texts, [QPW, TOK, SSL])


def test_destination_path_secrets_never_echoed(tmp_path):
    """A path URL carrying credentials: check messages, TRACE and stderr never show them."""
    secret = "SeCrEt-Value-42"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"path": f"s3://AKIAEXAMPLE:{secret}@no-such-bucket-xyz/lake?token={TOK}",
                               "storage_options": {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}, "secret": "opt-secret-1"}}))
    cat = tmp_path / "catalog.json"
    cat.write_text(json.dumps({"streams": [{"stream": {"name": "t", "json_schema": {"type": "object", "properties": {}},
                                                       "supported_sync_modes": ["full_refresh"]},
                                            "sync_mode": "full_refresh", "destination_sync_mode": "append"}]}))
    check = _run(["-m", "connectors.destination_deeplake", "check", "--config", str(cfg)])
    assert '"FAILED"' in check.stdout, check.stdout + check.stderr
    rec = json.dumps({"type": "RECORD", "record": {"stream": "t", "emitted_at": 1, "data": {"a": 1}}})
    write = _run(["-m", "connectors.destination_deeplake", "write", "--config", str(cfg), "--catalog", str(cat)], input=rec + "\n")
    assert write.returncode == 1 and '"TRACE"' in write.stdout
    assert "AKIAEXAMPLE@no-such-bucket-xyz" in write.stdout + check.stdout  # the redacted path is still named
    for out in (check.stdout, check.stderr, write.stdout, write.stderr):
        for s in (secret, TOK, "opt-secret-1"):
            assert s not in out


def test_lakeformat_log_and_info_redact_urls_written_before(tmp_path):
    """Lineage written before writers redacted it: `lakeformat log/info` still never print it."""
    import lakeformat

    path = str(tmp_path / "old")
    ds = lakeformat.empty(path)
    ds.create_tensor("x")
    ds.x.append(1)
    legacy = f"postgresql://me:{PW}@db:5432/x?sslmode=require&password={QPW}&api_key={TOK}"
    ds.info.update({"lakeformat_sql": {"source": {"url": legacy}}})
    ds.commit(f"sql backfill from {legacy} table t")
    log = _run(["-m", "lakeformat.cli", "log", path])
    info = _run(["-m", "lakeformat.cli", "info", path])
    assert log.returncode == 0 and info.returncode == 0, log.stderr + info.stderr
    assert "postgresql://me@db:5432/x?sslmode=require&password=***&api_key=***" in log.stdout
    assert "sslmode=require" in info.stdout
    for out in (log.stdout, info.stdout):
        for s in (PW, QPW, TOK):
            assert s not in out
