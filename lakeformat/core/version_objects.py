"""The per-version bookkeeping objects of the layout, with their exact byte forms:
`CommitDiff` (per tensor: samples added, updated, deleted), `ChunkSet` (per tensor: chunks
written in this version), `DatasetDiff` (tensors renamed or deleted in this version)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Set

import numpy as np

from lakeformat.errors import CorruptDataError


def _b(n: int, width: int = 8) -> bytes:
    return int(n).to_bytes(width, "big")


def _read_u64s(d: bytes, pos: int, n: int) -> List[int]:
    out: List[int] = np.frombuffer(d, dtype=">u8", count=n, offset=pos).astype(np.uint64).tolist()
    return out


class CommitDiff:
    """What changed in one tensor within one version. `data_added` (a range) and
    `data_updated` are positions in the version's current state; `data_deleted` positions as
    of the version's start; `data_deleted_ids` the sample ids of the deleted samples."""

    def __init__(self, first_index: int = 0, created: bool = False):
        self.created = created
        self.info_updated = False
        self.data_transformed = False
        self.data_added: List[int] = [first_index, first_index]
        self._updated: Set[int] = set()
        # a bulk update parks its positions here, sorted and unique (a set of a million ints
        # per tensor costs ~60 MiB, and sorting it again at every flush is quadratic); they
        # join the set when it is first read
        self._updated_arr = np.zeros(0, np.int64)
        self.cleared = False
        self._deleted: Set[int] = set()
        self._deleted_ids: List[int] = []
        # a bulk pop parks its positions and ids here as arrays (a Python set of a million
        # ints per tensor costs ~60 MiB); they join the set and the list when first read so
        self._pending_deleted: List[np.ndarray] = []
        self._pending_ids: List[np.ndarray] = []
        self.dirty = created

    @property
    def data_updated(self) -> Set[int]:
        if len(self._updated_arr):
            self._updated.update(self._updated_arr.tolist())
            self._updated_arr = np.zeros(0, np.int64)
        return self._updated

    @data_updated.setter
    def data_updated(self, value: Set[int]) -> None:
        self._updated = value if isinstance(value, set) else set(value)
        self._updated_arr = np.zeros(0, np.int64)

    def add_updated(self, positions: np.ndarray) -> None:
        """Record updated positions (in the current state) in bulk, kept as a sorted array:
        merging sorted positions is linear, with no Python int per position."""
        p = np.asarray(positions, dtype=np.int64).reshape(-1)
        if not len(p):
            return
        merged = np.sort(np.concatenate([self._updated_arr, p]), kind="stable")  # sorted runs: a merge
        if len(merged) > 1:
            merged = merged[np.concatenate([[True], merged[1:] != merged[:-1]])]
        self._updated_arr = merged
        self.dirty = True

    def updated_array(self) -> np.ndarray:
        """Every updated position, sorted, without making a set."""
        if not self._updated:
            return self._updated_arr
        have = np.fromiter(self._updated, dtype=np.int64, count=len(self._updated))
        return np.unique(np.concatenate([have, self._updated_arr]))

    @property
    def data_deleted(self) -> Set[int]:
        if self._pending_deleted:
            for a in self._pending_deleted:
                self._deleted.update(a.tolist())
            self._pending_deleted = []
        return self._deleted

    @data_deleted.setter
    def data_deleted(self, value: Set[int]) -> None:
        self._deleted = value if isinstance(value, set) else set(value)
        self._pending_deleted = []

    @property
    def data_deleted_ids(self) -> List[int]:
        if self._pending_ids:
            for a in self._pending_ids:
                self._deleted_ids.extend(a.tolist())
            self._pending_ids = []
        return self._deleted_ids

    @data_deleted_ids.setter
    def data_deleted_ids(self, value: List[int]) -> None:
        self._deleted_ids = list(value)
        self._pending_ids = []

    @property
    def num_deleted(self) -> int:
        return len(self._deleted) + sum(len(a) for a in self._pending_deleted)

    def deleted_array(self) -> np.ndarray:
        """Every deleted position (as of the version's start), sorted, without making a set."""
        parts = [np.fromiter(self._deleted, dtype=np.int64, count=len(self._deleted))] + [np.asarray(a, np.int64) for a in self._pending_deleted]
        return np.sort(np.concatenate(parts))

    def add_deleted(self, positions: np.ndarray, ids: Optional[np.ndarray]) -> None:
        """Record deleted positions (as of the version's start, none recorded before) and
        their sample ids in the order single pops would append them, as arrays."""
        if len(positions):
            self._pending_deleted.append(np.asarray(positions, dtype=np.int64))
        if ids is not None and len(ids):
            self._pending_ids.append(np.asarray(ids, dtype=np.uint64))
        self.dirty = True

    def _ids_bytes(self, n: int) -> bytes:
        parts = [np.asarray(self._deleted_ids, dtype=np.uint64)] + list(self._pending_ids)
        return np.concatenate(parts)[:n].astype(">u8").tobytes()

    def to_bytes(self) -> bytes:
        updated = self.updated_array()
        parts = [
            _b(self.created, 1),
            _b(self.info_updated, 1),
            _b(self.data_transformed, 1),
            _b(self.data_added[0]),
            _b(self.data_added[1]),
            _b(len(updated)),
            updated.astype(">u8").tobytes(),
            _b(self.cleared, 1),
            _b(self.num_deleted),
            self.deleted_array().astype(">u8").tobytes(),
            self._ids_bytes(self.num_deleted),
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
        if n_upd > (len(d) - pos) // 8:
            raise CorruptDataError(f"commit diff lists {n_upd} updated samples in {len(d)} bytes", key)
        upd = np.frombuffer(d, dtype=">u8", count=n_upd, offset=pos).astype(np.uint64)
        if n_upd and int(upd.max()) >= 1 << 63:  # a sample position, never this large
            raise CorruptDataError(f"commit diff lists an updated sample at position {int(upd.max())}", key)
        cd.add_updated(np.unique(upd.astype(np.int64)))
        pos += 8 * n_upd
        # older writers stop after the updates, or after the `cleared` flag
        cd.cleared = bool(d[pos]) if pos < len(d) else False
        pos += 1
        if len(d) > pos:
            if len(d) < pos + 8:
                raise CorruptDataError("commit diff truncated in its deletions", key)
            n_del = int.from_bytes(d[pos : pos + 8], "big")
            pos += 8
            if n_del > (len(d) - pos) // 8:
                raise CorruptDataError(f"commit diff lists {n_del} deleted samples in {len(d)} bytes", key)
            deleted = _read_u64s(d, pos, n_del)
            if deleted and max(deleted) >= 1 << 63:  # positions are int64 everywhere else
                raise CorruptDataError("commit diff deletes a position past any tensor's length", key)
            cd.data_deleted = set(deleted)
            pos += 8 * n_del
            if len(d) > pos:
                n_ids = min(n_del, (len(d) - pos) // 8)
                cd.data_deleted_ids = _read_u64s(d, pos, n_ids)
        cd.dirty = False
        return cd

    @property
    def num_samples_added(self) -> int:
        return self.data_added[1] - self.data_added[0]

    @property
    def has_changes(self) -> bool:
        return bool(self.created or self.info_updated or self.cleared or self.data_transformed or self.num_samples_added or self._updated or len(self._updated_arr) or self.num_deleted)

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
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorruptDataError(f"chunk set is not UTF-8 text: {e}", key) from None
            for entry in text.split(","):
                parts = entry.split(":")
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
        def count(at: int, what: str) -> int:
            if at + 8 > len(d):
                raise CorruptDataError(f"dataset diff truncated in its {what}", key)
            return int.from_bytes(d[at : at + 8], "big")

        def text(at: int, n: int) -> str:
            if at + n > len(d):
                raise CorruptDataError("dataset diff truncated in a tensor name", key)
            try:
                return d[at : at + n].decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorruptDataError(f"dataset diff names a tensor in bytes that are not UTF-8: {e}", key) from None

        dd.info_updated = bool(d[0])
        n = count(1, "renames")
        pos = 9
        if n > len(d) // 16:  # each rename takes 16 bytes of lengths at least
            raise CorruptDataError(f"dataset diff lists {n} renames in {len(d)} bytes", key)
        for _ in range(n):
            lo, ln = count(pos, "renames"), count(pos + 8, "renames")
            pos += 16
            old = text(pos, lo)
            dd.renamed[old] = text(pos + lo, ln)
            pos += lo + ln
        n = count(pos, "deletions")
        pos += 8
        if n > len(d) // 8:
            raise CorruptDataError(f"dataset diff lists {n} deletions in {len(d)} bytes", key)
        for _ in range(n):
            ln = count(pos, "deletions")
            pos += 8
            dd.deleted.append(text(pos, ln))
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
