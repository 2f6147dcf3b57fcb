"""Storage: one interface (`StorageProvider`) over local folders, memory and fsspec URLs."""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

from lakeformat.constants import DEFAULT_CACHE_SIZE
from lakeformat.storage.base import PrefixedStorage, StorageProvider
from lakeformat.storage.fsspec_store import FsspecStorage, storage_options_from_creds
from lakeformat.storage.local import LocalStorage
from lakeformat.storage.lru_cache import LRUCache
from lakeformat.storage.memory import MemoryStorage

__all__ = [
    "StorageProvider",
    "LocalStorage",
    "MemoryStorage",
    "FsspecStorage",
    "LRUCache",
    "PrefixedStorage",
    "storage_from_url",
    "protocol_of",
]

_ALIASES = {"gcs": "gs", "az": "az", "abfs": "abfs", "mem": "memory"}


def protocol_of(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def storage_from_url(
    url: Union[str, StorageProvider],
    creds: Optional[Dict[str, Any]] = None,
    read_only: bool = False,
    cache_size: Optional[int] = DEFAULT_CACHE_SIZE,
) -> StorageProvider:
    """Coerce a URL (local path, memory://, s3://, gs://, gcs://, az://, abfs://...) or a store
    into a `StorageProvider`, with an LRU read cache of `cache_size` bytes in front."""
    if isinstance(url, StorageProvider):
        return url
    url = str(url)
    protocol = protocol_of(url)
    if protocol == "file":
        path = url[len("file://"):] if url.startswith("file://") else url
        store: StorageProvider = LocalStorage(path, read_only=read_only)
        return store  # the OS page cache already serves repeated local reads
    if protocol in ("memory", "mem"):
        return MemoryStorage("memory://" + url.split("://", 1)[1], read_only=read_only)
    if protocol == "gcs":
        url = "gs://" + url.split("://", 1)[1]
        protocol = "gs"
    store = FsspecStorage(url, storage_options_from_creds(protocol, creds), read_only=read_only)
    if cache_size:
        return LRUCache(store, cache_size)
    return store
