"""Shared memory between a DataLoader worker and the main process: slabs that batches are
carved out of, chunk buffers that batches are views of, and the protocol that reuses both.

A tensor in its own shared memory costs, per batch, a shared-memory file, a fault for every
fresh page (2-5 us per 4 KiB page on a VM) and a file descriptor handed to the main process
through a socket (which waits on the GIL of a busy worker). Here the main process makes each
worker's shared memory before the workers start (`premade`): forked workers share it, and
nothing but (slab, offset, shape) references travels with the batches.

Two kinds of slots, numbered per worker:

* slabs (ids `0 .. MAX_SLOTS - 1`): a worker carves `BATCHES` batches out of one, then takes
  another;
* chunk buffers (ids `MAX_SLOTS .. POOLED - 1`): a worker decompresses or reads a chunk into
  one, and a batch whose samples lie side by side in it is a view of it (no copy at all).

A slot is the worker's while its flag in `ctl` is 0. The worker *retires* it (reports it with
a batch) once no later batch will use it: a slab when it moves past it, a chunk buffer when
its last view in the worker is gone. The main process (`SlabUnpacker`) sets the flag back to
1 once none of its tensors is alive either (its storage's use count). Slots made by a worker
beyond these (`POOLED` and up) are sent once and never reused.
"""
from __future__ import annotations

import collections
import mmap
import threading
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch

Premade = Dict[int, torch.UntypedStorage]  # slot id -> storage, for one worker


def _shared_storage(nbytes: int) -> torch.UntypedStorage:
    """A fresh storage of `nbytes` in shared memory."""
    st: torch.UntypedStorage = torch.UntypedStorage._new_shared(nbytes)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    return st


def _inherited_storage(nbytes: int) -> torch.UntypedStorage:
    """A storage of `nbytes` in an anonymous shared mapping: forked workers share it as it is,
    and its pages are only allocated where a worker first writes them. A torch shared-memory
    storage allocates every page up front (about 2.5 ms per 16 MiB here), in the main process,
    before the workers can start; this one costs nothing until used. Forked workers only:
    it cannot be handed to another process."""
    mm = mmap.mmap(-1, max(1, nbytes))
    st: torch.UntypedStorage = torch.frombuffer(mm, dtype=torch.uint8).untyped_storage()  # keeps `mm` alive
    return st


def _on_storage(st: torch.UntypedStorage, offset: int, shape: Tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A contiguous tensor of `shape` over `st` from element `offset` on (no copy)."""
    # torch's stub wants a stride too; left out, set_ gives the contiguous one
    t: torch.Tensor = torch.empty(0, dtype=dtype).set_(st, offset, shape)  # type: ignore[call-overload]
    return t


class SlabAllocator:
    """Worker side: batch tensors carved out of slabs, and chunk buffers handed out to the
    threads that fetch chunks."""

    ALIGN = 64
    # batches per slab, once the batch size in bytes is known: one, so that a slab is free
    # again as soon as its batch is gone, and a worker cycles through a few (`slabs_in_use`)
    # whose pages are faulted in already, instead of touching fresh shared memory
    BATCHES = 1
    MAX_SLOTS = 8  # slab slots
    CHUNK_SLOTS = 3  # chunk-buffer slots
    POOLED = MAX_SLOTS + CHUNK_SLOTS

    def __init__(self, ctl: Optional[np.ndarray] = None, max_slab_bytes: int = 64 << 20, first_slab_bytes: int = 1 << 20,
                 premade: Optional[Premade] = None):
        premade = premade if ctl is not None else None
        premade = premade or {}
        self.ctl = ctl  # this worker's row of flags: 1 = the main process released that slot
        self.max_slab_bytes = max_slab_bytes
        slabs = {i: st for i, st in premade.items() if i < self.MAX_SLOTS}
        # the premade slabs' size where there are some (the main process sized them for a
        # batch: a larger first size would pass them all over), else `first_slab_bytes`
        self.slab_bytes = max(st.nbytes() for st in slabs.values()) if slabs else first_slab_bytes
        # pooled slabs by slot id: the premade ones first (the main process knows them)
        self.slots: List[torch.UntypedStorage] = [slabs[i] for i in sorted(slabs)]
        self.chunk_slots: Dict[int, torch.UntypedStorage] = {i: st for i, st in premade.items() if i >= self.MAX_SLOTS}
        self.by_ptr: Dict[int, int] = {st.data_ptr(): i for i, st in premade.items()}  # storage address -> slot id
        self.storage: Optional[torch.UntypedStorage] = None
        self.slab_id = -1
        self.next_unpooled = self.POOLED
        self.used = 0
        self.batch_bytes = 0
        self.lock = threading.Lock()  # chunk buffers are taken in the fetch threads
        self.retiring: List[int] = []  # slots left behind, to report once no batch uses them
        # chunk buffers whose last view is gone: a finalizer appends (atomic, no lock: it runs
        # wherever the last reference goes, a garbage collection under `lock` included)
        self.released: Deque[int] = collections.deque()

    @property
    def premade_ids(self) -> List[int]:
        return list(range(len(self.slots))) + list(self.chunk_slots)

    def _take(self, sid: int, st: torch.UntypedStorage) -> None:
        assert self.ctl is not None, "only pooled slots (with flags) are taken"
        self.ctl[sid] = 0

    def _new_slab(self, nbytes: int) -> None:
        if self.storage is not None:
            self.retiring.append(self.slab_id)
            if self.slab_id >= self.POOLED:
                self.by_ptr.pop(self.storage.data_ptr(), None)
        size = max(self.slab_bytes, nbytes)
        if self.ctl is not None:
            for i, st in enumerate(self.slots):
                if self.ctl[i] == 1 and st.nbytes() >= size:
                    self._take(i, st)
                    self.storage, self.slab_id, self.used = st, i, 0
                    return
        st = _shared_storage(size)
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
        assert self.storage is not None  # _new_slab set it
        t = _on_storage(self.storage, self.used // itemsize, shape, dtype)
        self.used += nbytes
        self.batch_bytes += nbytes
        return t

    def end_batch(self) -> None:
        """Size the next slabs for `BATCHES` batches like the largest one so far."""
        want = min(self.max_slab_bytes, self.BATCHES * self.batch_bytes)
        self.slab_bytes = max(self.slab_bytes, want)
        self.batch_bytes = 0

    def slab_of(self, t: torch.Tensor) -> int:
        """The id of the slot `t` lives in, or -1."""
        return self.by_ptr.get(t.untyped_storage().data_ptr(), -1)

    # -- chunk buffers ----------------------------------------------------------------------
    def chunk_buffer(self, nbytes: int) -> Optional[np.ndarray]:
        """A free chunk buffer of at least `nbytes` as a uint8 array of exactly that size, or
        None (none free, or none that large). The slot is retired when the array and every
        view of it are gone."""
        if self.ctl is None:
            return None
        with self.lock:
            for sid, st in self.chunk_slots.items():
                if self.ctl[sid] == 1 and st.nbytes() >= nbytes:
                    self._take(sid, st)
                    break
            else:
                return None
        arr = _on_storage(st, 0, (nbytes,), torch.uint8).numpy()
        weakref.finalize(arr, self._retire, sid)
        return arr

    def _retire(self, sid: int) -> None:
        self.released.append(sid)

    def view_of(self, buf: Any, offset: int, shape: Tuple[int, ...], dtype: torch.dtype) -> Optional[torch.Tensor]:
        """A tensor over bytes `offset ..` of `buf` when `buf` lies in a chunk buffer (else
        None): the batch is then a view of the chunk, no copy."""
        if not self.chunk_slots:
            return None
        addr = np.frombuffer(buf, np.uint8).ctypes.data + offset
        itemsize = torch.empty(0, dtype=dtype).element_size()
        for st in self.chunk_slots.values():
            base = st.data_ptr()
            if base <= addr and addr + int(np.prod(shape)) * itemsize <= base + st.nbytes():
                if (addr - base) % itemsize:
                    return None
                return _on_storage(st, (addr - base) // itemsize, shape, dtype)
        return None


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
    """The shared flags through which the main process hands slots back to the workers."""
    flags = torch.zeros((num_workers, SlabAllocator.POOLED), dtype=torch.int32)
    flags.share_memory_()  # type: ignore[no-untyped-call]  # torch leaves it unannotated; in place
    return flags


PREMADE_SLABS = 5  # per worker, at the default prefetch factor: see `slabs_in_use`


def slabs_in_use(prefetch_factor: int) -> int:
    """Slabs of one batch each that a worker has in use at most while the main process lets
    go of every batch before taking the next: the one it fills, those queued for the main
    process (`prefetch_factor`), the one the main process holds, and one released there but
    not yet handed back (a slot returns when the main process unpacks a later batch)."""
    return min(SlabAllocator.MAX_SLOTS, max(1, int(prefetch_factor)) + 3)


def premade_slots(ctl: torch.Tensor, batch_bytes: int, chunk_bytes: int = 0, max_slab_bytes: int = 64 << 20,
                  forked: bool = False, count: int = PREMADE_SLABS) -> List[Premade]:
    """Each worker's slabs (for batches of `batch_bytes`) and chunk buffers (of `chunk_bytes`;
    none when 0), made in the main process before the workers start and marked free in
    `ctl`. Forked workers (`forked`) share anonymous shared mappings, whose pages a worker
    allocates as it first writes them (a slab may only ever see small tensors); spawned ones
    get torch shared-memory storages once, with the dataset."""
    make = _inherited_storage if forked else _shared_storage
    flags = ctl.numpy()
    out: List[Premade] = []
    for w in range(ctl.shape[0]):
        mine: Premade = {}
        if batch_bytes > 0:
            size = max(batch_bytes, min(max_slab_bytes, SlabAllocator.BATCHES * batch_bytes))
            # with chunk buffers most batches are views of them: fewer slabs see use
            for i in range(count if chunk_bytes <= 0 else max(1, count // 2)):
                mine[i] = make(size)
        if chunk_bytes > 0:
            for i in range(SlabAllocator.MAX_SLOTS, SlabAllocator.POOLED):
                mine[i] = make(chunk_bytes)
        for i in mine:
            flags[w, i] = 1
        out.append(mine)
    return out


class SlabRef:
    """A batch tensor as (slot, byte offset, shape, dtype): what travels instead of it."""

    __slots__ = ("slab", "offset", "shape", "dtype")

    def __init__(self, slab: int, offset: int, shape: Tuple[int, ...], dtype: torch.dtype):
        self.slab, self.offset, self.shape, self.dtype = slab, offset, shape, dtype

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return SlabRef, (self.slab, self.offset, self.shape, self.dtype)


class SlabBatch:
    """What a worker sends for one batch: the slots the main process has not seen yet, the
    batch with its shared tensors as `SlabRef`s, and the slots no later batch will use."""

    __slots__ = ("slabs", "body", "retired")

    def __init__(self, slabs: Dict[int, torch.Tensor], body: Any, retired: List[int]):
        self.slabs, self.body, self.retired = slabs, body, retired

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
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
    """Worker side: a batch's shared tensors -> `SlabRef`s (top-level dict, list and tuple
    members), each slot attached to the first batch that uses it."""

    def __init__(self, slabs: SlabAllocator):
        self.slabs = slabs
        self.sent: Set[int] = set(slabs.premade_ids)  # the main process made them

    def pack(self, batch: Any) -> SlabBatch:
        new: Dict[int, torch.Tensor] = {}
        used: Set[int] = set()
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
            return SlabRef(sid, int(v.storage_offset()) * v.element_size(), tuple(v.shape), v.dtype)

        body = map_nested(ref, batch)
        while a.released:
            a.retiring.append(a.released.popleft())
        retired = [sid for sid in a.retiring if sid not in used and sid != a.slab_id]
        if retired:
            a.retiring = [sid for sid in a.retiring if sid not in retired]
        self.sent.difference_update(sid for sid in retired if sid >= a.POOLED)
        return SlabBatch(new, body, retired)


class SlabUnpacker:
    """Main-process side: keeps the workers' slots, turns `SlabRef`s back into tensors (views:
    no copy), and hands a retired pooled slot back to its worker once none of its tensors is
    alive (only this object holds its storage)."""

    def __init__(self, ctl: Optional[torch.Tensor] = None, premade: Sequence[Premade] = ()):
        self.ctl = ctl.numpy() if ctl is not None else None
        self.slabs: Dict[Tuple[int, int], torch.UntypedStorage] = {(w, i): st for w, slots in enumerate(premade) for i, st in slots.items()}
        self.retired: List[Tuple[int, int]] = []

    def unpack(self, worker: int, sb: SlabBatch) -> Any:
        for sid, t in sb.slabs.items():
            self.slabs[(worker, sid)] = t.untyped_storage()

        def val(v: Any) -> Any:
            if not isinstance(v, SlabRef):
                return v
            itemsize = torch.empty(0, dtype=v.dtype).element_size()
            return _on_storage(self.slabs[(worker, v.slab)], v.offset // itemsize, v.shape, v.dtype)

        out = map_nested(val, sb.body)
        self.retired.extend((worker, sid) for sid in sb.retired)
        self.reclaim()
        return out

    def reclaim(self) -> None:
        keep = []
        for key in self.retired:
            w, sid = key
            if sid >= SlabAllocator.POOLED or self.ctl is None:
                self.slabs.pop(key, None)  # never reused: the batches still alive keep it
            elif torch._C._storage_Use_Count(self.slabs[key]._cdata) == 1:
                self.ctl[w, sid] = 1
            else:
                keep.append(key)
        self.retired = keep
