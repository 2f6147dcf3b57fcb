"""In-place edits of a tensor's stored items: replacing one (tiled or not) and popping one.

A mixin of `ChunkEngine`: an edited chunk is reopened as a builder and written at the next
flush under a new chunk name (the row in the chunk index takes the new id): the published
index keeps pointing at the old chunk, untouched, until the flush that replaces it is
published, and the old chunk is deleted only after that. A chunk made since the last flush
(no published index points at it) is edited in place. A tiled item, or one replaced by a tiled
value, gets rows of its own in the chunk index.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from lakeformat.core import keys
from lakeformat.core.chunk import Chunk, ChunkBuilder
from lakeformat.core.encoders import ChunkIdEncoder
from lakeformat.core.serialize import SerializedBatch

if TYPE_CHECKING:
    from lakeformat.core.encoders import CredsEncoder, RangeEncoder, TileEncoder
    from lakeformat.core.meta import TensorMeta
    from lakeformat.core.version_objects import ChunkSet, CommitDiff

#: what an edit of a chunk starts from (`ChunkUpdates._edit_target`): the open builder, or
#: (parsed chunk, id of the edited chunk, samples the index covers, name of the edited chunk)
EditTarget = Union[ChunkBuilder, Tuple[Chunk, int, int, str]]


class ChunkUpdates:
    """Edits of stored items (`ChunkEngine` provides the state and the chunk plumbing; the
    part of it used here is declared below, for the type checker)."""

    if TYPE_CHECKING:
        key: str
        commit_id: str
        meta: TensorMeta
        chunk_ids: ChunkIdEncoder
        tiles: TileEncoder
        seq: Optional[RangeEncoder]
        creds: Optional[CredsEncoder]
        chunk_set: Optional[ChunkSet]
        builder: Optional[ChunkBuilder]
        staged: Dict[str, bytes]
        dirty_builders: Dict[str, ChunkBuilder]
        deleted_chunks: List[str]
        fresh_chunks: Set[str]
        edited: bool
        meta_dirty: bool
        encoders_dirty: bool
        info_dirty: bool
        _parsed: Dict[str, Chunk]
        _headers: Dict[str, Chunk]

        @property
        def chunk_compression(self) -> Optional[str]: ...
        @property
        def commit_diff(self) -> CommitDiff: ...
        @property
        def info(self) -> Dict[str, Any]: ...
        def set_meta(self, **changes: Any) -> None: ...
        def _check_writable(self) -> None: ...
        def _chunk_in_current_commit(self, name: str) -> bool: ...
        def get_chunks(self, names: Sequence[str]) -> Dict[str, Chunk]: ...
        def item_locations(self, items: np.ndarray) -> Tuple[np.ndarray, np.ndarray]: ...
        def _register_chunk(self, name: str) -> None: ...
        def _seal(self) -> None: ...
        def _write_tiled(self, arr: np.ndarray, item: int) -> None: ...

    def _renamed(self, row: int, old: str) -> int:
        """A new chunk id for the chunk of `row`, which an edit is about to change: the row
        points at it from now on, the old chunk is retired (deleted after the flush that
        stops using it is published, if it belongs to this commit)."""
        cid = ChunkIdEncoder.new_id()
        self.chunk_ids.rows[row, 0] = cid
        self._forget_chunk(old)
        self._register_chunk(ChunkIdEncoder.name_of(cid))
        self.encoders_dirty = True
        return cid

    def _builder_for_row(self, row: int) -> ChunkBuilder:
        """The chunk of `row` open for editing, as a builder (kept until the flush)."""
        got = self._edit_target(row)
        if isinstance(got, ChunkBuilder):
            return got
        c, cid, covered, new_name = got
        b = ChunkBuilder.from_chunk(cid, c, covered)
        b.dirty = True
        self.dirty_builders[new_name] = b
        return b

    def _edit_target(self, row: int) -> EditTarget:
        """What an edit of the chunk of `row` starts from: its builder when it has one, else
        the parsed chunk with the id and name the edited chunk gets (a published chunk is
        renamed) and the number of its samples the index covers."""
        cid = int(self.chunk_ids.rows[row, 0])
        name = ChunkIdEncoder.name_of(cid)  # not names(): bulk edits call this per chunk
        self.edited = True
        if self.builder is not None and self.builder.chunk_id == cid:
            if name not in self.fresh_chunks:  # the open chunk is published: edit a copy
                self.builder.chunk_id = self._renamed(row, name)
                self.builder.dirty = True
            return self.builder
        if name in self.dirty_builders:
            return self.dirty_builders[name]
        k = keys.chunk_key(self.key, name, self.commit_id)
        if k in self.staged:
            c = Chunk.parse(self.staged.pop(k), self.chunk_compression, k)
        else:
            c = self.get_chunks([name])[name]
        covered = int(self.chunk_ids.rows[row, 1]) - int(self.chunk_ids.first_indices()[row]) + 1
        self._parsed.pop(name, None)
        self._headers.pop(name, None)
        if name in self.fresh_chunks:
            new_name = name
        else:
            # a published chunk (this commit's or an older one's) is never rewritten in place
            cid = self._renamed(row, name)
            new_name = ChunkIdEncoder.name_of(cid)
        return c, cid, covered, new_name

    def update_item(self, item: int, batch: SerializedBatch) -> None:
        """Replace one stored item with the single item of `batch`."""
        self._check_writable()
        if item in self.tiles or batch.arrays:
            self._rewrite_tiled(item, batch)
        else:
            rows, local = self.item_locations(np.array([item]))
            b = self._builder_for_row(int(rows[0]))
            part = batch.parts[0] if batch.parts else b""
            b.replace(int(local[0]), bytes(part), batch.shapes[0])
        shapes = batch.real_shapes if batch.real_shapes is not None else batch.shapes
        self.meta = self.meta.with_shape_interval(shapes[0], shapes[0])
        if batch.creds is not None and self.creds is not None:
            vals = self.creds.all_values()
            vals[item] = batch.creds[0]
            self.creds.set_values(vals)
        if batch.new_class_names:
            self.info["class_names"] = list(self.info.get("class_names", [])) + batch.new_class_names
            self.info_dirty = True
        self.meta_dirty = self.encoders_dirty = True

    def _rewrite_tiled(self, item: int, batch: SerializedBatch) -> None:
        """Replace an item when the old or the new value is tiled: the item gets rows of its
        own in the chunk index (its tiles, or a one-sample chunk); a chunk it shared with
        other samples is split around it."""
        self._seal()
        names = self.chunk_ids.names()
        rows_of = self.chunk_ids.rows_of_sample(item)
        r0, r1 = int(rows_of[0]), int(rows_of[-1])
        head, tail = self.chunk_ids.rows[:r0], self.chunk_ids.rows[r1 + 1 :]
        middle: List[Tuple[int, int]] = []
        after: List[Tuple[int, int]] = []
        self.edited = True
        if item in self.tiles:
            for r in rows_of:
                self._forget_chunk(names[r])
            self.tiles.entries.pop(item)
        else:
            first = int(self.chunk_ids.first_indices()[r0])
            last = int(self.chunk_ids.rows[r0, 1])
            local = item - first
            b = self._builder_for_row(r0)
            if local + 1 < b.num_samples:  # the samples after the item move to a new chunk
                nb = ChunkBuilder(ChunkIdEncoder.new_id(), b.ndim)
                data, sizes, shapes = b.tail(local + 1)
                nb.add([data], sizes, shapes)
                name = ChunkIdEncoder.name_of(nb.chunk_id)
                self._register_chunk(name)
                self.dirty_builders[name] = nb
                after.append((nb.chunk_id, last))
            if local > 0:  # the samples before it stay where they are
                b.truncate(local)
                middle.append((b.chunk_id, item - 1))
            else:
                bname = ChunkIdEncoder.name_of(b.chunk_id)
                if self.builder is b:
                    self.builder = None
                self.dirty_builders.pop(bname, None)
                self._forget_chunk(bname)
        if batch.arrays:
            saved = self.chunk_ids.rows
            self.chunk_ids.rows = np.zeros((0, 2), np.uint64)
            self._write_tiled(batch.arrays[0], item)
            middle += [(int(cid), item) for cid, _ in self.chunk_ids.rows]
            self.chunk_ids.rows = saved
        else:
            nb = ChunkBuilder(ChunkIdEncoder.new_id(), batch.shapes.shape[1])
            nb.add(batch.parts[:1] if batch.parts else [], batch.sizes[:1], batch.shapes[:1])
            name = ChunkIdEncoder.name_of(nb.chunk_id)
            self._register_chunk(name)
            self.dirty_builders[name] = nb
            middle.append((nb.chunk_id, item))
        new_rows = np.array(middle + after, dtype=np.uint64).reshape(-1, 2)
        self.chunk_ids.rows = np.concatenate([head, new_rows, tail]).astype(np.uint64)
        self.encoders_dirty = True

    def pop_item(self, item: int) -> None:
        self._check_writable()
        rows = self.chunk_ids.rows_of_sample(item)
        self.edited = True
        if item in self.tiles:
            for r in rows:
                self._forget_chunk(self.chunk_ids.names()[r])
            self.chunk_ids.rows = np.delete(self.chunk_ids.rows, rows, axis=0)
            self.chunk_ids.rows[rows[0]:, 1] -= 1
            self.tiles.pop(item)
        else:
            row = int(rows[0])
            first = self.chunk_ids.first_indices()[row]
            b = self._builder_for_row(row)
            b.remove(int(item - first))
            if b.num_samples == 0:
                name = self.chunk_ids.names()[row]
                if self.builder is b:
                    self.builder = None
                self.dirty_builders.pop(name, None)
                self._forget_chunk(name)
                self.chunk_ids.rows = np.delete(self.chunk_ids.rows, row, axis=0)
                self.chunk_ids.rows[row:, 1] -= 1
            else:
                self.chunk_ids.rows[row:, 1] -= 1
            self.tiles.entries = {(k - 1 if k > item else k): v for k, v in self.tiles.entries.items()}
        if self.creds is not None:
            self.creds.set_values(np.delete(self.creds.all_values(), item))
        self.set_meta(length=self.meta.length - 1)
        self.meta_dirty = self.encoders_dirty = True

    def forget_chunk(self, name: str) -> None:
        k = keys.chunk_key(self.key, name, self.commit_id)
        self.staged.pop(k, None)
        if self._chunk_in_current_commit(name):
            self.deleted_chunks.append(k)
        if self.chunk_set is not None:
            self.chunk_set.chunks.pop(name, None)
            self.chunk_set.dirty = True
        self._parsed.pop(name, None)
        self._headers.pop(name, None)

    _forget_chunk = forget_chunk  # the old private name, kept until every caller uses forget_chunk()

    def pop_sample(self, index: int, sample_id: Optional[int]) -> None:
        """Pop one sample (all its items for a sequence tensor)."""
        if self.seq is not None:
            s, e = self.seq.item_ranges(np.array([index]))
            for item in range(int(e[0]) - 1, int(s[0]) - 1, -1):
                self.pop_item(item)
            lengths = self.seq.all_lengths()
            self.seq.set_lengths(np.delete(lengths, index))
            # an empty sequence pops no item, so nothing above marked the encoders dirty
            self.meta_dirty = self.encoders_dirty = True
        else:
            self.pop_item(index)
        self.commit_diff.pop(index, sample_id)
