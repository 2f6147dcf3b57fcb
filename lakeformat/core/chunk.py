"""A chunk: many samples of one tensor in one object.

Byte form (Deep Lake 3.x): u8 length of the version string, the version, then the shape runs
(i32 rows, i32 cols, rows x cols u32: the sample shape then the last local index), then the
byte positions (u32 rows, rows x 3 u32: bytes per sample, start byte, last local index), then
the data. With chunk compression the data is compressed as a whole and the positions refer to
the decompressed bytes. A tile chunk carries one tile: one shape row and no byte positions.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat import _native
from lakeformat import constants as C
from lakeformat.codecs import decompress_image
from lakeformat.codecs.registry import ByteCodec, Codec, Uncompressed, UnknownCodecError, get_codec, is_image_codec
from lakeformat.errors import CorruptDataError

if TYPE_CHECKING:
    from typing_extensions import Buffer

# a sample's or a chunk's bytes as callers hand them over
BytesLike = Union[bytes, bytearray, memoryview]
# arrays go to the native kernels as `.data` (their buffer): numpy's stubs give ndarray no
# __buffer__ before Python 3.12, and a memoryview of an array reads the same in C

_I32x2 = struct.Struct("<ii")
MAX_SHAPE_COLS = 65
# samples an image chunk may claim beyond what its canvas bytes could hold (empty samples
# take no canvas): more means a damaged shape table, not a chunk to allocate for
_MAX_EMPTY_IMAGE_SAMPLES = 1 << 20


class Chunk:
    """A parsed chunk, read-only. `data` is decompressed lazily on first access."""

    __slots__ = ("key", "version", "shape_rows", "bp_rows", "_raw_data", "_data", "compression", "header_nbytes")

    def __init__(self, key: str, version: str, shape_rows: np.ndarray, bp_rows: np.ndarray, raw_data: Optional[memoryview], compression: Optional[str], header_nbytes: int):
        self.key = key
        self.version = version
        self.shape_rows = shape_rows
        self.bp_rows = bp_rows
        self._raw_data = raw_data
        self._data: Optional[memoryview] = None
        self.compression = compression
        self.header_nbytes = header_nbytes

    @classmethod
    def parse(cls, raw: Union[Buffer, np.ndarray], compression: Optional[str], key: str = "", header_only: bool = False) -> "Chunk":
        mv = raw.data if isinstance(raw, np.ndarray) else memoryview(raw)
        try:
            n = mv[0]
            version = bytes(mv[1 : 1 + n]).decode("ascii")
            off = 1 + n
            rows, cols = _I32x2.unpack_from(mv, off)
            off += 8
            if rows < 0 or cols < 0:
                raise ValueError("negative shape table size")
            if cols > MAX_SHAPE_COLS:  # a sample's dimensions and its last index: numpy's 64 dims at most
                raise ValueError(f"shape table of {cols} columns")
            nsh = rows * cols * 4
            if off + nsh > len(mv):
                raise ValueError("shape table runs past the end")
            shape_rows = np.frombuffer(mv[off : off + nsh], dtype=np.uint32).reshape(rows, cols) if nsh else np.zeros((0, max(cols, 1)), np.uint32)
            off += nsh
            (nbp,) = struct.unpack_from("<I", mv, off)
            off += 4
            if off + nbp * 12 > len(mv):
                raise ValueError("byte positions run past the end")
            bp_rows = np.frombuffer(mv[off : off + nbp * 12], dtype=np.uint32).reshape(nbp, 3)
            off += nbp * 12
            # the tables start at an odd offset after a version of even length ("3.9.52"):
            # the native kernels read them as uint32, which must be aligned
            if not shape_rows.flags.aligned:
                shape_rows = shape_rows.copy()
            if not bp_rows.flags.aligned:
                bp_rows = bp_rows.copy()
        except (IndexError, struct.error, ValueError, UnicodeDecodeError) as e:
            raise CorruptDataError(f"chunk header does not parse: {e}", key) from e
        data = None if header_only else mv[off:]
        return cls(key, version, shape_rows, bp_rows, data, compression, off)

    @staticmethod
    def header_nbytes_from(prefix: Union[Buffer, np.ndarray]) -> Optional[int]:
        """The size of a chunk's header from its first bytes, or None if they are too few
        (the version, the shape table's size and the byte positions' count say it)."""
        mv = prefix.data if isinstance(prefix, np.ndarray) else memoryview(prefix)
        try:
            n = mv[0]
            rows, cols = _I32x2.unpack_from(mv, 1 + n)
            off = 1 + n + 8 + max(rows, 0) * max(cols, 0) * 4
            (nbp,) = struct.unpack_from("<I", mv, off)
        except (IndexError, struct.error, OverflowError):
            return None  # too few bytes, or a size no storage holds: the caller reads it all
        return int(off + 4 + nbp * 12)

    @property
    def data(self) -> memoryview:
        if self._data is None:
            if self._raw_data is None:
                raise CorruptDataError("chunk was read header-only", self.key)
            codec = self.codec
            if codec.is_image:
                self._data, self.bp_rows = _canvas_decode(self._raw_data, self.shape_rows, self.key)
            elif isinstance(codec, Uncompressed):
                self._data = self._raw_data
            else:
                decoded = codec.decode(self._raw_data)
                self._data = decoded.data if isinstance(decoded, np.ndarray) else memoryview(decoded)
        return self._data

    def decompress_into(self, alloc: Callable[[int], np.ndarray]) -> None:
        """Decompress byte-compressed data into a buffer of its decoded size from
        `alloc(nbytes)`, then let go of the compressed bytes (the header keeps copies of its
        tables, so nothing refers to them any more)."""
        if self._data is not None or is_image_codec(self.compression) or self._raw_data is None:
            return
        try:
            codec = self.codec
        except UnknownCodecError:
            return  # the read that needs the data reports it
        if not isinstance(codec, ByteCodec) or isinstance(codec, Uncompressed):
            return
        try:
            out = alloc(codec.decoded_size(self._raw_data))
        except CorruptDataError:  # no size up front (an lz4 frame): the ordinary path
            self.data  # noqa: B018
            return
        codec.decode_into(self._raw_data, out.data)
        self._data = out.data.cast("B")
        self.shape_rows = self.shape_rows.copy()
        self.bp_rows = self.bp_rows.copy()
        self._raw_data = None

    @property
    def codec(self) -> Codec:
        """The codec of the chunk's compression (found when first needed: an unknown name
        fails the read that needs it, not the parse)."""
        return get_codec(self.compression)

    @property
    def is_tile(self) -> bool:
        if is_image_codec(self.compression):
            return False  # image chunks carry no byte positions; they are made up on decoding
        return len(self.bp_rows) == 0 and len(self.shape_rows) > 0

    @property
    def num_samples(self) -> int:
        if len(self.bp_rows):
            return int(self.bp_rows[-1, 2]) + 1
        if len(self.shape_rows):
            return int(self.shape_rows[-1, -1]) + 1
        return 0

    @property
    def ndim(self) -> int:
        return int(self.shape_rows.shape[1]) - 1

    def byte_ranges(self, local: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        local = np.ascontiguousarray(local, dtype=np.int64)
        start = np.empty(len(local), np.int64)
        end = np.empty(len(local), np.int64)
        if is_image_codec(self.compression):
            self.data  # noqa: B018 - decoding the canvas makes the byte positions
        if self.is_tile:
            start[:] = 0
            end[:] = len(self.data)
            return start, end
        try:
            _native.positions_expand(np.ascontiguousarray(self.bp_rows).data, local.data, start.data, end.data)
        except IndexError as e:
            raise CorruptDataError(f"sample not in chunk: {e}", self.key) from None
        if len(local) and (self._data is not None or (self.compression is None and self._raw_data is not None)):
            # known data length (compressed data is checked by its partial decode instead)
            if int(end.max()) > len(self.data) or bool(np.any(start > end)):
                raise CorruptDataError(f"byte positions point past the chunk's {len(self.data)} data bytes", self.key)
        return start, end

    def run_ends(self, lo: int, base: int, out: np.ndarray) -> Optional[Tuple[int, int]]:
        """For the len(out) samples from local index `lo` on (untiled, no image codec): each
        one's end as `base + end - start(lo)` into `out`, and (start(lo), end of the last), the
        one byte range they fill; None where they are not back to back."""
        try:
            got = _native.positions_run(np.ascontiguousarray(self.bp_rows).data, lo, base, out.data)
        except IndexError as e:
            raise CorruptDataError(f"sample not in chunk: {e}", self.key) from None
        if got is not None and len(out) and (self._data is not None or (self.compression is None and self._raw_data is not None)):
            if got[1] > len(self.data):
                raise CorruptDataError(f"byte positions point past the chunk's {len(self.data)} data bytes", self.key)
        return got

    def empty_samples(self, lo: int, k: int) -> np.ndarray:
        """The local indices in [lo, lo + k) whose byte range is empty (from the encoder rows)."""
        bp = np.asarray(self.bp_rows, np.int64).reshape(-1, 3)
        firsts = np.concatenate([[0], bp[:-1, 2] + 1]) if len(bp) else np.zeros(0, np.int64)
        zero = np.flatnonzero((bp[:, 0] == 0) & (bp[:, 2] >= lo) & (firsts < lo + k)) if len(bp) else np.zeros(0, np.int64)
        if not len(zero):
            return np.zeros(0, np.int64)
        return np.concatenate([np.arange(max(lo, int(firsts[r])), min(lo + k, int(bp[r, 2]) + 1), dtype=np.int64) for r in zero])

    def shapes(self, local: np.ndarray) -> np.ndarray:
        local = np.ascontiguousarray(local, dtype=np.int64)
        nd = self.ndim
        out = np.empty((len(local), nd), np.int64)
        if nd and len(local):
            try:
                _native.shapes_expand(np.ascontiguousarray(self.shape_rows).data, nd, local.data, out.data)
            except IndexError as e:
                raise CorruptDataError(f"sample not in chunk: {e}", self.key) from None
        return out


def uniform_size(sizes: np.ndarray, shapes: np.ndarray) -> Optional[int]:
    """The one size of samples that all have the same size and shape, when the batch says so
    by broadcasting both (a dense batch does: serialize.py); None otherwise. Free to ask."""
    if (len(sizes) and sizes.ndim == 1 and sizes.strides[0] == 0 and shapes.ndim == 2
            and shapes.shape[1] and shapes.strides[0] == 0 and len(shapes) == len(sizes)):
        return int(sizes[0])
    return None


def _uniform_header(size: int, shape: np.ndarray, n: int, positions: bool, version: str) -> bytes:
    """`chunk_header` of `n` samples of one size and shape: one shape run, one position run."""
    v = version.encode("ascii")
    ndim = len(shape)
    shape_rows = np.append(np.asarray(shape, np.int64), n - 1).astype(np.uint32)
    bp = np.asarray([size, 0, n - 1], np.uint32) if positions else np.zeros(0, np.uint32)
    return b"".join([bytes([len(v)]), v, _I32x2.pack(1, ndim + 1), shape_rows.tobytes(),
                     struct.pack("<I", len(bp) // 3), bp.tobytes()])


def chunk_header(sizes: np.ndarray, shapes: np.ndarray, tile: bool = False, positions: bool = True, version: str = C.FORMAT_VERSION) -> bytes:
    """The header of a chunk: version, shape runs, byte positions (none for tiles and for
    image chunks, whose canvas places the samples)."""
    n = len(sizes)
    if not tile:
        size = uniform_size(sizes, shapes)
        if size is not None and 0 <= size < 1 << 32 and int(shapes[0].max(initial=0)) < 1 << 32 and n * size < 1 << 32:
            return _uniform_header(size, shapes[0], n, positions, version)
    shapes = np.ascontiguousarray(shapes, dtype=np.uint32)
    ndim = shapes.shape[1] if shapes.ndim == 2 else 0
    shape_out = np.empty(n * (ndim + 1), dtype=np.uint32)
    nrows = _native.runs_encode(shapes.reshape(-1).data, ndim, 0, shape_out.data) if n and ndim else 0
    shape_rows = shape_out[: nrows * (ndim + 1)]
    if tile or not positions:
        bp_rows = np.zeros(0, np.uint32)
        nbp = 0
    else:
        bp_out = np.empty(3 * n, dtype=np.uint32)
        nbp = _native.positions_encode(np.ascontiguousarray(sizes, dtype=np.int64).data, 0, 0, bp_out.data) if n else 0
        bp_rows = bp_out[: 3 * nbp]
    v = version.encode("ascii")
    return b"".join([
        bytes([len(v)]), v, _I32x2.pack(nrows if ndim else 0, (ndim + 1) if nrows else 0),
        shape_rows.tobytes(), struct.pack("<I", nbp), bp_rows.tobytes(),
    ])


def serialize_chunk(
    parts: Sequence[BytesLike],
    sizes: np.ndarray,
    shapes: np.ndarray,
    compression: Optional[str],
    level: Optional[int] = None,
    tile: bool = False,
    version: str = C.FORMAT_VERSION,
) -> Union[bytes, bytearray]:
    """Build a chunk's bytes from the samples' bytes (`parts`, back to back), their sizes and
    their shapes ([n, ndim])."""
    n = len(sizes)
    data_len = int(np.sum(sizes)) if n else 0
    codec = get_codec(compression, level)
    if codec.is_image:
        # Deeplake's image chunks: samples side by side on one zero-padded canvas, one image,
        # no byte positions (the shapes say where each sample is)
        return chunk_header(sizes, shapes, positions=False, version=version) + _canvas_encode(parts, sizes, shapes, compression)
    head = chunk_header(sizes, shapes, tile=tile, version=version)
    if isinstance(codec, Uncompressed):
        # one allocation, one copy of the samples: the header, then the data behind it
        out = bytearray(len(head) + data_len)
        out[: len(head)] = head
        if data_len:
            _native.concat(list(parts), memoryview(out)[len(head):])
        return out
    if len(parts) == 1 and len(parts[0]) == data_len:
        data = parts[0]  # one buffer already: compress it where it lies
    else:
        data = bytearray(data_len)
        if data_len:
            _native.concat(list(parts), data)
    return head + codec.encode(data)


def _canvas_encode(parts: Sequence[BytesLike], sizes: np.ndarray, shapes: np.ndarray, compression: Optional[str]) -> bytes:
    n = len(sizes)
    if n == 0:
        return b""
    data = bytearray(int(np.sum(sizes)))
    if len(data):
        _native.concat(list(parts), data)
    elems = int(np.sum(np.prod(shapes, axis=1)))
    itemsize = len(data) // elems if elems else 1
    dtype = {1: np.uint8, 2: np.uint16}.get(itemsize)
    if dtype is None:
        raise ValueError(f"{compression} chunks hold 8- or 16-bit images, not {itemsize}-byte values")
    boxes = [tuple(int(x) for x in shp) for shp in shapes]
    filled = [b for b in boxes if any(b)]
    if not filled:
        return b""
    channels = filled[0][2:]
    canvas = np.zeros((max(b[0] for b in filled), sum(b[1] for b in filled)) + channels, dtype=dtype)
    arr = np.frombuffer(data, dtype=dtype)
    pos = x = 0
    for b in boxes:
        count = int(np.prod(b))
        if any(b):
            canvas[: b[0], x : x + b[1]] = arr[pos : pos + count].reshape(b)
            x += b[1]
        pos += count
    return get_codec(compression).encode(canvas)


def _canvas_decode(raw: memoryview, shape_rows: np.ndarray, key: str) -> Tuple[memoryview, np.ndarray]:
    """An image chunk -> its samples' raw bytes back to back, and their byte positions."""
    n = int(shape_rows[-1, -1]) + 1 if len(shape_rows) else 0
    if n > _MAX_EMPTY_IMAGE_SAMPLES + len(raw):
        raise CorruptDataError(f"image chunk claims {n} samples in {len(raw)} bytes", key)
    local = np.arange(n, dtype=np.int64)
    nd = shape_rows.shape[1] - 1
    if n and nd < 2:  # the canvas places samples by height and width
        raise CorruptDataError(f"image chunk holds {nd}-dimensional samples, not images", key)
    shapes = np.empty((n, nd), np.int64)
    if n:
        try:
            _native.shapes_expand(np.ascontiguousarray(shape_rows).data, nd, local.data, shapes.data)
        except (IndexError, ValueError) as e:
            raise CorruptDataError(f"image chunk's shape table is damaged: {e}", key) from None
    try:
        canvas = decompress_image(raw) if len(raw) else np.zeros((0, 0), np.uint8)
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
        raise CorruptDataError(f"image chunk does not decode: {e}", key) from e
    out = []
    x = 0
    for shp in shapes.tolist():
        if any(shp):
            piece = canvas[: shp[0], x : x + shp[1]]
            x += shp[1]
            try:
                out.append(np.ascontiguousarray(piece).reshape(shp).tobytes())
            except ValueError as e:  # the canvas is smaller than the shapes say
                raise CorruptDataError(f"image chunk's canvas does not hold sample shape {shp}: {e}", key) from None
        else:
            out.append(b"")
    sizes = np.fromiter(map(len, out), dtype=np.int64, count=n)
    bp = np.empty(3 * n, np.uint32)
    nbp = _native.positions_encode(sizes.data, 0, 0, bp.data) if n else 0
    return memoryview(b"".join(out)), bp[: 3 * nbp].reshape(nbp, 3)


class ChunkBuilder:
    """The open (last) chunk of a tensor, accumulating samples until it is full.

    It owns a copy of its samples' bytes: a caller may reuse or change the arrays it appended
    as soon as `extend` returns.
    """

    def __init__(self, chunk_id: int, ndim: int, capacity: int = 0):
        self.chunk_id = chunk_id
        self.ndim = ndim
        self.buf = np.empty(max(int(capacity), 0), np.uint8)  # np.empty: untouched pages cost nothing
        self.sizes: List[np.ndarray] = []
        self.shapes: List[np.ndarray] = []
        self.nbytes = 0
        self.num_samples = 0
        self.dirty = True

    @classmethod
    def from_chunk(cls, chunk_id: int, chunk: Chunk, num_samples: Optional[int] = None, capacity: int = 0) -> "ChunkBuilder":
        b = cls(chunk_id, chunk.ndim)
        # a crash between a chunk write and its tensor meta leaves samples the meta does not count
        n = chunk.num_samples if num_samples is None else max(0, min(int(num_samples), chunk.num_samples))
        if n:
            local = np.arange(n, dtype=np.int64)
            start, end = chunk.byte_ranges(local)
            b._set(chunk.data[: int(end[-1])], max(capacity, int(end[-1])))
            b.sizes = [end - start]
            b.shapes = [chunk.shapes(local)]
            b.num_samples = n
        b.dirty = n != chunk.num_samples
        return b

    @property
    def data(self) -> memoryview:
        return self.buf.data[: self.nbytes]

    @property
    def parts(self) -> List[memoryview]:
        return [self.data]

    def _set(self, data: BytesLike, capacity: int = 0) -> None:
        n = len(data)
        self.buf = np.empty(max(n, capacity), np.uint8)
        if n:
            self.buf[:n] = np.frombuffer(data, np.uint8)
        self.nbytes = n

    def _reserve(self, extra: int) -> None:
        need = self.nbytes + extra
        if need > len(self.buf):
            grown = np.empty(max(need, 2 * len(self.buf), 1 << 16), np.uint8)
            grown[: self.nbytes] = self.buf[: self.nbytes]
            self.buf = grown

    def add(self, parts: Sequence[BytesLike], sizes: np.ndarray, shapes: np.ndarray) -> None:
        total = int(np.sum(sizes)) if len(sizes) else 0
        self._reserve(total)
        if total:
            _native.concat(list(parts), self.buf.data[self.nbytes : self.nbytes + total])
        self.sizes.append(np.asarray(sizes, dtype=np.int64))
        self.shapes.append(np.asarray(shapes, dtype=np.int64).reshape(len(sizes), -1))
        self.nbytes += total
        self.num_samples += len(sizes)
        self.dirty = True

    def _uniform_parts(self) -> bool:
        """Every part added is a broadcast batch (see `uniform_size`) of one size and shape."""
        sz = [uniform_size(a, b) for a, b in zip(self.sizes, self.shapes)]
        return bool(sz) and sz[0] is not None and all(x == sz[0] for x in sz) and all(
            np.array_equal(b[0], self.shapes[0][0]) for b in self.shapes)

    def all_sizes(self) -> np.ndarray:
        """The samples' sizes; read-only (a broadcast view where they are all equal)."""
        if len(self.sizes) == 1:
            return self.sizes[0]
        if self.sizes and self._uniform_parts():
            return np.broadcast_to(self.sizes[0][:1], (self.num_samples,))
        return np.concatenate(self.sizes) if self.sizes else np.zeros(0, np.int64)

    def all_shapes(self) -> np.ndarray:
        """The samples' shapes; read-only (a broadcast view where they are all equal)."""
        if len(self.shapes) == 1:
            return self.shapes[0]
        if self.shapes and self._uniform_parts():
            return np.broadcast_to(self.shapes[0][:1], (self.num_samples, self.shapes[0].shape[1]))
        return np.concatenate(self.shapes) if self.shapes else np.zeros((0, self.ndim), np.int64)

    def consolidate(self) -> bytes:
        """The samples' bytes as one immutable copy, with sizes and shapes merged (into
        arrays of their own, which edits change in place)."""
        self.sizes = [np.array(self.all_sizes(), dtype=np.int64)]
        self.shapes = [np.array(self.all_shapes(), dtype=np.int64)]
        return bytes(self.data)

    def _bounds(self, local: int) -> Tuple[int, int]:
        sizes = self.sizes[0]
        s = int(np.sum(sizes[:local]))
        return s, s + int(sizes[local])

    def replace(self, local: int, new: bytes, shape: Sequence[int]) -> None:
        data = self.consolidate()
        s, e = self._bounds(local)
        self._set(data[:s] + bytes(new) + data[e:])
        self.sizes[0][local] = len(new)
        self.shapes[0][local] = shape
        self.dirty = True

    def remove(self, local: int) -> None:
        data = self.consolidate()
        s, e = self._bounds(local)
        self._set(data[:s] + data[e:])
        self.sizes = [np.delete(self.sizes[0], local)]
        self.shapes = [np.delete(self.shapes[0], local, axis=0)]
        self.num_samples -= 1
        self.dirty = True

    def truncate(self, keep: int) -> None:
        """Keep the first `keep` samples."""
        sizes, shapes = self.all_sizes(), self.all_shapes()
        self.nbytes = int(np.sum(sizes[:keep]))
        self.sizes, self.shapes = [sizes[:keep]], [shapes[:keep]]
        self.num_samples = keep
        self.dirty = True

    def tail(self, start: int) -> Tuple[memoryview, np.ndarray, np.ndarray]:
        """The bytes, sizes and shapes of the samples from `start` on."""
        sizes, shapes = self.all_sizes(), self.all_shapes()
        a = int(np.sum(sizes[:start]))
        return self.data[a:], sizes[start:], shapes[start:]

    def serialize(self, compression: Optional[str], level: Optional[int] = None) -> bytes:
        # an uncompressed chunk is a bytearray (built in place, no copy): storage takes any bytes
        return serialize_chunk([self.data], self.all_sizes(), self.all_shapes(), compression, level)  # type: ignore[return-value]
