"""Bulk edits of a tensor's stored items: deleting and replacing many items at once.

A mixin of `ChunkEngine` (beside `ChunkUpdates`, whose single-item edits these generalise).
Each affected chunk is reopened once (`_edit_target`: a published chunk gets a new name, the
old one is retired after the flush that stops using it) and rewritten once: its kept or new
bytes are gathered natively, straight from the stored chunk (a chunk of one sample size and
shape is a row gather or scatter, with no per-sample tables). The Python work is
O(affected chunks), not O(items). A rewritten chunk is serialized at once and, past
`STAGED_LIMIT` per tensor, written before the flush under its new name, so that an edit of
every chunk never holds the whole tensor raw. The chunk index, tile index, sequence and creds
encoders and the commit diff are updated with array operations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat import _native
from lakeformat.core import keys
from lakeformat.core.chunk import Chunk, ChunkBuilder
from lakeformat.core.chunk_reads import group_by_row
from lakeformat.core.encoders import ChunkIdEncoder
from lakeformat.core.serialize import SerializedBatch
from lakeformat.errors import CorruptDataError
from lakeformat.core.version_objects import CommitDiff

if TYPE_CHECKING:
    from lakeformat.core.chunk_updates import EditTarget
    from lakeformat.core.encoders import CredsEncoder, RangeEncoder, TileEncoder
    from lakeformat.core.meta import TensorMeta


def normalize_pop_indices(index: Sequence[int], length: int, what: str) -> np.ndarray:
    """Indices to pop -> a sorted int64 array, checked the way deeplake 3.9.52's `pop` checks
    a list: no duplicates (ValueError), no negatives, none past the end (IndexError).

    >>> normalize_pop_indices([3, 1], 5, "tensor 'x'").tolist()
    [1, 3]
    """
    from lakeformat.errors import DuplicateIndexError, IndexOutOfRangeError

    arr = np.asarray(index)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise IndexOutOfRangeError(f"{what}: pop indices must be integers, not {arr.dtype}")
    arr = arr.astype(np.int64).reshape(-1)
    if not len(arr):
        return arr
    srt = np.sort(arr)
    if len(srt) > 1 and np.any(srt[1:] == srt[:-1]):
        dup = int(srt[1:][srt[1:] == srt[:-1]][0])
        raise DuplicateIndexError(f"{what}: duplicate pop index {dup}")
    if srt[0] < 0:
        raise IndexOutOfRangeError(f"{what}: pop does not take negative indices in a list ({int(srt[0])})")
    if srt[-1] >= length:
        raise IndexOutOfRangeError(f"{what}: pop index {int(srt[-1])} is out of range for length {length}")
    return srt


def commit_diff_pop_many(cd: CommitDiff, indices: np.ndarray, sample_ids: Optional[np.ndarray]) -> None:
    """`CommitDiff.pop` of every index (positions in the current state, sorted ascending),
    as if popped one at a time from the highest down, in array operations."""
    idx = np.asarray(indices, dtype=np.int64)
    if not len(idx):
        return
    a0, a1 = int(cd.data_added[0]), int(cd.data_added[1])
    if idx[-1] >= a1:  # not a shape the writers make (positions past the added range): replay
        for j in range(len(idx) - 1, -1, -1):
            cd.pop(int(idx[j]), None if sample_ids is None else int(sample_ids[j]))
        return
    added = idx >= a0
    old = idx[~added]
    n_old = len(old)
    if n_old:
        # positions as of the version's start: the i-th position not deleted before now
        d = cd.deleted_array()
        adj = d - np.arange(len(d), dtype=np.int64)
        orig = old + np.searchsorted(adj, old, side="right")
        ids = np.asarray(sample_ids)[~added][::-1] if sample_ids is not None else None  # single pops' order
        cd.add_deleted(orig, ids)
    cd.data_added = [a0 - n_old, a1 - len(idx)]
    upd = cd.updated_array()
    if len(upd):
        pos = np.searchsorted(idx, upd)
        hit = (pos < len(idx)) & (idx[np.minimum(pos, len(idx) - 1)] == upd)
        upd = upd[~hit] - np.searchsorted(idx, upd[~hit], side="left")
        cd.data_updated = set()
        cd.add_updated(upd)
    cd.dirty = True


STAGED_LIMIT = 8 * 1024 * 1024  # serialized chunks a bulk edit holds (per tensor) before it writes them


def _gather_runs(sources: List[np.ndarray], src_id: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The byte ranges (source, start, length) back to back, in order: one native copy loop
    (no per-run Python work, no byte masks)."""
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    out = np.empty(int(lengths.sum()), np.uint8)
    if len(out):
        offsets = np.cumsum(lengths) - lengths
        # `.data`: the arrays' own buffers (NumPy's stubs make an array a Buffer from 3.12 only)
        _native.gather([s.data for s in sources], np.ascontiguousarray(src_id, dtype=np.int64).data,
                       np.ascontiguousarray(starts, dtype=np.int64).data, lengths.data, out.data, offsets.data)
    return out


def _remove_from_builder(b: ChunkBuilder, local: np.ndarray) -> None:
    """Drop the samples at `local` (sorted, unique) from a builder in one pass over its bytes:
    each run of kept samples is one native copy."""
    sizes, shapes = b.all_sizes(), b.all_shapes()
    keep = np.ones(len(sizes), bool)
    keep[local] = False
    data = np.frombuffer(b.data, np.uint8)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], keep, [False]]).astype(np.int8)))
    run_starts, run_ends = edges[0::2], edges[1::2]  # sample ranges [start, end) kept
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    a = offsets[run_starts]
    kept = _gather_runs([data], np.zeros(len(a), np.int64), a, offsets[run_ends] - a)
    b.buf = kept
    b.nbytes = len(kept)
    b.sizes = [sizes[keep]]
    b.shapes = [shapes[keep].reshape(-1, b.ndim)]
    b.num_samples = int(keep.sum())
    b.dirty = True


_ROW_TYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _rows_of(data: np.ndarray, size: int) -> np.ndarray:
    """Bytes of samples of one size as a 1-d array of one item per sample (an unsigned int
    where the size allows: NumPy's fastest masks and gathers)."""
    return data.view(_ROW_TYPES.get(size, np.dtype((np.void, size))))


def _chunk_without(c: Chunk, chunk_id: int, covered: int, local: np.ndarray) -> ChunkBuilder:
    """A builder of the stored chunk `c`'s first `covered` samples but those at `local`
    (sorted, unique), its bytes gathered straight from the chunk's. A chunk of samples of
    one size and shape (numbers, ids, times) is a row gather, with no per-sample tables
    expanded."""
    n = max(0, min(int(covered), c.num_samples))
    keep = np.ones(n, bool)
    keep[local[local < n]] = False
    k = int(keep.sum())
    data = np.frombuffer(c.data, np.uint8)
    nd = c.ndim
    b = ChunkBuilder(chunk_id, nd)
    bp, sr = c.bp_rows, c.shape_rows
    if n and len(bp) == 1 and len(sr) == 1 and not c.is_tile:
        size, start = int(bp[0, 0]), int(bp[0, 1])
        if start + n * size > len(data):
            raise CorruptDataError(f"byte positions point past the chunk's {len(data)} data bytes", c.key)
        kept = _rows_of(data[start : start + n * size], size)[keep].view(np.uint8) if size else np.zeros(0, np.uint8)
        sizes = np.full(k, size, np.int64)
        shapes = np.empty((k, nd), np.int64)
        shapes[:] = sr[0, :nd].astype(np.int64)
    else:
        everyone = np.arange(n, dtype=np.int64)
        s, e = c.byte_ranges(everyone)
        shp = c.shapes(everyone)
        edges = np.flatnonzero(np.diff(np.concatenate([[False], keep, [False]]).astype(np.int8)))
        run_starts, run_ends = edges[0::2], edges[1::2]
        a = s[run_starts]
        kept = _gather_runs([data], np.zeros(len(a), np.int64), a, e[run_ends - 1] - a)
        sizes = (e - s)[keep]
        shapes = shp[keep].reshape(-1, nd)
    b.buf = np.ascontiguousarray(kept)
    b.nbytes = len(kept)
    b.sizes = [sizes]
    b.shapes = [shapes]
    b.num_samples = k
    b.dirty = True
    return b


def _chunk_replaced(c: Chunk, chunk_id: int, covered: int, local: np.ndarray, new: np.ndarray,
                    new_sizes: np.ndarray, new_shapes: np.ndarray) -> Optional[ChunkBuilder]:
    """A builder of the stored chunk `c`'s first `covered` samples with those at `local`
    (sorted, unique) replaced by `new`, when the chunk and the new values all have one size
    and shape (numbers, ids, times): a row scatter, with no per-sample tables expanded.
    None otherwise (the caller goes through a builder)."""
    n = max(0, min(int(covered), c.num_samples))
    data = np.frombuffer(c.data, np.uint8)
    bp, sr = c.bp_rows, c.shape_rows
    nd = c.ndim
    if not n or len(bp) != 1 or len(sr) != 1 or c.is_tile or new_shapes.shape[1] != nd or int(local[-1]) >= n:
        return None
    size, start = int(bp[0, 0]), int(bp[0, 1])
    shape = sr[0, :nd].astype(np.int64)
    if not size or np.any(new_sizes != size) or np.any(new_shapes != shape):
        return None
    if start + n * size > len(data):
        raise CorruptDataError(f"byte positions point past the chunk's {len(data)} data bytes", c.key)
    rows = _rows_of(data[start : start + n * size], size).copy()
    rows[local] = _rows_of(np.ascontiguousarray(new, np.uint8), size)
    b = ChunkBuilder(chunk_id, nd)
    b.buf = rows.view(np.uint8)
    b.nbytes = n * size
    b.sizes = [np.full(n, size, np.int64)]
    shapes = np.empty((n, nd), np.int64)
    shapes[:] = shape
    b.shapes = [shapes]
    b.num_samples = n
    b.dirty = True
    return b


def _replace_in_builder(b: ChunkBuilder, local: np.ndarray, new: np.ndarray, new_sizes: np.ndarray, new_shapes: np.ndarray) -> None:
    """Replace the samples at `local` (sorted, unique) with the bytes `new` (their values
    back to back, in that order) in one pass over the builder's bytes: each sample is one
    native copy, from the old bytes or from `new`."""
    sizes, shapes = b.all_sizes(), b.all_shapes()
    out_shapes = shapes.copy().reshape(len(sizes), -1)
    if out_shapes.shape[1] != new_shapes.shape[1]:
        raise ValueError("replacement values have another number of dimensions than the chunk")
    out_shapes[local] = new_shapes
    new_sizes = np.asarray(new_sizes, dtype=np.int64)
    src_id = np.zeros(len(sizes), np.int64)
    src_id[local] = 1
    starts = np.cumsum(sizes) - sizes
    starts[local] = np.cumsum(new_sizes) - new_sizes
    out_sizes = sizes.copy()
    out_sizes[local] = new_sizes
    out = _gather_runs([np.frombuffer(b.data, np.uint8), np.ascontiguousarray(new, dtype=np.uint8)], src_id, starts, out_sizes)
    b.buf = out
    b.nbytes = len(out)
    b.sizes = [out_sizes]
    b.shapes = [out_shapes]
    b.dirty = True


class ChunkDeletes:
    """Bulk pops and updates (`ChunkEngine` provides the state and the chunk plumbing; the
    part of it used here is declared below, for the type checker)."""

    if TYPE_CHECKING:
        key: str
        commit_id: str
        meta: TensorMeta
        chunk_ids: ChunkIdEncoder
        tiles: TileEncoder
        seq: Optional[RangeEncoder]
        creds: Optional[CredsEncoder]
        builder: Optional[ChunkBuilder]
        staged: Dict[str, bytes]
        dirty_builders: Dict[str, ChunkBuilder]
        edited: bool
        meta_dirty: bool
        encoders_dirty: bool
        info_dirty: bool

        @property
        def chunk_compression(self) -> Optional[str]: ...
        @property
        def commit_diff(self) -> CommitDiff: ...
        @property
        def info(self) -> Dict[str, Any]: ...
        def set_meta(self, **changes: Any) -> None: ...
        def _check_writable(self) -> None: ...
        def staged_nbytes(self) -> int: ...
        def write_chunks(self) -> None: ...
        def _forget_chunk(self, name: str) -> None: ...
        def _edit_target(self, row: int) -> EditTarget: ...
        def update_item(self, item: int, batch: SerializedBatch) -> None: ...

    def _stage_edited(self, b: ChunkBuilder) -> None:
        """Serialize a bulk-edited chunk now (the open chunk excepted) instead of holding it
        raw as a builder until the flush: an edit of every chunk then holds compressed bytes,
        and past `STAGED_LIMIT` those go to storage under the chunks' new names (invisible
        until the flush publishes the index that points at them; garbage after a crash)."""
        if b is self.builder:
            return
        name = ChunkIdEncoder.name_of(b.chunk_id)
        self.dirty_builders.pop(name, None)
        self.staged[keys.chunk_key(self.key, name, self.commit_id)] = b.serialize(self.chunk_compression, self.meta.zstd_level)
        b.dirty = False
        if self.staged_nbytes() > STAGED_LIMIT:
            self.write_chunks()

    def pop_items(self, items: np.ndarray) -> None:
        """Remove the stored items `items` (sorted, unique, in range), each affected chunk
        rewritten once."""
        self._check_writable()
        items = np.asarray(items, dtype=np.int64)
        if not len(items):
            return
        self.edited = True
        rows = self.chunk_ids.rows
        drop_rows = np.zeros(len(rows), bool)
        tiled = np.array(sorted(i for i in self.tiles.entries if 0 <= i), dtype=np.int64)
        is_tiled = np.isin(items, tiled) if len(tiled) else np.zeros(len(items), bool)
        last = rows[:, 1].astype(np.int64)
        if is_tiled.any():
            for item in items[is_tiled].tolist():  # one per tiled sample: each has its own chunks
                for r in self.chunk_ids.rows_of_sample(int(item)):
                    drop_rows[r] = True
                    self._forget_chunk(ChunkIdEncoder.name_of(rows[r, 0]))
        plain = items[~is_tiled]
        if len(plain):
            first = self.chunk_ids.first_indices()
            item_rows = self.chunk_ids.row_of(plain)
            for r, sel in group_by_row(item_rows):
                local = plain[sel] - first[r]
                if len(local) >= int(last[r] - first[r] + 1):
                    # every sample of the chunk goes: retire it without reading it
                    cid = int(self.chunk_ids.rows[r, 0])
                    name = ChunkIdEncoder.name_of(cid)
                    if self.builder is not None and self.builder.chunk_id == cid:
                        self.builder = None
                    self.dirty_builders.pop(name, None)
                    self._forget_chunk(name)
                    drop_rows[r] = True
                    continue
                got = self._edit_target(r)
                if isinstance(got, ChunkBuilder):
                    b = got
                    _remove_from_builder(b, np.sort(local))
                else:  # straight from the stored chunk to the kept bytes: no copy in between
                    b = _chunk_without(*got[:3], np.sort(local))
                    self.dirty_builders[got[3]] = b
                self._stage_edited(b)
        rows = self.chunk_ids.rows  # _builder_for_row may have renamed chunks
        # each row's last index moves down by the number of removed items at or before it
        new_last = last - np.searchsorted(items, last, side="right")
        # a row emptied of its samples is dropped; the rows after it keep their own counts
        rows = np.stack([rows[:, 0], new_last.astype(np.uint64)], axis=1)
        self.chunk_ids.rows = np.ascontiguousarray(rows[~drop_rows])
        if self.tiles.entries:
            keys_ = np.array(list(self.tiles.entries), dtype=np.int64)
            gone = np.isin(keys_, items)
            moved = keys_ - np.searchsorted(items, keys_, side="left")
            vals = list(self.tiles.entries.values())
            self.tiles.entries = {int(moved[j]): vals[j] for j in range(len(keys_)) if not gone[j]}
        if self.creds is not None:
            self.creds.set_values(np.delete(self.creds.all_values(), items))
        self.set_meta(length=self.meta.length - len(items))
        self.meta_dirty = self.encoders_dirty = True

    def pop_samples(self, indices: np.ndarray, sample_ids: Optional[np.ndarray]) -> None:
        """Pop many samples (sorted, unique, in range; all their items for a sequence
        tensor), with the commit diff kept as single pops keep it."""
        indices = np.asarray(indices, dtype=np.int64)
        if not len(indices):
            return
        if self.seq is not None:
            s, e = self.seq.item_ranges(indices)
            self.pop_items(sequence_items(s, e))
            self.seq.set_lengths(np.delete(self.seq.all_lengths(), indices))
            self.meta_dirty = self.encoders_dirty = True
        else:
            self.pop_items(indices)
        commit_diff_pop_many(self.commit_diff, indices, sample_ids)

    def update_items(self, items: np.ndarray, batch: SerializedBatch) -> None:
        """Replace the stored items `items` (sorted, unique, in range) with the items of
        `batch` in that order, each affected chunk rewritten once. Items that are tiled, or
        whose new value is, go through `update_item` one by one."""
        self._check_writable()
        items = np.asarray(items, dtype=np.int64)
        n = len(items)
        if not n:
            return
        if len(batch.sizes) != n:
            raise ValueError(f"{len(batch.sizes)} serialized values for {n} items")
        slow = np.zeros(n, bool)
        if batch.arrays:
            slow[list(batch.arrays)] = True
        if self.tiles.entries:
            slow |= np.isin(items, np.array(list(self.tiles.entries), dtype=np.int64))
        sizes = np.asarray(batch.sizes, dtype=np.int64)
        shapes = np.asarray(batch.shapes, dtype=np.int64).reshape(n, -1)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        if len(batch.parts) == n and n > 1:
            # one part per item: gather them once (native concat, no Python bytes joins)
            from lakeformat import _native

            flat = np.empty(int(ends[-1]) if n else 0, np.uint8)
            if len(flat):
                _native.concat(list(batch.parts), flat.data)
        elif batch.parts:
            flat = np.frombuffer(batch.parts[0], np.uint8)
        else:
            flat = np.zeros(0, np.uint8)
        fast = np.flatnonzero(~slow)
        if len(fast):
            self.edited = True
            first = self.chunk_ids.first_indices()
            item_rows = self.chunk_ids.row_of(items[fast])
            for r, sel in group_by_row(item_rows):
                pos = fast[sel]  # positions in the batch, ascending with the items
                local = items[pos] - first[r]
                new = _gather_runs([flat], np.zeros(len(pos), np.int64), starts[pos], sizes[pos])
                got = self._edit_target(r)
                if not isinstance(got, ChunkBuilder):
                    c, cid, covered, new_name = got
                    scattered = _chunk_replaced(c, cid, covered, local, new, sizes[pos], shapes[pos])
                    if scattered is None:  # not one size and shape throughout: per-sample tables
                        got = scattered = ChunkBuilder.from_chunk(cid, c, covered)
                        scattered.dirty = True
                    self.dirty_builders[new_name] = b = scattered
                if isinstance(got, ChunkBuilder):
                    b = got
                    if b.ndim != shapes.shape[1]:
                        slow[pos] = True  # another number of dimensions: the single-item path
                        continue
                    _replace_in_builder(b, local, new, sizes[pos], shapes[pos])
                self._stage_edited(b)
        for j in np.flatnonzero(slow).tolist():
            one = SerializedBatch(
                parts=[bytes(flat[int(starts[j]) : int(ends[j])])] if j not in batch.arrays else [],
                sizes=sizes[j : j + 1], shapes=shapes[j : j + 1],
                real_shapes=None if batch.real_shapes is None else batch.real_shapes[j : j + 1],
                dtype=batch.dtype, arrays={0: batch.arrays[j]} if j in batch.arrays else {},
                num_samples=1,
            )
            self.update_item(int(items[j]), one)
        real = batch.real_shapes if batch.real_shapes is not None else batch.shapes
        real = np.asarray(real, dtype=np.int64).reshape(n, -1)
        self.meta = self.meta.with_shape_interval(real.min(axis=0), real.max(axis=0))
        if batch.creds is not None and self.creds is not None:
            vals = self.creds.all_values()
            vals[items] = batch.creds
            self.creds.set_values(vals)
        if batch.new_class_names:
            self.info["class_names"] = list(self.info.get("class_names", [])) + batch.new_class_names
            self.info_dirty = True
        self.meta_dirty = self.encoders_dirty = True


def sequence_items(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The items [start, end) of each sequence sample, concatenated (sorted when the samples
    are)."""
    lengths = (ends - starts).astype(np.int64)
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def dedup_last(items: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(unique items ascending, the position in `items` of each one's last occurrence): for a
    bulk update where a repeated index takes its last value, as sequential updates would."""
    items = np.asarray(items, dtype=np.int64)
    rev = items[::-1]
    uniq, first_in_rev = np.unique(rev, return_index=True)
    return uniq, len(items) - 1 - first_in_rev
