"""A dataset handle's rows as an Arrow table (and a pandas DataFrame), one column per tensor.

`handle.to_arrow(tensors=None)` / `handle.to_pandas(tensors=None)` on any dataset handle: a
dataset, a slice, a group, a TQL result's view. Rows come in the handle's order. Each tensor
becomes one column of a type that holds its values exactly:

- numbers and bools with one value per sample: the Arrow type of the dtype; time columns
  (`lakeformat_type` timestamp/date/time/interval in the info) as timestamp (with the
  zone) / date32 / time64 / duration.
- class labels: `dictionary<int32, string>` of the class names (pandas: a Categorical),
  or the ids as uint32 with `class_labels="ids"` (or when the tensor has no names); a
  tensor that holds several labels in a sample is a list of them.
- text: strings (through `Tensor.to_arrow`); json: the JSON text of each value (strings;
  `json.loads` or DuckDB's `::JSON` reads them back); list/tag: `list<string>`.
- fixed-shape arrays: `fixed_size_list<dtype>[n]` for vectors, the `arrow.fixed_shape_tensor`
  extension type (storage: a fixed-size list) for more dimensions.
- arrays whose first axis varies (boxes): `list<fixed_size_list<dtype>[...]>`, exact.
- NULL: the column's validity. A nullable tensor's nulls are nulls; an empty sample of a
  scalar or fixed-shape tensor is a null too (TQL reads it as NULL); an empty sample of a
  tensor whose first axis varies is an empty list.

Sequence, link and image-like tensors (and arrays ragged beyond their first axis) raise a
`LakeFormatError` naming the tensor: leave them out with `tensors=[...]`. pyarrow (the
`arrow` extra, with pandas) are imported here, when asked for.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.core.index import Index
from lakeformat.errors import LakeFormatError
from lakeformat.htypes import htype_of

if TYPE_CHECKING:
    from lakeformat.core.dataset import Dataset
    from lakeformat.core.tensor import Tensor

CLASS_LABEL_MODES = ("dictionary", "ids")
# decoded media: exporting them would decode every file; `tensors=` leaves them out
_MEDIA_HTYPES = ("dicom", "nifti", "video", "audio", "point_cloud", "mesh")


class ArrowExportError(LakeFormatError, TypeError):
    """A tensor that has no exact Arrow column (says which tensor and why)."""


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise LakeFormatError("to_arrow needs pyarrow: pip install 'airbyte-destination-deeplake[arrow]'") from None
    return pa


def to_arrow(handle: "Dataset", tensors: Optional[Sequence[str]] = None, class_labels: str = "dictionary") -> Any:
    """The handle's rows as a `pyarrow.Table`: one column per tensor (all the handle shows,
    or `tensors`, in that order), rows in the handle's order. See the module's doc.

    >>> ds[10:20].to_arrow(tensors=["labels", "score"])  # doctest: +SKIP
    """
    pa = _pyarrow()
    if class_labels not in CLASS_LABEL_MODES:
        raise LakeFormatError(f"class_labels={class_labels!r} is not one of {CLASS_LABEL_MODES}")
    if handle.index.ops:
        raise LakeFormatError("to_arrow exports whole samples: index the rows only (ds[rows]), not parts of samples")
    shown = list(handle.tensors)
    if tensors is None:
        names = shown
    else:
        if isinstance(tensors, str):
            raise LakeFormatError(f"tensors= takes a list of tensor names, not the string {tensors!r}")
        names = [str(n).strip("/") for n in tensors]
        missing = [n for n in names if n not in shown]
        if missing:
            raise LakeFormatError(f"to_arrow: no tensor {missing[0]!r} in this dataset handle (it shows {shown})")
    if handle.index.is_single:  # one row picked by an integer: a table of that row
        handle = _rows_handle(handle)
    every = handle.tensors
    if handle.index.samples is None and any(every[n].num_samples != len(handle) for n in names):
        # a tensor longer than the dataset (its length is its shortest tensor's): its first rows
        handle = handle[0:len(handle)]  # type: ignore[assignment]
        every = handle.tensors
    columns = [_column(pa, every[name], name, class_labels) for name in names]
    return pa.table(columns, names=names) if names else pa.table({})


def to_pandas(handle: "Dataset", tensors: Optional[Sequence[str]] = None, class_labels: str = "dictionary") -> Any:
    """The handle's rows as a `pandas.DataFrame` (`to_arrow(...).to_pandas()`): class labels
    as Categoricals, nulls as NaN/None/NaT, vectors as NumPy arrays per row.

    >>> ds.query("SELECT * WHERE score > 0.5").to_pandas(tensors=["score"])  # doctest: +SKIP
    """
    try:
        import pandas  # type: ignore[import-untyped]  # noqa: F401  (pyarrow's to_pandas needs it)
    except ImportError:
        raise LakeFormatError("to_pandas needs pandas: pip install 'airbyte-destination-deeplake[arrow]'") from None
    return to_arrow(handle, tensors, class_labels).to_pandas()


def _rows_handle(handle: "Dataset") -> "Dataset":
    from lakeformat.core.dataset import Dataset

    rows = handle.index.resolve(handle.base_length).astype(np.int64).reshape(-1)
    out = Dataset(handle.session, Index(rows), handle.group)
    shown = handle.__dict__.get("view_tensors")
    if shown is not None:
        from lakeformat.core.view import with_selection

        out = with_selection(out, shown, None)
    return out


def _column(pa: Any, t: "Tensor", name: str, class_labels: str) -> Any:
    base = t.base_htype
    rec = htype_of(base)
    if t.is_sequence:
        raise ArrowExportError(f"tensor {name!r} is a sequence: to_arrow has no column for it; leave it out with tensors=[...]")
    if t.is_link:
        raise ArrowExportError(f"tensor {name!r} holds links: exporting it would fetch the linked files; leave it out with tensors=[...]")
    if rec.image_like or base in _MEDIA_HTYPES:
        raise ArrowExportError(f"tensor {name!r} is an {base} tensor: to_arrow does not decode media; leave it out with tensors=[...]")
    if base == "text":
        return t.to_arrow()
    if rec.list_like:
        try:
            return pa.array(t.values(), type=pa.list_(pa.string()))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise ArrowExportError(f"tensor {name!r}: its lists hold items other than strings ({e})") from None
    if rec.text_like:  # json
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False, default=_json_default) for v in t.values()], type=pa.string())
    if t.dtype is None or t.dtype.kind not in "biuf":
        raise ArrowExportError(f"tensor {name!r} has dtype {t.dtype}: to_arrow exports numbers, bools, text and json")
    names = list(t.info.get("class_names") or []) if rec.label else []
    if rec.label and (class_labels == "ids" or not names):
        names = []
    return _numeric(pa, t, name, names, rec.label)


def _json_default(v: Any) -> Any:
    """NumPy values inside a json sample, as JSON."""
    if isinstance(v, (np.ndarray, np.generic)):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON")


def _numeric(pa: Any, t: "Tensor", name: str, class_names: List[str], label: bool) -> Any:
    m = t.meta
    dtype = np.dtype(t.dtype)
    n = len(t)
    stored_max = tuple(int(d) for d in (m.max_shape or ()))
    stored_min = tuple(int(d) for d in (m.min_shape or ()))
    validity = _validity(t, n)
    if stored_max == (1,) or (stored_max == () and n == 0):  # one value per sample
        data, empty = _fixed_rows(t, n, (1,), dtype)
        null = empty if validity is None else (empty | validity)
        flat = data.reshape(n)
        if class_names:
            return _labels(pa, flat, null, class_names, name)
        return _scalar_array(pa, t, flat, null)
    # several labels in a sample: always a list of them, however many each sample holds
    if not label and (stored_min == stored_max or (0 in stored_min and len(stored_min) == len(stored_max))):
        shape = stored_max
        try:
            data, empty = _fixed_rows(t, n, shape, dtype)
            null = empty if validity is None else (empty | validity)
            return _fixed(pa, data, null, shape)
        except _Ragged:
            pass
    return _ragged(pa, list(t.numpy(aslist=True)), validity, dtype, name, class_names)


class _Ragged(Exception):
    """The samples are not all one shape (empty ones aside)."""


def _validity(t: "Tensor", n: int) -> Optional[np.ndarray]:
    if not t.nullable:
        return None
    return np.asarray(t.isnull(), bool).reshape(n)


def _fixed_rows(t: "Tensor", n: int, shape: Tuple[int, ...], dtype: np.dtype) -> Tuple[np.ndarray, np.ndarray]:
    """(n, *shape) values and the rows that are empty samples (their values zero)."""
    try:
        data = np.asarray(t.numpy())
        if data.shape == (n,) + shape:
            return data.astype(dtype, copy=False), np.zeros(n, bool)
    except LakeFormatError:  # samples of different shapes: some are empty
        pass
    rows = t.numpy(aslist=True)
    out = np.zeros((n,) + shape, dtype)
    empty = np.zeros(n, bool)
    for i, r in enumerate(rows):
        a = np.asarray(r)
        if a.size == 0:
            empty[i] = True
        elif a.shape == shape:
            out[i] = a
        else:
            raise _Ragged()
    return out, empty


def _scalar_array(pa: Any, t: "Tensor", flat: np.ndarray, null: np.ndarray) -> Any:
    info = t.info
    kind, unit = info.get("lakeformat_type"), info.get("unit", "us")
    mask = null if null.any() else None
    if kind == "timestamp":
        return pa.array(flat.astype(np.int64), type=pa.timestamp(unit, tz=info.get("timezone")), mask=mask)
    if kind == "date":
        days = (flat.astype(np.int64) // 86_400_000_000).astype(np.int32)
        return pa.array(days, type=pa.date32(), mask=mask)
    if kind == "time":
        return pa.array(flat.astype(np.int64), type=pa.time64(unit), mask=mask)
    if kind == "interval":
        return pa.array(flat.astype(np.int64), type=pa.duration(unit), mask=mask)
    return pa.array(flat, type=pa.from_numpy_dtype(flat.dtype), mask=mask)


def _labels(pa: Any, ids: np.ndarray, null: np.ndarray, names: List[str], tensor: str) -> Any:
    ok = ids[~null]
    if len(ok) and int(ok.max()) >= len(names):
        bad = int(ok.max())
        raise ArrowExportError(f"tensor {tensor!r}: class id {bad} has no name (class_names has {len(names)}); export with class_labels='ids'")
    indices = pa.array(ids.astype(np.int32), type=pa.int32(), mask=null if null.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names, type=pa.string()))


def _fixed(pa: Any, data: np.ndarray, null: np.ndarray, shape: Tuple[int, ...]) -> Any:
    n = data.shape[0]
    width = int(np.prod(shape, dtype=np.int64))
    values = pa.array(np.ascontiguousarray(data).reshape(n * width))
    mask = pa.array(null) if null.any() else None
    storage = pa.FixedSizeListArray.from_arrays(values, width, mask=mask)
    if len(shape) == 1:
        return storage
    return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(values.type, list(shape)), storage)


def _ragged(pa: Any, rows: List[Any], validity: Optional[np.ndarray], dtype: np.dtype, tensor: str, class_names: List[str]) -> Any:
    """Rows of shape (k_i, *inner): list<fixed_size_list^len(inner)<dtype>>."""
    arrs = [np.asarray(r) for r in rows]
    inner: Optional[Tuple[int, ...]] = None
    for a in arrs:
        if a.size == 0 and a.ndim <= 1:
            continue  # an empty sample fits any inner shape
        if a.ndim == 0:
            a = a.reshape(1)
        if inner is None:
            inner = tuple(a.shape[1:])
        elif tuple(a.shape[1:]) != inner:
            raise ArrowExportError(f"tensor {tensor!r}: its samples differ in shape beyond their first axis "
                                   f"({inner} and {a.shape[1:]}); to_arrow has no exact column for it; leave it out with tensors=[...]")
    inner = inner or ()
    lengths = np.array([a.shape[0] if a.ndim else 1 for a in arrs], np.int64)
    lengths[[a.size == 0 for a in arrs]] = 0
    offsets = np.zeros(len(arrs) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate([a.reshape(-1) for a in arrs if a.size]).astype(dtype) if int(lengths.sum()) else np.zeros(0, dtype)
    values: Any = pa.array(flat)
    if class_names:
        values = pa.DictionaryArray.from_arrays(pa.array(flat.astype(np.int32)), pa.array(class_names, type=pa.string()))
    for d in reversed(inner):  # innermost first: (k, 2, 3) -> list<fsl<fsl<x>[3]>[2]>
        values = pa.FixedSizeListArray.from_arrays(values, int(d))
    mask = pa.array(validity) if validity is not None and validity.any() else None
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values, mask=mask)
