"""Batches in deep-learning layout: torch tensors (in a worker, views of a chunk buffer or carved
out of a slab in shared memory, so that handing them to the main process copies nothing),
ragged samples padded on request or returned as lists, text as str, json as dict, class labels
as int64."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from lakeformat.htypes import htype_of
from lakeformat.integrations.torch.reader import FixedColumn, TensorSource, ValueColumn, gather_pieces
from lakeformat.integrations.torch.slabs import current_slabs


@functools.lru_cache(maxsize=64)
def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    return _torch_dtype(np.dtype(dtype))


def empty_batch(shape: Tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker it lives in shared memory already
    (carved out of a slab while the worker has a `SlabAllocator` set)."""
    tdt = torch_dtype(dtype)
    slabs = current_slabs()
    if slabs is not None:
        return slabs.alloc(tuple(shape), tdt)
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=tdt)
    numel = int(np.prod(shape)) if shape else 1
    # torch leaves _typed_storage/_new_shared unannotated
    storage = torch.empty(0, dtype=tdt)._typed_storage()._new_shared(numel)  # type: ignore[no-untyped-call]
    return torch.empty(0, dtype=tdt).new(storage).view(shape)


def stack_arrays(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """Same-shape arrays -> one tensor, copied once (natively, GIL released)."""
    a0 = arrays[0]
    out = empty_batch((len(arrays),) + a0.shape, a0.dtype)
    if a0.dtype == object:
        raise TypeError("object arrays do not collate into a tensor")
    view = out.numpy()
    nb = a0.nbytes
    if nb == 0:
        return out
    from lakeformat import _native

    srcs = [np.ascontiguousarray(a) for a in arrays]
    n = len(srcs)
    # ndarrays are Buffers; numpy's stubs declare __buffer__ only for Python >= 3.12
    _native.gather(srcs, np.arange(n, dtype=np.int64), np.zeros(n, np.int64), np.full(n, nb, np.int64), view.reshape(-1).view(np.uint8), np.arange(n, dtype=np.int64) * nb)  # type: ignore[arg-type]
    return out


def pad_arrays(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """Ragged arrays of one rank -> one tensor padded with zeros to the largest shape."""
    ndim = arrays[0].ndim
    if any(a.ndim != ndim for a in arrays):
        raise ValueError("samples of different ranks cannot be padded into one tensor")
    shape = tuple(max(a.shape[d] for a in arrays) for d in range(ndim))
    out = empty_batch((len(arrays),) + shape, arrays[0].dtype)
    out.zero_()
    view = out.numpy()
    for i, a in enumerate(arrays):
        view[(i,) + tuple(slice(0, s) for s in a.shape)] = a
    return out


def collate_values(values: List[Any], pad: bool, top: bool = True) -> Any:
    """Default collation of one field's values across a batch (a sample dict is collated per
    key at the top level only: a json value deeper down stays a dict)."""
    if not values:
        return []
    e = values[0]
    if isinstance(e, Mapping):
        if top and all(isinstance(v, Mapping) for v in values) and _same_keys(values):
            return {k: collate_values([v[k] for v in values], pad, False) for k in e}
        return list(values)
    if isinstance(e, torch.Tensor):
        if all(isinstance(v, torch.Tensor) and v.shape == e.shape and v.dtype == e.dtype for v in values):
            return torch.utils.data.default_collate(list(values))
        if pad and all(isinstance(v, torch.Tensor) for v in values):
            return pad_arrays([v.numpy() for v in values])
        return list(values)
    if isinstance(e, np.ndarray) and e.dtype != object:
        if all(isinstance(v, np.ndarray) and v.shape == e.shape and v.dtype == e.dtype for v in values):
            return stack_arrays(values)
        if pad and all(isinstance(v, np.ndarray) and v.dtype == e.dtype for v in values):
            return pad_arrays(values)
        return [torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) and v.dtype != object else v for v in values]
    if isinstance(e, (bool, np.bool_)) and all(isinstance(v, (bool, np.bool_)) for v in values):
        return torch.tensor([bool(v) for v in values])
    if isinstance(e, (int, np.integer)) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return torch.tensor([int(v) for v in values], dtype=torch.int64)
    if isinstance(e, (float, np.floating)) and all(isinstance(v, (int, float, np.number)) for v in values):
        return torch.tensor([float(v) for v in values], dtype=torch.float64 if isinstance(e, (float, np.float64)) else torch_dtype(np.asarray(e).dtype))
    if isinstance(e, tuple) and all(isinstance(v, tuple) and len(v) == len(e) for v in values):
        return [collate_values(list(col), pad, top) for col in zip(*values)]
    return list(values)


def _same_keys(values: Sequence[Mapping[Any, Any]]) -> bool:
    k0 = set(values[0])
    return all(set(v) == k0 for v in values)


def present(src: TensorSource, v: Any) -> Any:
    """A decoded value as a sample holds it: class labels as int64 (a single label as a scalar)."""
    if isinstance(v, np.ndarray) and htype_of(src.base_htype).label:
        v = v.astype(np.int64, copy=False)
        if src.squeeze_scalar or (v.shape == (1,) and src.max_shape == (1,)):
            return np.int64(v.reshape(-1)[0]) if v.size else v
    return v


def collate_pieces(src: TensorSource, pieces: List[Tuple[Any, np.ndarray]], pad: bool) -> Any:
    """One tensor's batch straight from task columns, given as (column, local indices)
    pieces in batch order: fixed-shape samples are gathered from their chunks (or from the
    array their task decoded them into) into the batch in one native copy."""
    if pieces and all(isinstance(c, FixedColumn) for c, _ in pieces):
        n = sum(len(loc) for _, loc in pieces)
        shape = (n,) + tuple(pieces[0][0].shape)
        if not htype_of(src.base_htype).label:
            out = _chunk_view(pieces, shape)
            if out is None:
                out = empty_batch(shape, pieces[0][0].dtype)
                gather_pieces(pieces, out.numpy())
            return out
        raw = np.empty(shape, pieces[0][0].dtype)
        gather_pieces(pieces, raw)
        out = empty_batch((n,) if src.squeeze_scalar else shape, np.dtype(np.int64))
        out.numpy()[...] = raw.reshape(out.shape)
        return out
    values = [present(src, c.value(k)) for c, loc in pieces for k in loc.tolist()]
    if htype_of(src.base_htype).text_like or src.decode_method != "numpy":
        return values
    return collate_values(values, pad, False)


def _chunk_view(pieces: List[Tuple[Any, np.ndarray]], shape: Tuple[int, ...]) -> Optional[torch.Tensor]:
    """The batch as a view of the chunk buffer its samples lie in, side by side and in
    order (the common case of an unshuffled epoch over raw samples); None otherwise."""
    slabs = current_slabs()
    if slabs is None or not slabs.chunk_slots:
        return None
    buf = None
    first = expect = 0
    for col, loc in pieces:
        if not len(loc):
            continue
        ids = col.src[loc]
        starts = col.start[loc]
        b = col.buffers[int(ids[0])]
        if buf is None:
            buf, first, expect = b, int(starts[0]), int(starts[0])
        elif b is not buf:
            return None
        if (ids != ids[0]).any() or (np.diff(starts) != col.nbytes).any() or int(starts[0]) != expect:
            return None
        expect = int(starts[-1]) + col.nbytes
    if buf is None:
        return None
    return slabs.view_of(buf, first, shape, torch_dtype(pieces[0][0].dtype))


def sample_value(src: TensorSource, col: Any, k: int, copy: bool = True) -> Any:
    """One sample's value for a transform or a user collate (fixed samples are copied out of
    the chunk so that the transform may write into them)."""
    v = col.value(k)
    if isinstance(col, FixedColumn) and copy:
        v = v.copy()
    return present(src, v)


__all__ = ["collate_values", "collate_pieces", "sample_value", "present", "empty_batch", "stack_arrays", "pad_arrays", "ValueColumn"]
