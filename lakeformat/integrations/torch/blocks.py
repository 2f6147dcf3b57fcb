"""Chunks read from an object store in byte blocks, so that a task starts on its samples as
soon as the bytes holding them are in, not when the whole chunk (16 MB by default) is.

Only chunks without chunk compression qualify: their samples are byte ranges of the chunk.
The first block (`FIRST_BLOCK` bytes) holds the header, which says where every sample is and
how long the chunk is; the rest of the chunk then comes in blocks of at most `BLOCK` bytes,
fetched side by side. A task's samples are a contiguous run of one chunk, so a task waits for
the one or two blocks its run spans and reads them as a `ChunkSlice`.
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any, List, Optional, Tuple

import numpy as np

from lakeformat.core.chunk import Chunk
from lakeformat.errors import CorruptDataError
from lakeformat.storage import StorageProvider

FIRST_BLOCK = 1 << 20
BLOCK = 16 << 20
BLOCKED = "blocked"  # a fetch mode beside the chunk compressions: fetched in blocks


class ChunkSlice:
    """The samples of a chunk between data offsets `base` and `base + len(buf)`, with the
    parsed header of the whole chunk: what `read_column` needs of a `Chunk`."""

    __slots__ = ("header", "buf", "base", "key")

    compression = None
    is_tile = False

    def __init__(self, header: Chunk, buf: memoryview, base: int):
        self.header, self.buf, self.base, self.key = header, buf, base, header.key

    @property
    def data(self) -> memoryview:
        return self.buf

    def byte_ranges(self, local: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        s, e = self.header.byte_ranges(local)
        if len(s) and (int(s.min()) < self.base or int(e.max()) > self.base + len(self.buf)):
            raise CorruptDataError("sample outside the block read for it", self.key)
        return s - self.base, e - self.base

    def shapes(self, local: np.ndarray) -> np.ndarray:
        return self.header.shapes(local)

    @property
    def num_samples(self) -> int:
        return self.header.num_samples


class BlockedChunk:
    """A chunk arriving in blocks: its header now, its blocks as futures of bytes."""

    def __init__(self, header: Chunk, bounds: List[Tuple[int, int]], blocks: List[Any]):
        self.header = header
        self.key = header.key
        self.bounds = bounds  # absolute [start, end) of each block in the chunk object
        self.blocks = blocks  # bytes, or a Future of bytes
        self.nbytes = bounds[-1][1] if bounds else 0

    def for_samples(self, local: np.ndarray) -> ChunkSlice:
        """A slice holding these samples (waits for their blocks)."""
        hn = self.header.header_nbytes
        s, e = self.header.byte_ranges(local)
        if not len(s):
            return ChunkSlice(self.header, memoryview(b""), 0)
        lo, hi = int(s.min()) + hn, int(e.max()) + hn
        parts = []
        for (a, b), blk in zip(self.bounds, self.blocks):
            if b <= lo or a >= hi:
                continue
            data = blk.result() if isinstance(blk, Future) else blk
            if len(data) != b - a:
                raise CorruptDataError(f"block [{a}, {b}) of the chunk came back with {len(data)} bytes", self.key)
            parts.append(memoryview(data)[max(lo, a) - a: min(hi, b) - a])
        buf = parts[0] if len(parts) == 1 else memoryview(b"".join(parts))
        if len(buf) != hi - lo:
            raise CorruptDataError("the chunk ends before its samples do", self.key)
        return ChunkSlice(self.header, buf, lo - hn)


def _data_end(header: Chunk) -> int:
    """Where the chunk's sample bytes end (0 for an empty chunk)."""
    n = header.num_samples
    if not n:
        return 0
    _, e = header.byte_ranges(np.array([n - 1], np.int64))
    return int(e[0])


def _pieces(start: int, end: int) -> List[Tuple[int, int]]:
    out = []
    while start < end:
        out.append((start, min(end, start + BLOCK)))
        start = out[-1][1]
    return out


def fetch_blocked(storage: StorageProvider, key: str, pool: Optional[Any], first_local: Optional[int] = None) -> Any:
    """Read chunk `key` block by block: returns a `Chunk` when it fits in the first block,
    else a `BlockedChunk` whose later blocks are being fetched in `pool` (here, one after
    the other, without one). `first_local`, the first sample the asking task wants, gets a
    block of its own, fetched first (a task starting mid-chunk waits for that, not for
    the whole rest)."""
    head = storage.get_range(key, 0, FIRST_BLOCK)
    hn = Chunk.header_nbytes_from(head)
    if hn is not None and hn > len(head):  # a long header: read all of it
        head = bytes(head) + storage.get_range(key, len(head), hn)
    header = Chunk.parse(head, None, key, header_only=True)
    total = header.header_nbytes + _data_end(header)
    if len(head) >= total:
        return Chunk.parse(memoryview(head)[:total], None, key)
    first = [] if not first_local else [header.header_nbytes + int(header.byte_ranges(np.array([first_local], np.int64))[0][0])]
    need = next((a for a in first if len(head) < a < total), None)
    if need is None:
        order = _pieces(len(head), total)
    else:
        near = (need, min(total, need + FIRST_BLOCK))
        order = [near] + _pieces(len(head), need) + _pieces(near[1], total)
    fetched = {}
    for a, b in order:  # in this order: the pool takes them first come, first served
        fetched[(a, b)] = pool.submit(storage.get_range, key, a, b) if pool is not None else storage.get_range(key, a, b)
    bounds = [(0, len(head))] + sorted(fetched)
    return BlockedChunk(header, bounds, [head] + [fetched[ab] for ab in bounds[1:]])
