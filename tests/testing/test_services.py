"""Each real service starts, answers its real client, and stops cleanly.

Run with ``pytest -p tests.support.pytest_plugin tests/testing``.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fsspec
import pytest

from tests.support import services

PAYLOAD = b"lakeformat \x00\x01\x02 round trip" * 100


def _roundtrip(url: str, storage_options: dict) -> None:
    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    fs.pipe(f"{root}/a/chunk-0", PAYLOAD)
    fs.pipe(f"{root}/a/chunk-1", b"second")
    with fs.open(f"{root}/meta.json", "wb") as fh:
        fh.write(b'{"version": 1}')

    assert fs.cat(f"{root}/a/chunk-0") == PAYLOAD
    assert fs.cat_file(f"{root}/a/chunk-0", start=10, end=14) == PAYLOAD[10:14]
    with fs.open(f"{root}/meta.json", "rb") as fh:
        assert fh.read() == b'{"version": 1}'
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.find(root))
    assert names == ["chunk-0", "chunk-1", "meta.json"]

    fs.rm(f"{root}/a/chunk-1")
    fs.invalidate_cache()
    assert not fs.exists(f"{root}/a/chunk-1")


# --------------------------------------------------------------------------- object stores


def test_s3_roundtrip_through_s3fs(s3_url):
    url, options = s3_url
    assert url.startswith("s3://")
    assert options["client_kwargs"]["endpoint_url"].startswith("http://127.0.0.1:")
    _roundtrip(url, options)


def test_s3_url_gives_fresh_bucket_per_test(s3_server, s3_url):
    url, options = s3_url
    fs, root = fsspec.core.url_to_fs(url, **options)
    bucket = root.split("/", 1)[0]
    assert fs.ls(bucket, refresh=True) == []


def test_latency_proxy_delays_each_request(s3_server):
    bucket = s3_server.make_bucket(f"latency-{uuid.uuid4().hex[:8]}")
    client_direct = s3_server.boto3_client()
    client_direct.put_object(Bucket=bucket, Key="k", Body=b"v")

    delay = 0.05
    proxy = s3_server.latency_proxy(delay)
    client = s3_server.boto3_client(proxy.endpoint_url)
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"  # warm the connection

    n = 5
    start = time.perf_counter()
    for _ in range(n):
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    elapsed = time.perf_counter() - start
    assert elapsed >= n * delay
    assert proxy.requests_delayed >= n + 1

    # A large upload in many chunks still pays one delay, not one per chunk: one request on
    # one connection, its 4 MiB body sent in 64 KiB pieces, no Expect header.
    body = os.urandom(4 * 1024 * 1024)
    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
    before = proxy.requests_delayed
    conn.putrequest("PUT", f"/{bucket}/big")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    for i in range(0, len(body), 64 * 1024):
        conn.send(body[i : i + 64 * 1024])
    assert conn.getresponse().status == 200
    conn.close()
    assert proxy.requests_delayed - before == 1
    assert client_direct.get_object(Bucket=bucket, Key="big")["Body"].read() == body
    # boto3's upload sends `Expect: 100-continue`: client bytes that follow server bytes count
    # as a new exchange, so the body after "100 Continue" pays a second delay. moto's server
    # sends "100 Continue" twice, and when the second lands after the body has started, a
    # third (3 in 4 of 6 runs here, and once in a full `make test`); a retried attempt pays
    # again. Never one delay per piece of the body (64 of them here).
    attempts = []
    client.meta.events.register("before-send.s3.PutObject", lambda **kw: attempts.append(1))
    before = proxy.requests_delayed
    client.put_object(Bucket=bucket, Key="big2", Body=body)
    assert 1 <= proxy.requests_delayed - before <= 4 * len(attempts), (proxy.requests_delayed - before, len(attempts))

    proxy.stop()
    s3fs_opts = s3_server.storage_options_for(proxy.endpoint_url)
    assert s3fs_opts["client_kwargs"]["endpoint_url"] == proxy.endpoint_url


def test_azure_roundtrip_through_adlfs(az_url):
    url, options = az_url
    assert url.startswith("az://")
    assert "BlobEndpoint=http://127.0.0.1:" in options["connection_string"]
    _roundtrip(url, options)


def test_azure_abfs_protocol_reads_same_blobs(azure_server, az_url):
    url, options = az_url
    fs, root = fsspec.core.url_to_fs(url, **options)
    fs.pipe(f"{root}/x", b"shared")
    abfs, abfs_root = fsspec.core.url_to_fs("abfs://" + url[len("az://"):], **options)
    assert abfs.cat(f"{abfs_root}/x") == b"shared"


def test_gcs_roundtrip_through_gcsfs(gcs_url):
    url, options = gcs_url
    assert url.startswith("gs://")
    assert os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "false"
    start = time.perf_counter()
    _roundtrip(url, options)
    # With the experimental HNS support on, each bucket call waits ~60 s.
    assert time.perf_counter() - start < 30


def test_gcs_uploads_keep_every_byte(gcs_url):
    """The emulator as shipped drops the last byte of an upload ending in b"\\r" (its multipart
    parser): the fixture runs it with a byte-exact one, for gcsfs's LF framing and for
    google-cloud-storage's CRLF framing alike."""
    import gcsfs
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    url, options = gcs_url
    root = url[len("gs://"):]
    fs = gcsfs.GCSFileSystem(**options)
    bodies = [b"x\r", b"\r", b"\r\n", b"x\n", b"--==0==\r", bytes(range(256)) + b"\r", b""]
    for i, body in enumerate(bodies):
        fs.pipe_file(f"{root}/lf/{i}", body)
        assert fs.cat_file(f"{root}/lf/{i}") == body, body
    bucket, _, prefix = root.partition("/")
    client = storage.Client(credentials=AnonymousCredentials(), project=options["project"],
                            client_options={"api_endpoint": options["endpoint_url"]})
    for i, body in enumerate(bodies):
        blob = client.bucket(bucket).blob(f"{prefix}/crlf/{i}")
        blob.upload_from_string(body)
        assert blob.download_as_bytes() == body, body


# --------------------------------------------------------------------------- SQL


def _sql_roundtrip(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "people",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("score", sa.Float),
    )
    try:
        meta.create_all(engine)
        rows = [{"id": i, "name": f"user-{i}", "score": i / 2} for i in range(1, 501)]
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=100).execute(
                sa.select(table).order_by(table.c.id)
            )
            got = [dict(r._mapping) for r in result]
        assert got == rows
        reflected = sa.inspect(engine).get_columns("people")
        assert [c["name"] for c in reflected] == ["id", "name", "score"]
    finally:
        engine.dispose()


def test_postgres_sql_roundtrip(postgres_server):
    name = f"db_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    assert url == postgres_server.url(name)
    assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert postgres_server.create_database(name) == url  # idempotent
    _sql_roundtrip(url)


def test_mariadb_sql_roundtrip(mariadb_server):
    name = f"db_{uuid.uuid4().hex[:8]}"
    url = mariadb_server.create_database(name)
    assert url.startswith("mysql+pymysql://root@127.0.0.1:")
    assert mariadb_server.create_database(name) == url  # idempotent
    _sql_roundtrip(url)


# --------------------------------------------------------------------------- Ray


def test_ray_runs_a_remote_task(ray_cluster):
    import ray

    @ray.remote
    def square(x: int) -> int:
        return x * x

    assert ray.get([square.remote(i) for i in range(8)]) == [i * i for i in range(8)]
    assert ray.cluster_resources()["CPU"] == 2
    assert ray_cluster.address.startswith("127.0.0.1:")


# --------------------------------------------------------------------------- Docker


def test_docker_engine_answers_version(docker_engine):
    assert docker_engine.env["DOCKER_HOST"] == f"unix://{docker_engine.socket_path}"
    out = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        env=docker_engine.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out and out[0].isdigit()
    assert docker_engine.client().ping() is True


@pytest.mark.slow_docker
def test_docker_base_image_runs_python(docker_engine):
    image = docker_engine.ensure_base_image("lakeformat-test-base:bookworm")
    assert docker_engine.ensure_base_image(image) == image  # second call is a no-op
    out = docker_engine.docker(
        "run", "--rm", "--network", "none", image, "python3", "-c", "print(1)", timeout=120
    )
    assert out.strip() == "1"
    count_certs = (
        "import venv, ensurepip, ssl; "
        "print(open('/etc/ssl/certs/ca-certificates.crt').read().count('BEGIN'))"
    )
    out = docker_engine.docker(
        "run", "--rm", "--network", "none", image, "python3", "-c", count_certs, timeout=120
    )
    assert int(out.strip()) > 10


# --------------------------------------------------------------------------- lifecycle


def test_stop_kills_process_and_removes_tmp_dir():
    server = services.MotoS3().start()
    pid, tmp_dir, port = server.process.pid, server.tmp_dir, server.port
    assert Path(tmp_dir).is_dir()
    server.stop()
    server.stop()  # idempotent
    assert not server.running
    assert not Path(tmp_dir).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not services._port_open(port)


class _CrashingService(services.ServiceProcess):
    name = "crasher"
    start_timeout = 10.0

    def _command(self) -> list[str]:
        return [sys.executable, "-c", "import sys; print('fatal: no such thing', flush=True); sys.exit(3)"]


class _SilentService(services.ServiceProcess):
    name = "silent"
    start_timeout = 1.0

    def _command(self) -> list[str]:
        return [sys.executable, "-c", "import time; print('never listens', flush=True); time.sleep(60)"]


def test_start_failure_reports_exit_code_and_log_tail():
    service = _CrashingService()
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*fatal: no such thing"):
        service.start()
    assert service.tmp_dir is None and not service.running


def test_start_timeout_reports_log_tail_and_kills_process():
    service = _SilentService()
    with pytest.raises(RuntimeError, match=r"(?s)not ready after 1 s.*never listens"):
        service.start()
    assert not service.running


def test_services_module_imports_only_stdlib():
    code = (
        "import sys, importlib.util\n"
        # the package alone, from its files: not through lakeformat/__init__.py
        f"spec = importlib.util.spec_from_file_location('svc', {services.__file__!r},\n"
        f"    submodule_search_locations=[{os.path.dirname(services.__file__)!r}])\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['svc'] = mod; spec.loader.exec_module(mod)\n"
        "assert mod.MotoS3 and mod.Postgres and mod.DockerEngine and mod.Ray\n"
        "heavy = {'boto3', 'botocore', 's3fs', 'adlfs', 'gcsfs', 'fsspec', 'sqlalchemy', 'psycopg',\n"
        "         'pymysql', 'ray', 'docker', 'azure', 'numpy', 'lakeformat', 'moto'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
