"""The read side of a chunk engine: samples out of chunks, whole or by byte ranges, one sample
or a batch gathered natively into one array. Mixed into `ChunkEngine`."""
from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

import numpy as np

from lakeformat import _native
from lakeformat.codecs import IMAGE_COMPRESSIONS
from lakeformat.codecs.bytes_codecs import decompress_into
from lakeformat.core import keys
from lakeformat.core.chunk import Chunk
from lakeformat.core.codec_pool import codec_pool
from lakeformat.core.encoders import ChunkIdEncoder
from lakeformat.core.index import is_run
from lakeformat.core.decode import assemble_tiled
from lakeformat.core.layout import SampleFormat
from lakeformat.errors import CorruptDataError, IndexOutOfRangeError, KeyNotFoundInStorageError, LakeFormatError, StorageError

if TYPE_CHECKING:
    from lakeformat.core.checksums import EngineChecksums
    from lakeformat.core.chunk import ChunkBuilder
    from lakeformat.core.encoders import TileEncoder
    from lakeformat.core.meta import TensorMeta
    from lakeformat.core.version_state import VersionState
    from lakeformat.storage import StorageProvider

F = TypeVar("F", bound=Callable[..., Any])


def names_corruption(fn: F) -> F:
    """A read of `items` (first argument) that meets damaged bytes raises `CorruptDataError`
    naming the tensor, the chunk key and the first wanted sample of that chunk, never a bare
    ValueError or IndexError from the arrays it slices."""

    @functools.wraps(fn)
    def wrapper(self: Any, items: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, items, *args, **kwargs)
        except CorruptDataError as e:
            wanted = np.atleast_1d(np.asarray(items, np.int64))
            if e.sample is not None and e.tensor == self.meta.name and bool(np.any(wanted == e.sample)):
                raise  # named exactly where it was found: a sample read
            raise self.corruption_at(wanted, e.reason, e.key) from e
        except KeyNotFoundInStorageError as e:
            # a chunk the index points at is gone (whole, ranged or header read): damage
            key = missing_key(e)
            raise self.corruption_at(np.atleast_1d(np.asarray(items, np.int64)),
                                     f"chunk missing from storage in tensor {self.meta.name!r}", key) from e
        except (ValueError, IndexError) as e:
            if isinstance(e, LakeFormatError):
                raise  # a bad index, a dynamic shape: the caller's, not the data's
            raise self.corruption_at(np.atleast_1d(np.asarray(items, np.int64)), f"{type(e).__name__}: {e}", None) from e

    return wrapper  # type: ignore[return-value]


def missing_key(e: KeyError) -> Optional[str]:
    """The storage key a `KeyNotFoundInStorageError` names (not `str(e)`: KeyError quotes it)."""
    return str(e.args[0]) if e.args else None


def group_by_row(rows: np.ndarray) -> List[Tuple[int, np.ndarray]]:
    """[(row, positions of the items in that row)], rows ascending; linear when sorted."""
    if not len(rows):
        return []
    if len(rows) > 1 and not np.all(rows[1:] >= rows[:-1]):
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
    else:
        order = None
        srt = rows
    cuts = np.flatnonzero(srt[1:] != srt[:-1]) + 1
    bounds = np.concatenate([[0], cuts, [len(srt)]])
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = order[a:b] if order is not None else np.arange(a, b)
        out.append((int(srt[a]), sel))
    return out


def run_concurrently(fn: Callable[[Any], None], jobs: Sequence[Any], concurrency: int) -> None:
    """fn(job) for every job, with up to `concurrency` in flight (range requests)."""
    workers = min(len(jobs), max(1, int(concurrency)))
    if workers <= 1:
        for j in jobs:
            fn(j)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, jobs))


class ChunkReads:
    """The read methods of `ChunkEngine`; the engine's state they use is declared here (for
    the type checker: `ChunkEngine` sets it)."""

    if TYPE_CHECKING:
        key: str
        commit_id: str
        storage: StorageProvider
        vs: VersionState
        sums: EngineChecksums
        meta: TensorMeta
        chunk_ids: ChunkIdEncoder
        tiles: TileEncoder
        builder: Optional[ChunkBuilder]
        staged: Dict[str, bytes]
        dirty_builders: Dict[str, ChunkBuilder]
        _parsed: Dict[str, Chunk]
        _headers: Dict[str, Chunk]
        _lock: threading.RLock

        @property
        def verify_reads(self) -> bool: ...
        @property
        def num_items(self) -> int: ...
        @property
        def max_chunk_size(self) -> int: ...
        @property
        def chunk_compression(self) -> Optional[str]: ...
        def chunk_key_of(self, name: str) -> str: ...
        def get_chunks(self, names: Sequence[str]) -> Dict[str, Chunk]: ...
        def _chunk_in_current_commit(self, name: str) -> bool: ...
        def _unflushed_chunk(self, name: str) -> Optional[Chunk]: ...

    def corruption_at(self, items: np.ndarray, reason: str, key: Optional[str], cls: Type[CorruptDataError] = CorruptDataError) -> CorruptDataError:
        """The error for damaged bytes met reading `items`: the first of them the chunk `key`
        holds (the first of them, and its chunk, when no key is known)."""
        sample = int(items[0]) if len(items) else None
        if key:
            a, b = self.chunk_sample_range(key.rsplit("/", 1)[-1])
            inside = items[(items >= a) & (items <= b)]
            if len(inside):
                sample = int(inside[0])
        elif len(items):
            rows = self.chunk_ids.row_of(items[:1])
            key = self.chunk_key_of(self.chunk_ids.names()[int(rows[0])])
        return cls(reason, key, tensor=self.meta.name, sample=sample)

    def _checks_reads_of(self) -> bool:
        """Whether whole chunks read are checked against their checksums: every chunk with
        `verify_reads`, else those decoded anyway (chunk or sample compression)."""
        return bool(self.verify_reads or self.chunk_compression is not None or self.meta.sample_compression is not None)

    def chunk_sample_range(self, name: str) -> Tuple[int, int]:
        """(first, last) sample index a chunk holds, as the chunk index says."""
        names = self.chunk_ids.names()
        rows = np.flatnonzero(names == name) if isinstance(names, np.ndarray) else [i for i, n in enumerate(names) if n == name]
        if not len(rows):
            return (-1, -1)
        first = self.chunk_ids.first_indices()
        return int(first[rows[0]]), int(self.chunk_ids.rows[rows[-1], 1])

    def chunk_folder(self, name: str) -> Tuple[str, str]:
        """(tensor key, commit id) of the folder a chunk is stored in."""
        if self._chunk_in_current_commit(name):
            return self.key, self.commit_id
        cid, tkey = self.vs.chunk_location(self.key, name)
        return tkey, cid

    def verify_chunk(self, name: str, key: str, raw: Any, force: bool = False) -> bool:
        """Raise `CorruptDataError` naming the tensor, the chunk and its samples when a whole
        chunk read does not match the checksum its folder's side file holds; True when it was
        checked (False: not by this policy, or no usable side file lists it)."""
        if not (force or self._checks_reads_of()):
            return False
        tkey, cid = self.chunk_folder(name)
        table = self.sums.folders.get(self.storage, tkey, cid)
        ok = table.check_chunk(name, raw) if table is not None else None
        if ok is None:
            return False
        if ok:
            return True
        a, b = self.chunk_sample_range(name)
        raise CorruptDataError(f"chunk {name} (samples {a}..{b}) does not match its checksum", key, tensor=self.meta.name, sample=a)

    def item_locations(self, items: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(chunk row, local index) of each item (for a tiled item: its first tile's row)."""
        rows = self.chunk_ids.row_of(items)
        first = self.chunk_ids.first_indices()
        return rows, items - first[rows]

    def check_items(self, items: np.ndarray) -> None:
        if len(items) and (items.min() < 0 or items.max() >= self.num_items):
            bad = int(items[(items < 0) | (items >= self.num_items)][0])
            raise IndexOutOfRangeError(f"index {bad} is out of range for tensor {self.meta.name!r} of length {self.num_items}")

    @names_corruption
    def read_text_array(self, items: np.ndarray) -> Optional[np.ndarray]:
        """ASCII text items straight into a fixed-width NumPy string array by one native
        gather; None when a value is null, not ASCII, holds NUL bytes or is much longer than
        the rest (the caller then decodes item by item)."""
        n = len(items)
        if n < 1024:
            return None
        rows, local = self.item_locations(items)
        groups = group_by_row(rows)
        names = self.chunk_ids.names()
        chunks = self.get_chunks([names[r] for r, _ in groups])
        src_id = np.empty(n, np.int64)
        starts = np.empty(n, np.int64)
        ends = np.empty(n, np.int64)
        sources: List[Any] = []
        for r, sel in groups:
            c = chunks[names[r]]
            s, e = c.byte_ranges(local[sel])
            if np.any(e == s):
                empty = np.flatnonzero(e == s)
                if np.any(c.shapes(local[sel][empty])[:, 0] == 0):
                    return None  # nulls need an object array
            src_id[sel] = len(sources)
            starts[sel] = s
            ends[sel] = e
            sources.append(c.data)
        lengths = ends - starts
        total = int(lengths.sum())
        width = max(int(lengths.max()), 1)
        if width * n > 4 * total + (1 << 20):
            return None
        raw = np.zeros(n, dtype=f"S{width}")
        _native.gather(sources, src_id.data, starts.data, lengths.data, raw.view(np.uint8).data, (np.arange(n, dtype=np.int64) * width).data)
        out = np.empty(n, dtype=f"U{width}")
        src, dst = raw.view(np.uint8), out.view(np.uint32)
        if len(src) >= (4 << 20):  # two halves side by side: the page faults of `out` dominate
            half = (n // 2) * width
            parts = list(codec_pool().map(lambda ab: _native.widen_bytes(src[ab[0] : ab[1]].data, dst[ab[0] : ab[1]].data), [(0, half), (half, len(src))]))
            high, nonzero = parts[0][0] | parts[1][0], parts[0][1] + parts[1][1]
        else:
            high, nonzero = _native.widen_bytes(src.data, dst.data)
        if high >= 128 or nonzero != total:
            return None  # non-ASCII, or NUL bytes that a fixed-width array would drop
        return out

    @names_corruption
    def read_texts(self, items: np.ndarray) -> List[Optional[str]]:
        """Text items decoded chunk by chunk (a null, stored with shape (0,), reads None)."""
        arr = self.read_text_array(items)
        if arr is not None:
            texts: List[Optional[str]] = arr.tolist()
            return texts
        rows, local = self.item_locations(items)
        names = self.chunk_ids.names()
        groups = group_by_row(rows)
        first, last = self.chunk_ids.first_indices(), self.chunk_ids.rows[:, 1].astype(np.int64)
        touched = sum(int(last[r] - first[r]) + 1 for r, _ in groups)
        if self.chunk_compression is None and len(items) * 16 < touched:
            # a few items of big chunks (random reads): their byte ranges, not whole chunks
            datas, shapes = self.read_items_bytes(items)
            return [None if not len(d) and shp[0] == 0 else str(d, "utf-8") for d, shp in zip(datas, shapes.tolist())]
        chunks = self.get_chunks([names[r] for r, _ in groups])
        out: List[Optional[str]] = [None] * len(items)
        for r, sel in groups:
            c = chunks[names[r]]
            s, e = c.byte_ranges(local[sel])
            vals: List[Optional[str]]
            if len(sel) * 16 < c.num_samples:  # a few items: decode just those
                data = c.data
                vals = [str(data[a:b], "utf-8") for a, b in zip(s.tolist(), e.tolist())]
            else:  # most of the chunk: one decode, then slices
                raw = bytes(c.data[: int(e.max())]) if len(e) else b""
                text = raw.decode("utf-8")
                if len(text) != len(raw):  # not ASCII: byte offsets differ from str offsets
                    vals = [raw[a:b].decode("utf-8") for a, b in zip(s.tolist(), e.tolist())]
                else:
                    vals = [text[a:b] for a, b in zip(s.tolist(), e.tolist())]
            empty = np.flatnonzero(e == s)
            if len(empty):
                shp = c.shapes(local[sel][empty])
                for k, z in zip(empty.tolist(), (shp[:, 0] == 0).tolist()):
                    if z:
                        vals[k] = None
            if len(sel) == len(items) and np.array_equal(sel, np.arange(len(items))):
                out = vals
            else:
                for k, v in zip(sel.tolist(), vals):
                    out[k] = v
        return out

    @names_corruption
    def read_items_bytes(self, items: np.ndarray) -> Tuple[List[memoryview], np.ndarray]:
        """The stored bytes and chunk-level shapes of each item (tiled items excluded)."""
        rows, local = self.item_locations(items)
        names = self.chunk_ids.names()
        groups = group_by_row(rows)
        out: List[Any] = [None] * len(items)
        shapes = None
        if self.chunk_compression is None:
            # a few samples of a big chunk (random reads of images): their byte ranges only
            ranged = [(r, sel) for r, sel in groups if self._worth_ranges(names[r], len(sel), self._mean_item_nbytes(names[r]))]
            if ranged:
                shapes = self._read_ranged_items(ranged, local, names, out, len(items))
                done = {r for r, _ in ranged}
                groups = [(r, sel) for r, sel in groups if r not in done]
        chunks = self.get_chunks([names[r] for r, _ in groups])
        for r, sel in groups:
            c = chunks[names[r]]
            s, e = c.byte_ranges(local[sel])
            shp = c.shapes(local[sel])
            if shapes is None or shapes.shape[1] != shp.shape[1]:
                shapes = np.zeros((len(items), shp.shape[1]), np.int64) if shapes is None else shapes
            shapes[sel] = shp
            data = c.data
            for k, a, b in zip(sel.tolist(), s.tolist(), e.tolist()):
                out[k] = data[a:b]
        return out, shapes if shapes is not None else np.zeros((len(items), 1), np.int64)

    def _mean_item_nbytes(self, name: str) -> int:
        if name in self._parsed or self._is_unflushed(name):
            return 1 << 30  # in memory already: never worth ranges
        h = self._header(name)
        n = h.num_samples
        if not n or not len(h.bp_rows):
            return 1 << 30
        s, e = h.byte_ranges(np.array([n - 1]))
        return int(e[0]) // n + 1

    def _read_ranged_items(self, ranged: List[Tuple[int, np.ndarray]], local: np.ndarray, names: List[str], out: List[Any], n: int) -> np.ndarray:
        """Fill `out` with the bytes of the items of `ranged` [(row, positions)], one range
        request per item, `concurrency` in flight; returns their shapes."""
        jobs: List[Tuple[List[int], str, np.ndarray, np.ndarray, str, np.ndarray]] = []
        shapes: Optional[np.ndarray] = None
        for r, sel in ranged:
            h = self._header(names[r])
            s, e = h.byte_ranges(local[sel])
            shp = h.shapes(local[sel])
            if shapes is None:
                shapes = np.zeros((n, shp.shape[1]), np.int64)
            shapes[sel] = shp
            jobs.append((sel.tolist(), self.chunk_key_of(names[r]), s + h.header_nbytes, e + h.header_nbytes, names[r], local[sel]))
        # samples decoded anyway (sample compression) are checked one by one, where the side
        # file keeps their checksums; raw samples only under `verify_reads` (read whole then)
        check = self.meta.sample_compression is not None

        def fetch(job: Tuple[List[int], str, np.ndarray, np.ndarray, str, np.ndarray]) -> None:
            ks, key, a, b, name, locs = job
            table = None
            if check:
                tkey, cid = self.chunk_folder(name)
                table = self.sums.folders.get(self.storage, tkey, cid)
            for k, data, want, loc in zip(ks, self.storage.get_ranges(key, a.tolist(), b.tolist()), (b - a).tolist(), locs.tolist()):
                if len(data) != want:
                    raise CorruptDataError(f"chunk holds {len(data)} of the sample's {want} bytes", key)
                if table is not None and table.check_sample(name, loc, data) is False:
                    first, _ = self.chunk_sample_range(name)
                    raise CorruptDataError(f"sample {first + loc} of chunk {name} does not match its checksum", key,
                                           tensor=self.meta.name, sample=first + loc)
                out[k] = memoryview(data)

        run_concurrently(fetch, jobs, self.storage.concurrency)
        assert shapes is not None  # `ranged` is never empty
        return shapes

    @names_corruption
    def read_fixed(self, items: np.ndarray, shape: Tuple[int, ...], dtype: np.dtype, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Fast path: items of one known shape, stored raw -> one preallocated array (`out`,
        C-contiguous, of shape (len(items), *shape), where the caller reuses one), filled by
        the native gather kernel straight from the chunks' bytes."""
        n = len(items)
        if out is None:
            out = np.empty((n,) + tuple(shape), dtype=dtype)
        elif out.shape != (n,) + tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
            raise ValueError(f"read_fixed: out is {out.dtype}{out.shape}, not {np.dtype(dtype)}{(n,) + tuple(shape)}")
        if n == 0:
            return out
        item_nbytes = int(np.prod(shape)) * dtype.itemsize
        if n > 64 and not self.tiles.entries and is_run(items):
            return self._read_fixed_range(int(items[0]), n, out, item_nbytes)
        rows, local = self.item_locations(items)
        names = self.chunk_ids.names()
        by_row = group_by_row(rows)
        if self.chunk_compression is None:
            # byte-range reads when only a small part of a stored chunk is wanted
            ranged = [(r, sel) for r, sel in by_row if self._worth_ranges(names[r], len(sel), item_nbytes)]
            if ranged:
                self._read_fixed_ranged(items, rows, local, ranged, names, out, item_nbytes)
                if len(ranged) == len(by_row):
                    return out
                done = {r for r, _ in ranged}
                by_row = [(r, sel) for r, sel in by_row if r not in done]
        if self.chunk_compression == "lz4" and getattr(self.storage, "reads_into_cheaply", False):
            return self._read_fixed_lz4_sparse(by_row, names, local, out, item_nbytes)
        sources: List[Any] = []
        src_id = np.empty(n, np.int64)
        src_start = np.empty(n, np.int64)
        # fetch in groups so that a full scan of a big tensor holds a bounded number of chunks
        group: List[Tuple[int, np.ndarray]] = []
        budget = 0
        groups: List[List[Tuple[int, np.ndarray]]] = []
        for r, sel in by_row:
            group.append((r, sel))
            budget += self.max_chunk_size
            if budget >= 256 * 1024 * 1024:
                groups.append(group)
                group, budget = [], 0
        if group:
            groups.append(group)
        for g in groups:
            if self.chunk_compression == "lz4":
                chunks = self._lz4_chunks_upto(g, names, local)
            else:
                chunks = self.get_chunks([names[r] for r, _ in g])
            sources = []
            sel_all = []
            for r, sel in g:
                c = chunks[names[r]]
                s, e = c.byte_ranges(local[sel])
                if np.any(e - s != item_nbytes):
                    raise CorruptDataError(f"sample size differs from its shape in tensor {self.meta.name!r}", c.key)
                src_id[sel] = len(sources)
                src_start[sel] = s
                sources.append(c.data)
                sel_all.append(sel)
            sel = np.concatenate(sel_all)
            _native.gather(sources, src_id[sel].data, src_start[sel].data, np.full(len(sel), item_nbytes, np.int64).data,
                           out.reshape(-1).view(np.uint8).data, (sel * item_nbytes).data)
        return out

    def _read_fixed_lz4_sparse(self, by_row: List[Tuple[int, np.ndarray]], names: List[str], local: np.ndarray,
                               out: np.ndarray, item_nbytes: int) -> np.ndarray:
        """Scattered fixed-size samples of lz4 chunks on a store that reads into memory it is
        given: per chunk, its file into a reused buffer, its head (up to the last wanted
        sample) decoded into another reused buffer, the samples copied out; chunks side by
        side. Reused buffers: a random read of many big chunks faults in no fresh pages."""
        flat = out.reshape(-1).view(np.uint8)
        scratch = threading.local()

        def buffer(name: str, n: int) -> np.ndarray:
            buf = getattr(scratch, name, None)
            if buf is None or len(buf) < n:
                buf = np.empty(max(n, 1 << 20), np.uint8)
                setattr(scratch, name, buf)
            return buf[:n]

        def one_chunk(job: Tuple[int, np.ndarray]) -> None:
            r, sel = job
            name = names[r]
            c = self._parsed.get(name) or self._unflushed_chunk(name)
            if c is not None:
                data = c.data
                s, e = c.byte_ranges(local[sel])
            else:
                key = self.chunk_key_of(name)
                raw = buffer("raw", self.storage.size(key))
                self.storage.read_into(key, 0, raw)
                self.verify_chunk(name, key, raw)
                c = Chunk.parse(raw, "lz4", key)
                s, e = c.byte_ranges(local[sel])
                decoded = buffer("decoded", int(e.max()))
                decompress_into(c._raw_data, "lz4", decoded, partial=True)
                data = decoded.data
            if np.any(e - s != item_nbytes):
                raise CorruptDataError(f"sample size differs from its shape in tensor {self.meta.name!r}", c.key)
            _native.gather([data], np.zeros(len(sel), np.int64).data, s.data, (e - s).data, flat.data, (sel * item_nbytes).data)

        run_concurrently(one_chunk, by_row, max(2, min(self.storage.concurrency, 4)))
        return out

    def _lz4_chunks_upto(self, group: List[Tuple[int, np.ndarray]], names: List[str], local: np.ndarray) -> Dict[str, Chunk]:
        """lz4 chunks for a sparse read: each decoded (side by side, in the codec pool) only up
        to the end of its last wanted sample; such a partial chunk is not kept in the cache."""
        out: Dict[str, Chunk] = {}
        fetch: Dict[str, Tuple[str, np.ndarray]] = {}
        for r, sel in group:
            name = names[r]
            c = self._parsed.get(name) or self._unflushed_chunk(name)
            if c is not None:
                out[name] = c
            else:
                fetch[self.chunk_key_of(name)] = (name, sel)
        if not fetch:
            return out
        try:
            raws = self.storage.get_many(list(fetch))
        except KeyError as e:
            raise CorruptDataError(f"chunk missing from storage in tensor {self.meta.name!r}", missing_key(e)) from None

        def decode(key: str) -> Tuple[str, Chunk]:
            name, sel = fetch[key]
            raw = raws[key]
            assert raw is not None  # get_many without missing_ok raises for a missing key
            self.verify_chunk(name, key, raw)
            c = Chunk.parse(raw, "lz4", key)
            _, e = c.byte_ranges(local[sel])
            head = np.empty(int(e.max()) if len(e) else 0, np.uint8)
            if len(head):
                decompress_into(c._raw_data, "lz4", head, partial=True)
            c._data = head.data
            return name, c

        for name, c in codec_pool().map(decode, list(fetch)):
            out[name] = c
        return out

    def _read_fixed_range(self, start: int, n: int, out: np.ndarray, item_nbytes: int) -> np.ndarray:
        """A run of consecutive samples of one fixed size: each chunk's bytes go straight into
        their place in `out` (read into it, or decompressed into it), chunks side by side."""
        flat = out.reshape(-1).view(np.uint8)
        first = self.chunk_ids.first_indices()
        last = self.chunk_ids.rows[:, 1].astype(np.int64)
        r0, r1 = (int(x) for x in self.chunk_ids.row_of(np.array([start, start + n - 1])))
        names = self.chunk_ids.names()

        def copy_chunk(r: int) -> None:
            lo, hi = max(start, int(first[r])), min(start + n - 1, int(last[r]))
            dest = flat[(lo - start) * item_nbytes : (hi - start + 1) * item_nbytes]
            self._chunk_bytes_into(names[r], lo - int(first[r]), hi - int(first[r]) + 1, item_nbytes, dest)

        rows = list(range(r0, r1 + 1))
        if len(rows) > 1:
            # the GIL is released while reading and decoding: one chunk per thread
            run_concurrently(copy_chunk, rows, max(2, min(self.storage.concurrency, 4)))
        else:
            for r in rows:
                copy_chunk(r)
        return out

    @names_corruption
    def view_fixed_range(self, start: int, n: int, shape: Tuple[int, ...], dtype: np.dtype) -> Optional[np.ndarray]:
        """Items [start, start + n) of one known shape as a read-only array over the stored
        chunk's bytes mapped into memory (no copy), where they lie in one raw chunk already
        stored and the store can map it; None otherwise (the caller reads them)."""
        if n <= 0 or self.chunk_compression is not None or self.verify_reads or self.tiles.entries:
            return None
        r0, r1 = (int(x) for x in self.chunk_ids.row_of(np.array([start, start + n - 1])))
        if r0 != r1:
            return None
        name = self.chunk_ids.name_of(int(self.chunk_ids.rows[r0, 0]))
        if name in self._parsed or self._is_unflushed(name):
            return None
        key = self.chunk_key_of(name)
        mapped = self.storage.map_readonly(key)
        if mapped is None:
            return None
        item_nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        a = start - int(self.chunk_ids.first_indices()[r0])
        h = self._header(name)
        self._check_fixed(h, a + n, item_nbytes)
        offset = h.header_nbytes + a * item_nbytes
        if offset + n * item_nbytes > len(mapped):
            raise CorruptDataError(f"chunk is shorter ({len(mapped)} bytes) than its samples", key)
        return np.frombuffer(mapped, np.dtype(dtype), n * (item_nbytes // np.dtype(dtype).itemsize), offset).reshape((n,) + tuple(shape))

    def _chunk_bytes_into(self, name: str, a: int, b: int, item_nbytes: int, dest: np.ndarray) -> None:
        """Samples [a, b) of a chunk whose samples are all `item_nbytes` long, into `dest`."""
        c = self._parsed.get(name) or self._unflushed_chunk(name)
        compression = self.chunk_compression
        if c is None and compression in (None, "lz4"):
            key = self.chunk_key_of(name)
            if compression is None and not self.verify_reads:
                h = self._header(name)
                self._check_fixed(h, b, item_nbytes)
                try:
                    self.storage.read_into(key, h.header_nbytes + a * item_nbytes, dest)
                except StorageError:
                    if self.storage.size(key) < h.header_nbytes + b * item_nbytes:
                        raise CorruptDataError(f"chunk is shorter ({self.storage.size(key)} bytes) than its samples", key) from None
                    raise
                return
            raw = self.storage.get(key)
            self.verify_chunk(name, key, raw)
            c = Chunk.parse(raw, compression, key)
            self._check_fixed(c, b, item_nbytes)
            if a == 0:
                decompress_into(c._raw_data, compression, dest, partial=True)
            else:
                head = np.empty(b * item_nbytes, np.uint8)
                decompress_into(c._raw_data, compression, head, partial=True)
                dest[:] = head[a * item_nbytes :]
            return
        if c is None:
            c = self.get_chunks([name])[name]
        self._check_fixed(c, b, item_nbytes)
        data = c.data
        if b * item_nbytes > len(data):
            raise CorruptDataError(f"chunk shorter than its samples in tensor {self.meta.name!r}", c.key)
        dest[:] = np.frombuffer(data, np.uint8, (b - a) * item_nbytes, a * item_nbytes)

    def _check_fixed(self, c: Chunk, b: int, item_nbytes: int) -> None:
        """The chunk's first b samples are item_nbytes each and back to back from byte 0."""
        bp = c.bp_rows
        if c.compression in IMAGE_COMPRESSIONS or c.is_tile:
            return  # no positions to check (canvases are checked when decoded)
        if not len(bp) or int(bp[-1, 2]) + 1 < b:
            raise CorruptDataError(f"chunk holds fewer samples than its index says in tensor {self.meta.name!r}", c.key)
        row = int(np.searchsorted(bp[:, 2], b - 1))
        if np.any(bp[: row + 1, 0] != item_nbytes) or int(bp[0, 1]) != 0:
            raise CorruptDataError(f"sample size differs from its shape in tensor {self.meta.name!r}", c.key)

    def _worth_ranges(self, name: str, n_items: int, item_nbytes: int) -> bool:
        """Byte-range reads of `n_items` samples, or the whole chunk? Whichever the store's
        cost model (latency per request, bandwidth, requests in flight) says is cheaper."""
        if name in self._parsed or self._is_unflushed(name) or self.verify_reads:
            return False  # in memory already, or to be checked whole
        st = self.storage
        lat, bw = st.request_latency_s, st.bandwidth_bytes_s
        ranged = lat + n_items * (st.range_latency_s + item_nbytes / bw)  # one get_ranges call
        whole = lat + self.max_chunk_size / bw
        return ranged < whole

    def _is_unflushed(self, name: str) -> bool:
        b = self.builder
        if b is not None and ChunkIdEncoder.name_of(b.chunk_id) == name:
            return True
        return name in self.dirty_builders or keys.chunk_key(self.key, name, self.commit_id) in self.staged

    def _header(self, name: str) -> Chunk:
        h = self._headers.get(name)
        if h is None:
            k = self.chunk_key_of(name)
            raw = self.storage.get_range(k, 0, 4096)
            try:
                h = Chunk.parse(raw, None, k, header_only=True)
            except CorruptDataError:
                size = Chunk.header_nbytes_from(raw)  # a long header: read just all of it
                raw = self.storage.get_range(k, 0, size) if size is not None else self.storage.get(k)
                h = Chunk.parse(raw, None, k, header_only=True)
            with self._lock:
                self._headers[name] = h
        return h

    def _read_fixed_ranged(self, items: np.ndarray, rows: np.ndarray, local: np.ndarray, by_row: List[Tuple[int, np.ndarray]],
                           names: List[str], out: np.ndarray, item_nbytes: int) -> np.ndarray:
        pending = {names[r] for r, _ in by_row}
        unflushed = {n: (self._unflushed_chunk(n) if self._is_unflushed(n) else None) for n in pending}
        jobs: List[Tuple[List[int], str, np.ndarray]] = []
        for r, sel in by_row:
            name = names[r]
            c = unflushed[name]
            if c is not None:
                s, e = c.byte_ranges(local[sel])
                for k, a in zip(sel.tolist(), s.tolist()):
                    out.reshape(len(items), -1).view(np.uint8)[k] = np.frombuffer(c.data[a : a + item_nbytes], np.uint8)
                continue
            h = self._header(name)
            s, _ = h.byte_ranges(local[sel])
            jobs.append((sel.tolist(), self.chunk_key_of(name), s + h.header_nbytes))
        flat = out.reshape(len(items), -1).view(np.uint8)

        def fetch(job: Tuple[List[int], str, np.ndarray]) -> None:
            ks, key, a = job
            for k, data in zip(ks, self.storage.get_ranges(key, a.tolist(), (a + item_nbytes).tolist())):
                if len(data) != item_nbytes:
                    raise CorruptDataError(f"chunk holds {len(data)} of the sample's {item_nbytes} bytes", key)
                flat[k] = np.frombuffer(data, np.uint8)

        run_concurrently(fetch, jobs, self.storage.concurrency)
        return out

    @names_corruption
    def read_tiled(self, item: int) -> np.ndarray:
        """A tiled item, its tile chunks decoded and assembled (`lakeformat.core.decode`)."""
        rows = self.chunk_ids.rows_of_sample(item)
        names = self.chunk_ids.names()
        chunks = self.get_chunks([names[r] for r in rows])
        fmt = SampleFormat.of_meta(self.meta.name, self.meta)
        sample_shape, tile_shape = self.tiles.entries[item]
        tiled: np.ndarray = assemble_tiled(fmt, sample_shape, tile_shape, [chunks[names[r]] for r in rows])
        return tiled
