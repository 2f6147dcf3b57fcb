"""Stream a lakeformat dataset (or a query view) into PyTorch training (`loaders`, the
users' import path, re-exports this package; `lakeformat` imports it only on use).

>>> from lakeformat.integrations.torch import dataloader              # doctest: +SKIP
>>> loader = (dataloader(ds).transform({"images": augment}).batch(64)  # doctest: +SKIP
...           .shuffle(True, seed=0).pytorch(num_workers=2))
>>> for batch in loader:                                               # doctest: +SKIP
...     images, labels = batch["images"], batch["labels"]

See docs/loader.md for the engine, the shuffle's guarantees, sharding and resume.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional, Sequence, Union

from lakeformat.integrations.torch.errors import LoaderError, SampleLoadError
from lakeformat.integrations.torch.groups import GroupLoader, is_unit_view
from lakeformat.integrations.torch.torch_loader import LakeDataLoader

__all__ = ["dataloader", "DataLoaderBuilder", "LakeDataLoader", "GroupLoader", "dataset_pytorch", "LoaderError", "SampleLoadError"]


def _loader_class(ds: Any) -> Union[type[LakeDataLoader], type[GroupLoader]]:
    """GROUP BY / UNGROUP BY views load one sample per group / item (groups.py)."""
    return GroupLoader if is_unit_view(ds) else LakeDataLoader


class DataLoaderBuilder:
    """Immutable description of a loader; each method returns a new builder."""

    def __init__(self, ds: Any):
        self._ds = ds
        self._opts: Dict[str, Any] = {}

    def _with(self, **kw: Any) -> "DataLoaderBuilder":
        b = copy.copy(self)
        b._opts = {**self._opts, **kw}
        return b

    def transform(self, fn: Union[Callable[..., Any], Dict[str, Callable[..., Any]]], **kwargs: Any) -> "DataLoaderBuilder":
        """A per-sample transform: a callable taking the sample dict (with `kwargs`), or a
        {tensor: callable} dict applied to single tensors' values."""
        return self._with(transform=fn, transform_kwargs=kwargs)

    def batch(self, size: int, drop_last: bool = False) -> "DataLoaderBuilder":
        return self._with(batch_size=int(size), drop_last=bool(drop_last))

    def shuffle(self, shuffle: bool = True, buffer_size: int = 256, seed: Optional[int] = None) -> "DataLoaderBuilder":
        """Chunk-order shuffle plus a shuffle buffer of `buffer_size` MiB of decoded samples
        per worker (converted to a sample count from the tensors' largest sample size)."""
        return self._with(shuffle=bool(shuffle), buffer_size=int(buffer_size), seed=seed)

    def pytorch(
        self,
        num_workers: int = 0,
        tensors: Optional[Sequence[str]] = None,
        collate_fn: Optional[Callable[..., Any]] = None,
        decode_method: Optional[Dict[str, str]] = None,
        pin_memory: bool = False,
        distributed: bool = False,
        prefetch_factor: Optional[int] = 2,
        **engine: Any,
    ) -> Union[LakeDataLoader, GroupLoader]:
        """The loader. `engine` options: `pad_tensors`, `ignore_errors`, `return_index`,
        `prefetch_bytes` (read-ahead budget per worker), `num_threads` (fetch threads per
        worker), `decode_threads` (decoding threads per worker), `multiprocessing_context`, `timeout`."""
        return _loader_class(self._ds)(self._ds, num_workers=num_workers, tensors=tensors, collate_fn=collate_fn,
                              decode_method=decode_method, pin_memory=pin_memory, distributed=distributed,
                              prefetch_factor=prefetch_factor, **{**self._opts, **engine})


def dataloader(ds_or_view: Any) -> DataLoaderBuilder:
    """Start describing a loader over a dataset or a view (`ds[...]`, a query result)."""
    return DataLoaderBuilder(ds_or_view)


_DL3_POSITIONAL = ("transform", "tensors", "num_workers", "batch_size", "drop_last", "collate_fn", "pin_memory",
                   "shuffle", "buffer_size", "use_local_cache", "return_index", "pad_tensors", "transform_kwargs",
                   "decode_method", "persistent_workers")


def dataset_pytorch(ds: Any, *args: Any, **kwargs: Any) -> Union[LakeDataLoader, GroupLoader]:
    """`ds.pytorch(...)` with deeplake 3.x's arguments (transform, tensors, num_workers=1,
    batch_size=1, drop_last, collate_fn, pin_memory, shuffle, buffer_size (MiB), return_index=True,
    pad_tensors, transform_kwargs, decode_method, distributed, ...)."""
    if len(args) > len(_DL3_POSITIONAL):
        raise LoaderError(f"ds.pytorch takes at most {len(_DL3_POSITIONAL)} positional arguments")
    opts: Dict[str, Any] = {"num_workers": 1, "batch_size": 1, "return_index": True, "buffer_size": 2048}
    for name, value in zip(_DL3_POSITIONAL, args):
        opts[name] = value
    opts.update(kwargs)
    for ignored in ("use_local_cache", "persistent_workers", "progressbar", "use_progress_bar"):
        opts.pop(ignored, None)
    tobytes = opts.pop("tobytes", False)  # deeplake 3.x: True or a list of tensors -> raw bytes
    if tobytes:
        names = tobytes if isinstance(tobytes, (list, tuple)) else (opts.get("tensors") or list(ds.tensors))
        opts["decode_method"] = {**{n: "tobytes" for n in names}, **(opts.get("decode_method") or {})}
    if opts.get("tensors") is not None and isinstance(opts["tensors"], str):
        opts["tensors"] = [opts["tensors"]]
    if opts.get("transform_kwargs") is None:
        opts.pop("transform_kwargs", None)
    return _loader_class(ds)(ds, **opts)
