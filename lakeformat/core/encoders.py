"""Run-length index encoders of the layout, each with its exact byte form.

Every encoder is a table whose last column is the "last index" covered by a row; a row covers
the indices after the previous row's last index up to its own. Lookups are lower-bound
searches done by the native kernel `runs_lookup`.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from lakeformat import _native
from lakeformat import constants as C
from lakeformat.errors import CorruptDataError, IndexOutOfRangeError

# arrays go to the native kernels as `.data` (their buffer): numpy's stubs give ndarray no
# __buffer__ before Python 3.12, and a memoryview of an array reads the same in C


def _version_header(version: str) -> bytes:
    v = version.encode("ascii")
    return bytes([len(v)]) + v


def _read_version(data: memoryview, key: str) -> Tuple[str, int]:
    if len(data) < 1 or len(data) < 1 + data[0]:
        raise CorruptDataError("encoder too short for its version header", key)
    n = data[0]
    try:
        return bytes(data[1 : 1 + n]).decode("ascii"), 1 + n
    except UnicodeDecodeError as e:
        raise CorruptDataError("encoder version is not ASCII", key) from e


def lookup_rows(last_index: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Row of each query: the first row whose last index is >= the query."""
    q = np.ascontiguousarray(queries, dtype=np.int64)
    out = np.empty(len(q), dtype=np.int64)
    if len(q):
        try:
            _native.runs_lookup(np.ascontiguousarray(last_index).data, q.data, out.data)
        except IndexError as e:
            raise IndexOutOfRangeError(str(e)) from None
    return out


class ChunkIdEncoder:
    """chunks_index/unsharded: rows (chunk id, last sample index), uint64.

    A tiled sample spans several consecutive rows sharing its index as last index.
    """

    def __init__(self, rows: Optional[np.ndarray] = None, version: str = C.FORMAT_VERSION):
        self.rows = rows if rows is not None else np.zeros((0, 2), dtype=np.uint64)
        self.version = version

    @staticmethod
    def new_id() -> int:
        return int.from_bytes(os.urandom(8), "little") or 1

    @staticmethod
    def name_of(chunk_id: int) -> str:
        return format(int(chunk_id), "x")

    @property
    def num_samples(self) -> int:
        return int(self.rows[-1, 1]) + 1 if len(self.rows) else 0

    @property
    def num_chunks(self) -> int:
        return len(self.rows)

    def names(self) -> List[str]:
        return [self.name_of(i) for i in self.rows[:, 0]]

    def append_chunk(self, chunk_id: int, last_index: int) -> None:
        self.rows = np.concatenate([self.rows, np.array([[chunk_id, last_index]], dtype=np.uint64)])

    def set_last_index(self, row: int, last_index: int) -> None:
        self.rows[row, 1] = last_index

    def row_of(self, indices: np.ndarray) -> np.ndarray:
        return lookup_rows(self.rows[:, 1], indices)

    def first_index_of_row(self, row: int) -> int:
        if row == 0:
            return 0
        return int(self.rows[row - 1, 1]) + 1

    def first_indices(self) -> np.ndarray:
        """First global sample index of each row (for tile rows, their sample's index)."""
        if not len(self.rows):
            return np.zeros(0, dtype=np.int64)
        last = self.rows[:, 1].astype(np.int64)
        first = np.empty_like(last)
        first[0] = 0
        first[1:] = last[:-1] + 1
        # rows of a tiled sample after its first share the previous last index
        tile_cont = np.zeros(len(last), dtype=bool)
        tile_cont[1:] = last[1:] == last[:-1]
        first[tile_cont] = last[tile_cont]
        return first

    def rows_of_sample(self, index: int) -> np.ndarray:
        """All rows holding sample `index` (several for a tiled sample)."""
        r = int(self.row_of(np.array([index]))[0])
        end = r + 1
        while end < len(self.rows) and int(self.rows[end, 1]) == index:
            end += 1
        return np.arange(r, end)

    def to_bytes(self) -> bytes:
        rows = np.ascontiguousarray(self.rows, dtype=np.uint64)
        return _version_header(self.version) + bytes([8]) + rows.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "ChunkIdEncoder":
        mv = memoryview(data)
        if len(mv) == 0:
            return cls()
        version, off = _read_version(mv, key)
        if len(mv) <= off:
            return cls(version=version)
        itemsize = mv[off]
        off += 1
        if itemsize not in (4, 8):
            raise CorruptDataError(f"chunk id encoder item size {itemsize}", key)
        body = mv[off:]
        if len(body) % (2 * itemsize):
            raise CorruptDataError("chunk id encoder body is not a whole number of rows", key)
        rows = np.frombuffer(body, dtype=np.uint32 if itemsize == 4 else np.uint64).reshape(-1, 2).astype(np.uint64)
        return cls(rows, version)


class TileEncoder:
    """tiles_index/unsharded: sample index -> (sample shape, tile shape)."""

    def __init__(self, entries: Optional[Dict[int, Tuple[Tuple[int, ...], Tuple[int, ...]]]] = None, version: str = C.FORMAT_VERSION):
        self.entries = entries or {}
        self.version = version

    def __contains__(self, index: int) -> bool:
        return index in self.entries

    def layout(self, index: int) -> Tuple[int, ...]:
        sample_shape, tile_shape = self.entries[index]
        return tuple(-(-s // t) for s, t in zip(sample_shape, tile_shape))

    def num_tiles(self, index: int) -> int:
        return int(np.prod(self.layout(index)))

    def pop(self, index: int) -> None:
        self.entries.pop(index, None)
        self.entries = {(k - 1 if k > index else k): v for k, v in self.entries.items()}

    def to_bytes(self) -> bytes:
        out = bytearray(_version_header(self.version))
        out += len(self.entries).to_bytes(8, "little")
        if not self.entries:
            return bytes(out)
        ndim = len(next(iter(self.entries.values()))[0])
        out += ndim.to_bytes(8, "little")
        for idx, (ss, ts) in self.entries.items():
            out += int(idx).to_bytes(8, "little")
            out += np.asarray(list(ss) + list(ts), dtype="<u8").tobytes()
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "TileEncoder":
        mv = memoryview(data)
        if len(mv) == 0:
            return cls()
        version, off = _read_version(mv, key)
        n = int.from_bytes(mv[off : off + 8], "little")
        off += 8
        if n == 0:
            return cls(version=version)
        ndim = int.from_bytes(mv[off : off + 8], "little")
        off += 8
        need = off + n * 8 * (1 + 2 * ndim)
        if len(mv) < need:
            raise CorruptDataError("tile encoder truncated", key)
        vals = np.frombuffer(mv[off:need], dtype="<u8").reshape(n, 1 + 2 * ndim)
        entries = {int(r[0]): (tuple(int(x) for x in r[1 : 1 + ndim]), tuple(int(x) for x in r[1 + ndim :])) for r in vals}
        return cls(entries, version)


class RangeEncoder:
    """sequence_index: rows (num items, first item, last sample index), uint32. Sample i of a
    sequence tensor is items [first, first + num)."""

    def __init__(self, rows: Optional[np.ndarray] = None, version: str = C.FORMAT_VERSION):
        self.rows = rows if rows is not None else np.zeros((0, 3), dtype=np.uint32)
        self.version = version

    @property
    def num_samples(self) -> int:
        return int(self.rows[-1, 2]) + 1 if len(self.rows) else 0

    @property
    def num_items(self) -> int:
        if not len(self.rows):
            return 0
        r = self.rows[-1]
        prev = int(self.rows[-2, 2]) if len(self.rows) > 1 else -1
        return int(r[1]) + int(r[0]) * (int(r[2]) - prev)

    def item_ranges(self, indices: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        start = np.empty(len(idx), dtype=np.int64)
        end = np.empty(len(idx), dtype=np.int64)
        if len(idx):
            try:
                _native.positions_expand(np.ascontiguousarray(self.rows, dtype=np.uint32).data, idx.data, start.data, end.data)
            except IndexError as e:
                raise IndexOutOfRangeError(str(e)) from None
        return start, end

    def extend(self, lengths: np.ndarray) -> None:
        lengths = np.asarray(lengths, dtype=np.int64)
        if not len(lengths):
            return
        all_lengths = np.concatenate([self.all_lengths(), lengths])
        out = np.empty(3 * len(all_lengths), dtype=np.uint32)
        n = _native.positions_encode(all_lengths.data, 0, 0, out.data)
        self.rows = out[: 3 * n].reshape(n, 3).copy()

    def all_lengths(self) -> np.ndarray:
        if not len(self.rows):
            return np.zeros(0, dtype=np.int64)
        s, e = self.item_ranges(np.arange(self.num_samples))
        lengths: np.ndarray = e - s
        return lengths

    def set_lengths(self, lengths: np.ndarray) -> None:
        self.rows = np.zeros((0, 3), dtype=np.uint32)
        self.extend(lengths)

    def to_bytes(self) -> bytes:
        return _version_header(self.version) + np.ascontiguousarray(self.rows, dtype=np.uint32).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "RangeEncoder":
        mv = memoryview(data)
        if len(mv) == 0:
            return cls()
        version, off = _read_version(mv, key)
        body = mv[off:]
        if len(body) % 12:
            raise CorruptDataError("sequence encoder body is not whole rows", key)
        return cls(np.frombuffer(body, dtype=np.uint32).reshape(-1, 3).copy(), version)


class CredsEncoder:
    """creds_index: rows (creds key number, last sample index), uint32. 0 means no creds key;
    k means the k-th key of linked_creds.json."""

    def __init__(self, rows: Optional[np.ndarray] = None, version: str = C.FORMAT_VERSION):
        self.rows = rows if rows is not None else np.zeros((0, 2), dtype=np.uint32)
        self.version = version

    @property
    def num_samples(self) -> int:
        return int(self.rows[-1, 1]) + 1 if len(self.rows) else 0

    def all_values(self) -> np.ndarray:
        if not len(self.rows):
            return np.zeros(0, dtype=np.int64)
        counts = np.diff(np.concatenate([[-1], self.rows[:, 1].astype(np.int64)]))
        return np.repeat(self.rows[:, 0].astype(np.int64), counts)

    def set_values(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.uint32)
        out = np.empty(2 * len(values), dtype=np.uint32)
        n = _native.runs_encode(values.data, 1, 0, out.data) if len(values) else 0
        self.rows = out[: 2 * n].reshape(n, 2).copy()

    def extend(self, values: np.ndarray) -> None:
        self.set_values(np.concatenate([self.all_values(), np.asarray(values, dtype=np.int64)]))

    def values_at(self, indices: np.ndarray) -> np.ndarray:
        values: np.ndarray = self.rows[lookup_rows(self.rows[:, 1], indices), 0].astype(np.int64)
        return values

    def to_bytes(self) -> bytes:
        return _version_header(self.version) + np.ascontiguousarray(self.rows, dtype=np.uint32).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, key: str = "") -> "CredsEncoder":
        mv = memoryview(data)
        if len(mv) == 0:
            return cls()
        version, off = _read_version(mv, key)
        body = mv[off:]
        if len(body) % 8:
            raise CorruptDataError("creds encoder body is not whole rows", key)
        return cls(np.frombuffer(body, dtype=np.uint32).reshape(-1, 2).copy(), version)
