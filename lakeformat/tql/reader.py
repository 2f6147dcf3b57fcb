"""Column readers: the one seam between the executor and storage.

A reader is called with a tensor name and row positions (in the dataset queried) and returns
that tensor's samples at those rows as a `Value`. `DatasetColumnReader` reads fixed-shape
numeric tensors straight from their chunks (the engine's chunk-aware gather: only the chunks
holding the rows asked for, whole chunks read or decompressed side by side on threads that
release the GIL), text and json through `text_reader`, the rest through the Tensor API.
Its optional `chunk_map` gives, for TQL's pushdown (`tql/pushdown.py`), which chunk each
row lies in and the statistics of those chunks (`lakeformat.core.chunk_stats`).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

import numpy as np

from lakeformat.core import nulls as N
from lakeformat.core.chunk_stats import eligible
from lakeformat.core.layout import TensorLayout
from lakeformat.core.index import is_run
from lakeformat.tql.chunk_map import ChunkMap
from lakeformat.tql.errors import TQLError
from lakeformat.tql.text_reader import JSON_HTYPES, TEXT_HTYPES, read_text_like
from lakeformat.tql.ragged_reader import read_ragged
from lakeformat.tql.values import Value, pack, ragged_value


_block_buffers = threading.local()


@contextmanager
def reusing_buffers() -> Iterator[None]:
    """Within it, fixed-shape reads on this thread go into arrays kept for the thread, so that
    a block of rows read after another lands in memory already mapped (a fresh page costs a
    fault: more than reading it). A value read there lives only until the next read of the
    same tensor on the thread: the caller (tql/blocked.py) copies what it keeps."""
    if getattr(_block_buffers, "pool", None) is None:
        _block_buffers.pool = {}
    _block_buffers.on = True
    try:
        yield
    finally:
        _block_buffers.on = False


@contextmanager
def fresh_buffers() -> Iterator[None]:
    """Within it, reads on this thread get arrays of their own even inside `reusing_buffers`:
    for a read that must not land in (and overwrite) the array a block's read of the same
    tensor returned, such as DATA(x, i)'s one sample."""
    was = getattr(_block_buffers, "on", False)
    _block_buffers.on = False
    try:
        yield
    finally:
        _block_buffers.on = was


def block_buffer(name: str, n: int, shape: Tuple[int, ...], dtype: np.dtype) -> Optional[np.ndarray]:
    """This thread's array for `n` rows of tensor `name` inside `reusing_buffers`, else None."""
    if not getattr(_block_buffers, "on", False):
        return None
    pool: Dict[str, np.ndarray] = _block_buffers.pool
    buf = pool.get(name)
    if buf is None or len(buf) < n or buf.shape[1:] != tuple(shape) or buf.dtype != dtype:
        buf = pool[name] = np.empty((n,) + tuple(shape), dtype)
    return buf[:n]


class ColumnReader(Protocol):
    def __call__(self, name: str, rows: np.ndarray) -> Value: ...


class DatasetColumnReader:
    """Reads columns of `ds` (a dataset or a view of one): fixed-shape numbers from their
    chunks, the rest with `ds[name][rows].numpy()`."""

    def __init__(self, ds: Any):
        self.ds = ds
        self.length = len(ds)
        self._tensors: Dict[str, Any] = {}
        self._items: Dict[str, Optional[np.ndarray]] = {}  # None: row i is item i
        self._layouts: Dict[str, TensorLayout] = {}
        self._run_of: Optional[Tuple[np.ndarray, bool]] = None  # (rows, whether they are one run)
        self.pushdown = True  # False: WHERE evaluates every row (tests compare both)
        self.pushdown_reports: List[Any] = []  # a tql.pushdown.PushdownReport per WHERE step run

    def _tensor(self, name: str) -> Any:
        t = self._tensors.get(name)
        if t is None:
            t = self._tensors[name] = self.ds[name]
        return t

    def _items_of(self, name: str, t: Any, rows: np.ndarray) -> Optional[np.ndarray]:
        """The stored item of each row (None where the tensor's view indexes within samples)."""
        idx = t.index
        if idx.ops:
            return None
        if name not in self._items:
            self._items[name] = None if idx.samples is None else idx.resolve(t.num_samples)
        base = self._items[name]
        rows = rows.astype(np.int64, copy=False)
        return rows if base is None else base[rows]

    @staticmethod
    def _meta_of(t: Any) -> Tuple[Optional[Tuple[str, ...]], Optional[Tuple[str, Optional[str]]]]:
        """(class names, time kind and zone) of a tensor, for comparisons with constants."""
        info = t.info
        names = None
        if t.base_htype == "class_label":
            cn = info.get("class_names") if hasattr(info, "get") else None
            names = tuple(cn) if cn else None
        kind = info.get("lakeformat_type") if hasattr(info, "get") else None
        time = (kind, info.get("timezone")) if kind in ("timestamp", "date", "time") else None
        return names, time

    def row_independent(self, name: str) -> bool:
        """Whether an expression over this tensor fails, if it fails, on every row alike: its
        samples share one shape (or are text or json). Only then may pushdown leave rows out
        of WHERE: with samples of different shapes, one row's shapes can fail to broadcast."""
        t = self._tensor(name)
        if t.is_sequence or t.is_link:
            return False
        if t.base_htype in TEXT_HTYPES or t.base_htype in JSON_HTYPES:
            return True
        m = t.meta
        return m.min_shape is not None and tuple(m.min_shape) == tuple(m.max_shape or ())

    def chunk_map(self, name: str, rows: np.ndarray) -> Optional[ChunkMap]:
        """The chunks holding `rows` of tensor `name` and their statistics; None where the
        tensor keeps none (not raw numbers) or the view indexes within samples."""
        t = self._tensor(name)
        if t.is_sequence or t.is_link or not eligible(t.meta):
            return None
        items = self._items_of(name, t, rows)
        if items is None:
            return None
        layout = self._layouts.get(name)
        if layout is None:
            layout = self._layouts[name] = TensorLayout.of(t, with_stats=True)
        if layout.chunk_stats is None:
            return None
        names, time = self._meta_of(t)
        if self._run_of is None or self._run_of[0] is not items:  # one check for the tensors of one step
            self._run_of = (items, is_run(items))
        return ChunkMap(items, layout.first_index, layout.last_index, layout.chunk_stats, names, time, bool(t.nullable), self._run_of[1])

    def chunk_starts(self, name: str) -> Optional[np.ndarray]:
        """The first row of each of the tensor's chunks, where its rows are the dataset's own
        (no view index in between); None otherwise."""
        t = self._tensor(name)
        if t.index.samples is not None or t.index.ops or t.is_sequence or t.is_link:
            return None
        firsts: np.ndarray = t.engine.chunk_ids.first_indices().astype(np.int64)
        return firsts

    def row_nbytes(self, name: str) -> Optional[int]:
        """Bytes of one row of a tensor stored raw at one shape (what a block of rows costs to
        read: tql/blocked.py), None for any other tensor."""
        t = self._tensor(name)
        if t.is_sequence or t.is_link:
            return None
        shape = t.sample_format.fixed_shape
        if shape is None:
            return None
        return int(np.prod(shape, dtype=np.int64)) * int(np.dtype(t.meta.dtype).itemsize)

    def _is_all(self, rows: np.ndarray) -> bool:
        return len(rows) == self.length and (self.length == 0 or (int(rows[0]) == 0 and is_run(rows)))

    def _view(self, t: Any, rows: np.ndarray) -> Any:
        # a tensor may hold more samples than the dataset's length: always select the rows
        return t if self._is_all(rows) and len(t) == self.length else t[rows.astype(np.int64)]

    def __call__(self, name: str, rows: np.ndarray) -> Value:
        t = self._tensor(name)
        if t.is_sequence:  # a row's items as one value (tql/grouped_view.py)
            from lakeformat.tql.grouped_view import read_sequence

            return read_sequence(t, rows)
        if t.is_link:  # reading one would fetch the linked files, outside the dataset's storage
            raise TQLError(f"tensor {name!r} holds links: link tensors are not queryable yet")
        base = t.base_htype
        if base in TEXT_HTYPES or base in JSON_HTYPES:
            return read_text_like(t, self._view(t, rows), len(rows))
        names, time = self._meta_of(t)
        m = t.meta
        fixed = m.min_shape is not None and m.min_shape == m.max_shape and m.dtype not in (None, "str", "Any", "List")
        if fixed:
            items = self._items_of(name, t, rows)
            eng = t.engine
            shape = t.sample_format.fixed_shape
            if items is not None and shape is not None and not eng.tiles.entries:
                # raw samples of one shape: gathered straight from the chunks holding them
                buf = block_buffer(name, len(items), shape, np.dtype(m.dtype))
                # a block of rows inside one stored chunk: the chunk mapped in place (tql/blocked.py)
                mapped = eng.view_fixed_range(int(items[0]), len(items), shape, np.dtype(m.dtype)) if buf is not None and is_run(items) else None
                arr = mapped if mapped is not None else eng.read_fixed(items, shape, np.dtype(m.dtype), out=buf)
                null = N.read(t.dataset, t.key, items) if t.nullable else None
            else:
                view = self._view(t, rows)
                arr = view.numpy()
                null = np.asarray(view.isnull(), bool).reshape(-1) if t.nullable else None
            # nulls of a nullable column (placeholders in the data) and the time kind, if any
            return Value("array", np.asarray(arr), names, null if null is not None and null.any() else None, time)
        ragged = read_ragged(t, self._items_of(name, t, rows))  # raw samples of many shapes, from the chunks
        if ragged is not None:
            return ragged_value(ragged, names)
        return pack(self._view(t, rows).numpy(aslist=True), names)
