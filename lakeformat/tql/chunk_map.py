"""`ChunkMap`: which chunk of a tensor each row of a query step lies in, with the chunks'
statistics, for pushdown (`tql/pushdown.py`).

Rows that are one run of consecutive stored items (a dataset queried whole, or a slice of
it: the common case) are kept as that run and the chunk boundaries, so that a 10M-row scan
costs per-chunk work plus one `np.repeat`, never a per-row search or sort; other rows (a
shuffled view) get the chunk row of each, found once.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from lakeformat.core.chunk_stats import ChunkStats
from lakeformat.core.encoders import lookup_rows
from lakeformat.core.index import is_run


class ChunkMap:
    """Rows of a tensor (as stored items) against its chunk index rows and their statistics,
    plus what a constant compared with the column needs (class names, time kind)."""

    def __init__(self, items: np.ndarray, first: np.ndarray, last: np.ndarray, stats: ChunkStats,
                 class_names: Optional[Tuple[str, ...]], time: Optional[Tuple[str, Optional[str]]], nullable: bool,
                 run: Optional[bool] = None):
        self.stats = stats
        self.class_names = class_names
        self.time = time
        self.nullable = nullable
        self.first = first.astype(np.int64)
        self.last = last.astype(np.int64)
        n = len(items)
        self.n = n
        # one run of consecutive items: (first item, end item)
        run = n > 0 and (is_run(items) if run is None else run)  # `run`: known already
        self.span: Optional[Tuple[int, int]] = (int(items[0]), int(items[0]) + n) if run else None
        self._items = None if run else items
        self._rows: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return self.n

    def _run_chunks(self) -> Tuple[int, int, np.ndarray]:
        """For a run: (first chunk row, end chunk row, rows of the run in each of them)."""
        assert self.span is not None
        a, b = self.span
        r0, r1 = (int(x) for x in lookup_rows(self.last.astype(np.uint64), np.array([a, b - 1], np.int64)))
        lo = np.maximum(self.first[r0:r1 + 1], a)
        hi = np.minimum(self.last[r0:r1 + 1], b - 1)
        return r0, r1 + 1, np.maximum(hi - lo + 1, 0)

    def row_chunks(self) -> np.ndarray:
        """The chunk row of each row."""
        if self._rows is None:
            if self.span is not None:
                r0, r1, counts = self._run_chunks()
                self._rows = np.repeat(np.arange(r0, r1, dtype=np.int64), counts)
            else:
                assert self._items is not None
                self._rows = lookup_rows(self.last.astype(np.uint64), self._items) if self.n else np.zeros(0, np.int64)
        return self._rows

    def per_row(self, chunk_flag: np.ndarray) -> np.ndarray:
        """A per-chunk-row flag, per row."""
        if self.span is not None:
            r0, r1, counts = self._run_chunks()
            return np.repeat(chunk_flag[r0:r1], counts)
        return np.asarray(chunk_flag[self.row_chunks()], bool)

    def holding(self, row_mask: Optional[np.ndarray] = None) -> int:
        """How many chunks hold some row (where `row_mask`, if given)."""
        if self.n == 0:
            return 0
        if self.span is not None:
            r0, r1, counts = self._run_chunks()
            if row_mask is None:
                return int(np.count_nonzero(counts))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            nonempty = counts > 0
            return int(np.count_nonzero(np.logical_or.reduceat(row_mask, starts[nonempty]))) if nonempty.any() else 0
        rows = self.row_chunks() if row_mask is None else self.row_chunks()[row_mask]
        return int(np.count_nonzero(np.bincount(rows, minlength=len(self.stats))))

    def blocks(self, min_rows: int) -> List[Tuple[int, int]]:
        """Row ranges [a, b) that end where a chunk ends, each at least `min_rows` long (the
        last may be shorter), in row order: the steps of a LIMIT scan."""
        if self.n == 0:
            return [(0, 0)]
        if self.span is not None:
            ends = np.cumsum(self._run_chunks()[2])
        else:
            rows = self.row_chunks()
            ends = np.concatenate([np.flatnonzero(np.diff(rows) != 0) + 1, [self.n]])
        out: List[Tuple[int, int]] = []
        a = 0
        for e in ends.tolist():
            if e - a >= min_rows or e == self.n:
                if e > a:
                    out.append((a, int(e)))
                a = int(e)
        return out or [(0, self.n)]

    def take(self, positions: np.ndarray) -> "ChunkMap":
        """The map of the rows at `positions` (ascending)."""
        items = (positions + self.span[0]) if self.span is not None else self.items()[positions]
        return ChunkMap(items, self.first, self.last, self.stats, self.class_names, self.time, self.nullable)

    def items(self) -> np.ndarray:
        if self.span is not None:
            return np.arange(self.span[0], self.span[1], dtype=np.int64)
        assert self._items is not None
        return self._items
