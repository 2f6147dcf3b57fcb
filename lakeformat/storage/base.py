"""The storage contract. Only stores touch bytes at rest; everything above speaks keys."""
from __future__ import annotations

import contextlib
import hashlib
import random
import time
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from lakeformat.errors import LockedError, ReadOnlyError, StorageError

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

#: memory a read fills in place (`read_into`); collections.abc.Buffer would say it, from 3.12
WritableBuffer = Union[bytearray, memoryview, "np.ndarray"]
#: bytes a write takes in pieces (`set_parts`)
ReadableBuffer = Union[bytes, WritableBuffer]

#: a ticket of the emulated mutex older than this is a dead writer's, and is ignored
MUTEX_TICKET_TTL_S = 10.0
#: how long `update_object` retries a conditional write that keeps losing
UPDATE_RETRY_S = 60.0


def byte_view(buf: ReadableBuffer) -> memoryview:
    """`buf` (C-contiguous) as a flat view of its bytes."""
    # NumPy's stubs make ndarray a buffer from Python 3.12 on only (PEP 688 needs 3.12)
    return memoryview(buf).cast("B")  # type: ignore[arg-type]


def content_version(data: bytes) -> str:
    """A version token that names the content itself (for stores without etags)."""
    return hashlib.blake2b(bytes(data), digest_size=16).hexdigest()


class StorageProvider(ABC):
    """A flat key -> bytes namespace under one root URL.

    Keys are '/'-separated relative paths. `set` is atomic: a concurrent reader sees the old
    value or the new one, never a prefix of it.
    """

    root: str = ""
    read_only: bool = False
    #: whether `size` and `read_into` are cheap (no request of their own): a local disk
    reads_into_cheaply: bool = False
    #: how many requests `get_many` keeps in flight
    concurrency: int = 8
    #: rough cost model of a request, for choosing between byte ranges and whole objects
    request_latency_s: float = 0.02
    bandwidth_bytes_s: float = 100e6

    @property
    def range_latency_s(self) -> float:
        """Cost of one more range of a `get_ranges` call (they go out concurrently)."""
        return self.request_latency_s / max(1, self.concurrency)

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The whole value; raises KeyNotFoundInStorageError if absent."""

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        """Bytes [start, end) of the value (end None: to the end)."""
        data = self.get(key)
        return data[start:end]

    def get_ranges(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> List[bytes]:
        """Several byte ranges of one value (a stored chunk's samples)."""
        return [self.get_range(key, a, b) for a, b in zip(starts, ends)]

    def read_into(self, key: str, start: int, out: WritableBuffer) -> None:
        """Fill the writable buffer `out` with bytes [start, start + len(out)) of the value
        (a store that can read into memory it is given overrides this to skip a copy)."""
        view = byte_view(out)
        data = self.get_range(key, start, start + len(view))
        if len(data) != len(view):
            raise StorageError(f"{key!r} holds {start + len(data)} bytes, fewer than the {start + len(view)} asked for")
        view[:] = data

    def map_readonly(self, key: str) -> Optional[memoryview]:
        """The value's bytes mapped read-only into memory (no copy), or None where the store
        cannot map (the caller then reads). Only for values that are replaced, never
        rewritten in place, while mapped: chunks."""
        return None

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        """Fetch many keys with up to `concurrency` requests in flight."""
        keys = list(keys)
        if len(keys) <= 1:
            return {k: self._get_or_none(k, missing_ok) for k in keys}
        with ThreadPoolExecutor(min(self.concurrency, len(keys))) as pool:
            values = list(pool.map(lambda k: self._get_or_none(k, missing_ok), keys))
        return dict(zip(keys, values))

    def _get_or_none(self, key: str, missing_ok: bool) -> Optional[bytes]:
        try:
            return self.get(key)
        except KeyError:
            if missing_ok:
                return None
            raise

    @abstractmethod
    def set(self, key: str, value: bytes) -> None:
        """Store `value` under `key` atomically."""

    def set_many(self, items: Dict[str, bytes]) -> None:
        if len(items) <= 1:
            for k, v in items.items():
                self.set(k, v)
            return
        with ThreadPoolExecutor(min(self.concurrency, len(items))) as pool:
            list(pool.map(lambda kv: self.set(*kv), items.items()))

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one key; absent keys are ignored."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> List[str]:
        """Every key under `prefix` (recursively), relative to the root."""

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list(prefix):
            self.delete(key)

    def clear(self) -> None:
        self.delete_prefix("")

    def size(self, key: str) -> int:
        return len(self.get(key))

    def check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(f"Storage at {self.root!r} is read-only.")

    def flush(self) -> None:  # noqa: B027 - a no-op by design; buffered stores override it
        """Push buffered writes down (no-op for unbuffered stores)."""

    def __contains__(self, key: str) -> bool:
        return self.exists(key)

    def subdir(self, prefix: str) -> "StorageProvider":
        return PrefixedStorage(self, prefix)

    def close(self) -> None:  # noqa: B027 - a no-op by design; stores holding resources override it
        pass

    # -- conditional writes ---------------------------------------------------------------
    # Locks and version_control_info.json are shared by every process writing a dataset: they
    # change only through these four calls. A store that can make them atomic by itself sets
    # `conditional_writes` (exclusive create and rename on a local disk, If-None-Match and
    # If-Match on S3, etag conditions on Azure). The defaults below emulate them under a short
    # mutex made of ticket objects (`_ticket_mutex`): atomic as long as a listing shows every
    # object written before it began and a holder finishes within MUTEX_TICKET_TTL_S.
    conditional_writes: bool = False

    def get_versioned(self, key: str) -> Tuple[bytes, str]:
        """The value of `key` and a token naming this version of it (for `set_if_match`);
        raises KeyNotFoundInStorageError if absent."""
        data = self.get(key)
        return data, content_version(data)

    def set_if_absent(self, key: str, value: bytes) -> bool:
        """Create `key` with `value` unless it exists; True if this call created it."""
        self.check_writable()
        with self._ticket_mutex(key):
            if self.exists(key):
                return False
            self.set(key, value)
            return True

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        """Replace `key` with `value` if it still holds the version `version` (from
        `get_versioned`); True if it did. An absent key never matches."""
        self.check_writable()
        with self._ticket_mutex(key):
            if not self._holds(key, version):
                return False
            self.set(key, value)
            return True

    def delete_if_match(self, key: str, version: str) -> bool:
        """Delete `key` if it still holds `version`; True if it did."""
        self.check_writable()
        with self._ticket_mutex(key):
            if not self._holds(key, version):
                return False
            self.delete(key)
            return True

    def _holds(self, key: str, version: str) -> bool:
        """Whether `key` exists and is at `version` (the caller holds the key's mutex)."""
        try:
            return self.get_versioned(key)[1] == version
        except KeyError:
            return False

    @contextlib.contextmanager
    def _ticket_mutex(self, key: str, wait_s: float = UPDATE_RETRY_S) -> Iterator[None]:
        """Mutual exclusion between processes on `key` with no conditional write: each
        contender writes a ticket, then lists the tickets; it holds the mutex if its own is the
        only live one. Of two contenders, the one listing last sees both tickets (each wrote
        before listing), so at most one sees only its own; both seeing both back off and retry."""
        folder = f"{key}.mutex/"
        deadline = time.monotonic() + wait_s
        attempt = 0
        while True:
            mine = f"{folder}{int(time.time() * 1000):015d}-{uuid.uuid4().hex}"
            self.set(mine, b"")
            others = []
            for t in self.list(folder):
                if t == mine:
                    continue
                try:
                    born = int(t[len(folder):].split("-", 1)[0]) / 1000
                except ValueError:
                    continue
                if born < time.time() - MUTEX_TICKET_TTL_S:
                    self.delete(t)  # a dead contender's
                else:
                    others.append(t)
            if not others:
                break
            self.delete(mine)
            if time.monotonic() > deadline:
                raise LockedError(f"{key!r} under {self.root!r} stayed busy with another writer for {wait_s:.0f} s")
            # exponential backoff with jitter: contenders that keep colliding spread out
            attempt += 1
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2 ** attempt)))
        try:
            yield
        finally:
            try:
                self.delete(mine)
            except Exception:  # noqa: BLE001 - a leftover ticket expires
                pass


def update_object(storage: StorageProvider, key: str, apply: Callable[[Optional[bytes]], Tuple[bytes, T]],
                  retry_s: float = UPDATE_RETRY_S) -> T:
    """Read-modify-write of one shared object, safe against other processes doing the same:
    `apply(current value or None)` returns (new value, result); the new value is written only
    if the object did not change since it was read (else `apply` runs again on the newer
    value). Returns the result of the `apply` call whose value was written."""
    deadline = time.monotonic() + retry_s
    pause = 0.005
    while True:
        try:
            cur, version = storage.get_versioned(key)
        except KeyError:
            cur, version = None, None
        new, result = apply(cur)
        if version is None:
            done = storage.set_if_absent(key, new)
        else:
            done = storage.set_if_match(key, new, version)
        if done:
            return result
        if time.monotonic() > deadline:
            raise LockedError(f"{key!r} under {storage.root!r} kept changing under this writer for {retry_s:.0f} s")
        time.sleep(random.uniform(0, pause))
        pause = min(pause * 2, 0.2)


class PrefixedStorage(StorageProvider):
    """A view of another store with every key under `prefix/`."""

    def __init__(self, base: StorageProvider, prefix: str):
        self.base = base
        self.prefix = prefix.strip("/") + "/"
        self.root = base.root.rstrip("/") + "/" + prefix.strip("/")
        self.read_only = base.read_only

    def _k(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> bytes:
        return self.base.get(self._k(key))

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        return self.base.get_range(self._k(key), start, end)

    def get_ranges(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> List[bytes]:
        return self.base.get_ranges(self._k(key), starts, ends)

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        got = self.base.get_many([self._k(k) for k in keys], missing_ok)
        return {k: got[self._k(k)] for k in keys}

    def set(self, key: str, value: bytes) -> None:
        self.base.set(self._k(key), value)

    def delete(self, key: str) -> None:
        self.base.delete(self._k(key))

    def exists(self, key: str) -> bool:
        return self.base.exists(self._k(key))

    def list(self, prefix: str = "") -> List[str]:
        n = len(self.prefix)
        return [k[n:] for k in self.base.list(self._k(prefix))]

    @property
    def conditional_writes(self) -> bool:  # type: ignore[override]
        return self.base.conditional_writes

    def get_versioned(self, key: str) -> Tuple[bytes, str]:
        return self.base.get_versioned(self._k(key))

    def set_if_absent(self, key: str, value: bytes) -> bool:
        return self.base.set_if_absent(self._k(key), value)

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        return self.base.set_if_match(self._k(key), value, version)

    def delete_if_match(self, key: str, version: str) -> bool:
        return self.base.delete_if_match(self._k(key), version)


def iter_chunks(items: Iterable[T], size: int) -> Iterator[List[T]]:
    batch: List[T] = []
    for it in items:
        batch.append(it)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
