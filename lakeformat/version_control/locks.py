"""Branch locks: one writer per branch, readers never blocked.

A lock is a small JSON object in the storage (`locks/<branch>.lock`) naming its holder and an
expiry that a background thread keeps pushing forward. Every change to it is a conditional
write (`StorageProvider.set_if_absent` / `set_if_match` / `delete_if_match`): taking a free
lock is an exclusive create, taking over a stale one (expired, or held by a dead process on
this host) replaces exactly the stale version read, and refreshing fails once another writer
took it over. Of any number of processes racing for a branch, exactly one wins.

Inside one process a lock belongs to one writable dataset state (what `load` and `empty`
build): `load` of a branch this process already writes hands out the same state again
(`live_holder`), so two handles never hold independent copies of one branch (appends through
them would overwrite each other's metadata); taking the lock for any other state raises
LockedError naming the holder. Closing the handle (`ds.close()`), or losing every reference
to it, gives the lock back.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from lakeformat.errors import LockedError

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset

logger = logging.getLogger(__name__)

LOCK_VALIDITY_S = float(os.environ.get("LAKEFORMAT_LOCK_VALIDITY", "300"))
_OWNER = uuid.uuid4().hex  # this process


def _new_owner_after_fork() -> None:
    # a forked child (a forkserver's workers preload this module) is another lock owner
    global _OWNER
    _OWNER = uuid.uuid4().hex


os.register_at_fork(after_in_child=_new_owner_after_fork)
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


def _parse(raw: bytes) -> Optional[Dict[str, Any]]:
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def read_lock(storage, branch: str) -> Optional[Dict[str, Any]]:
    try:
        return _parse(storage.get(lock_key(branch)))
    except KeyError:
        return None


def _read_versioned(storage, branch: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The lock's content (None if unreadable) and version (None if absent)."""
    try:
        raw, version = storage.get_versioned(lock_key(branch))
    except KeyError:
        return None, None
    return _parse(raw), version


def _is_stale(info: Dict[str, Any]) -> bool:
    if info.get("expires", 0) < time.time():
        return True
    return info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1)))


def _describe(info: Dict[str, Any]) -> str:
    return f"host {info.get('host')}, pid {info.get('pid')}, until {time.ctime(info.get('expires', 0))}"


def _body() -> bytes:
    now = time.time()
    return json.dumps({"owner": _OWNER, "host": socket.gethostname(), "pid": os.getpid(), "acquired": now, "expires": now + LOCK_VALIDITY_S}).encode()


class _LockHandle:
    """A lock this process holds: its stored version, its refresher, and the dataset handle
    (weakly) that owns it."""

    def __init__(self, storage, branch: str, version: str):
        self.storage = storage
        self.branch = branch
        self.version = version
        self.lost = False
        self.owner_ref: "Optional[weakref.ref]" = None
        self.owner_desc = ""
        self.stop = threading.Event()
        self.io = threading.Lock()  # the refresher and release never write at once
        self.thread = threading.Thread(target=self._refresh, daemon=True, name=f"lakeformat-lock-{branch}")

    def owner(self) -> Any:
        return self.owner_ref() if self.owner_ref is not None else None

    def bind(self, owner: Any) -> None:
        self.owner_ref = weakref.ref(owner)
        self.owner_desc = f"{type(owner).__name__} at 0x{id(owner):x} (path {getattr(owner, 'path', '?')!r})"
        weakref.finalize(owner, _orphaned, (self.storage.root, self.branch), self)

    def _refresh(self) -> None:
        while not self.stop.wait(LOCK_VALIDITY_S / 3):
            with self.io:
                if self.stop.is_set():
                    return
                try:
                    body = _body()
                    if not self.storage.set_if_match(lock_key(self.branch), body, self.version):
                        # another writer took it over (this process stalled past the expiry):
                        # stop pretending; the commit-time check refuses a moved branch
                        self.lost = True
                        logger.error("the lock of branch %s under %s was taken over by another writer", self.branch, self.storage.root)
                        return
                    _, self.version = self.storage.get_versioned(lock_key(self.branch))
                except Exception as e:  # noqa: BLE001 - keep refreshing through transient errors
                    logger.warning("refreshing the lock of branch %s failed: %s", self.branch, e)

    def release(self) -> None:
        self.stop.set()
        with self.io:
            if self.lost:
                return
            try:
                self.storage.delete_if_match(lock_key(self.branch), self.version)
            except Exception:  # noqa: BLE001 - best effort: the lock expires anyway
                pass


# ---- handles that went away release their locks off the garbage collector's thread --------------
_ORPHANS: "queue.Queue[Tuple[tuple, _LockHandle]]" = queue.Queue()
_REAPER: Optional[threading.Thread] = None


def _orphaned(ident: tuple, handle: _LockHandle) -> None:
    """weakref finalizer of a lock's owner: no storage I/O here (a collection can run inside
    a storage call, even on fsspec's event loop thread); a daemon thread does it."""
    global _REAPER
    _ORPHANS.put((ident, handle))
    if _REAPER is None or not _REAPER.is_alive():
        _REAPER = threading.Thread(target=_reap, daemon=True, name="lakeformat-lock-reaper")
        _REAPER.start()


def _reap() -> None:
    while True:
        ident, handle = _ORPHANS.get()
        with _HELD_LOCK:
            if _HELD.get(ident) is not handle or handle.owner() is not None:
                continue  # released already, or adopted by a newer handle
            _HELD.pop(ident)
        handle.release()


def _take(storage, branch: str) -> str:
    """Write this process's lock of `branch` conditionally; returns its version or raises
    LockedError naming the live holder."""
    key = lock_key(branch)
    for _ in range(20):
        info, version = _read_versioned(storage, branch)
        if version is None:
            if storage.set_if_absent(key, _body()):
                return storage.get_versioned(key)[1]
            continue  # created by another writer in between: look at it
        if info is not None and info.get("owner") != _OWNER and not _is_stale(info):
            raise LockedError(
                f"Branch {branch!r} of {storage.root!r} is locked by another writer ({_describe(info)}). "
                "Open it with read_only=True to read, or wait for the writer to finish."
            )
        # stale, unreadable, or this process's own leftover: replace exactly what was read
        if storage.set_if_match(key, _body(), version):
            return storage.get_versioned(key)[1]
    raise LockedError(f"Branch {branch!r} of {storage.root!r}: its lock kept changing while taking it; try again.")


def is_locked_by_other(storage, branch: str) -> Optional[str]:
    """Who holds `branch`'s lock, if a live writer other than this process does."""
    info = read_lock(storage, branch)
    if info and info.get("owner") != _OWNER and not _is_stale(info):
        return _describe(info)
    return None


def acquire_lock(storage, branch: str, owner: Any = None) -> bool:
    """Take the write lock of `branch` for the handle `owner` (a dataset's state; None for
    internal verbs), or raise LockedError naming the holder: another process, or another
    live writable handle of this process. Returns False when it was held here already."""
    ident = (storage.root, branch)
    with _HELD_LOCK:
        held = _HELD.get(ident)
        if held is not None and not held.lost:
            current = held.owner()
            if current is not None and owner is not current:
                raise LockedError(
                    f"Branch {branch!r} of {storage.root!r} is held by another writable handle in this process "
                    f"({held.owner_desc}). Use that handle, close it (ds.close()), or open with read_only=True."
                )
            if owner is not None and current is None:
                held.bind(owner)  # the earlier handle is gone (or was internal): adopt its lock
            return False
        handle = _LockHandle(storage, branch, _take(storage, branch))
        if owner is not None:
            handle.bind(owner)
        handle.thread.start()
        _HELD[ident] = handle
        return True


def release_lock(storage, branch: Optional[str], owner: Any = None) -> None:
    """Give back this process's lock of `branch` (only if `owner` holds it, when given)."""
    ident = (storage.root, branch)
    with _HELD_LOCK:
        h = _HELD.get(ident)
        if h is None or (owner is not None and h.owner() is not owner):
            return
        _HELD.pop(ident)
    h.release()


def live_holder(storage, branch: Optional[str]) -> Any:
    """The live dataset state of this process that holds `branch`'s lock, if any."""
    with _HELD_LOCK:
        h = _HELD.get((storage.root, branch))
    return h.owner() if h is not None and not h.lost else None


def surrender(storage) -> List[Any]:
    """Release every lock this process holds on the dataset at `storage` (it is being
    replaced); returns the live states that held them."""
    with _HELD_LOCK:
        mine = [(k, h) for k, h in _HELD.items() if k[0] == storage.root]
        for k, _ in mine:
            _HELD.pop(k)
    owners = []
    for _, h in mine:
        h.release()
        o = h.owner()
        if o is not None:
            owners.append(o)
    return owners


def holds_lock(storage, branch: Optional[str]) -> bool:
    """Whether this process holds `branch`'s lock and no other writer took it over."""
    with _HELD_LOCK:
        h = _HELD.get((storage.root, branch))
    return h is not None and not h.lost


def acquire_branch_lock(ds: "Dataset") -> None:
    """Take the write lock of `ds`'s branch (if it is writable at a branch head)."""
    st = ds.session
    branch = st.vs.branch
    if branch is None or st.read_only or not st.vs.is_head:
        return
    acquire_lock(st.storage, branch, owner=st)


def release_branch_lock(storage, branch: Optional[str]) -> None:
    release_lock(storage, branch)


def release_handle(ds: "Dataset") -> None:
    """Give back every lock the handle `ds` holds (ds.close())."""
    st = ds.session
    with _HELD_LOCK:
        mine = [(k, h) for k, h in _HELD.items() if h.owner() is st]
        for k, _ in mine:
            _HELD.pop(k)
    for _, h in mine:
        h.release()


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
