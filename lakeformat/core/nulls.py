"""Nulls of numeric tensors: a hidden validity tensor beside the data.

A null written to a numeric tensor (`None` in a list, a masked entry of a NumPy masked array)
is stored as a *placeholder*, a sample of ones in shape (a scalar column stays dense), and True
in a hidden bool tensor whose name the tensor's info holds under `null_mask` (`_<name>_null`,
one (1,) sample per row, True where null). Placeholders: NaN for floats, int64 min (NaT once
viewed as datetime64) for time columns, 0 / False otherwise. deeplake 3.9.52 reads the
placeholders (and sees the mask as a hidden tensor). The mask is created at a tensor's first
null; rows it does not reach (a writer that did not know it) are not null.

A tensor whose info says `null_placeholder: "empty"` (byte blobs, ragged arrays) keeps a null
as an empty sample instead; the mask still tells it from `[]` or b"".

Datasets written before masks stored a null as an empty sample (shape (0,)): in a numeric
tensor whose other samples share one shape, an empty sample still reads as null.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, cast

import numpy as np

from lakeformat.core import keys
from lakeformat.htypes import is_numeric_dtype

if TYPE_CHECKING:  # pragma: no cover
    from lakeformat.core.chunk_engine import ChunkEngine
    from lakeformat.core.dataset import Dataset

NULL_MASK = "null_mask"  # tensor info key naming the validity tensor
NULLABLE = "nullable"  # tensor info: True when the tensor keeps nulls as placeholders + mask
PLACEHOLDER = "null_placeholder"  # tensor info: "empty" keeps a null an empty sample (mask still)
MASKABLE_HTYPES = ("generic", "embedding")
TIME_TYPES = ("timestamp", "date", "time")
NAT = np.iinfo(np.int64).min


def declared(eng: "ChunkEngine") -> bool:
    """Whether the tensor opted into typed nulls (`create_tensor(..., nullable=True)`, as the
    connectors do) or already keeps a validity tensor. Other tensors keep deeplake 3.x's
    meaning of None: an empty sample."""
    info = eng.info or {}
    return bool(info.get(NULLABLE)) or isinstance(info.get(NULL_MASK), str)


def maskable(eng: "ChunkEngine") -> bool:
    """Whether nulls of this tensor are placeholders plus a mask (declared nullable, numeric,
    not a sequence or link, no image compression); other tensors keep their own null (a null
    text, JSON null, an empty sample)."""
    m = eng.meta
    return (
        declared(eng) and not m.hidden and not m.is_sequence and not m.is_link and m.base_htype in MASKABLE_HTYPES
        and m.sample_compression in (None, "lz4", "zstd") and m.dtype not in ("str", "Any", "List")
    )


def mask_key(ds: "Dataset", eng: "ChunkEngine") -> Optional[str]:
    """The key of the tensor's validity tensor, None when it has none (yet)."""
    k = eng.info.get(NULL_MASK)
    return k if isinstance(k, str) and k in ds.meta.tensors else None


def placeholder(dtype: np.dtype, info: Any) -> Any:
    """The value stored for a null: NaN, NaT (int64 min) for time columns, else zero."""
    if dtype.kind == "f":
        return np.nan
    if dtype == np.int64 and (info or {}).get("lakeformat_type") in TIME_TYPES:
        return NAT
    return 0


@dataclass
class NullWrite:
    """The mask rows that go with a write of `n` rows of tensor `key`."""

    key: str
    nulls: np.ndarray  # bool (n,), True where null
    force: bool = False  # keep a mask even without a null (an empty sample stored on purpose)


def _dtype_of(eng: "ChunkEngine", present: List[Any]) -> Optional[np.dtype]:
    if is_numeric_dtype(eng.meta.dtype):
        return np.dtype(eng.meta.dtype)
    for v in present:
        a = np.asarray(v)
        if a.dtype.kind in "biuf":
            return a.dtype
    return None


def _shape_of(eng: "ChunkEngine", present: List[Any]) -> Optional[Tuple[int, ...]]:
    """The placeholder's shape: all ones, of the column's rank, so that it depends on nothing
    but the column (the same bytes however rows were batched); a scalar column stays dense.
    An embedding keeps its vectors' one shape."""
    m = eng.meta
    if (eng.info or {}).get(PLACEHOLDER) == "empty":  # a blob / ragged array column: no made-up bytes
        return None
    if m.base_htype == "embedding":
        shapes = {np.shape(v) or (1,) for v in present}
        if eng.num_samples and m.min_shape and m.min_shape == m.max_shape and all(m.max_shape):
            shapes.add(tuple(m.max_shape))
        return shapes.pop() if len(shapes) == 1 else None
    if eng.num_samples and m.max_shape:
        ndim = len(m.max_shape)
    else:
        ndim = max(1, np.ndim(present[0])) if present else 1
    return (1,) * ndim


def split(ds: "Dataset", key: str, values: Any) -> Tuple[Any, Optional[NullWrite]]:
    """`values` for a write of tensor `key` with nulls replaced by placeholders, and the mask
    rows to write with them (None when the tensor keeps no mask and the batch has no null)."""
    eng = ds.session.engine(key)
    if not maskable(eng):
        return values, None
    has_mask = mask_key(ds, eng) is not None
    if isinstance(values, np.ma.MaskedArray):
        m = np.ma.getmaskarray(values)
        null = np.asarray(m.reshape(len(m), -1).any(axis=1)) if m.ndim > 1 else m.copy()
        data = np.array(values.data, copy=True)
        if null.any():
            # the tensor's dtype picks the placeholder; the serializer still judges the cast
            ph = placeholder(_dtype_of(eng, [data[:0]]) or data.dtype, eng.info)
            if ph is np.nan and data.dtype.kind != "f":
                data = data.astype(np.float64)
            data[null] = ph
        elif not has_mask:
            return data, None
        return data, NullWrite(key, null)
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values, (NullWrite(key, np.zeros(len(values), bool)) if has_mask else None)
    vals = list(values)
    null = np.fromiter((v is None for v in vals), bool, count=len(vals))
    if not null.any():
        # an empty array stored on purpose needs the mask, or it would read as an old null
        empty = not has_mask and any(np.size(v) == 0 for v in vals if not isinstance(v, (str, bytes)))
        return vals, (NullWrite(key, null, force=empty) if has_mask or empty else None)
    present = [v for v in vals if v is not None]
    dt = _dtype_of(eng, present)
    shape = _shape_of(eng, present)
    if dt is not None and shape is not None:
        fill = np.full(shape, placeholder(dt, eng.info), dtype=dt)
        vals = [fill if v is None else v for v in vals]
    return vals, NullWrite(key, null)


def legacy_nulls(ds: "Dataset", key: str, rows: np.ndarray) -> np.ndarray:
    """Nulls of rows stored before masks: empty samples of a numeric tensor whose non-empty
    samples share one shape."""
    from lakeformat.core.tensor import Tensor

    eng = ds.session.engine(key)
    m = eng.meta
    out = np.zeros(len(rows), bool)
    if not len(rows) or not maskable(eng) or not m.min_shape or all(m.min_shape):
        return out
    t = Tensor(key, key, ds)
    shapes = t._item_shapes(np.asarray(rows, np.int64))
    empty = shapes.prod(axis=1) == 0 if shapes.shape[1] else np.ones(len(rows), bool)
    full = shapes[~empty]
    if len(full) and len({tuple(s) for s in full.tolist()}) > 1:
        return out
    return empty


def _create_mask(ds: "Dataset", key: str) -> str:
    """A new, empty validity tensor for `key`, named in its info."""
    eng = ds.session.engine(key)
    name = keys.hidden_key(key, "null")
    k = 1
    while name in ds.meta.tensors:
        name, k = keys.hidden_key(key, f"null{k}"), k + 1
    st = ds.session
    st.with_depth += 1  # flushed with the write it serves, not on its own
    try:
        ds.create_tensor(name, htype="generic", dtype="bool", hidden=True, create_sample_info_tensor=False,
                         create_shape_tensor=False, create_id_tensor=False)
    finally:
        st.with_depth -= 1
    eng.info[NULL_MASK] = name
    eng.info_dirty = True
    eng.commit_diff.modify_info()
    return name


def _mask_at(ds: "Dataset", key: str, length: int) -> str:
    """The validity tensor of `key`, `length` rows long: created when missing (its rows
    backfilled by the legacy rule), padded with False or cut (a crash left it ahead)."""
    eng = ds.session.engine(key)
    mkey = mask_key(ds, eng)
    if mkey is None:
        backfill = legacy_nulls(ds, key, np.arange(length, dtype=np.int64))
        mkey = _create_mask(ds, key)
        if length:
            ds.session.engine(mkey).extend(ds.session.serialize(mkey, backfill.reshape(-1, 1)))
        return mkey
    h = ds.session.engine(mkey)
    if h.num_samples > length:
        h.clamp(length)
    elif h.num_samples < length:
        h.extend(ds.session.serialize(mkey, np.zeros((length - h.num_samples, 1), bool)))
    return mkey


def apply_extend(ds: "Dataset", nw: Optional[NullWrite], parent_before: int) -> None:
    """Extend the mask with the rows of a write the parent has taken (`parent_before`: its
    length before the write)."""
    if nw is None:
        return
    if mask_key(ds, ds.session.engine(nw.key)) is None and not nw.nulls.any() and not nw.force:
        return
    mkey = _mask_at(ds, nw.key, parent_before)
    ds.session.engine(mkey).extend(ds.session.serialize(mkey, nw.nulls.reshape(-1, 1)))


def apply_update(ds: "Dataset", nw: Optional[NullWrite], items: List[int]) -> None:
    """Set the mask rows of replaced samples `items`."""
    if nw is None:
        return
    eng = ds.session.engine(nw.key)
    if mask_key(ds, eng) is None and not nw.nulls.any():
        return
    mkey = _mask_at(ds, nw.key, eng.num_samples)
    # update_samples takes any batch a tensor write takes (here one mask row per item)
    ds.update_samples(mkey, list(items), cast(List[Any], nw.nulls.reshape(-1, 1)))


def pop_rows(ds: "Dataset", eng: "ChunkEngine", idx: np.ndarray) -> None:
    """Remove rows `idx` (sorted) of the validity tensor with its parent's."""
    mkey = mask_key(ds, eng)
    if mkey is None:
        return
    h = ds.session.engine(mkey)
    idx = np.asarray(idx, np.int64)
    items = idx[: int(np.searchsorted(idx, h.num_samples))]
    if len(items):
        h.pop_samples(items, None)


def read(ds: "Dataset", key: str, rows: np.ndarray) -> np.ndarray:
    """Whether each of `rows` is null: the mask where there is one, else the legacy rule."""
    from lakeformat.core.tensor import Tensor

    eng = ds.session.engine(key)
    rows = np.asarray(rows, np.int64)
    mkey = mask_key(ds, eng)
    if mkey is None:
        return legacy_nulls(ds, key, rows)
    h = ds.session.engine(mkey)
    out = np.zeros(len(rows), bool)
    inside = rows < h.num_samples
    if inside.any():
        vals = Tensor(mkey, mkey, ds)._read(rows[inside], False)
        out[inside] = np.asarray(vals, bool).reshape(int(inside.sum()), -1)[:, 0]
    # rows written before the mask existed, by a writer that did not keep it, are as stored
    if (~inside).any():
        out[~inside] = legacy_nulls(ds, key, rows[~inside])
    return out
