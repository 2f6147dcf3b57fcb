"""Which commit a dataset object is at, and where that commit's chunks live."""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

from lakeformat import constants as C
from lakeformat.core import keys
from lakeformat.storage import StorageProvider
from lakeformat.core.version_objects import ChunkSet
from lakeformat.core.version_tree import VersionTree


class VersionState:
    def __init__(self, storage: StorageProvider, tree: VersionTree, commit_id: str, branch: Optional[str]):
        self.storage = storage
        self.tree = tree
        self.commit_id = commit_id
        self.branch = branch
        self._chunk_sets: Dict[Tuple[str, str], ChunkSet] = {}
        self._lock = threading.Lock()

    @property
    def chain(self) -> List[str]:
        return self.tree.chain(self.commit_id)

    @property
    def is_head(self) -> bool:
        return self.tree.is_head(self.commit_id)

    def chunk_set(self, tensor_key: str, commit_id: str) -> ChunkSet:
        k = (tensor_key, commit_id)
        cs = self._chunk_sets.get(k)
        if cs is None:
            try:
                raw = self.storage.get(keys.chunk_set_key(tensor_key, commit_id))
                cs = ChunkSet.from_bytes(raw)
            except KeyError:
                cs = ChunkSet()
            with self._lock:
                self._chunk_sets[k] = cs
        return cs

    def forget_chunk_sets(self) -> None:
        with self._lock:
            self._chunk_sets.clear()

    def chunk_location(self, tensor_key: str, chunk_name: str) -> Tuple[str, str]:
        """(commit id, tensor key) whose chunks/ folder holds `chunk_name`, walking from the
        current commit towards the first."""
        for cid in self.chain:
            if cid == C.FIRST_COMMIT_ID:
                return cid, tensor_key
            cs = self.chunk_set(tensor_key, cid)
            entry = cs.chunks.get(chunk_name)
            if entry is not None:
                if entry.get("commit_id"):
                    return entry["commit_id"], entry.get("key") or tensor_key
                return cid, tensor_key
        return C.FIRST_COMMIT_ID, tensor_key
