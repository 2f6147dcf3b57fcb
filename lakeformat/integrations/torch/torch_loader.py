"""The torch side: an IterableDataset whose workers each read their slice of the epoch's plan,
and `LakeDataLoader`, which drives a `torch.utils.data.DataLoader` over it and keeps the
state needed to resume mid-epoch."""
from __future__ import annotations

import contextlib
import os
import secrets
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lakeformat import constants as C

from lakeformat.integrations.torch import slabs
from lakeformat.integrations.torch.collate import collate_pieces, collate_values, empty_batch, sample_value
from lakeformat.integrations.torch.errors import LoaderError, SampleLoadError
from lakeformat.integrations.torch.pipeline import ReadJob, primary_rows, stream_runs
from lakeformat.integrations.torch.checksum_tables import gather_tables
from lakeformat.integrations.torch.plan import EpochPlan, worker_count, worker_plan
from lakeformat.integrations.torch.direct_s3 import metadata_reads, url_signer
from lakeformat.integrations.torch.reader import DECODE_METHODS, TensorSource
from lakeformat.integrations.torch.slabs import SlabBatch, SlabUnpacker, premade_slots, slab_flags

STATE_VERSION = 1


def _passthrough(x: Any) -> Any:
    return x


class _BatchInfo(dict[str, int]):
    """What a worker tells the main process with each batch: its id, how many entries of its
    order it has consumed (yielded, skipped or dropped) and how many it skipped on errors."""


class LakeIterableDataset(IterableDataset[Tuple[Any, _BatchInfo]]):
    """Yields (batch, info) pairs; one per batch, and a last (None, info) per worker."""

    def __init__(self, job: ReadJob, batch_size: int, drop_last: bool, transform: Optional[Callable[..., Any]],
                 tensor_transforms: Dict[str, Callable[..., Any]], transform_kwargs: Dict[str, Any],
                 collate_fn: Optional[Callable[..., Any]], pad_tensors: bool, ignore_errors: bool, return_index: bool):
        super().__init__()
        self.job = job
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.transform = transform
        self.tensor_transforms = tensor_transforms
        self.transform_kwargs = transform_kwargs
        self.collate_fn = collate_fn
        self.pad_tensors = pad_tensors
        self.ignore_errors = ignore_errors
        self.return_index = return_index
        self.slabs = True  # batch tensors carved out of shared slabs in workers (not with pin_memory)
        self.slab_ctl: Optional[torch.Tensor] = None
        self.slab_premade: Optional[List[slabs.Premade]] = None  # per worker, made by the main process
        self.plan: Optional[EpochPlan] = None
        self.consumed: Dict[int, int] = {}

    @property
    def is_fast(self) -> bool:
        """No transform or collate_fn: batches are cut from whole task runs."""
        return self.transform is None and not self.tensor_transforms and self.collate_fn is None

    # -- one worker ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Tuple[Any, _BatchInfo]]:
        wi = get_worker_info()
        worker, num_workers = (wi.id, wi.num_workers) if wi is not None else (0, 1)
        assert self.plan is not None, "the loader sets the epoch plan before iterating"
        slice_positions, order = worker_plan(self.plan, worker, num_workers)
        start = min(int(self.consumed.get(worker, 0)), len(order))
        fast = self.is_fast
        names = list(self.job.sources)
        packer = None
        if wi is not None:
            _keep_freed_memory()
        if wi is not None and self.slabs:
            ctl = self.slab_ctl.numpy()[worker] if self.slab_ctl is not None else None
            premade = self.slab_premade[worker] if self.slab_premade and ctl is not None else None
            allocator = slabs.SlabAllocator(ctl, premade=premade)
            slabs.set_slabs(allocator)
            packer = slabs.SlabPacker(allocator)
        try:
            for batch, info in self._batches(worker, slice_positions, order, start, fast, names):
                yield (packer.pack(batch) if packer is not None and batch is not None else batch), info
        finally:
            if packer is not None:
                slabs.set_slabs(None)

    def _batches(self, worker: int, slice_positions: np.ndarray, order: np.ndarray, start: int, fast: bool,
                 names: List[str]) -> Iterator[Tuple[Any, _BatchInfo]]:
        view_samples = self.job.view_samples
        bs = self.batch_size
        # a batch is a list of pieces: (task result, local indices, view positions) without a
        # transform, one transformed sample each with one
        batch: List[Any] = []
        have = 0
        skipped = 0
        consumed = start
        allocator = slabs.current_slabs()
        chunk_buffer = allocator.chunk_buffer if allocator is not None and fast else None
        for run in stream_runs(self.job, slice_positions, order, start, chunk_buffer):
            res = run.result
            n = len(run)
            bad = _bad_samples(res, run, names, view_samples) if isinstance(res, BaseException) or res.has_errors else {}
            i = 0
            while i < n:
                if i in bad:
                    consumed = run.entry + i + 1
                    if not self.ignore_errors:
                        raise bad[i]
                    skipped += 1
                    i += 1
                    continue
                if fast:
                    stop = min(n, i + bs - have)
                    if bad:
                        stop = next((k for k in range(i, stop) if k in bad), stop)
                    batch.append((res, run.locals[i:stop], run.positions[i:stop]))
                    have += stop - i
                    i = stop
                else:
                    local = int(run.locals[i])
                    index = int(view_samples[run.positions[i]])
                    try:
                        batch.append(self._transformed(res, local, index))
                    except Exception as e:  # noqa: BLE001 - the user's transform
                        err = SampleLoadError(f"transform failed on sample {index}: {type(e).__name__}: {e}", index=index)
                        err.__cause__ = e
                        consumed = run.entry + i + 1
                        if not self.ignore_errors:
                            raise err from e
                        skipped += 1
                        i += 1
                        continue
                    have += 1
                    i += 1
                consumed = run.entry + i
                if have == bs:
                    yield self._collate(batch, fast), _BatchInfo(worker=worker, consumed=consumed, skipped=skipped)
                    skipped = 0
                    batch = []
                    have = 0
        if batch and not self.drop_last:
            yield self._collate(batch, fast), _BatchInfo(worker=worker, consumed=consumed, skipped=skipped)
            skipped = 0
        yield None, _BatchInfo(worker=worker, consumed=len(order), skipped=skipped)

    def _transformed(self, res: Any, local: int, index: int) -> Any:
        sample: Dict[str, Any] = {}
        for name, src in self.job.sources.items():
            sample[name] = sample_value(src, res.columns[name], local)
        if self.return_index:
            sample["index"] = np.int64(index)
        for name, fn in self.tensor_transforms.items():
            if name in sample:
                sample[name] = fn(sample[name])
        if self.transform is not None:
            sample = self.transform(sample, **self.transform_kwargs)
        return sample

    def _collate(self, batch: List[Any], fast: bool) -> Any:
        if fast:
            out: Dict[str, Any] = {}
            for name, src in self.job.sources.items():
                out[name] = collate_pieces(src, [(r.columns[name], loc) for r, loc, _ in batch], self.pad_tensors)
            if self.return_index:
                pos = np.concatenate([p for _, _, p in batch])
                out["index"] = index = empty_batch((len(pos),), np.dtype(np.int64))
                np.take(self.job.view_samples, pos, out=index.numpy())
            return out
        if self.collate_fn is not None:
            return self.collate_fn(batch)
        return collate_values(batch, self.pad_tensors)


# bytes a worker keeps in flight from an object store: enough to cover latency x bandwidth
# (20 ms at 2 GB/s is 40 MB). Fetches start in read order (the pool is first come, first
# served) and at most this many bytes run at once, so the chunk wanted first lands first and
# decoding starts while later chunks are still coming; with every chunk of the read-ahead in
# flight at once they share the bandwidth and all land together, near the end.
REMOTE_IN_FLIGHT = 48 << 20


def _remote_fetch_threads(sources: Dict[str, TensorSource]) -> int:
    """Fetch threads per worker on an object store: `REMOTE_IN_FLIGHT` bytes of the largest
    chunks in flight, between 2 (one chunk landing while the next is asked for) and 8."""
    biggest = max((src.chunk_estimate_max() for src in sources.values()), default=C.DEFAULT_MAX_CHUNK_SIZE)
    return max(2, min(8, REMOTE_IN_FLIGHT // max(1, biggest)))


def _read_infos(ds: Any, tensors: Sequence[Any]) -> None:
    """Bring the info objects of tensors opened before the loader (the others' come with
    their metadata) into the dataset's read cache in one round trip: whether a tensor is
    nullable is in its info; read one at a time, that is a round trip per tensor before the
    first batch."""
    from lakeformat.core import keys

    if not tensors:
        return
    try:
        wanted = [keys.tensor_info_key(t.engine.key, t.engine.commit_id) for t in tensors]
        ds.storage.get_many(wanted, missing_ok=True)
    except Exception:  # noqa: BLE001 - only a prefetch: each info is read (and fails) where used
        pass


def _keep_freed_memory() -> None:
    """In a worker: let glibc serve the chunk-sized buffers (fetched chunks, decompressed
    chunks, decoded task arrays, all well under 32 MiB) from its heap and keep freed ones
    there, instead of mapping fresh memory for each and unmapping it after: a fresh mapping
    faults in one 4 KiB page at a time, about half a raw batch's CPU time. The heap stays at
    the worker's peak, which the prefetch byte budget bounds."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (glibc's largest)
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
    except Exception:  # noqa: BLE001 - not glibc: nothing to tune
        pass


@contextlib.contextmanager
def _gc_frozen_for_fork(forking: bool) -> Iterator[None]:
    """While the workers fork: this process's objects in gc's permanent generation, so that a
    worker's garbage collections never scan them. A full collection in a forked worker writes
    to every inherited object's header, copying each page of them (here 250 ms of CPU and
    14,000 page faults, in the middle of an epoch, whenever a worker's allocations trigger
    one). Left alone when the program froze objects itself (unfreezing would undo that)."""
    import gc

    if not forking or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _shutdown_workers(it: Any) -> None:
    shutdown = getattr(it, "_shutdown_workers", None)  # torch's multi-process iterator
    if shutdown is not None:
        shutdown()


def _bad_samples(res: Any, run: Any, names: Sequence[str], view_samples: np.ndarray) -> Dict[int, SampleLoadError]:
    """{offset in the run: the error} for the run's samples that could not be read."""
    out = {}
    for i, (local, vpos) in enumerate(zip(run.locals.tolist(), run.positions.tolist())):
        err = _sample_error(res, local, names, int(view_samples[vpos]))
        if err is not None:
            out[i] = err
    return out


def _sample_error(res: Any, local: int, names: Sequence[str], index: int) -> Optional[SampleLoadError]:
    if isinstance(res, BaseException):
        e = SampleLoadError(f"sample {index} could not be read: {type(res).__name__}: {res}", index=index)
        e.__cause__ = res
        return e
    if not getattr(res, "has_errors", True):
        return None
    for name in names:
        col = res.columns[name]
        vals = getattr(col, "values", None)
        if vals is not None and isinstance(vals[local], BaseException):
            cause = vals[local]
            e = SampleLoadError(f"sample {index} of tensor {name!r} could not be decoded: {type(cause).__name__}: {cause}", index=index, tensor=name)
            e.__cause__ = cause
            return e
    return None


class LakeDataLoader:
    """Iterated like a `torch.utils.data.DataLoader`; built by `loaders.dataloader(...)...pytorch()`
    or `ds.pytorch(...)`.

    >>> loader = dataloader(ds).batch(64).shuffle(seed=0).pytorch(num_workers=2)  # doctest: +SKIP
    >>> for batch in loader:                                                      # doctest: +SKIP
    ...     images, labels = batch["images"], batch["labels"]
    """

    def __init__(
        self,
        ds: Any,
        *,
        tensors: Optional[Sequence[str]] = None,
        transform: Optional[Union[Callable[..., Any], Dict[str, Callable[..., Any]]]] = None,
        transform_kwargs: Optional[Dict[str, Any]] = None,
        batch_size: int = 1,
        drop_last: bool = False,
        shuffle: bool = False,
        buffer_size: int = 256,
        seed: Optional[int] = None,
        num_workers: int = 0,
        collate_fn: Optional[Callable[..., Any]] = None,
        decode_method: Optional[Dict[str, str]] = None,
        pin_memory: bool = False,
        distributed: bool = False,
        prefetch_factor: Optional[int] = 2,
        pad_tensors: bool = False,
        ignore_errors: bool = False,
        return_index: bool = False,
        prefetch_bytes: Optional[int] = None,
        num_threads: Optional[int] = None,
        decode_threads: Optional[int] = None,
        multiprocessing_context: Any = None,
        timeout: float = 0,
    ):
        if int(batch_size) < 1:
            raise LoaderError(f"batch_size must be at least 1, not {batch_size}")
        if int(num_workers) < 0:
            raise LoaderError("num_workers must be >= 0")
        self.dataset = ds
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.shuffle = bool(shuffle)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.prefetch_factor = prefetch_factor
        self.multiprocessing_context = multiprocessing_context
        self.timeout = timeout
        self.distributed = bool(distributed)
        self.rank, self.world_size = 0, 1
        if self.distributed:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise LoaderError("distributed=True needs an initialised torch.distributed process group (dist.init_process_group)")
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.seed = self._agree_on_seed(seed)
        tensor_transforms: Dict[str, Callable[..., Any]] = {}
        fn: Optional[Callable[..., Any]] = None
        if isinstance(transform, dict):
            tensor_transforms = dict(transform)
        elif transform is not None:
            if not callable(transform):
                raise LoaderError("transform must be a callable or a {tensor: callable} dict")
            fn = transform
        self.sources, engines = self._sources(ds, tensors, decode_method or {})
        unknown = set(tensor_transforms) - set(self.sources)
        if unknown:
            raise LoaderError(f"transform for tensors not loaded: {sorted(unknown)}")
        view_samples = np.ascontiguousarray(ds.index.resolve(ds.base_length), dtype=np.int64) if not ds.index.is_single else np.asarray([ds.index.samples], np.int64)
        from lakeformat.storage import protocol_of

        remote = protocol_of(str(ds.path)) not in ("file", "memory", "mem")
        self._remote = remote
        for src in self.sources.values():
            src.fetch_in_blocks = remote and src.chunk_compression is None and not src.tiles and not src.is_link
        threads = int(num_threads) if num_threads else (_remote_fetch_threads(self.sources) if remote else 2)
        # decoding threads beyond the cores a worker has only make its first tasks finish
        # together, later: by default each worker gets its share of the cores
        decoders = int(decode_threads) if decode_threads else max(1, (os.cpu_count() or 1) // max(1, self.num_workers))
        if prefetch_bytes is None:
            # an object store needs read-ahead to hide its latency; a local disk does not, and
            # every byte of read-ahead is memory the worker touches for the first time
            biggest = max((src.max_chunk_size for src in self.sources.values()), default=C.DEFAULT_MAX_CHUNK_SIZE)
            prefetch_bytes = 256 << 20 if remote else max(32 << 20, 3 * biggest)
        # the workers check chunks against side files read here, once (not by every worker)
        tables = gather_tables(ds.storage, engines, (k for s in self.sources.values() for k in s.chunk_keys))
        self.job = ReadJob(self.sources, ds.storage, view_samples, int(prefetch_bytes), threads, max(32, min(256, self.batch_size)),
                           decoders, tables)
        self._primary_rows = primary_rows(self.sources, view_samples)
        self.buffer_samples = self._buffer_samples(int(buffer_size))
        self._iterable = LakeIterableDataset(self.job, self.batch_size, self.drop_last, fn, tensor_transforms,
                                             dict(transform_kwargs or {}), collate_fn, bool(pad_tensors), bool(ignore_errors), bool(return_index))
        self._next_epoch = 0
        self._epoch: Optional[int] = None
        self._consumed: Dict[int, int] = {}
        self._resume: Optional[Dict[int, int]] = None
        self.skipped = 0  # samples skipped on errors (ignore_errors=True), over the loader's life

    # -- construction helpers -------------------------------------------------------------------
    def _agree_on_seed(self, seed: Optional[int]) -> int:
        if seed is not None:
            return int(seed)
        s = secrets.randbelow(2**31)
        if self.distributed and self.world_size > 1:
            import torch.distributed as dist

            box = [s]
            dist.broadcast_object_list(box, src=0)
            s = int(box[0])
        return s

    @staticmethod
    def _sources(ds: Any, tensors: Optional[Sequence[str]], decode: Dict[str, str]) -> Tuple[Dict[str, TensorSource], List[Any]]:
        """The tensors to load as worker-side sources, and their engines (read in this process)."""
        # the workers read what is in storage: unflushed rows must get there first, and a
        # flush that fails must fail the loader (else it serves a dataset without those rows)
        if not getattr(ds, "read_only", True):
            session = getattr(ds, "session", None)
            engines_open = session.open_engines().values() if session is not None else []
            if any(eng.is_dirty for eng in engines_open):
                ds.flush()
        available = ds.tensors
        names = list(tensors) if tensors is not None else list(available)
        if isinstance(decode, str):
            decode = {n: decode for n in names}
        for n, m in decode.items():
            if m not in DECODE_METHODS:
                raise LoaderError(f"decode_method for {n!r} must be one of {DECODE_METHODS}, not {m!r}")
        if hasattr(ds, "open_tensors"):
            session = getattr(ds, "session", None)
            open_before = set(session.open_engines()) if session is not None else set()
            # every tensor's metadata (infos included) in one round trip, direct where it can be
            ds.open_tensors(names, storage=metadata_reads(ds.storage))
            _read_infos(ds, [available[n] for n in names if n in available and available[n].key in open_before])
        out = {}
        engines: List[Any] = []
        for n in names:
            if n not in available:
                raise LoaderError(f"tensor {n!r} is not in the dataset (it has {sorted(available)})")
            out[n] = TensorSource(n, available[n], decode.get(n, "numpy"))
            engines.append(available[n].engine)
            mkey = available[n].info.get("null_mask") if getattr(available[n], "nullable", False) else None
            if isinstance(mkey, str):  # its nulls as "<name>.null" (bool, True where null)
                mask = ds[mkey]
                out[f"{n}.null"] = TensorSource(f"{n}.null", mask, "numpy")
                engines.append(mask.engine)
        if not out:
            raise LoaderError("no tensors to load")
        return out, engines

    def _batch_bytes_estimate(self) -> int:
        """Bytes of one batch's fixed-size tensors (raw samples and images of one shape), as
        the workers carve them out of their slabs; 0 when nothing has a size known ahead."""
        align = slabs.SlabAllocator.ALIGN
        total = 0
        for src in self.sources.values():
            if src.fixed_shape is not None:
                item = int(np.prod(src.fixed_shape)) * src.dtype.itemsize
            elif src.is_image and src.decode_method == "numpy" and src.max_shape and src.min_shape == src.max_shape:
                item = int(np.prod(src.max_shape)) * src.dtype.itemsize
            else:
                continue
            total += -(-max(item, 8) * self.batch_size // align) * align
        if total and self._iterable.return_index:
            total += -(-8 * self.batch_size // align) * align
        return total

    def _chunk_buffer_bytes(self) -> int:
        """Size of the shared chunk buffers that batches of raw fixed-shape samples are views
        of (0: none), when /dev/shm has room for them several times over. None for an object
        store: a chunk from the network is read into private memory anyway, and decompressing
        it there (huge pages) and copying each batch into a slab the worker reuses costs less
        than a fault per 4 KiB page of shared memory for every chunk (about 1.4 ms per MB of
        shared memory touched for the first time, here: more than the copy)."""
        if self._remote:
            return 0
        sizes = [src.max_chunk_size + src.item_nbytes_max for src in self.sources.values()
                 if src.fixed_shape is not None and src.chunk_compression in (None, "lz4", "zstd") and src.decode_method != "tobytes"]
        if not sizes:
            return 0
        size = max(sizes) + (1 << 20)  # room for the header of an uncompressed chunk
        try:
            st = os.statvfs("/dev/shm")
            free = st.f_bavail * st.f_frsize
        except OSError:
            return 0
        need = self.num_workers * slabs.SlabAllocator.CHUNK_SLOTS * size
        return size if free >= 4 * need else 0

    def _slabs_per_worker(self) -> int:
        return slabs.slabs_in_use(self.prefetch_factor if self.prefetch_factor is not None else 2)

    def _forks(self) -> bool:
        """Whether the workers are forked from this process (they then share its memory as
        it is; spawned and forkserver workers get what they need pickled)."""
        import multiprocessing

        ctx = self.multiprocessing_context
        if ctx is None:  # the one set, else the platform's default (the first listed)
            method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
        elif isinstance(ctx, str):
            method = ctx
        else:
            method = ctx.get_start_method()
        return method == "fork"

    def _buffer_samples(self, buffer_mib: int) -> int:
        if not self.shuffle or buffer_mib <= 0:
            return 0
        per_sample = sum(max(s.item_nbytes_max, 1) for s in self.sources.values())
        return max(2, (buffer_mib << 20) // per_sample)

    def _plan(self, epoch: int) -> EpochPlan:
        initial = min(self.buffer_samples, max(2 * self.batch_size, 128)) if self.buffer_samples else 0
        return EpochPlan(self._primary_rows, self.seed, epoch, self.shuffle, self.buffer_samples, initial,
                         self.world_size, self.rank, self.drop_last)

    # -- epochs and state -----------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch` for the next iteration (the shuffle order is a function of the
        seed and the epoch, the same on every rank). Without it, each new iteration takes the
        next epoch."""
        self._next_epoch = int(epoch)
        self._resume = None

    @property
    def epoch(self) -> int:
        return self._epoch if self._epoch is not None else self._next_epoch

    def state_dict(self) -> Dict[str, Any]:
        """Where this rank stands: resume with `load_state_dict` on a loader built the same
        way (same dataset view, batch size, shuffle, workers and world size)."""
        mid = self._epoch is not None
        return {
            "version": STATE_VERSION,
            "epoch": self._epoch if mid else self._next_epoch,
            "seed": self.seed,
            "consumed": {str(k): int(v) for k, v in (self._consumed if mid else (self._resume or {})).items()},
            "num_samples": int(len(self._primary_rows)),
            "num_workers": self.num_workers,
            "world_size": self.world_size,
            "rank": self.rank,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "buffer_samples": self.buffer_samples,
            "skipped": self.skipped,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if int(state.get("version", -1)) != STATE_VERSION:
            raise LoaderError(f"state dict version {state.get('version')!r} is not {STATE_VERSION}")
        for key, mine in (("num_samples", len(self._primary_rows)), ("num_workers", self.num_workers),
                          ("world_size", self.world_size), ("rank", self.rank), ("shuffle", self.shuffle),
                          ("drop_last", self.drop_last), ("buffer_samples", self.buffer_samples)):
            if state.get(key) != mine:
                raise LoaderError(f"cannot resume: the state has {key}={state.get(key)!r}, this loader {mine!r}")
        self.seed = int(state["seed"])
        self._next_epoch = int(state["epoch"])
        self._resume = {int(k): int(v) for k, v in state.get("consumed", {}).items()}
        self.skipped = int(state.get("skipped", 0))
        self._epoch = None

    def __len__(self) -> int:
        """Batches this rank yields in a full epoch (fewer when errors are skipped)."""
        plan = self._plan(self.epoch)
        nw = max(1, self.num_workers)
        total = 0
        for w in range(nw):
            n = worker_count(plan, w, nw)
            total += n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return total

    def __iter__(self) -> Iterator[Any]:
        epoch = self._next_epoch
        resume = self._resume or {}
        self._resume = None
        self._next_epoch = epoch + 1
        self._epoch = epoch
        self._consumed = dict(resume)
        self._iterable.plan = self._plan(epoch)
        if self._remote:  # the workers presign their S3 reads with this (credentials of the moment)
            self.job.url_signer = url_signer(self.dataset.storage)
        self._iterable.slabs = not self.pin_memory  # the pin thread would pin a slab once, before its later batches are written
        self._iterable.slab_ctl = slab_flags(self.num_workers) if self.num_workers > 0 and self._iterable.slabs else None
        ctl = self._iterable.slab_ctl
        premade = premade_slots(ctl, self._batch_bytes_estimate(), self._chunk_buffer_bytes(), forked=self._forks(),
                                count=self._slabs_per_worker()) if ctl is not None and self._iterable.is_fast else []
        self._iterable.slab_premade = premade
        self._iterable.consumed = dict(resume)
        kwargs: Dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs["prefetch_factor"] = self.prefetch_factor
            kwargs["multiprocessing_context"] = self.multiprocessing_context
            kwargs["timeout"] = self.timeout
        dl = DataLoader(self._iterable, batch_size=None, num_workers=self.num_workers, collate_fn=_passthrough,
                        pin_memory=self.pin_memory, persistent_workers=False, **kwargs)
        unpacker = SlabUnpacker(ctl, premade)
        with _gc_frozen_for_fork(self.num_workers > 0 and self._forks()):
            it = iter(dl)  # forks the workers
        # the workers have their slabs now (forked, or pickled at their start): from here the
        # unpacker's reference is the only one in this process (a slab is free at use count 1)
        self._iterable.slab_premade = None
        del premade
        finished = 0  # workers whose last (None, info) came
        complete = False
        try:
            for item in it:
                batch, info = item[0], item[1]
                w = int(info["worker"])
                if isinstance(batch, SlabBatch):
                    batch = unpacker.unpack(w, batch)
                self._consumed[w] = int(info["consumed"])
                self.skipped += int(info["skipped"])
                if batch is None:
                    finished += 1
                    if finished >= max(1, self.num_workers):
                        complete = True
                        break
                    continue
                yield batch
        finally:
            if complete and self.num_workers > 0:
                # every worker sent its last batch: they only have to exit, which takes tens
                # of milliseconds (their fetch pools join): the epoch ends without waiting
                threading.Thread(target=_shutdown_workers, args=(it,), name="lakeformat-loader-shutdown", daemon=True).start()
            else:
                # an epoch left early (break, an error, a failing test holding this generator
                # in its traceback) stops its workers now, not whenever the iterator is collected
                _shutdown_workers(it)
        self._epoch = None
        self._consumed = {}
