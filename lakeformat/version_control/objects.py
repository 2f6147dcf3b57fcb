"""The per-version bookkeeping objects of the layout, with their exact byte forms:
`CommitDiff` (per tensor: samples added, updated, deleted), `ChunkSet` (per tensor: chunks
written in this version), `DatasetDiff` (tensors renamed or deleted in this version)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Set

from lakeformat.errors import CorruptDataError


def _b(n: int, width: int = 8) -> bytes:
    return int(n).to_bytes(width, "big")


class CommitDiff:
    """What changed in one tensor within one version. `data_added` (a range) and
    `data_updated` are positions in the version's current state; `data_deleted` positions as
    of the version's start; `data_deleted_ids` the sample ids of the deleted samples."""

    def __init__(self, first_index: int = 0, created: bool = False):
        self.created = created
        self.info_updated = False
        self.data_transformed = False
        self.data_added: List[int] = [first_index, first_index]
        self.data_updated: Set[int] = set()
        self.cleared = False
        self.data_deleted: Set[int] = set()
        self.data_deleted_ids: List[int] = []
        self.dirty = created

    def to_bytes(self) -> bytes:
        parts = [
            _b(self.created, 1),
            _b(self.info_updated, 1),
            _b(self.data_transformed, 1),
            _b(self.data_added[0]),
            _b(self.data_added[1]),
            _b(len(self.data_updated)),
            *(_b(i) for i in sorted(self.data_updated)),
            _b(self.cleared, 1),
            _b(len(self.data_deleted)),
            *(_b(i) for i in sorted(self.data_deleted)),
            *(_b(i) for i in self.data_deleted_ids[: len(self.data_deleted)]),
        ]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "CommitDiff":
        d = bytes(data)
        if len(d) < 28:
            raise CorruptDataError("commit diff truncated", key)
        cd = cls()
        cd.created = bool(d[0])
        cd.info_updated = bool(d[1])
        cd.data_transformed = bool(d[2])
        cd.data_added = [int.from_bytes(d[3:11], "big"), int.from_bytes(d[11:19], "big")]
        n_upd = int.from_bytes(d[19:27], "big")
        pos = 27
        cd.data_updated = {int.from_bytes(d[pos + 8 * i : pos + 8 * i + 8], "big") for i in range(n_upd)}
        pos += 8 * n_upd
        cd.cleared = bool(d[pos]) if pos < len(d) else False
        pos += 1
        if len(d) > pos:
            n_del = int.from_bytes(d[pos : pos + 8], "big")
            pos += 8
            cd.data_deleted = {int.from_bytes(d[pos + 8 * i : pos + 8 * i + 8], "big") for i in range(n_del)}
            pos += 8 * n_del
            if len(d) > pos:
                n_ids = min(n_del, (len(d) - pos) // 8)
                cd.data_deleted_ids = [int.from_bytes(d[pos + 8 * i : pos + 8 * i + 8], "big") for i in range(n_ids)]
        cd.dirty = False
        return cd

    @property
    def num_samples_added(self) -> int:
        return self.data_added[1] - self.data_added[0]

    @property
    def has_changes(self) -> bool:
        return bool(self.created or self.info_updated or self.cleared or self.data_transformed or self.num_samples_added or self.data_updated or self.data_deleted)

    def translate_index(self, index: int) -> int:
        """A position now -> its position as of this version's start (for samples that were
        there at the start: below `data_added[0]`)."""
        for d in sorted(self.data_deleted):
            if d <= index:
                index += 1
            else:
                break
        return index

    def add_data(self, count: int) -> None:
        self.data_added[1] += count
        self.dirty = True

    def update_data(self, index: int) -> None:
        # data_added and data_updated hold positions in the version's current state;
        # data_deleted holds positions as of its start
        if not (self.data_added[0] <= index < self.data_added[1]):
            self.data_updated.add(index)
            self.dirty = True

    def modify_info(self) -> None:
        self.info_updated = True
        self.dirty = True

    def pop(self, index: int, sample_id: Optional[int]) -> None:
        if self.data_added[0] <= index < self.data_added[1]:
            self.data_added[1] -= 1
        else:
            self.data_deleted.add(self.translate_index(index))
            self.data_added[0] -= 1
            self.data_added[1] -= 1
            if sample_id is not None:
                self.data_deleted_ids.append(int(sample_id))
        self.data_updated.discard(index)
        self.data_updated = {i - 1 if i > index else i for i in self.data_updated}
        self.dirty = True

    def clear(self) -> None:
        self.data_added = [0, 0]
        self.data_updated = set()
        self.data_deleted = set()
        self.info_updated = False
        self.cleared = True
        self.dirty = True


class ChunkSet:
    """chunk_set: comma-separated names of the chunks written in this version; an entry may
    point at another commit's chunk as 'name:commit_id[:key]'."""

    def __init__(self, chunks: Optional[Dict[str, Dict[str, str]]] = None):
        self.chunks: Dict[str, Dict[str, str]] = chunks or {}
        self.dirty = False

    def add(self, name: str, commit_id: Optional[str] = None, key: Optional[str] = None) -> None:
        v: Dict[str, str] = {}
        if commit_id:
            v["commit_id"] = commit_id
            if key:
                v["key"] = key
        if self.chunks.get(name) != v:
            self.chunks[name] = v
            self.dirty = True

    def __contains__(self, name: str) -> bool:
        return name in self.chunks

    def to_bytes(self) -> bytes:
        def entry(k: str, v: Dict[str, str]) -> str:
            if not v:
                return k
            if v.get("key"):
                return f"{k}:{v['commit_id']}:{v['key']}"
            return f"{k}:{v['commit_id']}"

        return ",".join(entry(k, v) for k, v in self.chunks.items()).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "ChunkSet":
        cs = cls()
        if data:
            for e in bytes(data).decode("utf-8").split(","):
                parts = e.split(":")
                v: Dict[str, str] = {}
                if len(parts) > 1:
                    v["commit_id"] = parts[1]
                if len(parts) > 2:
                    v["key"] = parts[2]
                cs.chunks[parts[0]] = v
        return cs


class DatasetDiff:
    """dataset_diff: whether dataset info changed, tensors renamed (old -> new) and deleted."""

    def __init__(self) -> None:
        self.info_updated = False
        self.renamed: "OrderedDict[str, str]" = OrderedDict()
        self.deleted: List[str] = []
        self.dirty = False

    def to_bytes(self) -> bytes:
        out = [_b(self.info_updated, 1), _b(len(self.renamed))]
        for old, new in self.renamed.items():
            o, n = old.encode("utf-8"), new.encode("utf-8")
            out += [_b(len(o)), _b(len(n)), o + n]
        out.append(_b(len(self.deleted)))
        for name in self.deleted:
            b = name.encode("utf-8")
            out += [_b(len(b)), b]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "DatasetDiff":
        d = bytes(data)
        dd = cls()
        if not d:
            return dd
        dd.info_updated = bool(d[0])
        n = int.from_bytes(d[1:9], "big")
        pos = 9
        for _ in range(n):
            lo, ln = int.from_bytes(d[pos : pos + 8], "big"), int.from_bytes(d[pos + 8 : pos + 16], "big")
            pos += 16
            dd.renamed[d[pos : pos + lo].decode("utf-8")] = d[pos + lo : pos + lo + ln].decode("utf-8")
            pos += lo + ln
        n = int.from_bytes(d[pos : pos + 8], "big")
        pos += 8
        for _ in range(n):
            ln = int.from_bytes(d[pos : pos + 8], "big")
            pos += 8
            dd.deleted.append(d[pos : pos + ln].decode("utf-8"))
            pos += ln
        return dd

    def tensor_renamed(self, old: str, new: str) -> None:
        for o, n in list(self.renamed.items()):
            if n == old:
                if o == new:
                    self.renamed.pop(o)
                else:
                    self.renamed[o] = new
                break
        else:
            self.renamed[old] = new
        self.dirty = True

    def tensor_deleted(self, name: str) -> None:
        for o, n in list(self.renamed.items()):
            if n == name:
                self.renamed.pop(o)
                name = o
                break
        if name not in self.deleted:
            self.deleted.append(name)
        self.dirty = True

    def modify_info(self) -> None:
        self.info_updated = True
        self.dirty = True
