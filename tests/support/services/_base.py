"""What every service shares: paths, the install script, free ports, waiting, and `ServiceProcess`."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
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
from pathlib import Path
from typing import Callable, Sequence


LOOPBACK = "127.0.0.1"

# The Azure storage emulator's published, well-known development account.
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

_LOG_TAIL_CHARS = 4000


# --------------------------------------------------------------------------- paths


def repo_root() -> Path:
    """The checkout this package lives in (``tests/support/services/`` -> root)."""
    return Path(__file__).resolve().parents[3]


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
        print(f"[tests.support] {what} is missing: running {script}", file=sys.stderr)
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
