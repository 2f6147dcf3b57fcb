"""A read cache of bounded size in front of a store. Writes go through to the store at once
(the chunk engines buffer their own dirty state and decide when to flush).

Objects that other processes change in place (the version tree, locks and their mutex
tickets, commit infos, flush markers) are never cached: nothing outside this process could
invalidate them, and a stale copy written back would drop another writer's branches."""
from __future__ import annotations

import posixpath
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lakeformat import constants as C
from lakeformat.errors import StorageError
from lakeformat.storage.base import StorageProvider, WritableBuffer, byte_view

_SHARED_NAMES = frozenset({
    C.VERSION_CONTROL_INFO_FILENAME,
    C.VERSION_CONTROL_INFO_LOCK_FILENAME,
    C.DATASET_LOCK_FILENAME,
    C.COMMIT_INFO_FILENAME,
})


def is_shared_mutable(key: str) -> bool:
    """Whether `key` names an object other processes rewrite in place (read it through)."""
    name = posixpath.basename(key)
    return (
        name in _SHARED_NAMES
        or key.startswith("locks/")
        or name.endswith(".lock")
        or ".mutex/" in key
        or name == "lakeformat_flush.json"  # core.keys.flush_marker_key
    )


class LRUCache(StorageProvider):
    def __init__(self, base: StorageProvider, cache_size: int):
        self.base = base
        self.root = base.root
        self.read_only = base.read_only
        self.cache_size = int(cache_size)
        self.concurrency = base.concurrency
        self.request_latency_s = base.request_latency_s
        self.bandwidth_bytes_s = base.bandwidth_bytes_s
        self._cache: "OrderedDict[str, bytes]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> Dict[str, Any]:
        # for a spawned or forkserver loader worker: the store travels, not its cached
        # objects (a worker reads each chunk once) nor its lock (locks do not pickle)
        d = dict(self.__dict__)
        d["_cache"] = OrderedDict()
        d["_bytes"] = 0
        d.pop("_lock", None)
        return d

    def __setstate__(self, d: Dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._lock = threading.Lock()

    @property
    def range_latency_s(self) -> float:
        return self.base.range_latency_s

    # -- cache bookkeeping --------------------------------------------------------------------
    def _remember(self, key: str, value: bytes) -> None:
        if is_shared_mutable(key):
            return
        n = len(value)
        if n > self.cache_size // 4:  # one huge object should not wipe the cache
            return
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._cache[key] = value
            self._bytes += n
            while self._bytes > self.cache_size and self._cache:
                _, v = self._cache.popitem(last=False)
                self._bytes -= len(v)

    def _forget(self, key: str) -> None:
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._bytes -= len(old)

    def _hit(self, key: str) -> Optional[bytes]:
        if is_shared_mutable(key):
            return None
        with self._lock:
            v = self._cache.get(key)
            if v is not None:
                self._cache.move_to_end(key)
            return v

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self._bytes = 0

    # -- StorageProvider ------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        v = self._hit(key)
        if v is None:
            v = self.base.get(key)
            self._remember(key, v)
        return v

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        v = self._hit(key)
        if v is not None:
            return v[start:end]
        return self.base.get_range(key, start, end)

    def get_ranges(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> List[bytes]:
        v = self._hit(key)
        if v is not None:
            return [v[a:b] for a, b in zip(starts, ends)]
        return self.base.get_ranges(key, starts, ends)

    def read_into(self, key: str, start: int, out: WritableBuffer) -> None:
        v = self._hit(key)
        if v is None:
            return self.base.read_into(key, start, out)  # a scan's bytes bypass the cache
        view = byte_view(out)
        if start + len(view) > len(v):
            raise StorageError(f"{key!r} holds {len(v)} bytes, fewer than the {start + len(view)} asked for")
        view[:] = memoryview(v)[start : start + len(view)]

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        out: Dict[str, Optional[bytes]] = {}
        missing = []
        for k in keys:
            v = self._hit(k)
            if v is None:
                missing.append(k)
            else:
                out[k] = v
        if missing:
            got = self.base.get_many(missing, missing_ok)
            for k, v in got.items():
                if v is not None:
                    self._remember(k, v)
                out[k] = v
        return out

    def set(self, key: str, value: bytes) -> None:
        self.base.set(key, value)
        self._forget(key)

    def set_many(self, items: Dict[str, bytes]) -> None:
        self.base.set_many(items)
        for k in items:
            self._forget(k)

    def delete(self, key: str) -> None:
        self.base.delete(key)
        self._forget(key)

    def exists(self, key: str) -> bool:
        return self._hit(key) is not None or self.base.exists(key)

    def size(self, key: str) -> int:
        v = self._hit(key)
        return len(v) if v is not None else self.base.size(key)

    def list(self, prefix: str = "") -> List[str]:
        return self.base.list(prefix)

    def delete_prefix(self, prefix: str) -> None:
        self.base.delete_prefix(prefix)
        self.invalidate()

    def clear(self) -> None:
        self.base.clear()
        self.invalidate()

    @property
    def conditional_writes(self) -> bool:  # type: ignore[override]
        return self.base.conditional_writes

    def get_versioned(self, key: str) -> Tuple[bytes, str]:
        return self.base.get_versioned(key)  # always the store's current version

    def set_if_absent(self, key: str, value: bytes) -> bool:
        try:
            return self.base.set_if_absent(key, value)
        finally:
            self._forget(key)

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        try:
            return self.base.set_if_match(key, value, version)
        finally:
            self._forget(key)

    def delete_if_match(self, key: str, version: str) -> bool:
        try:
            return self.base.delete_if_match(key, version)
        finally:
            self._forget(key)
