"""One tensor's chunks and encoders at one commit: append, read, update, pop, flush.

Writes accumulate in the open (last) chunk and in sealed chunks staged in memory; `flush`
writes chunks first, then encoders, then the tensor meta, so that a crash at any point leaves
the previous meta pointing at a consistent, fully written prefix.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from lakeformat import constants as C
from lakeformat.codecs.registry import ByteCodec, Codec, Uncompressed, get_codec
from lakeformat.core import checksums as CS
from lakeformat.core import chunk_stats
from lakeformat.core import keys
from lakeformat.core.chunk import Chunk, ChunkBuilder, chunk_header, serialize_chunk, uniform_size
from lakeformat.core.chunk_reads import ChunkReads, missing_key
from lakeformat.core.chunk_deletes import ChunkDeletes
from lakeformat.core.chunk_updates import ChunkUpdates
from lakeformat.core.codec_pool import codec_pool
from lakeformat.core.encoders import ChunkIdEncoder, CredsEncoder, RangeEncoder, TileEncoder
from lakeformat.core.meta import TensorMeta, loads
from lakeformat.core.serialize import SerializedBatch
from lakeformat.core.version_state import VersionState
from lakeformat.core.tiling import choose_tile_shape, split_tiles
from lakeformat.htypes import HTYPE_DEFAULTS
from lakeformat.errors import CorruptDataError, ReadOnlyError
from lakeformat.storage import StorageProvider
from lakeformat.core.version_objects import CommitDiff

logger = logging.getLogger(__name__)

_PARSED_CACHE_CHUNKS = 8  # parsed chunks kept per tensor for repeated reads



def _header_and_data(sizes: np.ndarray, shapes: np.ndarray, data: Any) -> List[Any]:
    """An uncompressed chunk as gathered parts: its header, then the samples' bytes."""
    return [chunk_header(sizes, shapes), data]


def _header_and_compressed(sizes: np.ndarray, shapes: np.ndarray, data: Any, codec: ByteCodec) -> List[Any]:
    """A byte-compressed chunk as gathered parts: its header, then the compressed samples
    (written with one writev: no joined copy of the compressed bytes)."""
    return [chunk_header(sizes, shapes), *codec.encode_parts(data)]


def _as_bytes(data: Union[bytes, bytearray]) -> bytes:
    """A serialized chunk as staged: `serialize_chunk` builds an uncompressed one in place, in
    a bytearray (no copy into bytes); staging and storage take any bytes-like value."""
    return data  # type: ignore[return-value]  # a bytearray stands in for bytes (see above)


_NOT_READ = object()  # an info not read ahead

class ChunkEngine(ChunkReads, ChunkUpdates, ChunkDeletes):
    def __init__(self, key: str, storage: StorageProvider, vs: VersionState, meta: Optional[TensorMeta] = None,
                 stored: Optional[Dict[str, Optional[bytes]]] = None):
        self.key = key
        self.storage = storage
        self.vs = vs
        self.commit_id = vs.commit_id
        self._lock = threading.RLock()
        self.sums = CS.EngineChecksums(key, self.commit_id, new_tensor=meta is not None)
        if meta is not None:  # a new tensor
            self.meta = meta
            self.chunk_ids = ChunkIdEncoder()
            self.tiles = TileEncoder()
            self.seq = RangeEncoder() if meta.is_sequence else None
            self.creds = CredsEncoder() if meta.is_link else None
            self._commit_diff: Optional[CommitDiff] = CommitDiff(0, created=True)
            # keys listed in "_info" live in tensor_info.json; the meta keeps their defaults
            defaults = HTYPE_DEFAULTS.get(meta.base_htype, {})
            moved = [k for k in meta.extra.get("_info", []) if k in meta.extra]
            self._info: Optional[Dict[str, Any]] = {k: meta.extra[k] for k in moved}
            if moved:
                meta = meta.replace(**{k: json.loads(json.dumps(defaults.get(k))) for k in moved})
            self.meta = meta
            self.meta_dirty = True
            self.encoders_dirty = True
            self.info_dirty = True
        else:
            self._load(stored)
        self.flushed_items = 0 if meta is not None else self.meta.length  # items at rest
        self.builder: Optional[ChunkBuilder] = None
        self._closed_chunk: Optional[str] = None  # closed at a flush: not reopened for appends
        self._sealing: Optional[List[Tuple[str, Any]]] = None  # chunks compressing during a pack
        self.staged: Dict[str, bytes] = {}  # chunk key -> bytes, written at flush
        self.dirty_builders: Dict[str, ChunkBuilder] = {}  # chunk name -> rewritten older chunk
        self.deleted_chunks: List[str] = []  # deleted once the flush that drops them is published
        # chunks made since the last flush: no published index points at them, so they may be
        # rewritten under their own key; an edit of any other chunk writes it under a new name
        self.fresh_chunks: Set[str] = set()
        self.edited = False  # an update or pop since the last flush (not growth alone)
        self._parsed: Dict[str, Chunk] = {}
        self._headers: Dict[str, Chunk] = {}
        self.chunk_set = vs.chunk_set(key, self.commit_id) if self.commit_id != C.FIRST_COMMIT_ID else None

    # ------------------------------------------------------------------------------------------
    # loading
    def _get_or(self, k: str, default: Optional[bytes] = None) -> Optional[bytes]:
        try:
            return self.storage.get(k)
        except KeyError:
            return default

    @staticmethod
    def stored_keys(key: str, commit_id: str) -> List[str]:
        """The metadata objects an engine reads when it opens (meta, chunk ids, tiles): fetch
        them for several tensors in one `get_many` (one round trip on an object store) and
        pass them as `stored`. A sequence or link tensor also reads `index_keys`; the commit
        diff and the tensor info are read when first used (a reader rarely needs them)."""
        c = commit_id
        return [keys.tensor_meta_key(key, c), keys.chunk_id_encoder_key(key, c), keys.tile_encoder_key(key, c),
                CS.side_key(key, c), CS.object_key(key, c, CS.PAD_FILE)]

    @staticmethod
    def index_keys(key: str, commit_id: str, meta: TensorMeta) -> List[str]:
        """The encoders a tensor reads besides `stored_keys`, as its meta says."""
        out = []
        if meta.is_sequence:
            out.append(keys.sequence_encoder_key(key, commit_id))
        if meta.is_link:
            out.append(keys.creds_encoder_key(key, commit_id))
        return out

    def _fetch_missing(self, stored: Dict[str, Optional[bytes]], wanted: List[str]) -> None:
        missing = [k for k in wanted if k not in stored]
        if missing:
            stored.update(self.storage.get_many(missing, missing_ok=True))

    def _load(self, stored: Optional[Dict[str, Optional[bytes]]] = None) -> None:
        c = self.commit_id
        stored = dict(stored or {})
        wanted = self.stored_keys(self.key, c)
        self._fetch_missing(stored, wanted)
        raw = stored[wanted[0]]
        if raw is None:
            raise CorruptDataError("tensor meta missing", wanted[0])
        self.meta = TensorMeta.from_bytes(raw, wanted[0])
        self._check_at_open(stored)  # before anything trusts the meta's fields
        self._fetch_missing(stored, self.index_keys(self.key, c, self.meta))
        ids, tiles = stored[wanted[1]], stored[wanted[2]]
        self.chunk_ids = ChunkIdEncoder.from_bytes(ids, wanted[1]) if ids else ChunkIdEncoder()
        self.tiles = TileEncoder.from_bytes(tiles) if tiles else TileEncoder()
        seq = stored.get(keys.sequence_encoder_key(self.key, c))
        creds = stored.get(keys.creds_encoder_key(self.key, c))
        self.seq = (RangeEncoder.from_bytes(seq) if seq else RangeEncoder()) if self.meta.is_sequence else None
        self.creds = (CredsEncoder.from_bytes(creds) if creds else CredsEncoder()) if self.meta.is_link else None
        self._commit_diff = None  # read when first used
        self._info = None
        # the info's bytes, where they were read ahead with the metadata (Session.read_metadata):
        # parsed on first use, as a read would be, without a round trip of their own
        self._info_raw: Any = stored.get(keys.tensor_info_key(self.key, c), _NOT_READ)
        # a new version's diff starts after the rows already there: sequences count rows, not
        # items (deeplake 3.9.52 starts it at the item count, which lets a pop after a commit
        # drive data_added below zero)
        self._length_at_open = self.seq.num_samples if self.seq is not None else self.meta.length
        self.meta_dirty = self.encoders_dirty = self.info_dirty = False
        self._reconcile()

    def _check_at_open(self, stored: Dict[str, Optional[bytes]]) -> None:
        """The metadata just read against the side file, if there is one (no extra round trip
        unless something differs): a damaged or hand-edited object raises rather than being
        read as truth; a side file another writer left stale is ignored."""
        c = self.commit_id
        raw = stored.get(CS.side_key(self.key, c))
        if raw is None or not getattr(self.vs, "checksums_at_open", True):
            return  # none kept, or `verify`, which checks them itself and reports the rest too
        table: Optional[CS.TensorChecksums]
        try:
            table = CS.TensorChecksums.from_bytes(raw, CS.side_key(self.key, c))
        except CorruptDataError as e:
            logger.warning("tensor %r: %s; its checksums are not used", self.key, e)
            self.sums.folders.set(self.key, c, None)
            return
        read = {f: CS.object_key(self.key, c, f) for f in CS.OPEN_FILES}
        verdict = table.check_objects({f: stored[k] for f, k in read.items() if k in stored})
        if verdict.state != "ok":
            table, verdict = CS.load_and_classify(self.storage, self.key, c, stored)
        if verdict.state == "corrupt":
            where = CS.object_key(self.key, c, verdict.files[0]) if verdict.files else CS.folder(self.key, c)
            raise CorruptDataError("; ".join(verdict.problems), where, tensor=getattr(self.meta, "name", self.key))
        self.sums.folders.set(self.key, c, table if verdict.state == "ok" else None)

    @property
    def commit_diff(self) -> CommitDiff:
        """This tensor's changes in the current commit (read from storage on first use)."""
        if self._commit_diff is None:
            with self._lock:
                if self._commit_diff is None:
                    raw = self._get_or(keys.commit_diff_key(self.key, self.commit_id))
                    self._commit_diff = CommitDiff.from_bytes(raw) if raw else CommitDiff(self._length_at_open)
        return self._commit_diff

    @property
    def info(self) -> Dict[str, Any]:
        """The tensor's info (tensor_info.json; read from storage on first use)."""
        if self._info is None:
            with self._lock:
                if self._info is None:
                    raw = self._info_raw if getattr(self, "_info_raw", _NOT_READ) is not _NOT_READ else \
                        self._get_or(keys.tensor_info_key(self.key, self.commit_id))
                    self._info = loads(raw) if raw else {}
                    self._info_raw = _NOT_READ
        return self._info

    def set_meta(self, **changes: Any) -> None:
        """Swap in a meta with these keys changed (metas are frozen) and mark it for the flush."""
        self.meta = self.meta.replace(**changes)
        self.meta_dirty = True

    def reconcile(self) -> None:
        """After a crash the chunk-id encoder may run ahead of the meta (it is written first):
        the meta's length is the truth."""
        n_items = self.meta.length
        if self.chunk_ids.num_samples > n_items:
            rows = self.chunk_ids.rows
            keep = rows[:, 1].astype(np.int64) < n_items
            first_over = int(np.argmin(keep)) if not keep.all() else len(rows)
            if n_items == 0:  # killed before any sample was counted: no chunk holds a kept one
                rows = rows[:0]
            elif first_over < len(rows) and (first_over == 0 or int(rows[first_over - 1, 1]) < n_items - 1):
                rows = rows[: first_over + 1].copy()
                rows[-1, 1] = n_items - 1
            else:
                rows = rows[:first_over]
            self.chunk_ids.rows = rows
        self.tiles.entries = {k: v for k, v in self.tiles.entries.items() if k < n_items}
        # the sequence and creds encoders are written before the meta too
        if self.seq is not None and self.seq.num_items > n_items:
            lengths = self.seq.all_lengths()
            self.seq.set_lengths(lengths[: int(np.searchsorted(np.cumsum(lengths), n_items, side="right"))])
        if self.creds is not None and self.creds.num_samples > n_items:
            self.creds.set_values(self.creds.all_values()[:n_items])

    _reconcile = reconcile  # the old private name, kept until every caller uses reconcile()

    def clamp(self, n_items: int) -> None:
        """Forget items past `n_items` (a hidden tensor flushed ahead of its parent by a crash)."""
        if n_items >= self.meta.length:
            return
        self.set_meta(length=n_items)
        self.flushed_items = min(self.flushed_items, n_items)  # what the rollback leaves at rest
        self._reconcile()
        if self.seq is not None:
            lengths = self.seq.all_lengths()
            keep = int(np.searchsorted(np.cumsum(lengths), n_items, side="right"))
            self.seq.set_lengths(lengths[:keep])
        self.commit_diff.data_added[1] = min(self.commit_diff.data_added[1], n_items)
        if self.creds is not None and self.creds.num_samples > n_items:
            self.creds.set_values(self.creds.all_values()[:n_items])
        self.meta_dirty = self.encoders_dirty = True

    # ------------------------------------------------------------------------------------------
    # properties
    @property
    def verify_reads(self) -> bool:
        """Check every whole chunk read against its checksum, not only the decoded ones (set
        per open dataset: `load(..., verify_reads=True)`)."""
        return bool(getattr(self.vs, "verify_reads", False))

    @property
    def num_items(self) -> int:
        return self.meta.length

    @property
    def num_samples(self) -> int:
        if self.seq is not None:
            return self.seq.num_samples
        return self.meta.length

    @property
    def max_chunk_size(self) -> int:
        return int(self.meta.max_chunk_size or C.DEFAULT_MAX_CHUNK_SIZE)

    @property
    def seal_at_flush_bytes(self) -> int:
        return max(1 << 20, self.max_chunk_size // 8)

    @property
    def tiling_threshold(self) -> int:
        t = self.meta.tiling_threshold
        if t is None:
            return C.DEFAULT_TILING_THRESHOLD
        return int(t) if int(t) >= 0 else 1 << 62

    @property
    def chunk_compression(self) -> Optional[str]:
        return self.meta.chunk_compression

    @property
    def chunk_codec(self) -> Codec:
        """The codec of whole chunks (``Uncompressed`` for none)."""
        return get_codec(self.meta.chunk_compression, self.meta.zstd_level)

    @property
    def sample_codec(self) -> Codec:
        """The codec of single samples (``Uncompressed`` for none)."""
        return get_codec(self.meta.sample_compression)

    def _check_writable(self) -> None:
        if self.storage.read_only:
            raise ReadOnlyError(f"Tensor {self.meta.name!r} is read-only.")

    # ------------------------------------------------------------------------------------------
    # chunk access
    def chunk_key_of(self, name: str) -> str:
        if self.commit_id == C.FIRST_COMMIT_ID or (self.chunk_set is not None and name in self.chunk_set and not self.chunk_set.chunks[name]):
            return keys.chunk_key(self.key, name, self.commit_id)
        cid, tkey = self.vs.chunk_location(self.key, name)
        return keys.chunk_key(tkey, name, cid)

    def _chunk_in_current_commit(self, name: str) -> bool:
        if self.commit_id == C.FIRST_COMMIT_ID:
            return True
        return self.chunk_set is not None and name in self.chunk_set and not self.chunk_set.chunks[name]

    def _unflushed_chunk(self, name: str) -> Optional[Chunk]:
        b = self.builder
        if b is not None and ChunkIdEncoder.name_of(b.chunk_id) == name:
            return Chunk.parse(b.serialize(None), None, name)
        b = self.dirty_builders.get(name)
        if b is not None:
            return Chunk.parse(b.serialize(None), None, name)
        k = keys.chunk_key(self.key, name, self.commit_id)
        if k in self.staged:
            return Chunk.parse(self.staged[k], self.chunk_compression, k)
        return None

    def get_chunks(self, names: Sequence[str]) -> Dict[str, Chunk]:
        """Parsed chunks by name, fetched with one batched storage call."""
        out: Dict[str, Chunk] = {}
        want: Dict[str, str] = {}
        for n in names:
            if n in out or n in want.values():
                continue
            c = self._unflushed_chunk(n)
            if c is None:
                c = self._parsed.get(n)
            if c is not None:
                out[n] = c
            else:
                want[self.chunk_key_of(n)] = n
        if want:
            try:
                fetched = self.storage.get_many(list(want))
            except KeyError as e:
                raise CorruptDataError(f"chunk missing from storage in tensor {self.meta.name!r}", missing_key(e)) from None
            got: Dict[str, bytes] = {}
            for k, raw in fetched.items():
                if raw is None:  # get_many raises KeyError for it instead (no missing_ok): the same error
                    raise CorruptDataError(f"chunk missing from storage in tensor {self.meta.name!r}", k)
                self.verify_chunk(want[k], k, raw)
                got[k] = raw
            parsed = [Chunk.parse(raw, self.chunk_compression, k) for k, raw in got.items()]
            if self.chunk_compression is not None and len(parsed) > 1:
                # decompress side by side: lz4, zstd and the image codecs release the GIL
                list(codec_pool().map(lambda c: c.data, parsed))
            for k, c in zip(got, parsed):
                out[want[k]] = c
                self._remember(want[k], c)
        return out

    def _remember(self, name: str, c: Chunk) -> None:
        with self._lock:
            if len(self._parsed) >= _PARSED_CACHE_CHUNKS:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[name] = c

    def raw_chunk_bytes(self, name: str) -> bytes:
        return self.storage.get(self.chunk_key_of(name))

    # ------------------------------------------------------------------------------------------
    # writes
    def extend(self, batch: SerializedBatch) -> None:
        self._check_writable()
        n = batch.num_items
        first_item = self.meta.length
        if batch.dtype and not self.meta.dtype:
            self.set_meta(dtype=batch.dtype)
        if n:
            self._pack(batch, first_item)
            shapes = batch.real_shapes if batch.real_shapes is not None else batch.shapes
            meta = self.meta
            if len(shapes) and shapes.ndim == 2 and shapes.strides[0] == 0:  # one shape for all
                meta = meta.with_shape_interval(shapes[0], shapes[0])
            elif len(shapes):
                meta = meta.with_shape_interval(shapes.min(axis=0), shapes.max(axis=0))
            self.meta = meta.replace(length=first_item + n)
        if batch.seq_lengths is not None and self.seq is not None:
            self.seq.extend(batch.seq_lengths)
        if batch.creds is not None and self.creds is not None:
            self.creds.extend(batch.creds)
        if batch.new_class_names:
            self.info.setdefault("class_names", [])
            self.info["class_names"] = list(self.info["class_names"]) + batch.new_class_names
            self.info_dirty = True
        self.commit_diff.add_data(batch.num_samples)
        self.meta_dirty = self.encoders_dirty = True

    def _open_builder(self, ndim: int) -> Optional[ChunkBuilder]:
        """The chunk to append to: the open one, or the last one if it is ours and not full."""
        if self.builder is not None:
            return self.builder
        if not self.chunk_ids.num_chunks:
            return None
        last_row = self.chunk_ids.num_chunks - 1
        if len(self.chunk_ids.rows) > 1 and self.chunk_ids.rows[-1, 1] == self.chunk_ids.rows[-2, 1]:
            return None  # ends with a tiled sample
        if int(self.chunk_ids.rows[last_row, 1]) in self.tiles:
            return None
        name = self.chunk_ids.names()[-1]
        if not self._chunk_in_current_commit(name) or name in self.dirty_builders or name == self._closed_chunk:
            return None
        c = self.get_chunks([name])[name]
        if c.is_tile or c.ndim != ndim or len(c.data) >= self.max_chunk_size:
            return None
        b = ChunkBuilder.from_chunk(int(self.chunk_ids.rows[last_row, 0]), c, self.meta.length - self.chunk_ids.first_index_of_row(last_row))
        self._parsed.pop(name, None)
        if self.staged.pop(keys.chunk_key(self.key, name, self.commit_id), None) is not None:
            # a bulk edit staged this chunk: the builder holds it now, and a stale staged copy
            # written at the flush would replace what the appends add (or an extend's own
            # direct write of the sealed chunk)
            b.dirty = True
        self.builder = b
        return b

    def _seal(self) -> None:
        b = self.builder
        if b is None:
            return
        name = ChunkIdEncoder.name_of(b.chunk_id)
        key = keys.chunk_key(self.key, name, self.commit_id)
        if self._sealing is not None:
            # built (compressed) and stored side by side with the rest of the extend
            if self.chunk_compression is None:
                self._store_async(key, _header_and_data, b.all_sizes(), b.all_shapes(), b.data)
            else:
                self._store_async(key, b.serialize, self.chunk_compression, self.meta.zstd_level)
        elif self._direct_writes():
            # a full chunk goes straight to disk, header and data in one gathered write: it
            # stays invisible until the encoders and the meta point at it (next flush)
            parts = [chunk_header(b.all_sizes(), b.all_shapes()), b.data]
            self._note_chunk_write(key, parts)
            self.storage.set_parts(key, parts)  # type: ignore[attr-defined]  # present when _direct_writes() (hasattr)
        else:
            self.staged[key] = b.serialize(self.chunk_compression, self.meta.zstd_level)
        self.builder = None

    def _direct_writes(self) -> bool:
        return self.chunk_compression is None and hasattr(self.storage, "set_parts")

    def _store_async(self, key: str, build: Any, *args: Any) -> None:
        """build(*args) -> a chunk's bytes, run in the codec pool during an extend. A store
        that writes gathered parts gets the chunk at once, from that thread (invisible until
        the encoders and the meta point at it); others stage it for the flush. Collected
        before the extend returns, so `build` may read the caller's buffers."""
        set_parts = getattr(self.storage, "set_parts", None)

        def job() -> Any:
            data = build(*args)
            if set_parts is None:
                return b"".join(data) if isinstance(data, list) else data
            parts = data if isinstance(data, list) else [data]
            self._note_chunk_write(key, parts)
            set_parts(key, parts)
            return None

        assert self._sealing is not None
        self._sealing.append((key, codec_pool().submit(job)))
        if len(self._sealing) >= 4:
            self._collect_sealed(keep=2)

    def _collect_sealed(self, keep: int = 0) -> None:
        while self._sealing is not None and len(self._sealing) > keep:
            key, fut = self._sealing.pop(0)
            data = fut.result()
            if data is not None:
                self.staged[key] = data

    def _new_builder(self, ndim: int, first_item: int) -> ChunkBuilder:
        self._seal()
        cid = ChunkIdEncoder.new_id()
        self.chunk_ids.append_chunk(cid, first_item)  # last index fixed up as items arrive
        self._register_chunk(ChunkIdEncoder.name_of(cid))
        b = ChunkBuilder(cid, ndim, capacity=min(self.max_chunk_size, 1 << 20))
        self.builder = b
        return b

    def _register_chunk(self, name: str) -> None:
        self.fresh_chunks.add(name)
        if self.chunk_set is not None:
            self.chunk_set.add(name)

    def _pack(self, batch: SerializedBatch, first_item: int) -> None:
        self._sealing = []
        try:
            self._pack_items(batch, first_item)
        finally:
            self._collect_sealed()
            self._sealing = None

    def _pack_items(self, batch: SerializedBatch, first_item: int) -> None:
        n = batch.num_items
        sizes = batch.sizes
        shapes = batch.shapes
        ndim = shapes.shape[1]
        per_item_parts = len(batch.parts) == n
        size = uniform_size(sizes, shapes)
        if size:  # samples of one size: where each ends is arithmetic, not a 1M-long cumsum
            ends = starts = np.zeros(0, np.int64)  # not read
        else:
            ends = np.cumsum(sizes)
            starts = ends - sizes
        limit = self.max_chunk_size
        tiled = sorted(batch.arrays) if batch.arrays else []
        tiled_set = set(tiled)
        i = 0
        builder = self._open_builder(ndim)
        while i < n:
            if i in tiled_set:
                self._seal()
                self._write_tiled(batch.arrays[i], first_item + i)
                builder = None
                i += 1
                continue
            if builder is None:
                builder = self._new_builder(ndim, first_item + i)
            room = limit - builder.nbytes
            stop = tiled[np.searchsorted(tiled, i)] if tiled and np.searchsorted(tiled, i) < len(tiled) else n
            if size:
                j = min(i + max(room, 0) // size, n)
            else:
                j = int(np.searchsorted(ends, starts[i] + room, side="right"))
            j = min(j, stop)
            if j <= i:
                if builder.num_samples == 0:
                    j = i + 1  # a sample bigger than a chunk but under the tiling threshold
                else:
                    self._seal()
                    builder = None
                    continue
            if per_item_parts:
                parts = batch.parts[i:j]
            elif batch.parts:
                parts = [batch.parts[0][i * size : j * size]] if size else [batch.parts[0][int(starts[i]) : int(ends[j - 1])]]
            else:
                parts = []
            if j < stop and builder.num_samples == 0 and not per_item_parts and parts and not self.chunk_codec.is_image:
                # a whole chunk out of one contiguous batch: built (header, then the caller's
                # bytes, or their compression) and stored by the codec pool with no copy
                # into a builder; collected before extend returns, so the caller cannot
                # change the bytes meanwhile
                name = ChunkIdEncoder.name_of(builder.chunk_id)
                key = keys.chunk_key(self.key, name, self.commit_id)
                if self.chunk_compression is None:
                    self._store_async(key, _header_and_data, sizes[i:j], shapes[i:j], parts[0])
                else:
                    self._store_async(key, _header_and_compressed, sizes[i:j], shapes[i:j], parts[0], self.chunk_codec)
                self.chunk_ids.set_last_index(self.chunk_ids.num_chunks - 1, first_item + j - 1)
                self.builder = builder = None
                i = j
                continue
            builder.add(parts, sizes[i:j], shapes[i:j])
            if self.chunk_ids.num_chunks and ChunkIdEncoder.name_of(self.chunk_ids.rows[-1, 0]) == ChunkIdEncoder.name_of(builder.chunk_id):
                self.chunk_ids.set_last_index(self.chunk_ids.num_chunks - 1, first_item + j - 1)
            i = j
            if builder.nbytes >= limit:
                self._seal()
                builder = None

    def _write_tiled(self, arr: np.ndarray, item: int) -> None:
        codec = self.sample_codec
        tile_shape = choose_tile_shape(arr.shape, arr.dtype.itemsize, self.max_chunk_size)
        for tile in split_tiles(arr, tile_shape):
            tile = np.ascontiguousarray(tile)
            if codec.is_image:
                data: Any = codec.encode(tile)
            elif isinstance(codec, Uncompressed):
                data = tile.data.cast("B")  # no copy
            else:
                data = codec.encode(tile.data.cast("B"))
            cid = ChunkIdEncoder.new_id()
            self.chunk_ids.append_chunk(cid, item)
            name = ChunkIdEncoder.name_of(cid)
            self._register_chunk(name)
            shp = np.asarray([tile.shape], dtype=np.int64)
            self.staged[keys.chunk_key(self.key, name, self.commit_id)] = _as_bytes(serialize_chunk(
                [data], np.asarray([len(data)], np.int64), shp, self.chunk_compression, self.meta.zstd_level, tile=True
            ))
        self.tiles.entries[item] = (tuple(int(s) for s in arr.shape), tuple(int(s) for s in tile_shape))

    # ------------------------------------------------------------------------------------------
    # updates and pops
    # ------------------------------------------------------------------------------------------
    # flush
    @property
    def is_dirty(self) -> bool:
        return bool(self.meta_dirty or self.encoders_dirty or self.info_dirty or self.staged or self.dirty_builders or (self.builder and self.builder.dirty)
                    or (self._commit_diff is not None and self._commit_diff.dirty))

    def write_chunks(self) -> None:
        """Write staged chunks (invisible until the encoders and meta point at them)."""
        if self.staged:
            for k, v in self.staged.items():
                self._note_chunk_write(k, [v])
            self.storage.set_many(dict(self.staged))
            self.staged.clear()

    def _note_chunk_write(self, key: str, parts: List[Any]) -> None:
        """A chunk (its bytes as gathered parts) written before the flush: its checksum joins
        the next side file; a chunk a published index points at (rewritten under its own
        key) has it listed at rest first."""
        name = key.rsplit("/", 1)[1]
        crc, samples = CS.checksum_parts(parts), self._sample_checksums(parts)
        with self._lock:
            if name in self.fresh_chunks:
                self.sums.note_chunk(name, crc, samples)
            else:
                self.sums.early_rewrite(self.storage, name, crc, samples)

    def _sample_checksums(self, parts: List[Any]) -> Optional[bytes]:
        """Checksums of each sample of a chunk of sample-compressed samples (decoded anyway,
        and read by byte range: see `ChunkReads._read_ranged_items`)."""
        if self.chunk_compression is not None or self.meta.sample_compression is None:
            return None
        return CS.sample_checksums(parts)

    def published_keys(self) -> List[str]:
        """Every object `flush` may overwrite besides chunks (which it writes under names no
        published index holds): what a flush journal saves to roll this tensor back."""
        c, k = self.commit_id, self.key
        out = [keys.tensor_meta_key(k, c), keys.chunk_id_encoder_key(k, c), keys.tile_encoder_key(k, c),
               keys.commit_diff_key(k, c), keys.tensor_info_key(k, c)]
        if self.seq is not None:
            out.append(keys.sequence_encoder_key(k, c))
        if self.creds is not None:
            out.append(keys.creds_encoder_key(k, c))
        if self.chunk_set is not None:
            out.append(keys.chunk_set_key(k, c))
        out.append(CS.side_key(k, c))
        out.append(chunk_stats.stats_key(k, c))
        return out

    def take_obsolete_chunks(self) -> List[str]:
        """Chunk keys the last flush stopped pointing at: delete them once it is published."""
        out, self.deleted_chunks = self.deleted_chunks, []
        return out

    def staged_nbytes(self) -> int:
        return sum(len(v) for v in self.staged.values())

    def flush(self) -> None:
        if not self.is_dirty:
            return
        self._check_writable()
        c = self.commit_id
        chunks: Dict[str, bytes] = dict(self.staged)
        for name, b in self.dirty_builders.items():
            chunks[keys.chunk_key(self.key, name, c)] = b.serialize(self.chunk_compression, self.meta.zstd_level)
            b.dirty = False
        if self.builder is not None and self.builder.dirty:
            name = ChunkIdEncoder.name_of(self.builder.chunk_id)
            chunks[keys.chunk_key(self.key, name, c)] = self.builder.serialize(self.chunk_compression, self.meta.zstd_level)
            self.builder.dirty = False
            if self.builder.nbytes >= self.seal_at_flush_bytes:
                # An open chunk is rewritten whole at every flush; closing it once it is big
                # enough keeps frequent flushes (one per Airbyte state, per SQL batch) linear.
                self._closed_chunk = name
                self.builder = None
        meta_side: Dict[str, bytes] = {}
        if self.encoders_dirty:
            meta_side[keys.chunk_id_encoder_key(self.key, c)] = self.chunk_ids.to_bytes()
            meta_side[keys.tile_encoder_key(self.key, c)] = self.tiles.to_bytes()
            if self.seq is not None:
                meta_side[keys.sequence_encoder_key(self.key, c)] = self.seq.to_bytes()
            if self.creds is not None:
                meta_side[keys.creds_encoder_key(self.key, c)] = self.creds.to_bytes()
        if self._commit_diff is not None and self._commit_diff.dirty:
            meta_side[keys.commit_diff_key(self.key, c)] = self._commit_diff.to_bytes()
        if self.chunk_set is not None and (self.chunk_set.dirty or self.encoders_dirty):
            meta_side[keys.chunk_set_key(self.key, c)] = self.chunk_set.to_bytes()
        if self.info_dirty:
            meta_side[keys.tensor_info_key(self.key, c)] = json.dumps(self.info, sort_keys=True, indent=4).encode()
        meta_bytes = self.meta.to_bytes()
        # the side file first, accepting both the checksums at rest and the new ones: a kill
        # at any later write leaves each object matching one of them
        folder = CS.folder(self.key, c) + "/"
        new_objects = {k[len(folder):]: v for k, v in meta_side.items()}
        new_objects[CS.META_FILE] = meta_bytes
        new_chunks = {k.rsplit("/", 1)[1]: CS.checksum(v) for k, v in chunks.items()}
        new_samples = {k.rsplit("/", 1)[1]: self._sample_checksums([v]) for k, v in chunks.items()}
        live = [n for n in self.chunk_ids.names() if self._chunk_in_current_commit(n)]
        side_k, side_raw, drop_pad = self.sums.side_file_for_flush(self.storage, new_objects, new_chunks, live, new_samples)
        if drop_pad:
            # an empty pad encoder means no padding; without it, deeplake's next update in
            # place creates it again, which tells our checksums that deeplake wrote
            self.storage.delete(CS.object_key(self.key, c, CS.PAD_FILE))
        self.storage.set(side_k, side_raw)
        stats = chunk_stats.for_flush(self, chunks, live)  # keyed by the side file's checksums: after it
        if stats is not None:
            self.storage.set(*stats)
        if chunks:
            self.storage.set_many(chunks)
        self.staged.clear()
        self.dirty_builders.clear()
        self.fresh_chunks.clear()
        self._parsed.clear()
        self._headers.clear()
        if meta_side:
            self.storage.set_many(meta_side)
        # the meta last: it is the commit point of this tensor
        self.storage.set(keys.tensor_meta_key(self.key, c), meta_bytes)
        self.flushed_items = self.meta.length
        self.edited = False
        if self.chunk_set is not None:
            self.chunk_set.dirty = False
        if self._commit_diff is not None:
            self._commit_diff.dirty = False
        self.meta_dirty = self.encoders_dirty = self.info_dirty = False
