"""Text columns as Arrow-style buffers: `offsets` (int64, n + 1) and `data` (the UTF-8 bytes of
every value back to back), with a null mask; no Python object per value.

`read_text_buffers(tensor)` builds them straight from a text tensor's chunks: the chunks'
byte positions become the offsets and one native gather copies the bytes (chunk compression
is undone as for any read). A null (a sample stored empty, with shape (0,)) is an empty value
with its `null` entry set. The same buffers feed TQL's text kernels, `Tensor.to_arrow` and
whoever wants `str` objects only at the end (`objects()`).

>>> tb = TextBuffers.from_objects(["ab", None, "ü"])
>>> tb.offsets.tolist(), bytes(tb.data), tb.null.tolist()
([0, 2, 2, 4], b'ab\\xc3\\xbc', [False, True, False])
>>> tb.take(np.array([2, 0])).objects().tolist()
['ü', 'ab']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Tuple

import numpy as np

from lakeformat import _native
from lakeformat.core.chunk_reads import group_by_row
from lakeformat.codecs.registry import is_image_codec
from lakeformat.errors import CorruptDataError, LakeFormatError

if TYPE_CHECKING:
    from lakeformat.core.tensor import Tensor

__all__ = ["TextBuffers", "read_text_buffers", "gather_sample_bytes"]


@dataclass(frozen=True)
class TextBuffers:
    """n text values: value i is `data[offsets[i]:offsets[i + 1]]` decoded as UTF-8, or None
    where `null[i]` (a null's bytes are empty). `null` is None when no value is null."""

    offsets: np.ndarray  # int64 (n + 1,), offsets[0] == 0, non-decreasing
    data: np.ndarray  # uint8
    null: Optional[np.ndarray] = None  # bool (n,), or None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        return int(self.offsets[-1]) if len(self.offsets) else 0

    def null_mask(self) -> np.ndarray:
        """The null mask as a bool array (all False when `null` is None)."""
        return self.null if self.null is not None else np.zeros(len(self), bool)

    def take(self, positions: np.ndarray) -> "TextBuffers":
        """The values at `positions` (int indices, in their order; repeats allowed), gathered
        natively into new buffers."""
        pos = np.ascontiguousarray(positions, dtype=np.int64).reshape(-1)
        n = len(self)
        if len(pos) and (int(pos.min()) < 0 or int(pos.max()) >= n):
            bad = int(pos[(pos < 0) | (pos >= n)][0])
            raise IndexError(f"text position {bad} is out of range for {n} values")
        starts = self.offsets[:-1][pos]
        lengths = self.offsets[1:][pos] - starts
        offsets = np.zeros(len(pos) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.empty(int(offsets[-1]), np.uint8)
        if len(pos):
            _native.gather([self.data.data], np.zeros(len(pos), np.int64).data, starts.data, lengths.data, data.data, offsets[:-1].data)
        null = self.null[pos] if self.null is not None else None
        return TextBuffers(offsets, data, null if null is not None and null.any() else None)

    def objects(self) -> np.ndarray:
        """The values as an object array of str (None for a null): one Python str per value,
        made here and only here."""
        n = len(self)
        out = np.empty(n, dtype=object)
        if n == 0:
            return out
        raw = self.data[: self.nbytes].tobytes()
        a, b = self.offsets[:-1].tolist(), self.offsets[1:].tolist()
        try:
            text = raw.decode("utf-8")
            if len(text) == len(raw):  # ASCII: byte offsets are str offsets
                out[:] = [text[x:y] for x, y in zip(a, b)]
            else:
                out[:] = [raw[x:y].decode("utf-8") for x, y in zip(a, b)]
        except UnicodeDecodeError as e:
            bad = int(_native.text_utf8_check(self.offsets.data, self.data.data))
            raise CorruptDataError(f"text value {max(bad, 0)} is not UTF-8: {e.reason}") from None
        if self.null is not None:
            out[self.null] = None
        return out

    def to_list(self) -> List[Optional[str]]:
        out: List[Optional[str]] = self.objects().tolist()
        return out

    @classmethod
    def from_objects(cls, values: Iterable[Any]) -> "TextBuffers":
        """str values (None for a null) as buffers. TypeError for anything else."""
        vals = values.tolist() if isinstance(values, np.ndarray) else list(values)
        n = len(vals)
        null = np.fromiter((v is None for v in vals), bool, n)
        present = [v for v in vals if v is not None] if null.any() else vals
        for v in present:
            if not isinstance(v, str):
                raise TypeError(f"text values are str or None, not {type(v).__name__}")
        joined = "".join(present)
        raw = joined.encode("utf-8", "strict")
        lengths = np.zeros(n, np.int64)
        if len(raw) == len(joined):  # ASCII: byte lengths are str lengths
            lengths[~null] = np.fromiter(map(len, present), np.int64, len(present))
        else:
            lengths[~null] = np.fromiter((len(v.encode("utf-8", "strict")) for v in present), np.int64, len(present))
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(offsets, np.frombuffer(raw, np.uint8).copy(), null if null.any() else None)

    def to_arrow(self) -> Any:
        """A `pyarrow.StringArray` (`LargeStringArray` past 2 GiB of text) over these buffers
        (the data is shared, not copied), nulls as the validity bitmap."""
        try:
            import pyarrow as pa
        except ImportError:
            raise LakeFormatError("TextBuffers.to_arrow needs pyarrow: pip install 'airbyte-destination-deeplake[arrow]'") from None
        n = len(self)
        validity = None
        null_count = 0
        if self.null is not None and self.null.any():
            validity = pa.py_buffer(np.packbits(~self.null, bitorder="little").tobytes())
            null_count = int(self.null.sum())
        large = self.nbytes >= 2**31
        offsets = self.offsets if large else self.offsets.astype(np.int32)
        typ = pa.large_string() if large else pa.string()
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(offsets), pa.py_buffer(self.data)], null_count=null_count)


def read_text_buffers(tensor: "Tensor") -> TextBuffers:
    """The values of a text tensor (or of an indexed view of one) as `TextBuffers`, straight
    from its chunks: no Python object per value. Text with sample compression, tiles, links,
    sequences or per-sample ops is read through `values()` instead (rare layouts)."""
    if tensor.base_htype != "text":
        raise LakeFormatError(f"tensor {tensor.name!r} is {tensor.htype}, not text: text buffers read text tensors")
    fmt = tensor.sample_format
    eng = tensor.engine
    idx = tensor.index
    if tensor.is_sequence or fmt.is_link or fmt.sample_compression is not None or idx.ops or eng.tiles.entries:
        return TextBuffers.from_objects(tensor.values())
    items = np.ascontiguousarray(idx.resolve(tensor.num_samples), dtype=np.int64).reshape(-1)
    eng.check_items(items)
    tb = gather_sample_bytes(eng, items)
    bad = int(_native.text_utf8_check(tb.offsets.data, tb.data.data))
    if bad >= 0:
        raise eng.corruption_at(items[bad : bad + 1], "stored text is not UTF-8", None)
    return tb


def gather_sample_bytes(eng: Any, items: np.ndarray) -> TextBuffers:
    """The stored bytes of `items` (untiled, without sample compression) of a chunk engine,
    back to back, by one native gather; `null` marks empty samples of shape (0,)."""
    n = len(items)
    if n == 0:
        return TextBuffers(np.zeros(1, np.int64), np.zeros(0, np.uint8))
    if n > 1 and int(items[-1]) - int(items[0]) + 1 == n and bool(np.all(items[1:] > items[:-1])):
        run = _gather_run(eng, int(items[0]), n)
        if run is not None:
            return run
    rows, local = eng.item_locations(items)
    groups = group_by_row(rows)
    names = eng.chunk_ids.names()
    chunks = eng.get_chunks([names[r] for r, _ in groups])
    src_id = np.empty(n, np.int64)
    starts = np.empty(n, np.int64)
    lengths = np.empty(n, np.int64)
    null = np.zeros(n, bool)
    sources: List[Any] = []
    for r, positions in groups:
        c = chunks[names[r]]
        # a run of rows (a scan, a slice): slices instead of fancy indexing
        sel: Any = slice(int(positions[0]), int(positions[-1]) + 1) if int(positions[-1]) - int(positions[0]) + 1 == len(positions) else positions
        wanted = local[sel]
        try:
            s, e = c.byte_ranges(wanted)
        except CorruptDataError as err:
            raise eng.corruption_at(items[sel], getattr(err, "reason", str(err)), c.key) from err
        ln = e - s
        lengths[sel] = ln
        empty = np.flatnonzero(ln == 0)
        if len(empty):  # an empty sample of shape (0,) is a null, of shape (1,) the text ""
            null[positions[empty]] = c.shapes(wanted[empty])[:, 0] == 0
        src_id[sel] = len(sources)
        starts[sel] = s
        sources.append(c.data)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), np.uint8)
    _native.gather(sources, src_id.data, starts.data, lengths.data, data.data, offsets[:-1].data)
    return TextBuffers(offsets, data, null if null.any() else None)


def _gather_run(eng: Any, start: int, n: int) -> Optional[TextBuffers]:
    """Samples [start, start + n) (a scan, a slice): per chunk, its run of samples is one
    contiguous byte range, copied whole; no per-sample lookups or copies. None when a chunk's
    samples are not back to back (the caller then gathers them one by one)."""
    first = eng.chunk_ids.first_indices()
    last = eng.chunk_ids.rows[:, 1].astype(np.int64)
    r0, r1 = (int(x) for x in eng.chunk_ids.row_of(np.array([start, start + n - 1], np.int64)))
    names = eng.chunk_ids.names()
    chunks = eng.get_chunks([names[r] for r in range(r0, r1 + 1)])
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    null = np.zeros(n, bool)
    spans: List[Tuple[Any, int, int]] = []  # (chunk data, first byte, last byte) per chunk
    pos = 0
    for r in range(r0, r1 + 1):
        c = chunks[names[r]]
        lo = max(start, int(first[r])) - int(first[r])
        k = min(start + n, int(last[r]) + 1) - max(start, int(first[r]))  # samples of this chunk in the run
        if c.is_tile or is_image_codec(c.compression):
            return None
        try:  # the ends, as offsets into the joined bytes, straight from the chunk's byte positions
            got = c.run_ends(lo, int(offsets[pos]), offsets[pos + 1 : pos + k + 1])
        except CorruptDataError as err:
            raise eng.corruption_at(np.arange(start + pos, start + pos + k), getattr(err, "reason", str(err)), c.key) from err
        if got is None:
            return None
        empty = c.empty_samples(lo, k)
        if len(empty):  # an empty sample of shape (0,) is a null, of shape (1,) the text ""
            null[pos + empty - lo] = c.shapes(empty)[:, 0] == 0
        spans.append((c.data, got[0], got[1]))
        pos += k
    if pos != n:
        raise eng.corruption_at(np.array([start + pos], np.int64), "the chunk index and the chunks disagree on sample counts", None)
    m = len(spans)
    if m == 1:  # one chunk (a block of a parallel scan): its bytes as they are, no copy
        src, a, b = spans[0]
        data = np.frombuffer(src, np.uint8, b - a, a)
        return TextBuffers(offsets, data, null if null.any() else None)
    data = np.empty(int(offsets[-1]), np.uint8)
    lengths = np.array([b - a for _, a, b in spans], np.int64)
    dest = np.zeros(m, np.int64)
    np.cumsum(lengths[:-1], out=dest[1:])
    _native.gather([d for d, _, _ in spans], np.arange(m, dtype=np.int64).data, np.array([a for _, a, _ in spans], np.int64).data,
                   lengths.data, data.data, dest.data)
    return TextBuffers(offsets, data, null if null.any() else None)
