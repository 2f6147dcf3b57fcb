"""Branch locks: one writer per branch, readers never blocked.

A lock is a small JSON object in the storage (`locks/<branch>.lock`) naming its holder and an
expiry that a background thread keeps pushing forward. A lock whose expiry passed, or whose
holder is a dead process on this same host, is taken over.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, Optional

from lakeformat.errors import LockedError

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset

logger = logging.getLogger(__name__)

LOCK_VALIDITY_S = float(os.environ.get("LAKEFORMAT_LOCK_VALIDITY", "300"))
_OWNER = uuid.uuid4().hex  # this process
_HELD: "Dict[tuple, _LockHandle]" = {}
_HELD_LOCK = threading.Lock()


def lock_key(branch: str) -> str:
    return f"locks/{branch}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(storage, branch: str) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(storage.get(lock_key(branch)))
    except (KeyError, ValueError):
        return None


def _is_stale(info: Dict[str, Any]) -> bool:
    if info.get("expires", 0) < time.time():
        return True
    return info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1)))


class _LockHandle:
    def __init__(self, storage, branch: str):
        self.storage = storage
        self.branch = branch
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._refresh, daemon=True, name=f"lakeformat-lock-{branch}")

    def body(self) -> bytes:
        return json.dumps({"owner": _OWNER, "host": socket.gethostname(), "pid": os.getpid(), "acquired": time.time(), "expires": time.time() + LOCK_VALIDITY_S}).encode()

    def _refresh(self) -> None:
        while not self.stop.wait(LOCK_VALIDITY_S / 3):
            try:
                self.storage.set(lock_key(self.branch), self.body())
            except Exception as e:  # noqa: BLE001 - keep refreshing through transient errors
                logger.warning("refreshing the lock of branch %s failed: %s", self.branch, e)

    def release(self) -> None:
        self.stop.set()
        try:
            info = read_lock(self.storage, self.branch)
            if info and info.get("owner") == _OWNER:
                self.storage.delete(lock_key(self.branch))
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _describe(info: Dict[str, Any]) -> str:
    return f"host {info.get('host')}, pid {info.get('pid')}, until {time.ctime(info.get('expires', 0))}"


def is_locked_by_other(storage, branch: str) -> Optional[str]:
    """Who holds `branch`'s lock, if a live writer other than this process does."""
    info = read_lock(storage, branch)
    if info and info.get("owner") != _OWNER and not _is_stale(info):
        return _describe(info)
    return None


def acquire_lock(storage, branch: str) -> bool:
    """Take the write lock of `branch`, or raise LockedError naming the holder. Returns False
    when this process held it already."""
    ident = (storage.root, branch)
    with _HELD_LOCK:
        if ident in _HELD:
            return False  # this process already holds it
        info = read_lock(storage, branch)
        if info and info.get("owner") != _OWNER and not _is_stale(info):
            raise LockedError(
                f"Branch {branch!r} of {storage.root!r} is locked by another writer ({_describe(info)}). "
                "Open it with read_only=True to read, or wait for the writer to finish."
            )
        handle = _LockHandle(storage, branch)
        storage.set(lock_key(branch), handle.body())
        check = read_lock(storage, branch)
        if not check or check.get("owner") != _OWNER:
            raise LockedError(f"Branch {branch!r} of {storage.root!r} was locked by another writer at the same moment.")
        handle.thread.start()
        _HELD[ident] = handle
        return True


def release_lock(storage, branch: Optional[str]) -> None:
    with _HELD_LOCK:
        h = _HELD.pop((storage.root, branch), None)
    if h is not None:
        h.release()


def acquire_branch_lock(ds: "Dataset") -> None:
    """Take the write lock of `ds`'s branch (if it is writable at a branch head)."""
    st = ds._state
    branch = st.vs.branch
    if branch is None or st.read_only or not st.vs.is_head:
        return
    acquire_lock(st.storage, branch)


def release_branch_lock(storage, branch: Optional[str]) -> None:
    release_lock(storage, branch)


def release_all() -> None:
    with _HELD_LOCK:
        handles = list(_HELD.values())
        _HELD.clear()
    for h in handles:
        h.release()


def _release_all_at_exit(timeout_s: float = 5.0) -> None:
    """At exit, release held locks in a daemon thread and wait a bounded time: an unreachable
    store must not hang the interpreter's exit (the lock then simply expires)."""
    t = threading.Thread(target=release_all, daemon=True, name="lakeformat-lock-release")
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        logger.warning("releasing branch locks at exit timed out after %.0f s; they expire on their own", timeout_s)


atexit.register(_release_all_at_exit)
