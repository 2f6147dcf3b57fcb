"""User values -> sample bytes and shapes, validated against a tensor's meta.

Nothing here touches storage or tensor state: a batch is serialized whole (and so validated
whole) before any of it is written, which is what makes a failing extend leave no trace.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np

from lakeformat.codecs.registry import get_codec, is_image_codec
from lakeformat.core.meta import TensorMeta
from lakeformat.core.sample import LinkedSample, Sample
from lakeformat.htypes import htype_of, is_numeric_dtype
from lakeformat.core.text_codec import EncodedSamples, JsonEncoder, encode_all_str, encode_ascii_array, orjson_all
from lakeformat.errors import (
    HtypeViolationError,
    SampleDecodeError,
    SampleDtypeError,
    SampleError,
    SampleShapeError,
)

DEFAULT_NDIM = {"image": 3, "image.rgb": 3, "image.gray": 2, "bbox": 2, "binary_mask": 3}


@dataclass
class SerializedBatch:
    """A batch ready for the chunk engine. One "item" per stored sample (for sequence tensors
    items are the flattened elements)."""

    parts: List[Any] = field(default_factory=list)
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    shapes: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.int64))
    real_shapes: Optional[np.ndarray] = None  # decoded shapes, for the hidden shape tensor
    seq_lengths: Optional[np.ndarray] = None
    dtype: Optional[str] = None
    new_class_names: List[str] = field(default_factory=list)
    creds: Optional[np.ndarray] = None
    infos: Optional[List[Dict[str, Any]]] = None
    arrays: Dict[int, np.ndarray] = field(default_factory=dict)  # items big enough to tile
    num_samples: int = 0

    @property
    def num_items(self) -> int:
        return len(self.sizes)


@dataclass
class Context:
    """What the serializer needs to know of the tensor beyond its meta."""

    name: str
    start_index: int
    class_names: List[str]
    class_names_fixed: bool
    creds_lookup: Callable[[Optional[str], str], int]
    shape_of_link: Optional[Callable[[str, Optional[str]], Sequence[int]]] = None
    tiling_threshold: int = 16_000_000


_E = TypeVar("_E", bound=SampleError)


def _fail(cls: Type[_E], msg: str, ctx: Context, i: int) -> _E:
    return cls(msg, tensor=ctx.name, index=ctx.start_index + i)


def _np_dtype(dtype: Optional[str]) -> Optional[np.dtype]:
    if not is_numeric_dtype(dtype):
        return None
    return np.dtype(dtype)


def cast_array(arr: np.ndarray, dtype: np.dtype, ctx: Context, i: int, python_value: bool = False) -> np.ndarray:
    """Cast to the tensor's dtype when no value can change; else a SampleDtypeError."""
    src = arr.dtype
    if src == dtype:
        return arr
    sk, dk = src.kind, dtype.kind
    if arr.size == 0 and sk in "iufb":
        return arr.astype(dtype)
    if sk in "iu" and dk in "iu":
        info = np.iinfo(dtype)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < info.min or hi > info.max:
            raise _fail(SampleDtypeError, f"values {lo}..{hi} do not fit dtype {dtype}", ctx, i)
        return arr.astype(dtype)
    if sk == "b" and dk in "iufb":
        return arr.astype(dtype)
    if sk in "iu" and dk == "b":
        if np.all((arr == 0) | (arr == 1)):
            return arr.astype(bool)
        raise _fail(SampleDtypeError, f"dtype {src} with values other than 0/1 cannot be stored as bool", ctx, i)
    if sk == "f" and dk == "f":
        return arr.astype(dtype)
    if sk in "iu" and dk == "f":
        return arr.astype(dtype)
    if sk == "f" and dk in "iu" and python_value and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return cast_array(arr.astype(np.int64), dtype, ctx, i)
    raise _fail(SampleDtypeError, f"dtype {src} cannot be stored in a tensor of dtype {dtype}", ctx, i)


def _check_htype(base: str, arr: np.ndarray, ctx: Context, i: int) -> None:
    if base in ("bbox", "bbox.3d"):
        want = 4 if base == "bbox" else 8
        if arr.size and (arr.ndim not in (1, 2) or arr.shape[-1] != want):
            raise _fail(HtypeViolationError, f"a {base} sample has shape (N, {want}) or ({want},), got {arr.shape}", ctx, i)
    elif htype_of(base).image_like:
        if arr.size and (arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4))):
            raise _fail(HtypeViolationError, f"an image is (H, W) or (H, W, 1|3|4), got shape {arr.shape}", ctx, i)
    elif base == "embedding":
        if arr.ndim != 1:
            raise _fail(HtypeViolationError, f"an embedding is one vector, got shape {arr.shape}", ctx, i)


def _labels(value: Any, ctx: Context, batch: SerializedBatch, i: int) -> np.ndarray:
    """Class labels: ints, or names mapped to ids (new names extend non-fixed class names)."""
    vals = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    out = []
    names = ctx.class_names
    for v in np.asarray(vals, dtype=object).reshape(-1) if not isinstance(vals, np.ndarray) or vals.dtype == object or vals.dtype.kind in "US" else vals.reshape(-1):
        if isinstance(v, (str, np.str_)):
            v = str(v)
            if v in names:
                out.append(names.index(v))
            elif v in batch.new_class_names:
                out.append(len(names) + batch.new_class_names.index(v))
            elif ctx.class_names_fixed:
                raise _fail(HtypeViolationError, f"label {v!r} is not one of the class names {names}", ctx, i)
            else:
                batch.new_class_names.append(v)
                out.append(len(names) + len(batch.new_class_names) - 1)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            v = int(v)
            if v < 0:
                raise _fail(HtypeViolationError, f"label {v} is negative", ctx, i)
            if ctx.class_names_fixed and v >= len(names):
                raise _fail(HtypeViolationError, f"label {v} is outside the {len(names)} class names", ctx, i)
            out.append(v)
        else:
            raise _fail(SampleDtypeError, f"a class label is an int or a class name, got {type(v).__name__}", ctx, i)
    return np.asarray(out, dtype=np.uint32).reshape(np.shape(value) if np.ndim(value) else (1,))


ENCODE_THREADS = max(1, min(8, os.cpu_count() or 1))


def _encode_images_parallel(ser: "Serializer", jobs: List[Any]) -> List[Union[bytes, memoryview]]:
    """png/jpeg encoding of a batch on a thread pool (Pillow releases the GIL while coding)."""
    if len(jobs) < 8 or ENCODE_THREADS == 1:
        return [ser._encode(arr, gi) for _, arr, gi in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(ENCODE_THREADS) as pool:
        return list(pool.map(lambda j: ser._encode(j[1], j[2]), jobs))


class Serializer:
    """Turns a batch of user values into a SerializedBatch for one tensor."""

    def __init__(self, meta: TensorMeta, ctx: Context):
        self.meta = meta
        self.ctx = ctx
        self.base = meta.base_htype
        self.rec = htype_of(self.base)  # the htype's facts (lakeformat.htypes)
        self.dtype = _np_dtype(meta.dtype)
        self.sc = meta.sample_compression
        self.sc_is_image = is_image_codec(self.sc)
        self.ndim = meta.ndim

    # ---- public -----------------------------------------------------------------------------------
    def serialize(self, values: Any) -> SerializedBatch:
        if self.meta.is_sequence:
            return self._sequence(values)
        return self._flat(values)

    # ---- sequences ----------------------------------------------------------------------------------
    def _sequence(self, values: Any) -> SerializedBatch:
        items: List[Any] = []
        lengths = []
        for i, seq in enumerate(values):
            if seq is None:
                seq = []
            if isinstance(seq, (str, bytes, dict)) or np.isscalar(seq):
                raise _fail(SampleShapeError, "a sequence sample is a list of items", self.ctx, i)
            seq_items = list(seq)
            items.extend(seq_items)
            lengths.append(len(seq_items))
        batch = self._flat(items, item_owner=np.repeat(np.arange(len(lengths)), lengths))
        batch.seq_lengths = np.asarray(lengths, dtype=np.int64)
        batch.num_samples = len(lengths)
        return batch

    # ---- flat ----------------------------------------------------------------------------------------
    def _flat(self, values: Any, item_owner: Optional[np.ndarray] = None) -> SerializedBatch:
        if self.meta.is_link:
            return self._links(values, item_owner)
        if self.rec.text_like:
            return self._texts(values, item_owner)
        if self.rec.label and self.sc is None:
            dense = self._scalar_labels(values)
            if dense is not None:
                return self._dense(dense, item_owner, labels=True)
        if (
            isinstance(values, np.ndarray)
            and values.dtype != object
            and values.dtype.kind in "biuf"
            and not self.rec.label
            and self.sc is None
            and values.ndim >= 1
        ):
            return self._dense(values, item_owner)
        return self._arrays(values, item_owner)

    def _scalar_labels(self, values: Any) -> Optional[np.ndarray]:
        """A batch of one label per sample (ints or names) -> an (n,) integer array, checked
        as a whole; None when the batch has lists of labels or nulls."""
        if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":
            arr = values.astype(np.int64, copy=False)
        else:
            vals = values.tolist() if isinstance(values, np.ndarray) and values.ndim == 1 else values
            if not isinstance(vals, (list, tuple)) or not vals:
                return None
            first = vals[0]
            if isinstance(first, str):
                if not all(isinstance(v, str) for v in vals):
                    return None
                names = {n: i for i, n in enumerate(self.ctx.class_names)}
                out = np.empty(len(vals), np.int64)
                new_names: List[str] = []
                for i, v in enumerate(vals):
                    k = names.get(v)
                    if k is None:
                        if self.ctx.class_names_fixed:
                            raise _fail(HtypeViolationError, f"label {v!r} is not one of the class names {self.ctx.class_names}", self.ctx, i)
                        k = names[v] = len(names)
                        new_names.append(v)
                    out[i] = k
                self._pending_names = new_names
                return out
            if isinstance(first, (int, np.integer)) and not isinstance(first, bool):
                try:
                    arr = np.asarray(vals)
                except ValueError:
                    return None
                if arr.ndim != 1 or arr.dtype.kind not in "iu":
                    return None
                arr = arr.astype(np.int64, copy=False)
            else:
                return None
        if len(arr):
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0:
                raise _fail(HtypeViolationError, f"label {lo} is negative", self.ctx, int(np.argmin(arr)))
            if self.ctx.class_names_fixed and hi >= len(self.ctx.class_names):
                raise _fail(HtypeViolationError, f"label {hi} is outside the {len(self.ctx.class_names)} class names", self.ctx, int(np.argmax(arr)))
        return arr

    def _idx(self, i: int, item_owner: Optional[np.ndarray]) -> int:
        return int(item_owner[i]) if item_owner is not None and i < len(item_owner) else i

    def _dense_masked(self, arr: np.ma.MaskedArray, item_owner: Optional[np.ndarray], labels: bool = False) -> SerializedBatch:
        """A masked batch: masked entries are nulls, stored as empty samples as None is."""
        m = np.ma.getmaskarray(arr)
        null = np.asarray(m.reshape(len(m), -1).any(axis=1)) if m.ndim > 1 else m
        data = np.asarray(arr.data)
        if not null.any():
            return self._dense(data, item_owner, labels)
        b = self._dense(data[~null], item_owner, labels)
        n, keep = len(null), np.flatnonzero(~null)
        sizes = np.zeros(n, np.int64)
        sizes[keep] = b.sizes
        shapes = np.zeros((n, b.shapes.shape[1]), np.int64)
        shapes[keep] = b.shapes
        b.sizes, b.shapes, b.num_samples = sizes, shapes, n
        b.arrays = {int(keep[i]): a for i, a in b.arrays.items()}
        return b

    def _dense(self, arr: np.ndarray, item_owner: Optional[np.ndarray], labels: bool = False) -> SerializedBatch:
        """A whole batch in one array: one cast, one buffer."""
        if isinstance(arr, np.ma.MaskedArray):
            return self._dense_masked(arr, item_owner, labels)
        batch = SerializedBatch()
        n = arr.shape[0]
        sample_shape = arr.shape[1:] if arr.ndim > 1 else (1,)
        if self._pads_gray() and len(sample_shape) < (self.ndim or 3):
            sample_shape = tuple(sample_shape) + (1,) * ((self.ndim or 3) - len(sample_shape))
            arr = arr.reshape((n,) + sample_shape)
        if labels:
            batch.new_class_names = getattr(self, "_pending_names", [])
            if self.dtype is None:
                self.dtype = np.dtype("uint32")
                batch.dtype = "uint32"
        if self.dtype is None:
            self.dtype = arr.dtype
            batch.dtype = arr.dtype.name
        if self.ndim is not None and len(sample_shape) != self.ndim:
            raise _fail(SampleShapeError, f"samples have {len(sample_shape)} dimensions {tuple(sample_shape)}, the tensor has {self.ndim}", self.ctx, 0)
        if n:
            _check_htype(self.base, np.empty(sample_shape, dtype=arr.dtype), self.ctx, 0)
            arr = cast_array(arr, self.dtype, self.ctx, 0)
        arr = np.ascontiguousarray(arr)
        nbytes = int(np.prod(sample_shape)) * arr.dtype.itemsize
        batch.parts = [arr.data.cast("B")] if arr.size else []
        # broadcast (read-only, no 1M-long array): the chunk engine sees one size for all
        batch.sizes = np.broadcast_to(np.asarray(nbytes, dtype=np.int64), (n,))
        batch.shapes = np.broadcast_to(np.asarray(sample_shape, dtype=np.int64), (n, len(sample_shape)))
        batch.num_samples = n
        if nbytes > self.ctx.tiling_threshold:
            for i in range(n):
                batch.arrays[i] = arr[i].reshape(sample_shape)
        return batch

    def _target_ndim(self, values: Sequence[Any]) -> int:
        if self.ndim is not None:
            return self.ndim
        for v in values:
            if v is None:
                continue
            if isinstance(v, Sample):
                return self._image_ndim(len(v.shape))
            a = np.asarray(v) if not isinstance(v, (str, bytes)) else None
            if a is not None:
                return self._image_ndim(max(a.ndim, 1))
        return self._image_ndim(DEFAULT_NDIM.get(self.base, 1))

    def _pads_gray(self) -> bool:
        # deeplake 3.x stores an (H, W) sample of an `image` tensor, or of any tensor with an
        # image compression, as (H, W, 1); image.gray without compression keeps (H, W)
        return self.base == "image" or self.sc_is_image

    def _image_ndim(self, ndim: int) -> int:
        return max(ndim, 3) if self._pads_gray() else ndim

    def _arrays(self, values: Any, item_owner: Optional[np.ndarray]) -> SerializedBatch:
        batch = SerializedBatch()
        values = list(values) if not isinstance(values, list) else values
        ndim = self._target_ndim(values)
        parts: List[Union[bytes, memoryview]] = []
        sizes: List[int] = []
        shapes: List[Tuple[int, ...]] = []
        deferred: List[Any] = []
        infos: List[Dict[str, Any]] = []
        data: Union[bytes, memoryview]
        for i, v in enumerate(values):
            gi = self._idx(i, item_owner)
            info: Dict[str, Any] = {}
            if v is None:
                parts.append(b"")
                sizes.append(0)
                shapes.append((0,) * ndim)
                infos.append(info)
                continue
            if isinstance(v, Sample):
                data, shape = self._file_sample(v, gi, ndim)
                parts.append(data)
                sizes.append(len(data))
                shapes.append(shape)
                if v.path:
                    info = {"filename": v.path}
                infos.append(info)
                continue
            if isinstance(v, LinkedSample):
                raise _fail(SampleDtypeError, "links go into link[...] tensors", self.ctx, gi)
            if self.rec.label:
                arr = _labels(v, self.ctx, batch, gi)
            else:
                if isinstance(v, (str, bytes, dict)):
                    raise _fail(SampleDtypeError, f"a {type(v).__name__} cannot be stored in a {self.base} tensor of dtype {self.dtype}", self.ctx, gi)
                python_value = not isinstance(v, (np.ndarray, np.generic))
                try:
                    arr = np.asarray(v)
                except ValueError as e:
                    raise _fail(SampleShapeError, f"ragged nested lists are not one sample: {e}", self.ctx, gi) from None
                if arr.dtype == object or arr.dtype.kind not in "biuf":
                    raise _fail(SampleDtypeError, f"values of type {arr.dtype} are not numeric", self.ctx, gi)
                if self.dtype is None:
                    self.dtype = arr.dtype if not python_value else np.dtype(arr.dtype)
                    batch.dtype = self.dtype.name
                arr = cast_array(arr, self.dtype, self.ctx, gi, python_value)
            if arr.ndim == 0:
                arr = arr.reshape(1)
            if arr.ndim < ndim and self._pads_gray():
                arr = arr.reshape(arr.shape + (1,) * (ndim - arr.ndim))
            if arr.ndim != ndim:
                raise _fail(SampleShapeError, f"sample has {arr.ndim} dimensions {arr.shape}, the tensor has {ndim}", self.ctx, gi)
            _check_htype(self.base, arr, self.ctx, gi)
            if self.sc_is_image:
                deferred.append((len(parts), arr, gi))  # encoded below, in parallel
                data = b""
            else:
                data = self._encode(arr, gi)
            parts.append(data)
            sizes.append(len(data))
            shapes.append(arr.shape)
            if self.sc is None and arr.nbytes > self.ctx.tiling_threshold:
                batch.arrays[i] = arr
            elif self.sc_is_image and arr.nbytes > self.ctx.tiling_threshold:
                batch.arrays[i] = arr
            infos.append(info)
        if deferred:
            encoded = _encode_images_parallel(self, deferred)
            for (k, _, _), data in zip(deferred, encoded):
                parts[k] = data
                sizes[k] = len(data)
        if self.dtype is None and self.rec.label:
            batch.dtype = "uint32"
        batch.parts = parts
        batch.sizes = np.asarray(sizes, dtype=np.int64)
        batch.shapes = np.asarray(shapes, dtype=np.int64).reshape(len(values), ndim)
        batch.infos = infos
        batch.num_samples = len(values)
        return batch

    def _encode(self, arr: np.ndarray, gi: int) -> Union[bytes, memoryview]:
        arr = np.ascontiguousarray(arr)
        if self.sc is None:
            return arr.data.cast("B") if arr.size else b""
        if arr.size == 0:
            return b""
        try:
            codec = get_codec(self.sc)
            if not codec.is_image:
                return codec.encode(arr.data.cast("B"))
            return codec.encode(arr)
        except (ValueError, TypeError, OSError) as e:  # UnknownCodecError is a ValueError
            raise _fail(HtypeViolationError, f"cannot encode as {self.sc}: {e}", self.ctx, gi) from e

    def _file_sample(self, s: Sample, gi: int, ndim: int) -> Tuple[bytes, Tuple[int, ...]]:
        data: Union[bytes, memoryview]
        try:
            comp = s.compression
            if comp is not None and comp == self.sc:
                shape = tuple(s.shape)  # header only: the bytes are kept as they are
                data = s.buffer
            else:
                arr = np.asarray(s.array)
                if self.dtype is not None:
                    arr = cast_array(arr, self.dtype, self.ctx, gi)
                shape = arr.shape
                _check_htype(self.base, arr, self.ctx, gi)
                data = self._encode(arr, gi)
        except SampleError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for bad files
            raise _fail(SampleDecodeError, f"cannot decode {s.path or 'bytes'}: {type(e).__name__}: {e}", self.ctx, gi) from e
        if len(shape) != ndim:
            if ndim == 3 and len(shape) == 2:
                shape = shape + (1,)
            else:
                raise _fail(SampleShapeError, f"image of shape {shape} in a tensor of {ndim} dimensions", self.ctx, gi)
        if self.dtype is None:
            self.dtype = np.dtype("uint8")
        return bytes(data), shape

    def _texts(self, values: Any, item_owner: Optional[np.ndarray]) -> SerializedBatch:
        batch = SerializedBatch()
        if isinstance(values, EncodedSamples):
            return self._encoded(values, item_owner)
        if isinstance(values, np.ndarray) and values.dtype.kind in "US" and self.base == "text":
            if values.ndim > 1:
                values = values.reshape(len(values), -1)[:, 0]
            fast_array = encode_ascii_array(values)
            if fast_array is not None:
                batch.parts, batch.sizes = fast_array
                batch.shapes = np.ones((len(values), 1), dtype=np.int64)
                batch.num_samples = len(values)
                return batch
            values = values.tolist()
        values = list(values)
        base = self.base
        fast_encode = {"text": encode_all_str, "json": orjson_all}.get(base)
        fast = fast_encode(values) if fast_encode is not None and values else None
        if fast is not None:  # the whole batch as one buffer
            batch.parts, batch.sizes = fast
            batch.shapes = np.ones((len(values), 1), dtype=np.int64)
            batch.num_samples = len(values)
            return batch
        parts: List[bytes] = []
        shapes = np.ones((len(values), 1), dtype=np.int64)
        for i, v in enumerate(values):
            if base == "text":
                if isinstance(v, str):
                    parts.append(v.encode("utf-8"))
                    continue
                if v is None:
                    parts.append(b"")
                    shapes[i, 0] = 0
                    continue
                if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "US":
                    parts.append(str(v.reshape(())).encode("utf-8"))
                    continue
                raise _fail(SampleDtypeError, f"a text sample is a str, got {type(v).__name__}", self.ctx, self._idx(i, item_owner))
            try:
                if base == "json":
                    if isinstance(v, np.ndarray) and v.dtype == object and v.ndim == 0:
                        v = v.item()
                    parts.append(json.dumps(v, cls=JsonEncoder, allow_nan=True).encode("utf-8"))
                else:  # list / tag
                    if isinstance(v, np.ndarray):
                        v = v.tolist()
                    if v is None:
                        v = []
                    if isinstance(v, str):
                        v = [v]
                    if not isinstance(v, (list, tuple)):
                        raise _fail(SampleDtypeError, f"a {base} sample is a list, got {type(v).__name__}", self.ctx, self._idx(i, item_owner))
                    parts.append(json.dumps(list(v), cls=JsonEncoder).encode("utf-8"))
                    shapes[i, 0] = len(v)
            except TypeError as e:
                raise _fail(SampleDtypeError, f"not JSON-serializable: {e}", self.ctx, self._idx(i, item_owner)) from e
        batch.parts = parts
        batch.sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        batch.shapes = shapes
        batch.num_samples = len(values)
        return batch

    def _encoded(self, values: EncodedSamples, item_owner: Optional[np.ndarray]) -> SerializedBatch:
        if not (self.rec.text_like and not self.rec.list_like) or item_owner is not None:
            raise _fail(SampleDtypeError, f"encoded samples go into text or json tensors, not {self.base}", self.ctx, 0)
        n = len(values)
        sizes = np.asarray(values.sizes, dtype=np.int64).reshape(n)
        nbytes = memoryview(values.data).nbytes
        if n and (int(sizes.min()) < 0 or int(sizes.sum()) != nbytes):
            raise _fail(SampleError, f"encoded samples: sizes add up to {int(sizes.sum())}, the data has {nbytes} bytes", self.ctx, 0)
        shapes = np.ones((n, 1), dtype=np.int64)
        if values.nulls is not None and self.base == "text":
            nulls = np.asarray(values.nulls, dtype=bool).reshape(n)
            if np.any(sizes[nulls]):
                raise _fail(SampleError, "encoded samples: a null text has bytes", self.ctx, int(np.argmax(nulls & (sizes > 0))))
            shapes[nulls, 0] = 0
        batch = SerializedBatch()
        batch.parts = [values.data] if nbytes else []
        batch.sizes = sizes
        batch.shapes = shapes
        batch.num_samples = n
        return batch

    def _links(self, values: Any, item_owner: Optional[np.ndarray]) -> SerializedBatch:
        batch = SerializedBatch()
        values = list(values)
        parts, creds, real_shapes = [], [], []
        ndim = self.ndim if self.ndim is not None else DEFAULT_NDIM.get(self.base, 1)
        for i, v in enumerate(values):
            gi = self._idx(i, item_owner)
            if v is None:
                parts.append(b"")
                creds.append(0)
                real_shapes.append((0,) * ndim)
                continue
            if isinstance(v, str):
                v = LinkedSample(v)
            if not isinstance(v, LinkedSample):
                raise _fail(SampleDtypeError, f"a link tensor takes lakeformat.link(url) or URL strings, got {type(v).__name__}", self.ctx, gi)
            try:
                creds.append(self.ctx.creds_lookup(v.creds_key, v.path))
            except KeyError as e:
                raise _fail(SampleError, str(e.args[0] if e.args else e), self.ctx, gi) from None
            parts.append(v.path.encode("utf-8"))
            if self.meta.verify and self.ctx.shape_of_link is not None:
                try:
                    shape = tuple(self.ctx.shape_of_link(v.path, v.creds_key))
                except Exception as e:  # noqa: BLE001
                    raise _fail(SampleDecodeError, f"link {v.path!r} cannot be read: {e}", self.ctx, gi) from e
                if len(shape) != ndim:
                    if ndim == 3 and len(shape) == 2:
                        shape = shape + (1,)
                    else:
                        raise _fail(SampleShapeError, f"linked sample of shape {shape} in a tensor of {ndim} dimensions", self.ctx, gi)
                real_shapes.append(shape)
            else:
                real_shapes.append((0,) * ndim)
        batch.parts = parts
        batch.sizes = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        batch.shapes = np.ones((len(values), 1), dtype=np.int64)
        batch.real_shapes = np.asarray(real_shapes, dtype=np.int64).reshape(len(values), ndim)
        batch.creds = np.asarray(creds, dtype=np.int64)
        batch.num_samples = len(values)
        batch.infos = [{} for _ in values]
        if self.dtype is None and self.rec.image_like:
            batch.dtype = "uint8"
        return batch
