"""Batches in deep-learning layout: torch tensors (allocated in shared memory inside a worker,
so that handing them to the main process copies nothing), ragged samples padded on request or
returned as lists, text as str, json as dict, class labels as int64."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from loaders.reader import TEXT_HTYPES, FixedColumn, TensorSource, ValueColumn, gather_pieces


@functools.lru_cache(maxsize=64)
def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    return _torch_dtype(np.dtype(dtype))


class SlabAllocator:
    """Batch tensors carved out of large shared-memory slabs, in a DataLoader worker, and the
    slabs reused once the main process is done with them.

    A tensor in its own shared memory costs, per batch, a shared-memory file, a fault for
    every fresh page (about 30 us per 48 KiB image here: most of a raw batch's cost), and a
    file descriptor handed to the main process through a socket. Here a worker keeps a pool
    of at most `MAX_SLOTS` slabs sized for `BATCHES` batches; `SlabPacker` sends each slab
    to the main process once and the batches as (slab, offset, shape) references. The main
    process (`SlabUnpacker`) hands a slab back, through the shared `ctl` flags, once the
    worker has moved past it and no tensor of it is alive any more (its storage's use count);
    until then the worker takes another slab (a fresh, unpooled one when the pool is busy).
    """

    ALIGN = 64
    BATCHES = 4  # batches per slab, once the batch size in bytes is known
    MAX_SLOTS = 8

    def __init__(self, ctl: Optional[np.ndarray] = None, max_slab_bytes: int = 64 << 20, first_slab_bytes: int = 1 << 20,
                 premade: Sequence[Any] = ()):
        self.ctl = ctl  # this worker's row of flags: 1 = the main process released that slot
        self.max_slab_bytes = max_slab_bytes
        self.slab_bytes = max([first_slab_bytes] + [st.nbytes() for st in premade])
        # pooled storages, by slot id: the ones the main process made before forking first
        # (it knows them already: nothing to send), then the ones made here
        self.slots: List[Any] = list(premade) if ctl is not None else []
        self.fresh: set = set(range(len(self.slots)))  # premade slots not faulted in yet
        self.by_ptr: Dict[int, int] = {st.data_ptr(): i for i, st in enumerate(self.slots)}  # storage address -> slab id (pooled or not)
        self.storage: Any = None
        self.slab_id = -1
        self.next_unpooled = self.MAX_SLOTS
        self.used = 0
        self.batch_bytes = 0
        self.retiring: List[int] = []  # slabs left behind, to report once no batch uses them

    def _new_slab(self, nbytes: int) -> None:
        if self.storage is not None:
            self.retiring.append(self.slab_id)
            if self.slab_id >= self.MAX_SLOTS:
                self.by_ptr.pop(self.storage.data_ptr(), None)
        size = max(self.slab_bytes, nbytes)
        if self.ctl is not None:
            for i, st in enumerate(self.slots):
                if self.ctl[i] == 1 and st.nbytes() >= size:
                    self.ctl[i] = 0
                    if i in self.fresh:
                        self.fresh.discard(i)
                        _populate(st.data_ptr(), st.nbytes())
                    self.storage, self.slab_id, self.used = st, i, 0
                    return
        st = torch.UntypedStorage._new_shared(size)
        _populate(st.data_ptr(), st.nbytes())
        if self.ctl is not None and len(self.slots) < self.MAX_SLOTS:
            sid = len(self.slots)
            self.slots.append(st)
        else:
            sid = self.next_unpooled
            self.next_unpooled += 1
        self.by_ptr[st.data_ptr()] = sid
        self.storage, self.slab_id, self.used = st, sid, 0

    def alloc(self, shape: Tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        itemsize = torch.empty(0, dtype=dtype).element_size()
        nbytes = -(-(int(np.prod(shape)) if shape else 1) * itemsize // self.ALIGN) * self.ALIGN
        if self.storage is None or self.used + nbytes > self.storage.nbytes():
            self._new_slab(nbytes)
        t = torch.empty(0, dtype=dtype).set_(self.storage, self.used // itemsize, shape)
        self.used += nbytes
        self.batch_bytes += nbytes
        return t

    def end_batch(self) -> None:
        """Size the next slabs for `BATCHES` batches like the largest one so far."""
        want = min(self.max_slab_bytes, self.BATCHES * self.batch_bytes)
        self.slab_bytes = max(self.slab_bytes, want)
        self.batch_bytes = 0

    def slab_of(self, t: torch.Tensor) -> int:
        """The id of the slab `t` lives in, or -1."""
        return self.by_ptr.get(t.untyped_storage().data_ptr(), -1)


def _populate(ptr: int, nbytes: int) -> None:
    """Fault a fresh mapping's pages in with one madvise(MADV_POPULATE_WRITE) (Linux >= 5.14)
    instead of one fault per page during the first copy; a no-op where it is not supported."""
    global _MADVISE
    if _MADVISE is None:
        try:
            import ctypes

            _MADVISE = ctypes.CDLL(None, use_errno=True).madvise
            _MADVISE.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        except Exception:  # noqa: BLE001 - not Linux: leave the pages to fault in
            _MADVISE = False
    if _MADVISE and nbytes:
        _MADVISE(ptr & ~4095, nbytes + (ptr & 4095), 23)  # MADV_POPULATE_WRITE


_MADVISE: Any = None
_SLABS: "SlabAllocator | None" = None  # set while a worker collates its batches


def set_slabs(slabs: "SlabAllocator | None") -> None:
    global _SLABS
    _SLABS = slabs


def current_slabs() -> "SlabAllocator | None":
    return _SLABS


def slab_flags(num_workers: int) -> torch.Tensor:
    """The shared flags through which the main process hands slabs back to the workers."""
    return torch.zeros((num_workers, SlabAllocator.MAX_SLOTS), dtype=torch.int32).share_memory_()


PREMADE_SLABS = 4  # per worker: enough for the batches in flight and those the loop holds


def premade_slabs(ctl: torch.Tensor, batch_bytes: int, max_slab_bytes: int = 64 << 20) -> List[List[Any]]:
    """Slabs for each worker, made in the main process before the workers start (forked
    workers share them; spawned ones get them once, with the dataset), marked free in `ctl`.
    A worker then sends no slab to the main process (a file descriptor through a socket,
    which waits on the GIL of a busy worker: tens of ms on the first batches). Their pages
    are faulted in by the worker that first uses each."""
    if batch_bytes <= 0:
        return [[] for _ in range(ctl.shape[0])]
    size = min(max_slab_bytes, SlabAllocator.BATCHES * batch_bytes)
    size = max(size, batch_bytes)
    flags = ctl.numpy()
    out = []
    for w in range(ctl.shape[0]):
        out.append([torch.UntypedStorage._new_shared(size) for _ in range(PREMADE_SLABS)])
        flags[w, :PREMADE_SLABS] = 1
    return out


class SlabRef:
    """A batch tensor as (slab, byte offset, shape, dtype): what travels instead of it."""

    __slots__ = ("slab", "offset", "shape", "dtype")

    def __init__(self, slab: int, offset: int, shape: Tuple[int, ...], dtype: torch.dtype):
        self.slab, self.offset, self.shape, self.dtype = slab, offset, shape, dtype

    def __reduce__(self):
        return SlabRef, (self.slab, self.offset, self.shape, self.dtype)


class SlabBatch:
    """What a worker sends for one batch: the slabs the main process has not seen yet, the
    batch with its slab tensors as `SlabRef`s, and the slabs no later batch will use."""

    __slots__ = ("slabs", "body", "retired")

    def __init__(self, slabs: Dict[int, torch.Tensor], body: Any, retired: List[int]):
        self.slabs, self.body, self.retired = slabs, body, retired

    def __reduce__(self):
        return SlabBatch, (self.slabs, self.body, self.retired)


def map_nested(fn: Callable[[Any], Any], v: Any) -> Any:
    """fn applied to every leaf of nested dicts, lists and (plain) tuples, structure kept."""
    if isinstance(v, dict):
        return {k: map_nested(fn, x) for k, x in v.items()}
    if isinstance(v, list):
        return [map_nested(fn, x) for x in v]
    if type(v) is tuple:
        return tuple(map_nested(fn, x) for x in v)
    return fn(v)


class SlabPacker:
    """Worker side: a batch's slab tensors -> `SlabRef`s (top-level dict, list and tuple
    members), each slab attached to the first batch that uses it."""

    def __init__(self, slabs: SlabAllocator):
        self.slabs = slabs
        self.sent: set = set(range(len(slabs.slots)))  # premade: the main process has them

    def pack(self, batch: Any) -> SlabBatch:
        new: Dict[int, torch.Tensor] = {}
        used: set = set()
        a = self.slabs
        a.end_batch()

        def ref(v: Any) -> Any:
            if not isinstance(v, torch.Tensor):
                return v
            sid = a.slab_of(v)
            if sid < 0 or not v.is_contiguous():
                return v
            used.add(sid)
            if sid not in self.sent:
                new[sid] = torch.empty(0, dtype=torch.uint8).set_(v.untyped_storage())
                self.sent.add(sid)
            return SlabRef(sid, v.storage_offset() * v.element_size(), tuple(v.shape), v.dtype)

        body = map_nested(ref, batch)
        retired = [sid for sid in a.retiring if sid not in used and sid != a.slab_id]
        if retired:
            a.retiring = [sid for sid in a.retiring if sid not in retired]
            self.sent.difference_update(sid for sid in retired if sid >= a.MAX_SLOTS)
        return SlabBatch(new, body, retired)


class SlabUnpacker:
    """Main-process side: keeps the workers' slabs, turns `SlabRef`s back into tensors (views
    of a slab: no copy), and hands a retired pooled slab back to its worker once none of
    its tensors is alive (only this object holds its storage)."""

    def __init__(self, ctl: Optional[torch.Tensor] = None, premade: Sequence[Sequence[Any]] = ()):
        self.ctl = ctl.numpy() if ctl is not None else None
        self.slabs: Dict[Tuple[int, int], Any] = {(w, i): st for w, sts in enumerate(premade) for i, st in enumerate(sts)}
        self.retired: List[Tuple[int, int]] = []

    def unpack(self, worker: int, sb: SlabBatch) -> Any:
        for sid, t in sb.slabs.items():
            self.slabs[(worker, sid)] = t.untyped_storage()

        def val(v: Any) -> Any:
            if not isinstance(v, SlabRef):
                return v
            itemsize = torch.empty(0, dtype=v.dtype).element_size()
            return torch.empty(0, dtype=v.dtype).set_(self.slabs[(worker, v.slab)], v.offset // itemsize, v.shape)

        out = map_nested(val, sb.body)
        self.retired.extend((worker, sid) for sid in sb.retired)
        self.reclaim()
        return out

    def reclaim(self) -> None:
        keep = []
        for key in self.retired:
            w, sid = key
            if sid >= SlabAllocator.MAX_SLOTS or self.ctl is None:
                self.slabs.pop(key, None)  # never reused: the batches still alive keep it
            elif torch._C._storage_Use_Count(self.slabs[key]._cdata) == 1:
                self.ctl[w, sid] = 1
            else:
                keep.append(key)
        self.retired = keep


def empty_batch(shape: Tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker it lives in shared memory already
    (carved out of a slab while the worker has a `SlabAllocator` set)."""
    tdt = torch_dtype(dtype)
    if _SLABS is not None:
        return _SLABS.alloc(tuple(shape), tdt)
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=tdt)
    numel = int(np.prod(shape)) if shape else 1
    storage = torch.empty(0, dtype=tdt)._typed_storage()._new_shared(numel)
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
    _native.gather(srcs, np.arange(n, dtype=np.int64), np.zeros(n, np.int64), np.full(n, nb, np.int64), view.reshape(-1).view(np.uint8), np.arange(n, dtype=np.int64) * nb)
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


def _same_keys(values: Sequence[Mapping]) -> bool:
    k0 = set(values[0])
    return all(set(v) == k0 for v in values)


def present(src: TensorSource, v: Any) -> Any:
    """A decoded value as a sample holds it: class labels as int64 (a single label as a scalar)."""
    if isinstance(v, np.ndarray) and src.base_htype == "class_label":
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
        if src.base_htype != "class_label":
            out = empty_batch(shape, pieces[0][0].dtype)
            gather_pieces(pieces, out.numpy())
            return out
        raw = np.empty(shape, pieces[0][0].dtype)
        gather_pieces(pieces, raw)
        out = empty_batch((n,) if src.squeeze_scalar else shape, np.dtype(np.int64))
        out.numpy()[...] = raw.reshape(out.shape)
        return out
    values = [present(src, c.value(k)) for c, loc in pieces for k in loc.tolist()]
    if src.base_htype in TEXT_HTYPES or src.decode_method != "numpy":
        return values
    return collate_values(values, pad, False)


def sample_value(src: TensorSource, col: Any, k: int, copy: bool = True) -> Any:
    """One sample's value for a transform or a user collate (fixed samples are copied out of
    the chunk so that the transform may write into them)."""
    v = col.value(k)
    if isinstance(col, FixedColumn) and copy:
        v = v.copy()
    return present(src, v)


__all__ = ["collate_values", "collate_pieces", "sample_value", "present", "empty_batch", "stack_arrays", "pad_arrays", "ValueColumn"]
