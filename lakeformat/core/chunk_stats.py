"""Per-chunk statistics (min, max, null count, count), kept in a side file deeplake 3.9.52 ignores.

`<tensor folder>/lakeformat_chunk_stats.json` lists, for each chunk stored in that folder, the
statistics of its samples: `[crc32, samples, empty samples, min, max]` (min and max over every
element of every sample; None when no element compares, e.g. all NaN). Only tensors whose
samples are raw numbers (a numeric or bool dtype, no sample compression, no link, no
sequence) get them; TQL's pushdown skips chunks whose statistics say a filter cannot match.

A statistics entry is trusted for a chunk row only when it provably describes that chunk:
- its folder's checksum side file (`lakeformat.core.checksums`) classifies `ok` (another
  writer, such as deeplake 3.9.52 appending or updating in place, leaves it `stale`: then no
  entry of that folder is used), and lists the entry's crc among the chunk's accepted ones;
- the entry counts at least the samples the chunk index gives the row (a chunk only grows
  under its own name: an edit writes it under a new name, so a larger count describes a
  superset, which is still a true bound).
The flush writes the file right after the checksum side file and before the chunks and the
tensor meta, and the flush journal saves it with the other objects it overwrites: every kill
point leaves entries that are either trusted and true bounds, or not trusted.
"""
from __future__ import annotations

import json
import posixpath
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lakeformat.core import keys
from lakeformat.core.checksums import check_embedded, embed_checksum
from lakeformat.core.chunk import Chunk
from lakeformat.errors import CorruptDataError
from lakeformat.htypes import htype_of, is_numeric_dtype

if TYPE_CHECKING:
    from lakeformat.core.chunk_engine import ChunkEngine

STATS_FILENAME = "lakeformat_chunk_stats.json"
FORMAT = 1
Entry = Tuple[int, int, int, Any, Any]  # crc, samples, empty samples, min, max

__all__ = ["STATS_FILENAME", "ChunkStats", "stats_key", "eligible", "chunk_entry", "for_flush", "load", "damage"]


def stats_key(tensor_key: str, commit_id: str) -> str:
    """Where the statistics of the chunks stored in `tensor_key`'s folder at `commit_id` live."""
    return f"{posixpath.dirname(keys.tensor_meta_key(tensor_key, commit_id))}/{STATS_FILENAME}"


def eligible(meta: Any) -> bool:
    """Whether a tensor (its meta) keeps chunk statistics: raw numbers, one element type,
    at most one element a sample (a WHERE compares those with constants; a chunk's min and
    max of image pixels or embedding values would skip nothing and cost a pass at flush)."""
    dtype = meta.dtype
    if not dtype or not is_numeric_dtype(dtype) or meta.sample_compression is not None:
        return False
    if meta.max_shape and int(np.prod(meta.max_shape, dtype=np.int64)) > 1:
        return False
    if meta.is_link or meta.is_sequence or meta.hidden or htype_of(str(meta.base_htype)).text_like:
        return False  # hidden tensors (sample ids, shapes, validity) are never filtered on
    return np.dtype(dtype).kind in "biuf"


def _py(x: Any) -> Any:
    v = x.item() if isinstance(x, np.generic) else x
    return bool(v) if isinstance(v, (bool, np.bool_)) else v


def chunk_entry(c: Chunk, dtype: np.dtype, crc: int) -> Optional[Entry]:
    """The statistics of one parsed chunk (None for a tile, which carries no samples of its own)."""
    if c.is_tile:
        return None
    n = c.num_samples
    bp = np.asarray(c.bp_rows, np.int64)
    if n == 0 or not len(bp):
        return (int(crc), 0, 0, None, None)
    # byte positions come in runs of samples of one size: (size, first byte, last sample)
    runs = np.diff(np.concatenate([[-1], bp[:, 2]]))
    empty = int(runs[bp[:, 0] == 0].sum())
    start, stop = int(bp[0, 1]), int(bp[-1, 1] + bp[-1, 0] * runs[-1])
    if stop > len(c.data) or start % dtype.itemsize or stop < start:
        return None  # not samples back to back: no statistics (never a wrong one)
    data = np.frombuffer(c.data, dtype=dtype, count=(stop - start) // dtype.itemsize, offset=start) if stop > start else np.zeros(0, dtype)
    if not data.size:
        return (int(crc), n, empty, None, None)
    if dtype.kind == "f":
        lo, hi = np.fmin.reduce(data), np.fmax.reduce(data)  # NaN ignored (NaN only if all are)
        if np.isnan(lo):
            return (int(crc), n, empty, None, None)
        return (int(crc), n, empty, float(lo), float(hi))
    return (int(crc), n, empty, _py(data.min()), _py(data.max()))


def _parse(raw: Optional[bytes]) -> Dict[str, Entry]:
    """Entries of a stats file; an unreadable file holds none (it only ever speeds queries up)."""
    if raw is None:
        return {}
    try:
        d = json.loads(raw)
        if d.get("format") != FORMAT:
            return {}
        # a changed min or max would make a query skip a chunk holding matches: only a file
        # whose own checksum holds is trusted (one without, or damaged, holds no entries)
        if not check_embedded(raw, d, "", ()):
            return {}
        return {str(k): (int(v[0]), int(v[1]), int(v[2]), v[3], v[4]) for k, v in d["chunks"].items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, CorruptDataError):
        return {}


def damage(raw: Optional[bytes], key: str) -> Optional[str]:
    """Why a stats file at rest is damaged, or None: a file that does not parse, or whose
    own checksum fails. One without a checksum (an older writer's) is untrusted, not damaged."""
    if raw is None:
        return None
    try:
        d = json.loads(raw)
        if not isinstance(d, dict):
            return f"{key} is not a JSON object"
        if d.get("format") == FORMAT:
            check_embedded(raw, d, key, ("format", "chunks"))
    except CorruptDataError as e:
        return f"{key}: {e.args[0] if e.args else e}"
    except ValueError as e:
        return f"{key} does not parse: {e}"
    return None


def _to_bytes(entries: Mapping[str, Entry]) -> bytes:
    return embed_checksum({"format": FORMAT, "chunks": {k: list(v) for k, v in sorted(entries.items())}})


# what each writing engine's folder holds at rest (read once, then kept by its flushes)
_AT_REST: "weakref.WeakKeyDictionary[Any, Dict[str, Entry]]" = weakref.WeakKeyDictionary()


def for_flush(eng: "ChunkEngine", chunks: Mapping[str, bytes], live: Sequence[str]) -> Optional[Tuple[str, bytes]]:
    """(key, bytes) of the stats file a flush writes, right after the checksum side file (whose
    table `eng.sums.table` it keys the entries by): kept entries for unchanged chunks, new ones
    for chunks written since; None for a tensor without statistics."""
    if not eligible(eng.meta):
        return None
    key = stats_key(eng.key, eng.commit_id)
    at_rest = _AT_REST.get(eng)
    if at_rest is None:
        at_rest = _parse(eng.storage.get_many([key], missing_ok=True).get(key))
    table = eng.sums.table
    dtype = np.dtype(eng.meta.dtype)
    out: Dict[str, Entry] = {}
    todo: List[Tuple[str, int]] = []
    for name in live:
        crcs = table.chunks.get(name) if table is not None else None
        if not crcs:
            continue  # no checksum: an entry could never be trusted
        old = at_rest.get(name)
        if old is not None and old[0] == crcs[0]:
            out[name] = old
        else:
            todo.append((name, crcs[0]))
    fetch = [n for n, _ in todo if keys.chunk_key(eng.key, n, eng.commit_id) not in chunks]
    parsed = eng.get_chunks(fetch) if fetch else {}
    for name, crc in todo:
        k = keys.chunk_key(eng.key, name, eng.commit_id)
        c = Chunk.parse(chunks[k], eng.chunk_compression, k) if k in chunks else parsed[name]
        entry = chunk_entry(c, dtype, crc)
        if entry is not None:
            out[name] = entry
    if not out and not at_rest:
        return None
    _AT_REST[eng] = out
    return key, _to_bytes(out)


@dataclass(frozen=True, eq=False)
class ChunkStats:
    """Trusted statistics of a tensor's chunk rows (`TensorLayout.chunk_stats`): per row of the
    chunk index, whether an entry applies (`known`), its min and max (in the tensor's dtype;
    `has_values` False where no element compares), empty samples and samples."""

    known: np.ndarray  # bool
    has_values: np.ndarray  # bool
    mins: np.ndarray
    maxs: np.ndarray
    nulls: np.ndarray  # int64
    counts: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.known)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChunkStats):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f)) for f in ("known", "has_values", "mins", "maxs", "nulls", "counts"))

    __hash__ = None  # type: ignore[assignment]  # arrays inside


def load(eng: "ChunkEngine", chunk_keys: Sequence[str], first: np.ndarray, last: np.ndarray) -> Optional[ChunkStats]:
    """The trusted statistics of chunk rows (`chunk_keys`, with the first and last item of each),
    read from the stats files of their folders (one batched read) and checked against those
    folders' checksum side files; None for a tensor without statistics."""
    from lakeformat.core.layout import chunk_folder  # layout imports this module

    if not eligible(eng.meta):
        return None
    folders = list(dict.fromkeys(f for f in map(chunk_folder, chunk_keys) if f is not None))
    skeys = [stats_key(t, c) for t, c in folders]
    got = eng.storage.get_many(skeys, missing_ok=True) if skeys else {}
    entries = {f: _parse(got.get(k)) for f, k in zip(folders, skeys)}
    tables = {f: (eng.sums.folders.get(eng.storage, f[0], f[1]) if entries[f] else None) for f in folders}
    n = len(chunk_keys)
    dtype = np.dtype(eng.meta.dtype)
    known = np.zeros(n, bool)
    has = np.zeros(n, bool)
    mins = np.zeros(n, dtype)
    maxs = np.zeros(n, dtype)
    nulls = np.zeros(n, np.int64)
    counts = np.zeros(n, np.int64)
    for r, k in enumerate(chunk_keys):
        f = chunk_folder(k)
        table = tables.get(f) if f is not None else None
        if table is None or f is None:
            continue
        name = k.rsplit("/", 1)[1]
        e = entries[f].get(name)
        if e is None or e[0] not in table.chunks.get(name, ()):
            continue
        if r and int(last[r - 1]) == int(last[r]) or r + 1 < n and int(last[r + 1]) == int(last[r]):
            continue  # a tile row
        if e[1] < int(last[r]) - int(first[r]) + 1:
            continue  # the chunk grew since (unflushed appends, or a writer that keeps no stats)
        known[r] = True
        nulls[r], counts[r] = e[2], e[1]
        if e[3] is not None and e[4] is not None:
            try:
                mins[r], maxs[r] = e[3], e[4]
            except (OverflowError, ValueError, TypeError):
                known[r] = False
                continue
            has[r] = True
    return ChunkStats(known, has, mins, maxs, nulls, counts)
