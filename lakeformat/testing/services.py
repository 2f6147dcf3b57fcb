"""Real services for tests: S3, Azure Blob, GCS, PostgreSQL, MariaDB, Ray, Docker.

Each class starts one real server process bound to 127.0.0.1 on a free port,
keeps every byte it writes under its own temporary directory, waits until a
real client call succeeds, and stops the process by its PID on ``stop()`` or
at interpreter exit. Nothing here is a mock.

The binaries come from ``scripts/install_test_services.sh`` (apt + npm) and
the Python packages from the project's ``test`` extra. When a binary is
missing and the process runs as root inside a checkout, ``start()`` runs the
install script once (set ``LAKEFORMAT_TEST_AUTO_INSTALL=0`` to forbid that).

This module imports only the standard library at import time; client
libraries (boto3, sqlalchemy, ray, ...) are imported inside the methods that
need them.

Example::

    from lakeformat.testing.services import MotoS3

    s3 = MotoS3().start()
    s3.make_bucket("data")
    import fsspec
    fs = fsspec.filesystem("s3", **s3.storage_options)
    fs.pipe("data/hello.txt", b"hi")
    s3.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import glob
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Callable, Sequence

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "Azurite",
    "DockerEngine",
    "GcsEmulator",
    "LatencyProxy",
    "MariaDB",
    "MotoS3",
    "Postgres",
    "Ray",
    "ServiceProcess",
    "find_free_port",
    "install_script",
    "repo_root",
    "services_dir",
]

LOOPBACK = "127.0.0.1"

# The Azure storage emulator's published, well-known development account.
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

_LOG_TAIL_CHARS = 4000


# --------------------------------------------------------------------------- paths


def repo_root() -> Path:
    """The checkout this module lives in (``lakeformat/testing/services.py`` -> root)."""
    return Path(__file__).resolve().parents[2]


def services_dir() -> Path:
    """Machine-wide cache for installed test services (gitignored ``.test_services/``).

    Overridable with ``LAKEFORMAT_TEST_SERVICES_DIR``.
    """
    override = os.environ.get("LAKEFORMAT_TEST_SERVICES_DIR")
    return Path(override) if override else repo_root() / ".test_services"


def install_script() -> Path:
    """Path of ``scripts/install_test_services.sh`` in this checkout."""
    return repo_root() / "scripts" / "install_test_services.sh"


_install_lock = threading.Lock()
_install_attempted = False


def _auto_install(what: str) -> None:
    """Run the install script once per process when ``what`` is missing, if allowed."""
    global _install_attempted
    with _install_lock:
        if _install_attempted:
            return
        _install_attempted = True
        script = install_script()
        if os.environ.get("LAKEFORMAT_TEST_AUTO_INSTALL", "1") == "0":
            return
        if not script.is_file() or os.geteuid() != 0:
            return
        print(f"[lakeformat.testing] {what} is missing: running {script}", file=sys.stderr)
        result = subprocess.run(
            ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{script} failed with exit code {result.returncode}:\n"
                f"{result.stdout[-_LOG_TAIL_CHARS:]}"
            )


def _find_binary(name: str, candidates: Sequence[str] = ()) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for pattern in candidates:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    return None


def _require_binary(name: str, candidates: Sequence[str] = (), hint: str = "") -> str:
    """Locate an executable, running the install script once if it is missing."""
    found = _find_binary(name, candidates)
    if found is None:
        _auto_install(name)
        found = _find_binary(name, candidates)
    if found is None:
        raise RuntimeError(
            f"{name!r} not found on PATH or in {list(candidates)}; "
            f"run `bash {install_script()}` as root{hint}"
        )
    return found


# --------------------------------------------------------------------------- helpers


def find_free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path | None, limit: int = _LOG_TAIL_CHARS) -> str:
    if path is None or not path.exists():
        return "(no log file)"
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - limit))
        return fh.read().decode("utf-8", "replace")


def _make_tmp_dir(prefix: str, owner: str | None = None) -> Path:
    # Short paths under /tmp: unix socket paths are limited to 107 bytes.
    path = Path(tempfile.mkdtemp(prefix=f"lf-{prefix}-", dir="/tmp" if os.path.isdir("/tmp") else None))
    if owner is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _chown_tree(path: Path, owner: str) -> None:
    entry = pwd.getpwnam(owner)
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid)


_PR_SET_PDEATHSIG = 1


def _child_setup_factory(death_signal: int | None) -> Callable[[], None] | None:
    """preexec_fn: ask the kernel to signal the child when its parent dies.

    This covers parents killed without running atexit (SIGKILL, ``os._exit``).
    It is only armed when the parent thread is the main thread, because the
    kernel fires it when the creating *thread* exits.
    """
    if death_signal is None or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def setup() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def _wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log_path: Path | None,
    process: subprocess.Popen | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``ready`` until it returns True; raise RuntimeError with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {process.returncode} before it was ready.\n"
                f"--- tail of {log_path} ---\n{_tail(log_path)}"
            )
        try:
            if ready():
                return
        except Exception as exc:  # any client error means "not ready yet"
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise RuntimeError(
                f"{what} was not ready after {timeout:.0f} s{detail}.\n"
                f"--- tail of {log_path} ---\n{_tail(log_path)}"
            )
        time.sleep(interval)


def _run(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600, what: str = "") -> str:
    """Run a command to completion; raise RuntimeError with its output on failure."""
    try:
        result = subprocess.run(
            list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace")
        raise RuntimeError(f"{what or args[0]} timed out after {timeout} s:\n{out[-_LOG_TAIL_CHARS:]}") from None
    out = result.stdout.decode("utf-8", "replace")
    if result.returncode != 0:
        raise RuntimeError(
            f"{what or ' '.join(args)} failed with exit code {result.returncode}:\n{out[-_LOG_TAIL_CHARS:]}"
        )
    return out


# --------------------------------------------------------------------------- base class


class ServiceProcess:
    """One server process: a tmp dir, a log file, readiness polling, stop by PID.

    Subclasses implement ``_command()`` (and may override ``_prepare()``,
    ``_ready()``, ``_after_stop()``). ``start()`` returns ``self`` so that
    ``svc = MotoS3().start()`` reads naturally; the object is also a context
    manager.
    """

    name = "service"
    start_timeout = 30.0
    stop_timeout = 15.0
    #: signal sent by ``stop()``; SIGINT is PostgreSQL's "fast shutdown".
    stop_signal = signal.SIGTERM
    #: a child whose port was taken between find_free_port() and bind is retried.
    port_retries = 3
    #: user that owns the tmp dir (PostgreSQL refuses to run as root).
    dir_owner: str | None = None

    def __init__(self) -> None:
        self.host = LOOPBACK
        self.port: int | None = None
        self.tmp_dir: Path | None = None
        self.log_path: Path | None = None
        self.process: subprocess.Popen | None = None
        self._log_file = None
        self._atexit_registered = False

    # -- hooks
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _prepare(self) -> None:
        """One-time setup in ``tmp_dir`` before the first launch (e.g. initdb)."""

    def _ready(self) -> bool:
        assert self.port is not None
        return _port_open(self.port)

    def _popen_kwargs(self) -> dict:
        return {}

    def _after_stop(self) -> None:
        """Clean-up that must run after the process is gone (unmounts)."""

    # -- lifecycle
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self):
        if self.running:
            return self
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        self.tmp_dir = _make_tmp_dir(self.name, self.dir_owner)
        self.log_path = self.tmp_dir / f"{self.name}.log"
        try:
            self._prepare()
            for attempt in range(self.port_retries):
                self.port = find_free_port()
                self._launch()
                try:
                    _wait_until(
                        self._ready,
                        timeout=self.start_timeout,
                        what=f"{self.name} on {self.host}:{self.port}",
                        log_path=self.log_path,
                        process=self.process,
                    )
                    return self
                except RuntimeError as exc:
                    port_taken = "in use" in str(exc).lower() or "eaddrinuse" in str(exc).lower()
                    self._terminate()
                    if not port_taken or attempt == self.port_retries - 1:
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self) -> None:
        assert self.tmp_dir is not None and self.log_path is not None
        self._log_file = open(self.log_path, "ab")
        kwargs = dict(
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=str(self.tmp_dir),
            start_new_session=True,
            preexec_fn=_child_setup_factory(signal.SIGTERM),
        )
        kwargs.update(self._popen_kwargs())
        try:
            self.process = subprocess.Popen(self._command(), **kwargs)
        except OSError as exc:
            raise RuntimeError(f"could not start {self.name}: {exc}") from exc

    def _terminate(self) -> None:
        """Signal the process group led by our child's PID, then SIGKILL if it lingers."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            for sig, wait in ((self.stop_signal, self.stop_timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if proc is not None:
            # Reap the group's stragglers (children that outlived the leader).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> None:
        """Stop the process by PID and delete the tmp dir. Safe to call twice."""
        self._terminate()
        with contextlib.suppress(Exception):
            self._after_stop()
        if self.tmp_dir is not None and os.environ.get("LAKEFORMAT_KEEP_SERVICE_DIRS") != "1":
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir = None

    def log_tail(self) -> str:
        """The last few KiB of the service's log."""
        return _tail(self.log_path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state}>"


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
        exe = shutil.which("gcp-storage-emulator")
        base = [exe] if exe else [sys.executable, "-m", "gcp_storage_emulator"]
        return base + ["start", "-H", self.host, "--port", str(self.port), "--in-memory"]

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
                "lakeformat.testing.pytest_plugin (or set the variable) before importing gcsfs.",
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


# --------------------------------------------------------------------------- PostgreSQL


class Postgres(ServiceProcess):
    """A throwaway PostgreSQL cluster (initdb + postgres, trust auth, fsync off).

    Runs as user ``postgres`` when started by root (the server refuses root).
    Attributes: ``port``, ``socket_dir``, ``url(db, driver)``,
    ``create_database(name)``.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: abort sessions, then exit
    user = "postgres"
    _bin_candidates = ("/usr/lib/postgresql/*/bin/{name}",)

    def __init__(self) -> None:
        super().__init__()
        self.dir_owner = "postgres" if os.geteuid() == 0 else None

    def _bin(self, name: str) -> str:
        return _require_binary(name, [c.format(name=name) for c in self._bin_candidates])

    @property
    def data_dir(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir

    def _popen_kwargs(self) -> dict:
        if self.dir_owner is None:
            return {}
        entry = pwd.getpwnam(self.dir_owner)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.dir_owner is not None:
            entry = pwd.getpwnam(self.dir_owner)
            env.update(HOME=entry.pw_dir, USER=self.dir_owner, LOGNAME=self.dir_owner)
        env.setdefault("LC_ALL", "C.UTF-8")
        return env

    def _prepare(self) -> None:
        self._postgres = self._bin("postgres")
        self._pg_isready = self._bin("pg_isready")
        initdb = self._bin("initdb")
        result = subprocess.run(
            [initdb, "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=str(self.tmp_dir),
            **self._popen_kwargs(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed with exit code {result.returncode}:\n"
                f"{result.stdout.decode('utf-8', 'replace')[-_LOG_TAIL_CHARS:]}"
            )

    def _command(self) -> list[str]:
        return [
            self._postgres,
            "-D", str(self.data_dir),
            "-c", f"listen_addresses={self.host}",
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]

    def _ready(self) -> bool:
        # pg_isready exits 0 only once the server accepts connections (not
        # while it is still "starting up").
        result = subprocess.run(
            [self._pg_isready, "-q", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=5,
        )
        return result.returncode == 0

    def url(self, db: str = "postgres", driver: str = "psycopg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+psycopg://postgres@127.0.0.1:PORT/db``."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name`` (idempotent); returns its SQLAlchemy URL."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                if exists is None:
                    quoted = conn.dialect.identifier_preparer.quote(name)
                    conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        finally:
            engine.dispose()
        return self.url(name)


# --------------------------------------------------------------------------- MariaDB


class MariaDB(ServiceProcess):
    """A throwaway MariaDB server (mariadb-install-db + mariadbd, root without password).

    Attributes: ``port``, ``socket_path``, ``url(db, driver)``,
    ``create_database(name)``.
    """

    name = "mariadb"
    start_timeout = 60.0
    user = "root"

    def __init__(self) -> None:
        super().__init__()
        self.dir_owner = "mysql" if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "data"

    @property
    def socket_path(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "mariadb.sock"

    def _user_args(self) -> list[str]:
        return [f"--user={self.dir_owner}"] if self.dir_owner else []

    def _popen_kwargs(self) -> dict:
        # Drop to the mysql user in Popen rather than with mariadbd --user:
        # a process that changes its own uid loses the parent-death signal.
        if self.dir_owner is None:
            return {}
        entry = pwd.getpwnam(self.dir_owner)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _prepare(self) -> None:
        sbin = ("/usr/sbin/{name}", "/usr/bin/{name}")
        self._mariadbd = _require_binary("mariadbd", [c.format(name="mariadbd") for c in sbin])
        install_db = _require_binary("mariadb-install-db", [c.format(name="mariadb-install-db") for c in sbin])
        _run(
            [
                install_db,
                "--no-defaults",
                *self._user_args(),
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            what="mariadb-install-db",
            timeout=120,
        )
        if self.dir_owner:
            _chown_tree(self.tmp_dir, self.dir_owner)

    def _command(self) -> list[str]:
        return [
            self._mariadbd,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--bind-address={self.host}",
            f"--port={self.port}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.tmp_dir / 'mariadb.pid'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=200",
        ]

    def _ready(self) -> bool:
        import pymysql

        conn = pymysql.connect(host=self.host, port=self.port, user=self.user, connect_timeout=2)
        conn.close()
        return True

    def url(self, db: str = "mysql", driver: str = "pymysql") -> str:
        """SQLAlchemy URL, e.g. ``mysql+pymysql://root@127.0.0.1:PORT/db``."""
        scheme = f"mysql+{driver}" if driver else "mysql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE IF NOT EXISTS name`` (utf8mb4); returns its SQLAlchemy URL."""
        import pymysql

        conn = pymysql.connect(host=self.host, port=self.port, user=self.user, autocommit=True)
        try:
            with conn.cursor() as cur:
                quoted = "`" + name.replace("`", "``") + "`"
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()
        return self.url(name)


# --------------------------------------------------------------------------- Ray


_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


class Ray:
    """A local Ray instance: ``ray.init(num_cpus=2, include_dashboard=False)``.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps Ray on loopback (Ray reads
    it when first imported) and ``RAY_AUTH_MODE=disabled`` keeps it from
    writing a token under ``~/.ray``; both are set before importing ray.
    Attributes: ``context`` (what ``ray.init`` returned), ``address``.
    """

    def __init__(self, num_cpus: int = 2) -> None:
        self.num_cpus = num_cpus
        self.context = None
        self.tmp_dir: Path | None = None

    def start(self) -> "Ray":
        if self.context is not None:
            return self
        os.environ.update(_RAY_ENV)
        already_imported = "ray" in sys.modules
        import ray

        if already_imported:
            from ray._private import ray_constants

            if getattr(ray_constants, "ENABLE_RAY_CLUSTER", False):
                warnings.warn(
                    "ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set; it may "
                    "listen on every interface. Load lakeformat.testing.pytest_plugin first.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        atexit.register(self.stop)
        self.tmp_dir = _make_tmp_dir("ray")
        try:
            self.context = ray.init(
                num_cpus=self.num_cpus,
                include_dashboard=False,
                _temp_dir=str(self.tmp_dir),
                ignore_reinit_error=False,
                log_to_driver=False,
            )
        except BaseException as exc:
            logs = _tail_ray_logs(self.tmp_dir)
            self.stop()
            raise RuntimeError(f"ray.init failed: {exc!r}\n--- ray logs ---\n{logs}") from exc
        return self

    @property
    def address(self) -> str | None:
        return None if self.context is None else self.context.address_info.get("address")

    def stop(self) -> None:
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        self.context = None
        if self.tmp_dir is not None and os.environ.get("LAKEFORMAT_KEEP_SERVICE_DIRS") != "1":
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir = None

    def __enter__(self) -> "Ray":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _tail_ray_logs(tmp_dir: Path | None) -> str:
    if tmp_dir is None:
        return ""
    parts = []
    for path in sorted(glob.glob(str(tmp_dir / "session_latest" / "logs" / "*.err")))[-4:]:
        parts.append(f"== {path}\n{_tail(Path(path), 1000)}")
    return "\n".join(parts) or "(no ray logs)"


# --------------------------------------------------------------------------- Docker


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 2.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


BASE_IMAGE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")


class DockerEngine(ServiceProcess):
    """A private ``dockerd`` with its own socket, data root and exec root (root only).

    No bridge network and no iptables changes: containers run with
    ``--network none`` or ``--network host``. No registry is reachable, so
    ``ensure_base_image`` builds a Debian base image with debootstrap.
    Attributes: ``socket_path``, ``docker_host``, ``env`` (``os.environ`` plus
    ``DOCKER_HOST``), ``docker(*args)``, ``client()`` (docker-py),
    ``ensure_base_image(name_tag)``.
    """

    name = "dockerd"
    start_timeout = 60.0
    stop_timeout = 30.0

    @property
    def socket_path(self) -> Path:
        assert self.tmp_dir is not None
        return self.tmp_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.docker_host
        env.pop("DOCKER_CONTEXT", None)
        env.pop("DOCKER_TLS_VERIFY", None)
        return env

    def _prepare(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("DockerEngine needs root (dockerd manages mounts and cgroups)")
        self._dockerd = _require_binary("dockerd", ["/usr/sbin/dockerd", "/usr/bin/dockerd"])
        self._docker = _require_binary("docker", ["/usr/bin/docker"])

    def _command(self) -> list[str]:
        assert self.tmp_dir is not None
        return [
            self._dockerd,
            "--host", self.docker_host,
            "--data-root", str(self.tmp_dir / "root"),
            "--exec-root", str(self.tmp_dir / "exec"),
            "--pidfile", str(self.tmp_dir / "docker.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ]

    def _ready(self) -> bool:
        conn = _UnixHTTPConnection(str(self.socket_path))
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def _after_stop(self) -> None:
        if self.tmp_dir is None:
            return
        # dockerd leaves its network namespace bind-mounted; unmount it (and
        # anything else still mounted below the dir) before deleting the tree.
        mounts = []
        with open("/proc/self/mounts") as fh:
            for line in fh:
                target = line.split()[1].encode().decode("unicode_escape")
                if target.startswith(str(self.tmp_dir) + "/"):
                    mounts.append(target)
        netns = str(self.tmp_dir / "exec" / "netns" / "default")
        if netns not in mounts and os.path.exists(netns):
            mounts.append(netns)
        for target in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def docker(self, *args: str, timeout: float = 600, input: bytes | None = None) -> str:
        """Run the docker CLI against this engine; return stdout+stderr, raise on failure."""
        if input is not None:
            result = subprocess.run(
                [self._docker, *args], env=self.env, input=input,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
            )
            out = result.stdout.decode("utf-8", "replace")
            if result.returncode != 0:
                raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{out[-_LOG_TAIL_CHARS:]}")
            return out
        return _run([self._docker, *args], env=self.env, timeout=timeout, what=f"docker {' '.join(args)}")

    def client(self):
        """A docker-py ``DockerClient`` bound to this engine."""
        import docker

        return docker.DockerClient(base_url=self.docker_host)

    def image_exists(self, name_tag: str) -> bool:
        result = subprocess.run(
            [self._docker, "image", "inspect", name_tag], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return result.returncode == 0

    def ensure_base_image(self, name_tag: str, suite: str = "bookworm") -> str:
        """Make ``name_tag`` a Debian ``suite`` minbase image with python3, venv, pip and CA certs.

        The rootfs tarball is built once per machine with debootstrap (~2 min)
        and cached as ``.test_services/debian-<suite>-python.tar``; later calls
        only ``docker import`` it (seconds), and calls on an engine that
        already has the tag return at once.
        """
        if self.image_exists(name_tag):
            return name_tag
        tarball = base_rootfs_tarball(suite)
        self.docker(
            "import",
            "--change", 'CMD ["python3"]',
            "--change", "ENV LANG=C.UTF-8",
            str(tarball),
            name_tag,
            timeout=600,
        )
        return name_tag


def base_rootfs_tarball(suite: str = "bookworm") -> Path:
    """Build (once, under a file lock) and return the cached Debian rootfs tarball."""
    cache = services_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"debian-{suite}-python.tar"
    if tarball.exists():
        return tarball
    with open(cache / f"debian-{suite}-python.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():  # another process built it while we waited
            return tarball
        if os.geteuid() != 0:
            raise RuntimeError("building the Docker base image with debootstrap needs root")
        debootstrap = _require_binary("debootstrap", ["/usr/sbin/debootstrap"])
        work = Path(tempfile.mkdtemp(prefix=f"rootfs-{suite}-", dir=cache))
        rootfs = work / "rootfs"
        try:
            _run(
                [
                    debootstrap,
                    "--variant=minbase",
                    "--include=" + ",".join(BASE_IMAGE_PACKAGES),
                    suite,
                    str(rootfs),
                    os.environ.get("LAKEFORMAT_DEBIAN_MIRROR", "http://deb.debian.org/debian"),
                ],
                what="debootstrap",
                timeout=1800,
            )
            host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
            if host_bundle.exists():
                # pip inside `RUN` fails TLS without the host's bundle (it may
                # carry a proxy's CA the Debian bundle lacks).
                target = rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt"
                target.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                shutil.copyfile(host_bundle, target)
            # Smaller image: apt caches and lists are not needed at run time.
            for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in glob.glob(str(rootfs / sub / "*")):
                    if os.path.isfile(entry):
                        os.unlink(entry)
            partial = work / "rootfs.tar"
            _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], what="tar rootfs")
            os.replace(partial, tarball)
        finally:
            _rmtree_rootfs(rootfs)
            shutil.rmtree(work, ignore_errors=True)
    return tarball


def _rmtree_rootfs(rootfs: Path) -> None:
    """Delete a debootstrap tree, unmounting anything (proc, sys) it left mounted."""
    if not rootfs.exists():
        return
    with open("/proc/self/mounts") as fh:
        targets = [line.split()[1] for line in fh if line.split()[1].startswith(str(rootfs) + "/")]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(rootfs, ignore_errors=True)
