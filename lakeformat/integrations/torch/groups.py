"""The loader over TQL's grouped and item views: one sample per group (`SELECT * GROUP BY k`)
or per item row (`UNGROUP BY seq`).

A unit (a group, or an item row) is read through the view API in the workers, a batch of
units at a time: a group's rows are read in one call per tensor (`source[name][rows]`), so
reads stay batched, but the chunk-planned fast path of `LakeDataLoader` is not used.

- A group's sample of a tensor is its rows' samples, as the plain loader gives them, stacked
  into one array `(group size, *sample shape)` when they share a shape, else a list (the
  loader's form of a sequence sample). Class labels are int64 (a (1,)-shaped label a scalar,
  so a group's labels are `(group size,)`), text a str, json a dict (a group's: a list).
- An item row's sample: a sequence tensor gives the row's item, any other tensor the row's sample.
- Batches collate as the plain loader's do (same shapes stack, else a list; `pad_tensors`).
- The order: units in view order, or (shuffle) a seeded permutation of the whole epoch's
  units, a function of (seed, epoch) only; cut into contiguous rank shards (`distributed`)
  and then worker slices, as `plan.py` cuts samples. `buffer_size` does not apply (the whole
  epoch is shuffled at unit granularity).
"""
from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lakeformat.htypes import htype_of
from lakeformat.integrations.torch.collate import collate_values
from lakeformat.integrations.torch.errors import LoaderError, SampleLoadError
from lakeformat.integrations.torch.plan import split_bounds
from lakeformat.tql import GroupedView, ItemView

STATE_VERSION = 1  # GroupLoader.state_dict's layout
READ_UNITS = 64  # units read per call through the view API (bounds a read's memory)


def is_unit_view(ds: Any) -> bool:
    """Whether `ds` is a grouped or item view (loaded by `GroupLoader`)."""
    return isinstance(ds, (GroupedView, ItemView))


def _meta(t: Any) -> Any:
    while getattr(t, "meta", None) is None and hasattr(t, "source"):
        t = t.source
    return getattr(t, "meta", None)


class _Presenter:
    """Turns one tensor's values, as the view API reads them, into the loader's sample form."""

    def __init__(self, tensor: Any):
        base = str(tensor.base_htype)
        info = htype_of(base)
        self.text = bool(info.text_like)
        self.label = bool(info.label)
        m = _meta(tensor)
        self.squeeze = self.label and m is not None and m.min_shape == (1,) and m.max_shape == (1,)

    def one(self, v: Any) -> Any:
        """One row's (or item's) sample."""
        if isinstance(v, list):  # a stored sequence's items
            return join([self.one(x) for x in v])
        a = np.asarray(v)
        if self.text:
            x = a.reshape(-1)[0] if a.size else ""
            return str(x) if isinstance(x, np.str_) else x
        if self.label:
            a = a.astype(np.int64, copy=False)
            if self.squeeze and a.shape == (1,):
                return np.int64(a[0])
        return a


def join(values: List[Any]) -> Any:
    """A group's samples: stacked when they are arrays (or numbers) of one shape and dtype,
    else the list (as the loader gives a sequence's items)."""
    if values and all(isinstance(v, (np.ndarray, np.number)) for v in values):
        arrs = [np.asarray(v) for v in values]
        if all(a.shape == arrs[0].shape and a.dtype == arrs[0].dtype for a in arrs) and arrs[0].dtype != object:
            return np.stack(arrs)
    return values


def read_units(handle: Any, positions: np.ndarray, names: Sequence[str]) -> List[Dict[str, Any]]:
    """The samples of units `positions` of a grouped or item view, one dict each."""
    sub = handle.subset(np.asarray(positions, np.int64))
    out: List[Dict[str, Any]] = [{} for _ in range(len(positions))]
    for name in names:
        t = sub[name]
        pres = _Presenter(t)
        if isinstance(handle, GroupedView):
            per = t.numpy(aslist=True)
            for d, samples in zip(out, per):
                d[name] = join([pres.one(s) for s in samples])
        else:
            for d, s in zip(out, t.samples()):
                d[name] = pres.one(s)
    return out


def epoch_order(n: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, epoch, 0x6A0B])
    return rng.permutation(n).astype(np.int64)


def shard(order: np.ndarray, world_size: int, rank: int, drop_last: bool) -> np.ndarray:
    n = len(order)
    w = max(1, world_size)
    if drop_last and w > 1:
        n -= n % w
    a, b = split_bounds(n, w, rank)
    return order[a:b]


class _UnitIterable(IterableDataset[Any]):
    """Yields (collated batch, info) pairs, and a last (None, info) per worker; each worker
    reads its slice of the rank's shard. `info`: the worker, how many entries of its slice
    it has consumed (yielded, skipped or dropped) and how many it skipped on errors."""

    def __init__(self, loader: "GroupLoader"):
        super().__init__()
        self.loader = loader
        self.order = np.zeros(0, np.int64)  # the rank's units this epoch (set per epoch)
        self.consumed: Dict[int, int] = {}  # per worker: entries of its slice done before (a resume)

    def __iter__(self) -> Iterator[Tuple[Any, Dict[str, int]]]:
        wi = get_worker_info()
        worker, nw = (wi.id, wi.num_workers) if wi is not None else (0, 1)
        a, b = split_bounds(len(self.order), nw, worker)
        mine = self.order[a:b]
        start = min(int(self.consumed.get(worker, 0)), len(mine))
        ld = self.loader
        batch: List[Any] = []
        skipped = 0
        for s in range(start, len(mine), READ_UNITS):
            pos = mine[s:s + READ_UNITS]
            for k, (p, sample) in enumerate(zip(pos.tolist(), self._read(pos))):
                item = self._finish(p, sample) if sample is not None else None
                if item is None:
                    skipped += 1
                    continue
                batch.append(item)
                if len(batch) == ld.batch_size:
                    yield self._collate(batch), {"worker": worker, "consumed": s + k + 1, "skipped": skipped}
                    batch, skipped = [], 0
        if batch and not ld.drop_last:
            yield self._collate(batch), {"worker": worker, "consumed": len(mine), "skipped": skipped}
            skipped = 0
        yield None, {"worker": worker, "consumed": len(mine), "skipped": skipped}

    def _read(self, pos: np.ndarray) -> List[Optional[Dict[str, Any]]]:
        ld = self.loader
        try:
            return list(read_units(ld.dataset, pos, ld.names))
        except Exception as e:  # noqa: BLE001 - a storage or decoding error: find the unit it hit
            if len(pos) == 1:
                p = int(pos[0])
                if not ld.ignore_errors:
                    raise SampleLoadError(f"{ld.unit} {p} could not be read: {type(e).__name__}: {e}", index=p) from e
                return [None]
            return [r for p in pos for r in self._read(np.asarray([p], np.int64))]

    def _finish(self, p: int, sample: Dict[str, Any]) -> Any:
        ld = self.loader
        if ld.return_index:
            sample["index"] = np.int64(p)
        try:
            for name, fn in ld.tensor_transforms.items():
                sample[name] = fn(sample[name])
            if ld.transform is not None:
                return ld.transform(sample, **ld.transform_kwargs)
        except Exception as e:  # noqa: BLE001 - the user's transform
            if not ld.ignore_errors:
                raise SampleLoadError(f"transform failed on {ld.unit} {p}: {type(e).__name__}: {e}", index=p) from e
            return None
        return sample

    def _collate(self, batch: List[Any]) -> Any:
        ld = self.loader
        if ld.collate_fn is not None:
            return ld.collate_fn(batch)
        return collate_values(batch, ld.pad_tensors)


class GroupLoader:
    """A loader over a `tql.GroupedView` (one sample per group) or a `tql.ItemView` (one per
    item row); built by `dataloader(view)...pytorch()` or `view.pytorch(...)` (see the
    module's doc). Iterated like a `torch.utils.data.DataLoader`."""

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
        multiprocessing_context: Any = None,
        timeout: float = 0,
        **engine: Any,
    ):
        if not is_unit_view(ds):
            raise LoaderError(f"GroupLoader loads a grouped or item view, not {type(ds).__name__}")
        unknown_opts = set(engine) - {"prefetch_bytes", "num_threads", "decode_threads"}  # read-ahead knobs of the chunk engine
        if unknown_opts:
            raise LoaderError(f"unknown loader options {sorted(unknown_opts)}")
        if int(batch_size) < 1:
            raise LoaderError(f"batch_size must be at least 1, not {batch_size}")
        if int(num_workers) < 0:
            raise LoaderError("num_workers must be >= 0")
        self.dataset = ds
        self.unit = "group" if isinstance(ds, GroupedView) else "item"
        available = list(ds.tensors)
        self.names = list(tensors) if tensors is not None else available
        missing = [n for n in self.names if n not in available]
        if missing:
            raise LoaderError(f"tensors {missing} are not in the {type(ds).__name__} (it has {sorted(available)})")
        if not self.names:
            raise LoaderError("no tensors to load")
        bad = {n: m for n, m in (decode_method or {}).items() if m != "numpy"}
        if bad:
            raise LoaderError(f"a {type(ds).__name__} loads decoded numpy samples only; decode_method {bad} is not supported")
        self.tensor_transforms: Dict[str, Callable[..., Any]] = {}
        self.transform: Optional[Callable[..., Any]] = None
        if isinstance(transform, dict):
            self.tensor_transforms = dict(transform)
            extra = set(self.tensor_transforms) - set(self.names)
            if extra:
                raise LoaderError(f"transform for tensors not loaded: {sorted(extra)}")
        elif transform is not None:
            if not callable(transform):
                raise LoaderError("transform must be a callable or a {tensor: callable} dict")
            self.transform = transform
        self.transform_kwargs = dict(transform_kwargs or {})
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.shuffle = bool(shuffle)
        self.num_workers = int(num_workers)
        self.collate_fn = collate_fn
        self.pin_memory = bool(pin_memory)
        self.prefetch_factor = prefetch_factor
        self.pad_tensors = bool(pad_tensors)
        self.ignore_errors = bool(ignore_errors)
        self.return_index = bool(return_index)
        self.multiprocessing_context = multiprocessing_context
        self.timeout = timeout
        self.rank, self.world_size = 0, 1
        if distributed:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise LoaderError("distributed=True needs an initialised torch.distributed process group (dist.init_process_group)")
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.seed = self._agree_on_seed(seed, bool(distributed))
        self._next_epoch = 0
        self._epoch: Optional[int] = None
        self._consumed: Dict[int, int] = {}
        self._resume: Optional[Dict[int, int]] = None
        self.skipped = 0  # units skipped on errors (ignore_errors=True), over the loader's life
        self._iterable = _UnitIterable(self)

    def _agree_on_seed(self, seed: Optional[int], distributed: bool) -> int:
        if seed is not None:
            return int(seed)
        s = secrets.randbelow(2**31)
        if distributed and self.world_size > 1:
            import torch.distributed as dist

            box = [s]
            dist.broadcast_object_list(box, src=0)
            s = int(box[0])
        return s

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch` for the next iteration (the shuffle is a function of seed and epoch)."""
        self._next_epoch = int(epoch)
        self._resume = None

    @property
    def epoch(self) -> int:
        return self._epoch if self._epoch is not None else self._next_epoch

    def state_dict(self) -> Dict[str, Any]:
        """Where this rank stands: resume with `load_state_dict` on a loader built the same
        way (same view, batch size, shuffle, workers and world size)."""
        mid = self._epoch is not None
        return {"version": STATE_VERSION, "kind": self.unit, "epoch": self.epoch, "seed": self.seed,
                "consumed": {str(k): int(v) for k, v in (self._consumed if mid else (self._resume or {})).items()},
                "num_units": len(self.dataset), "num_workers": self.num_workers, "world_size": self.world_size,
                "rank": self.rank, "shuffle": self.shuffle, "drop_last": self.drop_last, "skipped": self.skipped}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise LoaderError(f"state dict version {state.get('version')!r} is not {STATE_VERSION}")
        for key, mine in (("kind", self.unit), ("num_units", len(self.dataset)), ("num_workers", self.num_workers),
                          ("world_size", self.world_size), ("rank", self.rank), ("shuffle", self.shuffle), ("drop_last", self.drop_last)):
            if state.get(key) != mine:
                raise LoaderError(f"cannot resume: the state has {key}={state.get(key)!r}, this loader {mine!r}")
        self.seed = int(state["seed"])
        self._next_epoch = int(state["epoch"])
        self._resume = {int(k): int(v) for k, v in state.get("consumed", {}).items()}
        self.skipped = int(state.get("skipped", 0))
        self._epoch = None

    def order(self, epoch: Optional[int] = None) -> np.ndarray:
        """The units (positions in the view) this rank reads in `epoch`, before the cut into
        worker slices."""
        e = self.epoch if epoch is None else int(epoch)
        return shard(epoch_order(len(self.dataset), self.shuffle, self.seed, e), self.world_size, self.rank, self.drop_last)

    def __len__(self) -> int:
        """Batches this rank yields in a full epoch (fewer when errors are skipped)."""
        n = len(self.order())
        nw = max(1, self.num_workers)
        total = 0
        for w in range(nw):
            a, b = split_bounds(n, nw, w)
            total += (b - a) // self.batch_size if self.drop_last else -(-(b - a) // self.batch_size)
        return total

    def __iter__(self) -> Iterator[Any]:
        epoch = self._next_epoch
        resume = self._resume or {}
        self._resume = None
        self._next_epoch = epoch + 1
        self._epoch = epoch
        self._consumed = dict(resume)
        self._iterable.order = self.order(epoch)
        self._iterable.consumed = dict(resume)
        kwargs: Dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs.update(prefetch_factor=self.prefetch_factor, multiprocessing_context=self.multiprocessing_context, timeout=self.timeout)
        dl: DataLoader[Any] = DataLoader(self._iterable, batch_size=None, num_workers=self.num_workers, collate_fn=_passthrough,
                                         pin_memory=self.pin_memory, persistent_workers=False, **kwargs)
        it = iter(dl)
        try:
            for batch, info in it:
                self._consumed[int(info["worker"])] = int(info["consumed"])
                self.skipped += int(info["skipped"])
                if batch is not None:
                    yield batch
        finally:
            shutdown = getattr(it, "_shutdown_workers", None)  # an epoch left early stops its workers now
            if shutdown is not None:
                shutdown()
        self._epoch = None
        self._consumed = {}


def _passthrough(x: Any) -> Any:
    return x


__all__ = ["GroupLoader", "is_unit_view", "read_units", "join"]
