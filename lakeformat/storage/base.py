"""The storage contract. Only stores touch bytes at rest; everything above speaks keys."""
from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, List, Optional, Sequence

from lakeformat.errors import ReadOnlyError, StorageError


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

    def read_into(self, key: str, start: int, out) -> None:
        """Fill the writable buffer `out` with bytes [start, start + len(out)) of the value
        (a store that can read into memory it is given overrides this to skip a copy)."""
        view = memoryview(out).cast("B")
        data = self.get_range(key, start, start + len(view))
        if len(data) != len(view):
            raise StorageError(f"{key!r} holds {start + len(data)} bytes, fewer than the {start + len(view)} asked for")
        view[:] = data

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

    def flush(self) -> None:
        """Push buffered writes down (no-op for unbuffered stores)."""

    def __contains__(self, key: str) -> bool:
        return self.exists(key)

    def subdir(self, prefix: str) -> "StorageProvider":
        return PrefixedStorage(self, prefix)

    def close(self) -> None:
        pass


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


def iter_chunks(items: Iterable, size: int):
    batch = []
    for it in items:
        batch.append(it)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
