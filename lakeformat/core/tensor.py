"""`Tensor`: one column of a dataset, or a view of some of its samples."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union, cast

import numpy as np

from lakeformat.core import decode as D
from lakeformat.core.codec_pool import codec_pool
from lakeformat.core.decode import convert_to_text, text_like_array
from lakeformat.core.index import Index, apply_ops, apply_ops_stacked
from lakeformat.core.info import Info
from lakeformat.core.layout import SampleFormat, TensorLayout
from lakeformat.errors import CorruptSampleError, DynamicShapeError, LakeFormatError
from lakeformat.htypes import htype_of

if TYPE_CHECKING:
    from lakeformat.core.chunk_engine import ChunkEngine
    from lakeformat.core.dataset import Dataset
    from lakeformat.core.text_buffers import TextBuffers

__all__ = ["Tensor", "text_like_array", "convert_to_text"]
# deeplake 3.x image htypes the htype table lacks (we read them, never create them): data()
# gives them sample_info as it does image-like ones
_OTHER_IMAGE_HTYPES = ("dicom", "nifti")


def _shape_after(shape: Tuple[int, ...], ops: Sequence[Any], row: int = 0) -> Tuple[int, ...]:
    """The shape of a sample of `shape`, row `row` of the view, after the view's ops (on a
    zero-strided dummy: no data)."""
    if not ops:
        return tuple(shape)
    if row < 0:  # a view of no rows: its ops on a stack of no samples
        return tuple(np.shape(apply_ops_stacked(np.broadcast_to(np.zeros((), np.uint8), (0,) + tuple(shape)), ops))[1:])
    return tuple(np.shape(apply_ops(np.broadcast_to(np.zeros((), np.uint8), shape), ops, row)))


class Tensor:
    """A tensor of a dataset. Indexing returns a view; `.numpy()` reads.

    >>> ds.create_tensor("x", dtype="int64")      # doctest: +SKIP
    >>> ds.x.extend(np.arange(10)); ds.x[2:4].numpy()  # doctest: +SKIP
    """

    def __init__(self, name: str, key: str, dataset: "Dataset", index: Optional[Index] = None):
        self.name = name
        self.key = key
        self.dataset = dataset
        self.index = index or dataset.index

    # -- structure ---------------------------------------------------------------------------------
    @property
    def engine(self) -> "ChunkEngine":
        return self.dataset.session.engine(self.key)

    @property
    def meta(self) -> Any:
        return self.engine.meta

    @property
    def htype(self) -> str:
        m = self.meta
        h = m.base_htype
        if m.is_link:
            h = f"link[{h}]"
        if m.is_sequence:
            h = f"sequence[{h}]"
        return str(h)

    @property
    def base_htype(self) -> str:
        return str(self.meta.base_htype)

    @property
    def dtype(self) -> Optional[np.dtype]:
        d = self.meta.dtype
        if htype_of(self.meta.base_htype).json_like:
            return np.dtype(str)  # what deeplake 3.x's Tensor.dtype says for these htypes
        if d in (None, "Any", "List"):
            return None if d is None else np.dtype(object)
        if d == "str":
            return np.dtype(str)
        return np.dtype(str(d))

    @property
    def sample_compression(self) -> Optional[str]:
        return cast(Optional[str], self.meta.sample_compression)

    @property
    def chunk_compression(self) -> Optional[str]:
        return cast(Optional[str], self.meta.chunk_compression)

    @property
    def is_sequence(self) -> bool:
        return bool(self.meta.is_sequence)

    @property
    def is_link(self) -> bool:
        return bool(self.meta.is_link)

    @property
    def hidden(self) -> bool:
        return bool(self.meta.hidden)

    @property
    def info(self) -> Info:
        """tensor_info.json as a mapping; changes are saved with the tensor."""
        eng, ds = self.engine, self.dataset

        def save() -> None:
            eng.info_dirty = True
            eng.commit_diff.modify_info()
            ds._autoflush()

        return Info(eng.info, save, ds._check_writable_view)

    @property
    def layout(self) -> TensorLayout:
        """Where the tensor's samples are stored, at the dataset's commit (a plain value; see
        `lakeformat.core.layout`)."""
        return TensorLayout.of(self)

    @property
    def sample_format(self) -> SampleFormat:
        """How one sample is stored (what decoding it needs)."""
        return SampleFormat.of_meta(self.name, self.meta)

    @property
    def link_resolver(self) -> Callable[[List[Any], np.ndarray], List[Any]]:
        """Stored link paths and their items -> the linked samples (the dataset's creds)."""
        resolver = self.dataset._links
        return lambda datas, items: resolver.resolve_many(self, datas, items)

    @property
    def num_samples(self) -> int:
        return self.engine.num_samples

    def __len__(self) -> int:
        if self.index.row_pos:  # the rows axis is not the first: len is the first axis, as NumPy's
            return int(cast(int, self.shape[0]))
        return self.index.length(self.num_samples)

    @property
    def shape(self) -> Tuple[Optional[int], ...]:
        """Shape of the view; None on axes whose size differs between samples."""
        m = self.meta
        n = self.index.length(self.num_samples)
        idx = self.index
        if self.is_sequence:
            if idx.ops:  # the ops on sequences: from the values (rare; sequences are small)
                return self._shape_from_values()
            return self._sequence_shape(n)
        if idx.is_single:
            shp = tuple(int(x) for x in self._item_shapes(np.array([idx.samples]))[0])
            return _shape_after(shp, idx.ops)
        if not idx.ops and idx.samples is None:
            lo, hi = m.min_shape or [], m.max_shape or []
        elif m.min_shape == m.max_shape and not m.is_link and (m.min_shape or not n):
            lo = hi = list(_shape_after(tuple(m.min_shape or ()), idx.ops, 0 if n else -1))
        else:
            shapes = self._item_shapes(idx.resolve(self.num_samples))
            if idx.ops:
                shapes = np.asarray([_shape_after(tuple(int(x) for x in s), idx.ops, j) for j, s in enumerate(shapes)], np.int64).reshape(len(shapes), -1)
            lo, hi = (shapes.min(0).tolist(), shapes.max(0).tolist()) if len(shapes) else ([], [])
        dims = [int(a) if a == b else None for a, b in zip(lo, hi)]
        dims.insert(idx.row_pos, n)
        return tuple(dims)

    def _shape_from_values(self) -> Tuple[Optional[int], ...]:
        vals = self.numpy(aslist=True)
        if self.index.is_single:
            return tuple(np.shape(vals))
        shapes = [np.shape(v) for v in vals]
        dims = [a if all(len(s) == len(shapes[0]) and s[k] == a for s in shapes) else None for k, a in enumerate(shapes[0])] if shapes else []
        return (len(vals),) + tuple(dims)

    def _sequence_shape(self, n: int) -> Tuple[Optional[int], ...]:
        """As deeplake 3.x: (items, *item shape) for one sequence, (n, items, *item shape)
        for several, None on axes that differ."""
        samples = np.array([self.index.samples]) if self.index.is_single else self.index.resolve(self.num_samples)
        starts, ends = self._item_ranges(np.asarray(samples, dtype=np.int64))
        lens = (np.asarray(ends) - np.asarray(starts)).astype(np.int64)
        items = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]).astype(np.int64) if len(lens) else np.zeros(0, np.int64)
        if len(items):
            shapes = self._item_shapes(items)
            lo, hi = shapes.min(0).tolist(), shapes.max(0).tolist()
        else:
            lo, hi = self.shape_interval
        item = tuple(int(a) if a == b else None for a, b in zip(lo, hi))
        seq_len = int(lens[0]) if len(lens) and (lens == lens[0]).all() else None
        return (seq_len,) + item if self.index.is_single else (n, seq_len) + item

    def _item_ranges(self, samples: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """[start, end) of each sequence's items."""
        seq = self.engine.seq
        if seq is None:
            raise LakeFormatError(f"tensor {self.name!r} is not a sequence")
        return seq.item_ranges(samples)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def shape_interval(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        m = self.meta
        return tuple(m.min_shape or ()), tuple(m.max_shape or ())

    def _item_shapes(self, items: np.ndarray) -> np.ndarray:
        """Decoded shapes, from the hidden shape tensor when there is one."""
        if not len(items):
            return np.zeros((0, len(self.meta.max_shape or ())), np.int64)
        shape_key = self._linked_key("extend_shape")
        if shape_key is not None and not self.is_sequence:
            sh = self.dataset.session.engine(shape_key)
            if sh.num_items == self.engine.num_items:
                vals = Tensor(shape_key, shape_key, self.dataset, Index(items))._read(items, aslist=True)
                return np.asarray([np.asarray(v, np.int64).reshape(-1) for v in vals], dtype=np.int64).reshape(len(items), -1)
        m = self.meta
        if m.min_shape == m.max_shape and not m.is_link:
            return np.tile(np.asarray(m.min_shape, np.int64), (len(items), 1))
        _, shapes = self.engine.read_items_bytes(items)
        return shapes

    def _linked_key(self, kind: str) -> Optional[str]:
        for k, v in (self.meta.links or {}).items():
            if v.get("extend") == kind:
                return str(k)
        return None

    # -- indexing ---------------------------------------------------------------------------------------
    def __getitem__(self, item: Any) -> "Tensor":
        return Tensor(self.name, self.key, self.dataset, self.index.compose(item, self.num_samples, self._stored_ndim()))

    def _stored_ndim(self) -> Optional[int]:
        """ndim of one stored sample as `numpy()` returns it (None while unknown)."""
        m = self.meta
        if htype_of(m.base_htype).text_like:
            nd: Optional[int] = 1
        else:
            nd = len(m.max_shape) if m.max_shape else (None if self.num_samples == 0 else 0)
        if nd is not None and m.is_sequence:
            nd += 1
        return nd

    def __iter__(self) -> Iterator["Tensor"]:
        for i in range(len(self)):
            yield self[i]

    def __setitem__(self, item: Any, value: Any) -> None:
        idx = self.index.compose(item, self.num_samples, self._stored_ndim())
        if idx.ops:
            raise LakeFormatError("assigning into part of a sample is not supported; assign the whole sample")
        if idx.is_single:
            self.dataset.update_samples(self.key, [cast(int, idx.samples)], [value])
            return
        items = idx.resolve(self.num_samples)
        # an array goes through whole (a masked array keeps its mask): one serialization
        values: Any = value if isinstance(value, np.ndarray) else list(value)
        if len(values) != len(items):
            raise LakeFormatError(f"{len(values)} values for {len(items)} samples")
        self.dataset.update_samples(self.key, items.tolist(), values)

    # -- writes -----------------------------------------------------------------------------------------
    def append(self, sample: Any) -> None:
        self.extend([sample])

    def extend(self, samples: Union[Sequence[Any], np.ndarray], progressbar: bool = False) -> None:
        self.dataset._check_writable_view()
        self.dataset._extend_tensors({self.key: samples}, progressbar=progressbar)

    def pop(self, index: Optional[int] = None) -> None:
        if index is None:
            index = self.num_samples - 1
        self.dataset.pop_samples(self.key, index)

    # -- reads ------------------------------------------------------------------------------------------
    def numpy(self, aslist: bool = False, fetch_chunks: bool = True, nulls: Optional[str] = None) -> Union[np.ndarray, List[Any]]:
        """The view's values: one array (NumPy's result of the same chain of keys on the stacked
        tensor), or with `aslist` one array per sample. Text, json and list samples read as
        deeplake 3.x reads them: a (1,) str array, a (1,) object array holding the object, and
        an object array of the list's items.

        `nulls` (numeric tensors): None reads what is stored (a null's placeholder: NaN, NaT's
        int64, 0); "mask" gives a `np.ma.MaskedArray` masked where null (with `aslist`, None
        for a null); "nan" gives floats with NaN for null (datetime64/timedelta64 with NaT for
        time columns). See `isnull` and docs/format.md, "Nulls and logical types".

        >>> ds.price.numpy(nulls="mask")  # doctest: +SKIP
        """
        if nulls is not None:
            return cast(Union[np.ndarray, List[Any]], self._numpy_nulls(aslist, nulls))
        idx = self.index
        items = idx.resolve(self.num_samples)
        if idx.is_single:
            out = self._read(items, aslist, arrays=True)[0]
            return cast(Union[np.ndarray, List[Any]], self._apply_ops(out, aslist) if idx.ops else out)
        if not idx.ops:
            return cast(Union[np.ndarray, List[Any]], self._read(items, aslist, arrays=True))
        m = self.meta
        if not aslist and not m.is_sequence and m.min_shape == m.max_shape and self._fixed_shape() is not None:
            # one stacked array: the ops applied to all samples at once
            out = apply_ops_stacked(self._read(items, False), idx.ops)
            return np.moveaxis(out, 0, idx.row_pos) if idx.row_pos else out
        vals = [self._apply_ops(v, aslist, j) for j, v in enumerate(self._read(items, True, arrays=True))]
        if aslist:
            return vals
        shapes = {np.shape(v) for v in vals}
        if len(shapes) > 1:
            raise DynamicShapeError(f"tensor {self.name!r}: the selected parts of the samples differ in shape; use .numpy(aslist=True)")
        if not vals:
            probe = np.zeros((0,) * (self._stored_ndim() or 1), self.dtype if self.dtype is not None and self.dtype.kind != "U" else object)
            return np.zeros((0,) + np.shape(apply_ops(probe, idx.ops)), probe.dtype)
        out = np.stack([np.asarray(v) for v in vals])
        return np.moveaxis(out, 0, idx.row_pos) if idx.row_pos else out

    # -- nulls and logical types --------------------------------------------------------------------------
    def isnull(self) -> Union[bool, np.ndarray]:
        """Where the view's samples are null: a bool per row ((n,) array), or one bool for a
        single sample. Numeric tensors keep nulls in their validity tensor (older datasets: an
        empty sample); text and json tensors store a null value.

        >>> ds.price.isnull()  # doctest: +SKIP
        array([False,  True, False])
        """
        from lakeformat.core import nulls as N

        rows = self.index.resolve(self.num_samples)
        if htype_of(self.base_htype).text_like and not self.is_sequence:
            vals = self._read(rows, aslist=True) if len(rows) else []
            out = np.fromiter((v is None for v in vals), bool, count=len(vals))
        else:
            out = N.read(self.dataset, self.key, rows)
        return bool(out[0]) if self.index.is_single else out

    @property
    def nullable(self) -> bool:
        """Whether the tensor keeps typed nulls: created with `nullable=True` (the connectors'
        columns are) or holding a validity tensor. Other tensors store None as an empty sample,
        as deeplake 3.x does."""
        from lakeformat.core import nulls as N

        return N.declared(self.engine)

    @property
    def logical_type(self) -> str:
        """What the values mean (`timestamp[us, UTC]`, `date`, `decimal(10,2)` ..., else the
        dtype), from the tensor info; see lakeformat.types."""
        from lakeformat.types import logical_type

        return logical_type(self.engine.info, self.meta.dtype)

    def _numpy_nulls(self, aslist: bool, mode: str) -> Any:
        from lakeformat.core import nulls as N

        if mode not in ("mask", "nan"):
            raise LakeFormatError(f"tensor {self.name!r}: nulls={mode!r} is not 'mask' or 'nan'")
        if self.index.ops:
            raise LakeFormatError(f"tensor {self.name!r}: nulls= reads whole samples, not parts of them")
        null = np.atleast_1d(self.isnull())
        if aslist:
            vals = self.numpy(aslist=True)
            vals = [vals] if self.index.is_single else vals
            out = [None if z else v for v, z in zip(vals, null.tolist())]
            return out[0] if self.index.is_single else out
        try:
            data = np.asarray(self.numpy())
        except DynamicShapeError:  # empty samples of an older dataset stand for nulls
            vals = self.numpy(aslist=True)
            vals = [vals] if self.index.is_single else vals
            shapes = {np.shape(v) for v, z in zip(vals, null.tolist()) if not z}
            if len(shapes) > 1:
                raise
            shape = shapes.pop() if shapes else (1,)
            dt = self.dtype if self.dtype is not None else np.dtype("float64")
            fill = np.full(shape, N.placeholder(dt, self.engine.info), dt)
            data = np.stack([fill if z else np.asarray(v, dt) for v, z in zip(vals, null.tolist())]) if vals else np.zeros((0,) + shape, dt)
            if self.index.is_single:
                data = data[0]
        rows_null = null if not self.index.is_single else null[0]
        mask = np.broadcast_to(np.reshape(rows_null, np.shape(rows_null) + (1,) * (data.ndim - np.ndim(rows_null))), data.shape)
        if mode == "mask":
            return np.ma.MaskedArray(data, mask=np.array(mask))
        if (self.engine.info or {}).get("lakeformat_type") in N.TIME_TYPES:
            return self._as_time(data, mask)
        floats = data.astype(np.float64)
        floats[mask] = np.nan
        return floats

    def _as_time(self, data: np.ndarray, mask: np.ndarray) -> np.ndarray:
        kind = self.engine.info.get("lakeformat_type")
        unit = self.engine.info.get("unit", "us")
        out: np.ndarray = np.asarray(data, np.int64).view(f"timedelta64[{unit}]" if kind == "time" else f"datetime64[{unit}]").copy()
        out[mask] = np.datetime64("NaT") if kind != "time" else np.timedelta64("NaT")
        return out

    def datetime64(self) -> np.ndarray:
        """A time column's values, one per row: datetime64[us] for timestamps and dates (a
        timestamp with time zone as UTC; the zone is in `info["timezone"]`), timedelta64[us]
        since midnight for times of day (a time with time zone, kept as its ISO text with the
        offset, since midnight UTC); NaT for null.

        >>> ds.created_at.datetime64()  # doctest: +SKIP
        array(['2024-01-02T03:04:05.000000', 'NaT'], dtype='datetime64[us]')
        """
        from lakeformat.core import nulls as N

        info = self.engine.info or {}
        if info.get("with_offset") and self.base_htype == "text":  # times of day with their offset, as text
            from lakeformat.temporal import time_text_utc_micros

            us = []
            for i, v in enumerate(self.values()):
                try:
                    us.append(np.iinfo(np.int64).min if v is None else time_text_utc_micros(v))
                except (ValueError, TypeError):
                    raise LakeFormatError(f"tensor {self.name!r}, row {i} of the view: {v!r} is not an ISO-8601 time of day") from None
            return np.asarray(us, np.int64).view("timedelta64[us]")
        if info.get("lakeformat_type") not in N.TIME_TYPES:
            raise LakeFormatError(f"tensor {self.name!r} is not a time column (its info has no lakeformat_type timestamp/date/time)")
        out: np.ndarray = self._numpy_nulls(False, "nan")
        return out.reshape(-1) if out.ndim > 1 and out.shape[-1] == 1 and out.ndim == 2 else out

    def to_arrow(self) -> Any:
        """A column of one value per row as a `pyarrow.Array` whose validity bitmap is the
        tensor's nulls: numbers and bools, time columns as timestamp / date32 / time64 (the
        time zone from the info), text as strings. Needs pyarrow.

        >>> ds.returned_at.to_arrow()  # doctest: +SKIP
        """
        try:
            import pyarrow as pa
        except ImportError:
            raise LakeFormatError("Tensor.to_arrow needs pyarrow: pip install 'airbyte-destination-deeplake[arrow]'") from None
        if self.base_htype == "text" and not self.is_sequence:
            return self.text_buffers().to_arrow()  # offsets + bytes from the chunks, no str per value
        null = np.atleast_1d(self.isnull())
        info = self.engine.info or {}
        data = np.asarray(self._numpy_nulls(False, "mask").data)
        if data.size == 0 and not self.index.is_single:
            data = data.reshape(0, 1)  # no rows: an empty column (no shape to check)
        if self.index.is_single or data.ndim != 2 or data.shape[1] != 1:
            raise LakeFormatError(f"tensor {self.name!r}: to_arrow takes a column of one value per row, not samples of shape {data.shape[1:]}")
        flat = data[:, 0]
        kind, unit = info.get("lakeformat_type"), info.get("unit", "us")
        if kind == "timestamp":
            typ = pa.timestamp(unit, tz=info.get("timezone"))
        elif kind == "date":
            flat, typ = flat // 86_400_000_000, pa.date32()
            flat = flat.astype(np.int32)
        elif kind == "time":
            typ = pa.time64(unit)
        else:
            typ = pa.from_numpy_dtype(flat.dtype)
        return pa.array(flat, type=typ, mask=null)

    def text_buffers(self) -> "TextBuffers":
        """A text tensor's values (of this view) as `lakeformat.core.text_buffers.TextBuffers`
        (int64 offsets + UTF-8 bytes + null mask), read from the chunks with no Python object
        per value.

        >>> ds.caption.text_buffers().offsets  # doctest: +SKIP
        """
        from lakeformat.core.text_buffers import read_text_buffers

        return read_text_buffers(self)

    def _apply_ops(self, x: Any, aslist: bool, row: int = 0) -> Any:
        """The view's per-sample ops on one sample (a sequence read as a list: its items stacked
        when they have one shape, else the ops on the items axis only)."""
        ops = self.index.ops
        if isinstance(x, list):
            try:
                arr = np.stack(x) if x else np.zeros((0,))
            except ValueError:
                try:  # ops on the items axis alone pick items
                    picks = apply_ops(np.arange(len(x)), ops, row)
                except IndexError:
                    picks = None
                if picks is None or np.ndim(picks) > 1:
                    raise DynamicShapeError(f"tensor {self.name!r}: items of different shapes; index the items axis only") from None
                return x[int(picks)] if np.ndim(picks) == 0 else [x[int(k)] for k in picks]
            out = apply_ops(arr, ops, row)
            return list(out) if aslist and np.ndim(out) and out.ndim == arr.ndim else out
        return apply_ops(np.asarray(x) if not isinstance(x, np.ndarray) else x, ops, row)

    def _read(self, samples: np.ndarray, aslist: bool, arrays: bool = False) -> Any:
        """Whole samples. `arrays`: text, json and list samples as deeplake 3.x's arrays
        (`text_like_array`), else as Python values (aslist) or (n, 1) arrays."""
        eng = self.engine
        base = self.meta.base_htype
        rec = htype_of(base)
        eng.check_items(samples) if not self.is_sequence else None
        if arrays and rec.text_like and not self.is_sequence and (aslist or rec.list_like):
            if base == "text" and aslist:  # one U array per length of value, not per value
                from lakeformat.core.text_arrays import sample_arrays

                return sample_arrays(self._read_items(samples, aslist=True))
            return D.text_like_arrays(self.name, self._read_items(samples, aslist=True), base, aslist)
        if self.is_sequence:
            starts, ends = self._item_ranges(samples)
            flat = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(samples) else np.zeros(0, np.int64)
            vals = self._read_items(flat.astype(np.int64), aslist=True)
            if arrays and rec.text_like:
                vals = [text_like_array(v, base) for v in vals]
            return D.group_sequences(self.name, vals, starts, ends, aslist, self.dtype if self.dtype is not None else object)
        return self._read_items(samples, aslist)

    def _read_items(self, items: np.ndarray, aslist: bool) -> Any:
        eng = self.engine
        fmt = self.sample_format
        tiled = [k for k, it in enumerate(items.tolist()) if it in eng.tiles] if eng.tiles.entries else []
        fixed = fmt.fixed_shape
        if fixed is not None and not tiled:
            arr = eng.read_fixed(items, fixed, np.dtype(fmt.dtype))
            return list(arr) if aslist else arr
        if fmt.htype == "text" and not fmt.is_link and fmt.sample_compression is None and not tiled:
            from lakeformat.core import text_arrays as TA  # offsets + bytes, decoded natively

            tb = TA.read_item_buffers(eng, items)
            return TA.str_list(tb, eng, items) if aslist else TA.text_column(tb, eng, items)
        if fmt.htype == "json" and not fmt.is_link and fmt.sample_compression is None and not tiled and len(items) > 1:
            from lakeformat.core.text_arrays import json_items  # one parse for all documents

            docs = json_items(eng, items)
            if docs is not None:
                return docs if aslist else D.stack_text(docs, "json")
        values: List[Any] = [None] * len(items)
        plain = np.asarray([k for k in range(len(items)) if k not in set(tiled)], dtype=np.int64)
        if len(plain):
            if not aslist and not tiled and fmt.is_image and not fmt.is_link and fmt.min_shape and fmt.min_shape == fmt.max_shape:
                return self._read_images_fixed(items, fmt)
            datas, shapes = eng.read_items_bytes(items[plain])
            its = items[plain]
            decoded = D.decode_samples(fmt, datas, shapes, its, links=self.link_resolver if fmt.is_link else None,
                                       fail=lambda k, reason: eng.corruption_at(np.asarray(its[k : k + 1]), reason, None, CorruptSampleError))
            for k, v in zip(plain.tolist(), decoded):
                values[k] = v
        for k in tiled:
            values[k] = eng.read_tiled(int(items[k]))
        if fmt.is_text_like:
            return values if aslist else D.stack_text(values, fmt.htype)
        if aslist:
            return values
        if len({v.shape for v in values}) > 1:
            raise DynamicShapeError(f"tensor {self.name!r} has samples of different shapes; use .numpy(aslist=True)")
        if not values:
            dt = self.dtype if self.dtype is not None else np.float64
            return np.zeros((0,) + fmt.min_shape, dtype=dt)
        return np.stack(values)

    def _fixed_shape(self) -> Optional[Tuple[int, ...]]:
        return self.sample_format.fixed_shape

    def _read_images_fixed(self, items: np.ndarray, fmt: SampleFormat) -> np.ndarray:
        """Compressed images of one shape, decoded straight into one array. Blocks of items
        are read one after another while the codec threads decode the blocks before them,
        each block cut into one slice per thread (the codecs release the GIL)."""
        shape = fmt.min_shape
        dtype = fmt.np_dtype
        n = len(items)
        out = np.zeros((n,) + shape, dtype)
        sc = fmt.sample_compression
        eng = self.engine

        def decode_slice(job: Tuple[List[memoryview], int, int, int]) -> None:
            datas, base, lo, hi = job
            for k in range(lo, hi):
                try:
                    odd = D.decode_image_into(datas[k], sc, shape, dtype, out[base + k])
                    if odd is not None:
                        raise ValueError(f"decoded shape {odd.shape} is not the stored {shape}")
                except Exception as e:  # noqa: BLE001 - Pillow raises many kinds
                    raise eng.corruption_at(np.asarray(items[base + k : base + k + 1]), D.image_error(sc, e), None, CorruptSampleError) from e

        block = max(256, min(4096, n // 8 + 1))
        pending = []
        for base in range(0, n, block):
            datas, _ = eng.read_items_bytes(items[base : base + block])
            cuts = np.linspace(0, len(datas), D.DECODE_THREADS + 1).astype(int).tolist()
            pending += [codec_pool().submit(decode_slice, (datas, base, a, b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
            while len(pending) > 2 * D.DECODE_THREADS:  # bounded: at most ~3 blocks of bytes held
                pending.pop(0).result()
        for f in pending:
            f.result()
        return out

    def _view_ndim(self) -> int:
        """len(self.shape), without reading shapes."""
        nd = self.index.sample_ndim(self._stored_ndim() or 0)
        return nd if self.index.is_single else nd + 1

    def _extract_value(self) -> Any:
        """deeplake 3.x's text()/dict(): the first element of each sample's array (for one
        sample, of its array); a sequence view of several samples gives each one's first item,
        as deeplake 3.9.52 does."""
        if self._view_ndim() == 1:
            data = self.numpy()
            return [] if len(data) == 0 else data[0]
        return [sample[0] for sample in self.numpy(aslist=True)]

    def text(self) -> Union[str, List[str]]:
        """The strings of a text tensor (np.str_, as deeplake 3.x returns them)."""
        if self.base_htype == "text":
            return cast(Union[str, List[str]], self._extract_value())
        return cast(List[str], self._python_values())

    def dict(self) -> Union[Dict[str, Any], List[Any]]:
        """The objects of a json tensor."""
        if self.base_htype == "json":
            return cast(Union[Dict[str, Any], List[Any]], self._extract_value())
        return cast(List[Any], self._python_values())

    def list(self) -> Union[List[Any], List[List[Any]]]:
        """The lists of a list tensor (each as a Python list)."""
        if htype_of(self.base_htype).list_like:
            if self._view_ndim() == 1:
                return list(self.numpy())
            return [list(v) for v in self.numpy(aslist=True)]
        return cast(List[Any], self._python_values())

    def values(self) -> List[Any]:
        """One Python value per sample of the view: str (None for a null), dict or list for
        text, json and list tensors; for the others what `numpy(aslist=True)` gives. (deeplake
        3.x's `numpy(aslist=True)` wraps text-like samples in arrays; this is the unwrapped
        form the connectors and merges want.)

        >>> ds.names.values()       # doctest: +SKIP
        ['ann', 'bob']
        """
        if htype_of(self.base_htype).text_like and not self.index.ops:
            v: List[Any] = self._read(self.index.resolve(self.num_samples), aslist=True)
            return v[:1] if self.index.is_single else v
        read = self.numpy(aslist=True)
        out: List[Any] = [read] if self.index.is_single else cast(List[Any], read)
        if self.nullable:  # a null reads None, not its placeholder
            out = [None if z else v for v, z in zip(out, np.atleast_1d(self.isnull()).tolist())]
        return out

    def _python_values(self) -> Any:
        # other htypes (deeplake 3.x raises here): the samples as read, kept for our callers
        v = self._read(self.index.resolve(self.num_samples), aslist=True)
        return v[0] if self.index.is_single else v

    @property
    def sample_info(self) -> Union[Dict[str, Any], List[Any], None]:
        """What the hidden info tensor keeps of each sample (an image's format, shape, exif,
        filename): a dict for one sample, else a list; None without an info tensor. For a
        sequence, one {"value": info} per item, as deeplake 3.x gives it."""
        info_key = self._linked_key("extend_info")
        if info_key is None:
            return None
        info = Tensor(info_key, info_key, self.dataset, Index())
        rows = self.index.resolve(self.num_samples)
        if self.is_sequence:
            starts, ends = self._item_ranges(rows)
            flat = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]).astype(np.int64) if len(rows) else np.zeros(0, np.int64)
            vals = iter(info._read(flat, aslist=True) if len(flat) else [])
            out: List[Any] = [[{"value": next(vals)} for _ in range(int(b) - int(a))] for a, b in zip(starts, ends)]
        else:
            out = list(info._read(rows, aslist=True)) if len(rows) else []
        return out[0] if self.index.is_single else out

    def tobytes(self) -> bytes:
        if not self.index.is_single:
            raise LakeFormatError("tobytes() reads one sample")
        datas, _ = self.engine.read_items_bytes(np.array([self.index.samples]))
        return bytes(datas[0])

    def data(self, aslist: bool = False) -> Dict[str, Any]:
        """The view's values by htype, as deeplake 3.x's data(): {"value": text()/dict()/list()}
        for text, json and list; {"value": numpy(aslist), "text": class names} for class labels
        (when the tensor has names); {"value": ..., "sample_info": ...} for images; else
        {"value": numpy(aslist)}."""
        base = self.base_htype
        if base == "text":
            return {"value": self.text()}
        if base == "json":
            return {"value": self.dict()}
        rec = htype_of(base)
        if rec.list_like:
            return {"value": self.list()}
        value = self.numpy(aslist=aslist)
        out: Dict[str, Any] = {"value": value}
        if rec.label:
            names = self.info.get("class_names") or []
            if names:
                out["text"] = convert_to_text(value, names)
        elif rec.image_like or base in _OTHER_IMAGE_HTYPES:
            out["sample_info"] = self.sample_info or {}
        return out

    def summary_row(self) -> Tuple[str, str, str, str, str, str]:
        m = self.meta
        lo, hi = self.shape_interval
        shape = "(" + ", ".join(str(a) if a == b else f"{a}:{b}" for a, b in zip(lo, hi)) + ")"
        return (self.name, self.htype, f"({self.num_samples}, {shape[1:]}" if lo else f"({self.num_samples},)", str(m.dtype), str(m.sample_compression), str(m.chunk_compression))

    def __repr__(self) -> str:
        return f"Tensor(key={self.name!r}, htype={self.htype!r}, length={len(self)})"
