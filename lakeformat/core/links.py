"""Linked tensors: creds keys of a dataset and the fetching of linked samples."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np

from lakeformat.codecs import decompress_image, image_shape
from lakeformat.core import keys
from lakeformat.core.sample import fetch_bytes
from lakeformat.errors import CredsKeyError, LinkError, SampleDecodeError
from lakeformat.htypes import htype_of
from lakeformat.storage import StorageProvider

if TYPE_CHECKING:
    from lakeformat.core.tensor import Tensor

_CLOUD = ("s3://", "gs://", "gcs://", "az://", "abfs://", "abfss://", "azure://")
FETCH_THREADS = 16


class LinkCreds:
    """linked_creds.json holds creds key names only; the creds themselves stay in memory
    (`populate_creds`) and are never written."""

    def __init__(self, d: Optional[Dict[str, Any]] = None):
        d = d or {}
        self.creds_keys: List[str] = list(d.get("creds_keys", []))
        self.managed_creds_keys: List[str] = list(d.get("managed_creds_keys", []))
        self.used_creds_keys: List[str] = list(d.get("used_creds_keys", []))
        self.creds: Dict[str, Dict[str, Any]] = {}
        self.dirty = False

    @classmethod
    def load(cls, storage: StorageProvider, prefetched: Optional[Dict[str, Optional[bytes]]] = None) -> "LinkCreds":
        """The dataset's creds names (from `prefetched` when it holds the key)."""
        k = keys.linked_creds_key()
        if prefetched is not None and k in prefetched:
            raw = prefetched[k]
            return cls(json.loads(raw)) if raw is not None else cls()
        try:
            return cls(json.loads(storage.get(k)))
        except KeyError:
            return cls()

    def to_bytes(self) -> bytes:
        return json.dumps({"creds_keys": self.creds_keys, "managed_creds_keys": self.managed_creds_keys, "used_creds_keys": self.used_creds_keys}).encode()

    def add(self, name: str, managed: bool = False) -> None:
        if name in self.creds_keys:
            raise CredsKeyError(f"creds key {name!r} already exists")
        self.creds_keys.append(name)
        if managed:
            self.managed_creds_keys.append(name)
        self.dirty = True

    def populate(self, name: str, creds: Dict[str, Any]) -> None:
        if name not in self.creds_keys:
            raise CredsKeyError(f"creds key {name!r} does not exist; add it with ds.add_creds_key")
        self.creds[name] = dict(creds)

    def encode(self, name: Optional[str], path: str) -> int:
        if name is None:
            return 0
        if name not in self.creds_keys:
            raise CredsKeyError(f"creds key {name!r} does not exist; add it with ds.add_creds_key")
        if name not in self.used_creds_keys:
            self.used_creds_keys.append(name)
            self.dirty = True
        return self.creds_keys.index(name) + 1

    def decode(self, number: int) -> Optional[str]:
        if number == 0:
            return None
        if number > len(self.creds_keys):
            raise CredsKeyError(f"creds key number {number} is unknown")
        return self.creds_keys[number - 1]

    def creds_for(self, name: Optional[str], path: str = "") -> Optional[Dict[str, Any]]:
        if name is None or (path and not path.startswith(_CLOUD)):
            return None  # local files and plain http need no creds
        if name not in self.creds and name != "ENV":
            raise CredsKeyError(f"creds key {name!r} is not populated; call ds.populate_creds({name!r}, {{...}})")
        return self.creds.get(name)


class LinkResolver:
    def __init__(self, creds: LinkCreds):
        self.creds = creds

    def shape_of(self, path: str, creds_key: Optional[str]) -> Sequence[int]:
        data = fetch_bytes(path, self.creds.creds_for(creds_key, path))
        return image_shape(data)

    def resolve_many(self, tensor: "Tensor", datas: List[memoryview], items: np.ndarray) -> List[Any]:
        eng = tensor.engine
        numbers = eng.creds.values_at(items) if eng.creds is not None and eng.creds.num_samples else np.zeros(len(items), np.int64)
        paths = [bytes(d).decode("utf-8") for d in datas]
        base = tensor.meta.base_htype
        dtype = np.dtype(tensor.meta.dtype or "uint8")
        ndim = len(tensor.meta.min_shape or ()) or 3

        def one(k: int) -> Any:
            p = paths[k]
            if not p:
                return np.zeros((0,) * ndim, dtype)
            name = self.creds.decode(int(numbers[k]))
            try:
                raw = fetch_bytes(p, self.creds.creds_for(name, p))
            except LinkError as e:
                raise LinkError(f"tensor {tensor.name!r}, sample {int(items[k])}: {e}") from e
            if htype_of(base).pixels:
                try:
                    arr = decompress_image(raw)
                except Exception as e:  # noqa: BLE001
                    raise SampleDecodeError(f"linked file {p!r} does not decode: {e}", tensor=tensor.name, index=int(items[k])) from e
                if arr.ndim == 2 and ndim == 3:
                    arr = arr[..., None]
                return arr.astype(dtype, copy=False)
            return np.frombuffer(raw, dtype=np.uint8)

        if len(paths) > 1:
            with ThreadPoolExecutor(min(FETCH_THREADS, len(paths))) as pool:
                return list(pool.map(one, range(len(paths))))
        return [one(k) for k in range(len(paths))]
