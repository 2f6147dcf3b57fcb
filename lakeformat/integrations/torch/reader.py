"""Worker-side reading: which chunks a set of samples needs, and their bytes turned into
per-sample values (fetching them is `chunk_cache`'s job). No torch here.

A `TensorSource` is built in the parent process from a tensor's engine (chunk rows, chunk
keys, meta) and is plain data, so that a worker (forked or spawned) reads chunks straight
from the storage with no engine, lock or cache shared with the parent.
"""
from __future__ import annotations

import copy
import io
import pickle
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat import _native
from lakeformat.core import decode
from lakeformat.core.chunk import Chunk
from lakeformat.core.layout import TEXT_HTYPES, TensorLayout
from lakeformat.errors import CorruptDataError, SampleDecodeError
from lakeformat.htypes import htype_of
from lakeformat.storage import FsspecStorage, LRUCache, PrefixedStorage, StorageProvider

from PIL import Image

from lakeformat.integrations.torch.direct_s3 import UrlSigner, direct_reads, share_botocore_session, signing_options
from lakeformat.integrations.torch.blocks import BLOCKED, FIRST_BLOCK, BlockedChunk


# keyed by a tensor's sample compression (None for none: never a key, like any other codec)
_PIL_FORMATS: Dict[Optional[str], Tuple[str, ...]] = {"png": ("PNG",), "jpeg": ("JPEG",)}
DECODE_METHODS = ("numpy", "tobytes", "pil")
__all__ = ["TEXT_HTYPES", "DECODE_METHODS", "TensorSource", "FixedColumn", "ValueColumn", "read_column", "decode_item", "gather_pieces", "worker_storage"]


class TensorSource:
    """What a worker needs to read one tensor: chunk rows, keys and meta, as plain data."""

    def __init__(self, name: str, tensor: Any, decode_method: str = "numpy"):
        if decode_method not in DECODE_METHODS:
            raise ValueError(f"decode_method for {name!r} must be one of {DECODE_METHODS}, not {decode_method!r}")
        layout = TensorLayout.of(tensor, name)
        self.layout = layout
        self.name = name
        self.decode_method = decode_method
        self.base_htype = layout.htype
        self.dtype_name = layout.dtype
        self.dtype = layout.np_dtype
        self.sample_compression = layout.sample_compression
        self.chunk_compression = layout.chunk_compression
        self.is_link = layout.is_link
        self.is_sequence = layout.is_sequence
        self.min_shape = layout.min_shape
        self.max_shape = layout.max_shape
        self.max_chunk_size = layout.max_chunk_size
        self.last_index = layout.last_index
        self.first_index = layout.first_index
        self.chunk_keys = layout.chunk_keys
        self.tiles = layout.tiles
        self.seq_ranges = layout.seq_ranges
        self.fixed_shape: Optional[Tuple[int, ...]] = layout.fixed_shape
        self.item_nbytes_max = int(np.prod(self.max_shape or (1,))) * self.dtype.itemsize if self.max_shape else 64
        self.squeeze_scalar = htype_of(self.base_htype).label and self.max_shape == (1,) and self.min_shape == (1,)
        self.is_image = layout.is_image
        # set by the loader for object stores: large chunks without chunk compression come
        # in blocks (no tiles: a tile chunk is read whole)
        self.fetch_in_blocks = False
        # links resolve through the dataset's resolver (creds live in memory, not in storage)
        self.link_resolver = tensor.link_resolver if self.is_link else None

    # -- items ------------------------------------------------------------------------------------
    @property
    def num_chunks(self) -> int:
        return len(self.chunk_keys)

    def items_of(self, samples: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Stored items of each sample: (items, None) or, for sequences, (flat items, offsets)."""
        return self.layout.items_of(samples)

    def rows_of(self, items: np.ndarray) -> np.ndarray:
        return self.layout.rows_of(items)

    def rows_for_samples(self, samples: np.ndarray) -> np.ndarray:
        """Every chunk row the samples need (tiles included)."""
        items, _ = self.items_of(samples)
        rows = self.rows_of(items)
        if self.tiles:
            extra: List[int] = []
            for it, r in zip(items.tolist(), rows.tolist()):
                if it in self.tiles:
                    end = r + 1
                    while end < len(self.last_index) and int(self.last_index[end]) == it:
                        end += 1
                    extra.extend(range(r, end))
            if extra:
                rows = np.concatenate([rows, np.asarray(extra, np.int64)])
        return np.unique(rows)

    def first_local(self, samples: np.ndarray, row: int) -> int:
        """The first (smallest) index within chunk `row` of the items of `samples` in it."""
        items, _ = self.items_of(samples)
        rows = self.rows_of(items)
        mine = items[rows == row]
        return int(mine.min() - self.first_index[row]) if len(mine) else 0

    def fetch_mode(self, row: int) -> Optional[str]:
        """How a worker fetches chunk `row`: `BLOCKED` (in byte blocks) for a large chunk
        without chunk compression on an object store, else whole (its chunk compression)."""
        if self.fetch_in_blocks and self.chunk_estimate(row) > 2 * FIRST_BLOCK:
            return BLOCKED
        return self.chunk_compression

    def chunk_estimate(self, row: int) -> int:
        """Bytes a fetched chunk holds in memory (compressed + decompressed), before fetching."""
        first = int(self.first_index[row]) if len(self.first_index) else 0
        n = int(self.last_index[row]) - first + 1
        est = min(self.max_chunk_size, max(n, 1) * self.item_nbytes_max)
        return est * (2 if self.chunk_compression else 1)

    def chunk_estimate_max(self) -> int:
        """Bytes the largest chunk is expected to take on the wire (its stored size)."""
        if not self.num_chunks:
            return 0
        n = int((self.last_index.astype(np.int64) - self.first_index).max()) + 1
        return min(self.max_chunk_size, max(n, 1) * self.item_nbytes_max)

    def decoded_estimate(self, n_samples: int) -> int:
        if self.fixed_shape is not None and not self.is_sequence:
            return 0  # served straight from the chunk's bytes
        return n_samples * self.item_nbytes_max

    def __getstate__(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        # only a spawned or forkserver worker gets a pickled source (a forked one shares the
        # parent's memory), and the link resolver holds the whole writable dataset: leave it
        d["link_resolver"] = None
        return d


def _is_spawn() -> bool:
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=True) not in (None, "fork")


def worker_storage(storage: StorageProvider, signer: Optional[UrlSigner] = None) -> StorageProvider:
    """The store a worker reads chunks from: no read cache (each chunk is read once per epoch,
    and a cache would hold up to its size in every worker) and, for fsspec, a filesystem made
    in this process (fsspec's async filesystems are not fork-safe)."""
    if isinstance(storage, LRUCache):
        return worker_storage(storage.base, signer)
    if isinstance(storage, PrefixedStorage):
        p = copy.copy(storage)
        p.base = worker_storage(storage.base, signer)
        return p
    if isinstance(storage, FsspecStorage):
        f = storage.rebind(_worker_fs(storage.fs))
        if not _is_spawn():  # a forked worker: the parent's session, its models parsed (a pickled fs has none)
            share_botocore_session(storage.fs, f.fs)
        return direct_reads(f, signer)
    return storage


def _worker_fs(fs: Any) -> Any:
    """A new instance of `fs` for this process. For s3fs, what the worker's direct reads
    need (`direct_s3.signing_options`): a plain-http endpoint (an emulator, a MinIO inside
    the cluster) gets `verify=False`, since aiobotocore loads the CA bundle into every new
    client's SSL context (about 45 ms of CPU per worker and epoch, before the first request)
    with no TLS to verify; presigned URLs are SigV4."""
    opts = getattr(fs, "storage_options", None)
    if type(fs).__name__ == "S3FileSystem" and isinstance(opts, dict):
        return type(fs)(*getattr(fs, "storage_args", ()), **signing_options(opts, plain_http_unverified=True))
    return pickle.loads(pickle.dumps(fs))


def chunk_for_samples(c: Any, local: np.ndarray) -> Any:
    """The chunk (or, for one read in blocks, the slice of it) holding these samples."""
    return c.for_samples(local) if isinstance(c, BlockedChunk) else c


class FixedColumn:
    """Samples of one fixed shape and dtype in a few buffers (their chunks' bytes, or one array
    the task decoded them into): collated with one native gather into the batch, or viewed as
    arrays (zero-copy) when a transform needs them. `held_nbytes` counts the buffers the
    column owns (decoded arrays), not the chunks it points into."""

    __slots__ = ("buffers", "src", "start", "shape", "dtype", "nbytes", "held_nbytes")

    def __init__(self, buffers: List[memoryview], src: np.ndarray, start: np.ndarray, shape: Tuple[int, ...], dtype: np.dtype,
                 held_nbytes: int = 0):
        self.buffers = buffers
        self.src = src
        self.start = start
        self.shape = shape
        self.dtype = dtype
        self.nbytes = int(np.prod(shape)) * dtype.itemsize
        self.held_nbytes = held_nbytes

    def value(self, k: int) -> np.ndarray:
        buf = self.buffers[int(self.src[k])]
        return np.frombuffer(buf, self.dtype, count=self.nbytes // self.dtype.itemsize, offset=int(self.start[k])).reshape(self.shape)


class ValueColumn:
    """Decoded per-sample values; a value may be an exception (that sample failed)."""

    __slots__ = ("values", "held_nbytes")

    def __init__(self, values: List[Any]):
        self.values = values
        self.held_nbytes = sum(getattr(v, "nbytes", 0) for v in values)

    def value(self, k: int) -> Any:
        return self.values[k]


def read_column(src: TensorSource, samples: np.ndarray, chunks: Dict[str, Chunk]) -> Union[FixedColumn, ValueColumn]:
    """The values of `samples` (dataset indices) of one tensor, from already fetched chunks."""
    items, offsets = src.items_of(samples)
    rows = src.rows_of(items)
    local = items - src.first_index[rows] if len(items) else items
    if src.fixed_shape is not None and offsets is None and not src.tiles and src.decode_method != "tobytes":
        return _fixed_column(src, src.fixed_shape, rows, local, chunks)
    if src.is_image and offsets is None and not src.tiles and not src.is_link and src.decode_method == "numpy":
        col = _image_column(src, rows, local, chunks)
        if col is not None:
            return col
    if src.base_htype == "text" and offsets is None and not src.tiles and not src.is_link and src.sample_compression is None \
            and src.decode_method == "numpy":
        from lakeformat.integrations.torch.text_column import text_values  # one gather and one C decode

        texts = text_values(src, rows, local, chunks)
        if texts is not None:
            return ValueColumn(texts)
    vals = _item_values(src, items, rows, local, chunks)
    if offsets is None:
        return ValueColumn(vals)
    out: List[Any] = []
    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        part = vals[a:b]
        bad = next((v for v in part if isinstance(v, BaseException)), None)
        if bad is not None:
            out.append(bad)
        elif part and all(isinstance(v, np.ndarray) for v in part) and len({v.shape for v in part}) == 1:
            out.append(np.stack(part))
        else:
            out.append(part)
    return ValueColumn(out)


def _fixed_column(src: TensorSource, shape: Tuple[int, ...], rows: np.ndarray, local: np.ndarray, chunks: Dict[str, Chunk]) -> FixedColumn:
    n = len(rows)
    buffers: List[memoryview] = []
    src_id = np.empty(n, np.int64)
    start = np.empty(n, np.int64)
    nbytes = int(np.prod(shape)) * src.dtype.itemsize
    for r in np.unique(rows).tolist():
        key = src.chunk_keys[r]
        sel = np.nonzero(rows == r)[0]
        c = chunk_for_samples(chunks[key], local[sel])
        s, e = c.byte_ranges(local[sel])
        if np.any(e - s != nbytes):
            raise CorruptDataError(f"sample size differs from its shape in tensor {src.name!r}", key)
        data = c.data
        if len(data) and int(e.max()) > len(data):
            raise CorruptDataError(f"sample bytes run past the end of the chunk in tensor {src.name!r}", key)
        src_id[sel] = len(buffers)
        start[sel] = s
        buffers.append(data)
    return FixedColumn(buffers, src_id, start, shape, src.dtype)


def _image_column(src: TensorSource, rows: np.ndarray, local: np.ndarray, chunks: Dict[str, Chunk]) -> Union[FixedColumn, ValueColumn, None]:
    """Images of one shape decoded straight into one array of the task's samples (a
    FixedColumn over it); None when their shapes differ (the per-sample path handles them)."""
    n = len(rows)
    if src.dtype != np.uint8 or not n:
        return None
    parts = []
    shape: Optional[Tuple[int, ...]] = None
    for r in np.unique(rows).tolist():
        sel = np.nonzero(rows == r)[0]
        c = chunk_for_samples(chunks[src.chunk_keys[r]], local[sel])
        shp = c.shapes(local[sel])
        if not len(shp) or (shp != shp[0]).any():
            return None
        s0 = tuple(int(x) for x in shp[0])
        if shape is None:
            shape = s0
        elif s0 != shape:
            return None
        s, e = c.byte_ranges(local[sel])
        parts.append((sel.tolist(), s.tolist(), e.tolist(), c.data))
    if not shape:
        return None
    nbytes = int(np.prod(shape))
    if not nbytes:
        return None
    arr: np.ndarray = np.empty((n, nbytes), np.uint8)
    odd: Dict[int, Any] = {}
    sc = src.sample_compression
    for sel, s, e, data in parts:
        for k, a, b in zip(sel, s, e):
            try:
                v = decode.decode_image_into(data[a:b], sc, shape, np.dtype(np.uint8), arr[k])
            except Exception as ex:  # noqa: BLE001 - reported per sample, with its index
                odd[k] = SampleDecodeError(decode.image_error(sc, ex), tensor=src.name)
                odd[k].__cause__ = ex
                continue
            if v is not None:
                odd[k] = v  # another shape than the rest: served as it is
    arr = arr.reshape((n,) + shape)
    if odd:
        return ValueColumn([odd[k] if k in odd else arr[k] for k in range(n)])
    return FixedColumn([arr.reshape(-1).data], np.zeros(n, np.int64), np.arange(n, dtype=np.int64) * nbytes, shape, src.dtype,
                       held_nbytes=arr.nbytes)


def _item_values(src: TensorSource, items: np.ndarray, rows: np.ndarray, local: np.ndarray, chunks: Dict[str, Chunk]) -> List[Any]:
    n = len(items)
    datas: List[Any] = [None] * n
    shapes: List[Any] = [None] * n
    tiled: List[int] = []
    for r in np.unique(rows).tolist():
        sel = np.nonzero(rows == r)[0]
        c = chunks[src.chunk_keys[r]]
        if src.tiles:
            plain = [k for k in sel.tolist() if int(items[k]) not in src.tiles]
            tiled.extend(k for k in sel.tolist() if int(items[k]) in src.tiles)
            sel = np.asarray(plain, np.int64)
            if not len(sel):
                continue
        c = chunk_for_samples(c, local[sel])
        s, e = c.byte_ranges(local[sel])
        shp = c.shapes(local[sel])
        data = c.data
        for j, (k, a, b) in enumerate(zip(sel.tolist(), s.tolist(), e.tolist())):
            datas[k] = data[a:b]
            shapes[k] = shp[j]
    out: List[Any] = [None] * n
    for k in tiled:
        try:
            out[k] = _read_tiled(src, int(items[k]), chunks)
        except Exception as e:  # noqa: BLE001
            out[k] = e
    plain_k = [k for k in range(n) if datas[k] is not None]
    if src.is_link and src.decode_method != "tobytes":
        return _link_values(src, items, datas, plain_k, out)
    for k in plain_k:
        try:
            out[k] = decode_item(src, datas[k], shapes[k])
        except Exception as e:  # noqa: BLE001 - reported per sample, with its index
            out[k] = e
    return out


def _link_values(src: TensorSource, items: np.ndarray, datas: List[Any], plain_k: List[int], out: List[Any]) -> List[Any]:
    resolve = src.link_resolver
    if resolve is None:
        raise RuntimeError(f"linked tensor {src.name!r} cannot be read in a spawned worker; use the fork start method")
    for k in plain_k:
        try:
            out[k] = decode.decode_samples(src.layout, [datas[k]], None, items[k : k + 1], links=resolve)[0]
        except Exception as e:  # noqa: BLE001
            out[k] = e
    return out


def decode_item(src: TensorSource, d: memoryview, shape: np.ndarray) -> Any:
    """One stored sample as the tensor's decode method wants it: bytes, a PIL image, else
    the value `lakeformat.core.decode` gives."""
    if src.decode_method == "tobytes":
        return bytes(d)
    if src.decode_method == "pil" and src.is_image and not src.layout.is_text_like:
        sc = src.sample_compression
        if len(d) == 0:
            return np.zeros(tuple(int(x) for x in shape), src.dtype)
        try:
            img = Image.open(io.BytesIO(d), formats=_PIL_FORMATS[sc])
            img.load()
            return img
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
            raise SampleDecodeError(decode.image_error(sc, e), tensor=src.name) from e
    return decode.decode_sample(src.layout, d, shape)


def _read_tiled(src: TensorSource, item: int, chunks: Dict[str, Chunk]) -> np.ndarray:
    sample_shape, tile_shape = src.tiles[item]
    return decode.assemble_tiled(src.layout, sample_shape, tile_shape, [chunks[src.chunk_keys[r]] for r in src.layout.tile_rows(item)])


def gather_pieces(pieces: Sequence[Tuple[FixedColumn, np.ndarray]], out: np.ndarray) -> None:
    """Copy the samples `locals` of each (column, locals) piece, in order, into the rows of
    `out`: one native call for the whole batch, GIL released."""
    if not pieces:
        return
    nbytes = pieces[0][0].nbytes
    sources: List[Any] = []
    index: Dict[int, int] = {}
    ids = []
    starts = []
    for col, loc in pieces:
        remap = np.empty(len(col.buffers), np.int64)
        for b, buf in enumerate(col.buffers):
            j = index.get(id(buf))
            if j is None:
                j = index[id(buf)] = len(sources)
                sources.append(buf)
            remap[b] = j
        ids.append(remap[col.src[loc]])
        starts.append(col.start[loc])
    src_id = np.concatenate(ids) if len(ids) > 1 else ids[0]
    src_start = np.concatenate(starts) if len(starts) > 1 else starts[0]
    n = len(src_id)
    if not n:
        return
    # ndarrays are Buffers; numpy's stubs declare __buffer__ only for Python >= 3.12
    out_offset = np.arange(n, dtype=np.int64) * nbytes
    _native.gather(sources, src_id, src_start, np.full(n, nbytes, np.int64), out.reshape(-1).view(np.uint8), out_offset)  # type: ignore[arg-type]
