"""Object stores: S3 (moto's server) with a latency proxy, Azure Blob (azurite), GCS (gcp-storage-emulator)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings


from ._base import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, LOOPBACK, ServiceProcess, _auto_install, install_script, services_dir

# --------------------------------------------------------------------------- S3 (moto)


class MotoS3(ServiceProcess):
    """A moto S3 server (``moto_server -H 127.0.0.1 -p PORT``).

    Attributes: ``endpoint_url``, ``storage_options`` (fsspec/s3fs keyword
    arguments), ``make_bucket(name)``, ``latency_proxy(delay_s)``.
    """

    name = "moto-s3"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self) -> None:
        super().__init__()
        self._proxies: list[LatencyProxy] = []

    def _command(self) -> list[str]:
        exe = shutil.which("moto_server")
        base = [exe] if exe else [sys.executable, "-m", "moto.server"]
        return base + ["-H", self.host, "-p", str(self.port)]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("AWS_ACCESS_KEY_ID", self.access_key)
        env.setdefault("AWS_SECRET_ACCESS_KEY", self.secret_key)
        return env

    def _ready(self) -> bool:
        # moto's own health endpoint answers once the WSGI app is serving.
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2) as resp:
            return resp.status == 200

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def storage_options_for(self, endpoint_url: str) -> dict:
        """s3fs options for any endpoint in front of this server (e.g. a LatencyProxy)."""
        # No region_name in client_kwargs: moto then rejects bucket creation
        # with an invalid location-constraint error.
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": endpoint_url},
        }

    @property
    def storage_options(self) -> dict:
        return self.storage_options_for(self.endpoint_url)

    def boto3_client(self, endpoint_url: str | None = None):
        """A plain boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (idempotent) and return it."""
        client = self.boto3_client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    def latency_proxy(self, delay_s: float) -> "LatencyProxy":
        """Start a LatencyProxy in front of this server; it stops with the server."""
        assert self.port is not None, "start() the server first"
        proxy = LatencyProxy(self.port, delay_s).start()
        self._proxies.append(proxy)
        return proxy

    def stop(self) -> None:
        for proxy in self._proxies:
            proxy.stop()
        self._proxies.clear()
        super().stop()


class LatencyProxy:
    """A loopback TCP proxy that delays each request from the client by ``delay_s``.

    With ``per_chunk=False`` (default) the delay is applied once per request:
    before forwarding the first client bytes after the server has answered
    (or after the connection opened), so an HTTP keep-alive connection pays
    ``delay_s`` per request however large its body. With ``per_chunk=True``
    every chunk read from the client is delayed. Responses are not delayed.
    At most ``max_connections`` connections are served at once; the rest wait
    in the listen backlog.

    Example::

        proxy = LatencyProxy(s3.port, 0.020).start()
        opts = s3.storage_options_for(proxy.endpoint_url)
    """

    def __init__(
        self,
        target_port: int,
        delay_s: float,
        *,
        target_host: str = LOOPBACK,
        max_connections: int = 64,
        chunk_size: int = 64 * 1024,
        per_chunk: bool = False,
    ) -> None:
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self.target_host = target_host
        self.target_port = target_port
        self.delay_s = delay_s
        self.per_chunk = per_chunk
        self.chunk_size = chunk_size
        self.host = LOOPBACK
        self.port: int | None = None
        self.requests_delayed = 0
        self._slots = threading.BoundedSemaphore(max_connections)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "LatencyProxy":
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="latency-proxy", daemon=True)
        self._accept_thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                self._slots.release()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            try:
                upstream = socket.create_connection((self.target_host, self.target_port), timeout=10)
            except OSError:
                client.close()
                return
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.update((client, upstream))
            answered = threading.Event()
            answered.set()  # the first request on a connection is delayed too
            back = threading.Thread(target=self._pump_back, args=(upstream, client, answered), daemon=True)
            back.start()
            self._pump_forward(client, upstream, answered)
            back.join()
            with self._lock:
                self._conns.difference_update((client, upstream))
            client.close()
            upstream.close()
        finally:
            self._slots.release()

    def _pump_forward(self, src: socket.socket, dst: socket.socket, answered: threading.Event) -> None:
        try:
            while True:
                data = src.recv(self.chunk_size)
                if not data:
                    break
                if self.per_chunk or answered.is_set():
                    answered.clear()
                    self.requests_delayed += 1
                    if self.delay_s:
                        time.sleep(self.delay_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _pump_back(self, src: socket.socket, dst: socket.socket, answered: threading.Event) -> None:
        try:
            while True:
                data = src.recv(self.chunk_size)
                if not data:
                    break
                dst.sendall(data)
                answered.set()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


# --------------------------------------------------------------------------- Azure (azurite)


class Azurite(ServiceProcess):
    """Azurite's blob service (npm ``azurite``), with the well-known dev account.

    Attributes: ``endpoint_url`` (``http://127.0.0.1:PORT/devstoreaccount1``),
    ``connection_string``, ``storage_options`` (adlfs keyword arguments),
    ``make_container(name)``.
    """

    name = "azurite"
    account_name = AZURITE_ACCOUNT_NAME
    account_key = AZURITE_ACCOUNT_KEY

    def _binary(self) -> str:
        exe = services_dir() / "azurite" / "node_modules" / ".bin" / "azurite-blob"
        if not exe.exists():
            _auto_install("azurite")
        if not exe.exists():
            raise RuntimeError(f"{exe} not found; run `bash {install_script()}`")
        return str(exe)

    def _prepare(self) -> None:
        self._exe = self._binary()

    def _command(self) -> list[str]:
        assert self.tmp_dir is not None
        return [
            self._exe,
            "--blobHost", self.host,
            "--blobPort", str(self.port),
            "--location", str(self.tmp_dir / "data"),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]

    def _ready(self) -> bool:
        # Any HTTP answer (even 400 for a bare GET) proves the server is serving.
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}?comp=list", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={self.account_name};"
            f"AccountKey={self.account_key};"
            f"BlobEndpoint={self.endpoint_url};"
        )

    @property
    def storage_options(self) -> dict:
        return {"connection_string": self.connection_string, "account_name": self.account_name}

    def make_container(self, name: str) -> str:
        """Create container ``name`` (idempotent) and return it."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(self.connection_string) as client:
            try:
                client.create_container(name)
            except ResourceExistsError:
                pass
        return name


# --------------------------------------------------------------------------- GCS


_GCS_ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


class GcsEmulator(ServiceProcess):
    """``gcp-storage-emulator`` serving an in-memory GCS on a free port.

    ``start()`` sets ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` (gcsfs reads
    it when it is first imported; left on, every bucket call waits 60 s) and
    ``STORAGE_EMULATOR_HOST`` in ``os.environ``; the previous values come
    back on ``stop()``.

    Attributes: ``endpoint_url``, ``storage_options`` (gcsfs keyword
    arguments), ``make_bucket(name)``.
    """

    name = "gcs-emulator"
    project = "test-project"

    def __init__(self) -> None:
        super().__init__()
        self._saved_env: dict[str, str | None] = {}

    def _command(self) -> list[str]:
        # the emulator's CLI, with uploads parsed byte-exactly (see gcs_emulator_main)
        launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gcs_emulator_main.py")
        return [sys.executable, launcher, "start", "-H", self.host, "--port", str(self.port), "--in-memory"]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(_GCS_ENV)
        env["STORAGE_EMULATOR_HOST"] = self.endpoint_url
        return env

    def _ready(self) -> bool:
        url = f"{self.endpoint_url}/storage/v1/b?project={self.project}"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200

    def start(self) -> "GcsEmulator":
        if self.running:
            return self
        super().start()
        for key, value in {**_GCS_ENV, "STORAGE_EMULATOR_HOST": self.endpoint_url}.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        gcsfs = sys.modules.get("gcsfs")
        if gcsfs is not None and getattr(gcsfs.GCSFileSystem, "__name__", "") == "ExtendedGcsFileSystem":
            warnings.warn(
                "gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set; "
                "bucket operations against the emulator may stall for 60 s. Load "
                "tests.support.pytest_plugin (or set the variable) before importing gcsfs.",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def stop(self) -> None:
        super().stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def storage_options(self) -> dict:
        return {"token": "anon", "endpoint_url": self.endpoint_url, "project": self.project}

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` through the JSON API (idempotent) and return it."""
        req = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project={self.project}",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409: it already exists
                raise RuntimeError(f"creating GCS bucket {name!r} failed: {exc.code} {exc.read()!r}") from exc
        return name
