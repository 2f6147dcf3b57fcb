"""An in-process store (`memory://name`). Stores of the same name share their contents, so a
dataset created at memory://x can be loaded again at memory://x in the same process."""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence, Tuple

from lakeformat.errors import KeyNotFoundInStorageError
from lakeformat.storage.base import StorageProvider, content_version

_SPACES: Dict[str, Dict[str, bytes]] = {}
_LOCK = threading.Lock()


class MemoryStorage(StorageProvider):
    conditional_writes = True  # one process: a lock makes every conditional write atomic
    request_latency_s = 1e-6
    bandwidth_bytes_s = 10e9

    def __init__(self, root: str = "memory://", read_only: bool = False):
        self.root = root
        self.read_only = read_only
        with _LOCK:
            self._data = _SPACES.setdefault(root.rstrip("/"), {})

    def get(self, key: str) -> bytes:
        try:
            return self._data[key]
        except KeyError:
            raise KeyNotFoundInStorageError(key) from None

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        return self.get(key)[start:end]

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        return {k: self._get_or_none(k, missing_ok) for k in keys}

    def set(self, key: str, value: bytes) -> None:
        self.check_writable()
        self._data[key] = bytes(value)

    def delete(self, key: str) -> None:
        self.check_writable()
        self._data.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self._data

    def size(self, key: str) -> int:
        return len(self.get(key))

    def list(self, prefix: str = "") -> List[str]:
        if prefix and not prefix.endswith("/") and prefix in self._data:
            return [prefix]
        p = prefix.rstrip("/") + "/" if prefix else ""
        return sorted(k for k in list(self._data) if k.startswith(p))

    def get_versioned(self, key: str) -> Tuple[bytes, str]:
        data = self.get(key)
        return data, content_version(data)

    def set_if_absent(self, key: str, value: bytes) -> bool:
        self.check_writable()
        with _LOCK:
            if key in self._data:
                return False
            self._data[key] = bytes(value)
            return True

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        self.check_writable()
        with _LOCK:
            cur = self._data.get(key)
            if cur is None or content_version(cur) != version:
                return False
            self._data[key] = bytes(value)
            return True

    def delete_if_match(self, key: str, version: str) -> bool:
        self.check_writable()
        with _LOCK:
            cur = self._data.get(key)
            if cur is None or content_version(cur) != version:
                return False
            del self._data[key]
            return True
