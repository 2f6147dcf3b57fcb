"""`TensorLayout`: where a tensor's samples are and how they are stored, at one commit.

A plain, frozen, picklable value built from an open engine without reading a chunk: the
chunk keys (across the commit chain) with the first and last item each holds, tiles,
sequence ranges, dtype, shape facts, compressions, htype and link facts, the checksum
folders, and room for per-chunk statistics. `lakeformat.core.decode` turns chunk bytes plus
a layout into sample values; the torch loader's workers read with a layout and no engine.

>>> layout = TensorLayout.of(ds.images)           # doctest: +SKIP
>>> layout.chunk_keys[0], layout.fixed_shape       # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

import numpy as np

from lakeformat import constants as C
from lakeformat.codecs import IMAGE_COMPRESSIONS
from lakeformat.core.chunk_stats import ChunkStats
from lakeformat.core.chunk_stats import load as load_chunk_stats
from lakeformat.core.encoders import lookup_rows
from lakeformat.htypes import TEXT_HTYPES as TEXT_HTYPES  # re-exported: callers import it from here
from lakeformat.htypes import htype_of, is_numeric_dtype

if TYPE_CHECKING:
    from lakeformat.core.tensor import Tensor


Shape = Tuple[int, ...]
TileEntry = Tuple[Shape, Shape]


def chunk_folder(key: str) -> Optional[Tuple[str, str]]:
    """(tensor key, commit id) of the folder chunk `key` is stored in (where its checksum side
    file is); None for a key that is not a chunk's."""
    parts = key.split("/")
    if len(parts) < 3 or parts[-2] != "chunks":
        return None
    at = len(parts) - 2
    if parts[0] == "versions" and len(parts) > 4:
        return "/".join(parts[2:at]), parts[1]
    return "/".join(parts[:at]), C.FIRST_COMMIT_ID


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _shape(v: Any) -> Shape:
    return tuple(int(x) for x in (v or ()))


@dataclass(frozen=True)
class SampleFormat:
    """How one sample of a tensor is stored: what `lakeformat.core.decode` needs to turn its
    bytes into a value (no chunk facts; cheap to make per read)."""

    name: Optional[str]  # the tensor's, for messages
    htype: str  # the base htype ("image", "text", ...; no link[]/sequence[] wrapper)
    dtype: Optional[str]  # as the tensor meta says (None, "str", "Any", "List" or a NumPy name)
    min_shape: Shape
    max_shape: Shape
    sample_compression: Optional[str]
    chunk_compression: Optional[str]
    is_link: bool
    is_sequence: bool

    @classmethod
    def of_meta(cls, name: Optional[str], meta: Any) -> "SampleFormat":
        """The format a tensor meta describes."""
        return cls(name, str(meta.base_htype), meta.dtype, _shape(meta.min_shape), _shape(meta.max_shape), meta.sample_compression,
                   meta.chunk_compression, bool(meta.is_link), bool(meta.is_sequence))

    @property
    def np_dtype(self) -> np.dtype:
        """The dtype samples decode to (uint8 for tensors without a numeric dtype)."""
        return np.dtype(self.dtype) if is_numeric_dtype(self.dtype) else np.dtype("uint8")

    @property
    def is_text_like(self) -> bool:
        return htype_of(self.htype).text_like

    @property
    def is_image(self) -> bool:
        return self.sample_compression in IMAGE_COMPRESSIONS

    @property
    def fixed_shape(self) -> Optional[Shape]:
        """The one shape of every sample when samples are stored raw at one shape (a gather of
        their bytes reads them); None otherwise."""
        if self.is_link or self.sample_compression is not None or self.is_text_like:
            return None
        if not self.min_shape or self.min_shape != self.max_shape or not is_numeric_dtype(self.dtype):
            return None
        return self.min_shape


@dataclass(frozen=True, eq=False)
class TensorLayout(SampleFormat):
    """One tensor at one commit: its sample format, chunks and storage facts (no chunk bytes)."""

    key: str
    commit_id: str
    hidden: bool
    max_chunk_size: int
    num_items: int  # stored items (a sequence's items, else its samples)
    chunk_keys: Tuple[str, ...]  # full storage keys, in chunk-index order
    first_index: np.ndarray  # int64: the first item of each chunk row
    last_index: np.ndarray  # uint64: the last item of each chunk row
    tiles: Mapping[int, TileEntry]  # item -> (sample shape, tile shape)
    seq_ranges: Optional[Tuple[np.ndarray, np.ndarray]]  # per sample: (first item, end item)
    shapes_source: Optional[str]  # key of the hidden tensor holding per-sample shapes
    links: Mapping[str, Mapping[str, Any]]  # hidden tensors that follow this one
    checksum_folders: Tuple[Tuple[str, str], ...]  # (tensor key, commit id) of the side files
    chunk_stats: Optional[ChunkStats] = field(default=None)  # trusted per-chunk statistics (with_stats=True)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def of(cls, tensor: "Tensor", name: Optional[str] = None, with_stats: bool = False) -> "TensorLayout":
        """The layout of `tensor` (its whole stored column, at the dataset's commit), from the
        open engine: chunk index, tile and sequence encoders and meta; no chunk is read.
        `with_stats` also reads the chunk statistics that apply (`lakeformat.core.chunk_stats`)."""
        eng = tensor.engine
        m = eng.meta
        rows = eng.chunk_ids.rows
        last = rows[:, 1].astype(np.uint64) if len(rows) else np.zeros(0, np.uint64)
        first = eng.chunk_ids.first_indices().astype(np.int64) if len(rows) else np.zeros(0, np.int64)
        chunk_keys = tuple(eng.chunk_key_of(n) for n in eng.chunk_ids.names())
        seq = None
        if m.is_sequence and eng.seq is not None:
            s, e = eng.seq.item_ranges(np.arange(eng.seq.num_samples, dtype=np.int64))
            seq = (_frozen(np.asarray(s, np.int64)), _frozen(np.asarray(e, np.int64)))
        links = {k: dict(v) for k, v in (m.links or {}).items()}
        shapes_source = next((k for k, v in links.items() if v.get("extend") == "extend_shape"), None)
        folders = tuple(dict.fromkeys(f for f in map(chunk_folder, chunk_keys) if f is not None))
        tiles = {int(k): (_shape(v[0]), _shape(v[1])) for k, v in eng.tiles.entries.items()}
        return cls(
            name=name if name is not None else tensor.name,
            key=tensor.key,
            commit_id=str(eng.commit_id),
            htype=str(m.base_htype),
            dtype=m.dtype,
            min_shape=_shape(m.min_shape),
            max_shape=_shape(m.max_shape),
            sample_compression=m.sample_compression,
            chunk_compression=m.chunk_compression,
            is_link=bool(m.is_link),
            is_sequence=bool(m.is_sequence),
            hidden=bool(m.hidden),
            max_chunk_size=int(eng.max_chunk_size),
            num_items=int(eng.num_items),
            chunk_keys=chunk_keys,
            first_index=_frozen(first),
            last_index=_frozen(last),
            tiles=tiles,
            seq_ranges=seq,
            shapes_source=shapes_source,
            links=links,
            checksum_folders=folders,
            chunk_stats=load_chunk_stats(eng, chunk_keys, first, last) if with_stats else None,
        )

    def renamed(self, name: str) -> "TensorLayout":
        """The same layout under another column name (the loader's `<name>.null`)."""
        return dataclasses.replace(self, name=name)

    # -- facts -------------------------------------------------------------------------------------
    @property
    def num_chunks(self) -> int:
        return len(self.chunk_keys)

    @property
    def num_samples(self) -> int:
        return len(self.seq_ranges[0]) if self.seq_ranges is not None else self.num_items

    # -- lookups ----------------------------------------------------------------------------------
    def items_of(self, samples: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Stored items of each sample: (items, None) or, for sequences, (flat items, offsets)."""
        if self.seq_ranges is None:
            return samples, None
        s, e = self.seq_ranges[0][samples], self.seq_ranges[1][samples]
        lengths = e - s
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = (np.repeat(s - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)) if len(samples) else np.zeros(0, np.int64)
        return flat.astype(np.int64), offsets

    def rows_of(self, items: np.ndarray) -> np.ndarray:
        """The chunk row of each item (a tiled item: its first tile's row)."""
        if not len(items):
            return np.zeros(0, np.int64)
        return lookup_rows(self.last_index, items)

    def tile_rows(self, item: int) -> range:
        """The chunk rows holding the tiles of a tiled item, in tile order."""
        r = int(lookup_rows(self.last_index, np.array([item], np.int64))[0])
        end = r + 1
        while end < len(self.last_index) and int(self.last_index[end]) == item:
            end += 1
        return range(r, end)

    # -- value semantics --------------------------------------------------------------------------
    def _plain(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorLayout):
            return NotImplemented
        a, b = self._plain(), other._plain()
        for k, v in a.items():
            w = b[k]
            if isinstance(v, np.ndarray) or isinstance(w, np.ndarray):
                if not (isinstance(v, np.ndarray) and isinstance(w, np.ndarray) and v.dtype == w.dtype and np.array_equal(v, w)):
                    return False
            elif k == "seq_ranges" and v is not None and w is not None:
                if not all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(v, w)):
                    return False
            elif v != w:
                return False
        return True

    def __hash__(self) -> int:
        return hash((self.key, self.commit_id, self.num_items, self.chunk_keys))
