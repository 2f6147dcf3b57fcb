"""`Dataset`: tensors (columns) under one storage root, at one commit, plus views of them.

A `Dataset` object is a handle: its index (all samples, or a selection) and group prefix, over
a `Session` (lakeformat.core.session) that every view of the same open dataset shares.
"""
from __future__ import annotations

import logging
import posixpath
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union, cast

import numpy as np

from lakeformat.core import keys, row_writes
from lakeformat.core.chunk_deletes import normalize_pop_indices
from lakeformat.core.dataset_schema import SchemaOps
from lakeformat.core.index import Index
from lakeformat.core.info import Info
from lakeformat.core.links import LinkResolver
from lakeformat.core.meta import DatasetMeta
from lakeformat.core.session import Session
from lakeformat.core.tensor import Tensor
from lakeformat.core.version_state import VersionState
from lakeformat.errors import (
    LakeFormatError,
    ReadOnlyError,
    SampleError,
    TensorDoesNotExistError,
)
from lakeformat.storage import StorageProvider

logger = logging.getLogger(__name__)


class Dataset(SchemaOps):
    """A dataset of tensors.

    >>> ds = lakeformat.empty("./animals", overwrite=True)        # doctest: +SKIP
    >>> with ds:                                                   # doctest: +SKIP
    ...     ds.create_tensor("images", htype="image", sample_compression="png")
    ...     ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
    ...     ds.append({"images": np.zeros((32, 32, 3), np.uint8), "labels": "dog"})
    """

    _state: Session  # set in __init__ through __dict__ (attribute writes are tensor writes)

    def __init__(self, state: Session, index: Optional[Index] = None, group: str = ""):
        self.__dict__["_state"] = state
        self.__dict__["index"] = index or Index()
        self.__dict__["group"] = group

    # ==========================================================================================
    # basic properties
    @property
    def path(self) -> str:
        return self._state.path

    @property
    def storage(self) -> StorageProvider:
        return self._state.storage

    @property
    def read_only(self) -> bool:
        return self._state.read_only or not self._state.vs.is_head

    @property
    def meta(self) -> DatasetMeta:
        return self._state.meta

    @property
    def version_state(self) -> VersionState:
        return self._state.vs

    @property
    def is_view(self) -> bool:
        return self.index.samples is not None

    @property
    def _links(self) -> LinkResolver:
        return self._state.links

    @property
    def session(self) -> Session:
        """The open dataset this handle is over (shared by every handle and view of it)."""
        return self._state

    def open_tensors(self, names: List[str], storage: Optional[StorageProvider] = None) -> None:
        """Read the metadata of these tensors (and, when the dataset is writable, of their
        hidden tensors) in one batched storage call (one round trip on an object store),
        before their first use; through `storage` if given (a reader of the same store)."""
        st = self._state
        todo = []
        for key in [self.meta.tensor_names.get(self._full_name(n)) for n in names]:
            if key is None:
                continue
            todo.append(key)
            if not self.read_only:
                todo += [h for h in (keys.hidden_key(key, kind) for kind in ("id", "shape", "info")) if h in st.meta.tensors]
        st.preload(todo, storage)

    def _full_name(self, name: str) -> str:
        name = name.strip("/")
        return posixpath.join(self.group, name) if self.group else name

    # ==========================================================================================
    # tensors and groups
    @property
    def tensors(self) -> Dict[str, Tensor]:
        """Visible tensors of this dataset (or group), by name relative to it."""
        out = {}
        prefix = self.group + "/" if self.group else ""
        for name, key in self.meta.tensor_names.items():
            if key in self.meta.hidden_tensors or not name.startswith(prefix):
                continue
            out[name[len(prefix):]] = Tensor(name, key, self, self.index)
        return out

    @property
    def _all_tensors(self) -> Dict[str, Tensor]:
        return {name: Tensor(name, key, self, self.index) for name, key in self.meta.tensor_names.items()}

    @property
    def groups(self) -> Dict[str, "Dataset"]:
        prefix = self.group + "/" if self.group else ""
        out = {}
        for g in self.meta.groups:
            if g.startswith(prefix) and "/" not in g[len(prefix):]:
                out[g[len(prefix):]] = Dataset(self._state, self.index, g)
        return out

    def _tensor(self, name: str) -> Tensor:
        full = self._full_name(name)
        key = self.meta.tensor_names.get(full)
        if key is None:
            raise TensorDoesNotExistError(full)
        return Tensor(full, key, self, self.index)

    def __getitem__(self, item: Any) -> Union[Tensor, "Dataset"]:
        if isinstance(item, str):
            full = self._full_name(item)
            if full in self.meta.tensor_names:
                return self._tensor(item)
            if full in self.meta.groups:
                return Dataset(self._state, self.index, full)
            raise TensorDoesNotExistError(full)
        if isinstance(item, (list, tuple)) and item and all(isinstance(x, str) for x in item):
            raise LakeFormatError("selecting several tensors by name is not supported; index them one by one")
        return Dataset(self._state, self.index.compose(item, self._base_length()), self.group)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except TensorDoesNotExistError:
            raise AttributeError(f"Dataset has no attribute, tensor or group {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"cannot set {name!r}: assign samples with ds.{name}.append(...) or ds.{name}[i] = ...")

    def __iter__(self) -> Iterator[Union[Tensor, "Dataset"]]:
        for i in range(len(self)):
            yield self[i]

    @property
    def base_length(self) -> int:
        """The number of rows of the full dataset (or group) at this commit, ignoring this
        handle's index: the shortest visible tensor."""
        return self._base_length()

    def _base_length(self) -> int:
        # a tensor whose metadata is damaged is left out (with a warning) rather than making
        # every other tensor unreadable; `lakeformat verify` reports it
        lengths = []
        for t in self._visible_full_tensors():
            try:
                lengths.append(t.num_samples)
            except LakeFormatError as e:
                logger.warning("tensor %r does not open, left out of the dataset's length: %s", t.name, e)
        return min(lengths) if lengths else 0

    def _visible_full_tensors(self) -> List[Tensor]:
        return [Tensor(n, k, self, Index()) for n, k in self.meta.tensor_names.items() if k not in self.meta.hidden_tensors and (not self.group or n.startswith(self.group + "/"))]

    def __len__(self) -> int:
        return self.index.length(self._base_length())

    @property
    def num_samples(self) -> int:
        return len(self)

    @property
    def max_len(self) -> int:
        lengths = [t.num_samples for t in self._visible_full_tensors()]
        return max(lengths) if lengths else 0

    def check_writable(self) -> None:
        """Raise ReadOnlyError unless this dataset may be written (opened for writing, at a
        branch head)."""
        if self._state.read_only:
            raise ReadOnlyError(f"Dataset {self.path!r} was opened read-only.")
        if not self._state.vs.is_head:
            raise ReadOnlyError(
                f"Dataset {self.path!r} is at commit {self._state.vs.commit_id}, which is read-only; "
                "check out a branch to write (ds.checkout('main'), or ds.checkout('new', create=True))."
            )

    def _check_writable_view(self) -> None:
        self.check_writable()
        if self.is_view:
            raise ReadOnlyError("A view of a dataset is read-only; write through the dataset itself.")

    def append(self, sample: Dict[str, Any], skip_ok: bool = False, append_empty: bool = False) -> None:
        self.extend({k: [v] for k, v in sample.items()}, skip_ok=skip_ok, append_empty=append_empty)

    def extend(self, samples: Dict[str, Any], skip_ok: bool = False, append_empty: bool = False, progressbar: bool = False) -> None:
        """Append a batch to several tensors at once; all of it lands or none of it does."""
        self._check_writable_view()
        if not isinstance(samples, dict):
            raise LakeFormatError("ds.extend takes a dict of tensor name -> samples")
        resolved: Dict[str, Any] = {}
        lengths = set()
        for name, vals in samples.items():
            t = self._tensor(name)
            resolved[t.key] = vals
            lengths.add(len(vals))
        if len(lengths) > 1:
            raise SampleError(f"ds.extend got different numbers of samples per tensor: { {k: len(v) for k, v in samples.items()} }")
        n = lengths.pop() if lengths else 0
        missing = [t for name, t in self.tensors.items() if t.key not in resolved]
        if missing and not (skip_ok or append_empty):
            raise SampleError(
                "ds.append/extend needs a value for every tensor; missing: "
                + ", ".join(t.name for t in missing) + " (pass skip_ok=True or append_empty=True)"
            )
        if append_empty:
            for t in missing:
                resolved[t.key] = [None] * n
        self._extend_tensors(resolved, progressbar=progressbar)

    def _extend_tensors(self, values: Dict[str, Any], progressbar: bool = False) -> None:
        row_writes.extend_tensors(self, values, progressbar)

    def _after_write(self) -> None:
        row_writes.after_write(self)

    def update_samples(self, key: str, items: List[int], values: List[Any]) -> None:
        """Replace samples `items` of tensor `key` (a tensor key, hidden ones included) with
        `values`, with their hidden shapes and infos and null validity; flushes outside a
        `with` block. `ds[name][items] = values` is the same for a visible tensor."""
        row_writes.update_samples(self, key, items, values)

    def pop_samples(self, key: str, index: Any) -> None:
        """Remove sample `index` (an int, or a list of them) of tensor `key` (a tensor key)
        and of its hidden tensors; flushes outside a `with` block. `ds[name].pop(index)` is
        the same for a visible tensor."""
        row_writes.pop_samples(self, key, index)

    def pop(self, index: Optional[Union[int, List[int], np.ndarray]] = None) -> None:
        """Remove sample `index` (default: the last) from every tensor; a list of indices
        removes them all at once (see `delete_rows`)."""
        self._check_writable_view()
        if isinstance(index, (list, tuple, np.ndarray)):
            self.delete_rows(index)
            return
        if index is None:
            index = len(self) - 1
        st = self._state
        with st.lock:
            # every tensor's pop in one flush: flushed tensor by tensor, a crash between two
            # of them left the row gone from some tensors and not from others
            st.with_depth += 1
            try:
                for t in self._visible_full_tensors():
                    if index < t.num_samples:
                        self.pop_samples(t.key, index)
            finally:
                st.with_depth -= 1
            row_writes.after_write(self)

    def delete_rows(self, indices: Union[List[int], np.ndarray]) -> None:
        """Remove the samples at `indices` from every tensor (hidden ones included), each
        affected chunk rewritten once, in one flush (outside a `with` block). As deeplake's
        `pop` of a list: duplicates raise `DuplicateIndexError` (a ValueError), negative or
        out-of-range indices `IndexOutOfRangeError`; a tensor shorter than an index keeps
        its samples there.

        >>> ds.delete_rows([0, 5, 7])  # doctest: +SKIP
        """
        self._check_writable_view()
        st = self._state
        with st.lock:
            # an int array is taken too (np.asarray); the callee types its argument as a Sequence
            idx = normalize_pop_indices(cast("Sequence[int]", indices), self.max_len, f"dataset {self.path!r}")
            if not len(idx):
                return
            for t in self._visible_full_tensors():
                sel = idx[: int(np.searchsorted(idx, t.num_samples))]
                if len(sel):
                    row_writes.pop_tensor_many(self, t.key, sel)
            row_writes.after_write(self)

    # ==========================================================================================
    # flushing
    def __enter__(self) -> "Dataset":
        self._state.with_depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._state.with_depth -= 1
        if self._state.with_depth == 0 and not self._state.read_only:
            self.flush()

    def _autoflush(self) -> None:
        if self._state.with_depth == 0:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered, all of it or none of it as far as a reader can tell
        (`Session.flush`)."""
        self._state.flush()

    def close(self) -> None:
        """Flush, then give back this handle's branch lock: another handle, in this process or
        another, may then write the branch. The handle stays open for reading only."""
        from lakeformat.version_control.locks import release_handle

        self.flush()
        release_handle(self)
        self._state.read_only = True

    # ==========================================================================================
    # info, creds, summary
    @property
    def info(self) -> Info:
        """The dataset's info (dataset_info.json): a mutable mapping whose changes are
        flushed with the dataset (outside a `with` block, at once)."""
        return Info(self._state.info, save=self._info_saved, check_writable=self.check_writable)

    def _info_saved(self) -> None:
        st = self._state
        st.info_dirty = True
        st.schema_edited = True  # the info and the diff change together
        st.diff.modify_info()
        self._autoflush()

    def add_creds_key(self, creds_key: str, managed: bool = False) -> None:
        self.check_writable()
        self._state.link_creds.add(creds_key, managed)
        self._autoflush()

    def populate_creds(self, creds_key: str, creds: Dict[str, Any]) -> None:
        self._state.link_creds.populate(creds_key, creds)

    def get_creds_keys(self) -> List[str]:
        return list(self._state.link_creds.creds_keys)

    def summary(self, print_out: bool = True) -> str:
        rows = [("tensor", "htype", "type", "shape", "dtype", "compression")]
        for name, t in self.tensors.items():
            n, h, shape, dt, sc, cc = Tensor(t.name, t.key, self, self.index).summary_row()
            lo, hi = t.shape_interval
            dims = ", ".join(str(a) if a == b else f"{a}:{b}" for a, b in zip(lo, hi))
            shape = f"({len(t)}, {dims})" if dims else f"({len(t)},)"
            comp = sc if sc != "None" else (cc if cc != "None" else "None")
            # the logical type (lakeformat.types), and whether the column has had nulls
            logical = t.logical_type + (", nullable" if t.nullable else "")
            rows.append((name, h, logical, shape, dt, comp))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [f"Dataset(path={self.path!r}, tensors={list(self.tensors)})", ""]
        for k, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        text = "\n".join(lines)
        if print_out:
            print(text)
        return text

    def __repr__(self) -> str:
        v = f", index={self.index.samples if isinstance(self.index.samples, int) else ('[' + str(len(self)) + ' samples]') if self.is_view else ''}" if self.is_view else ""
        return f"Dataset(path={self.path!r}{v}, tensors={list(self.tensors)})"

    def numpy(self, aslist: bool = False) -> Dict[str, Any]:
        return {name: t.numpy(aslist=aslist) for name, t in self.tensors.items()}

    # ==========================================================================================
    # version control (lakeformat.version_control.api holds the logic)
    @property
    def commit_id(self) -> Optional[str]:
        from lakeformat.version_control import api

        return api.commit_id(self)

    @property
    def pending_commit_id(self) -> str:
        return self._state.vs.commit_id

    @property
    def branch(self) -> Optional[str]:
        return self._state.vs.branch

    @property
    def branches(self) -> List[str]:
        return list(self._state.vs.tree.branches)

    @property
    def has_head_changes(self) -> bool:
        from lakeformat.version_control import api

        return api.has_head_changes(self)

    @property
    def read_version(self) -> str:
        """A token for this dataset's branch as it is stored now: give it to
        `lakeformat.version_control.operations.commit_operation` with an operation prepared
        from what was read; the commit fails with CommitConflictError if the branch moved."""
        from lakeformat.version_control import operations

        return operations.read_version(self)

    def commit(self, message: Optional[str] = None, allow_empty: bool = False) -> str:
        from lakeformat.version_control import api

        return api.commit(self, message, allow_empty)

    def checkout(self, address: str, create: bool = False) -> Optional[str]:
        from lakeformat.version_control import api

        return api.checkout(self, address, create)

    def log(self) -> List[Dict[str, Any]]:
        from lakeformat.version_control import api

        return api.log(self)

    def reset(self) -> None:
        from lakeformat.version_control import api

        api.reset(self)

    def delete_branch(self, name: str) -> None:
        from lakeformat.version_control import api

        api.delete_branch(self, name)

    def diff(self, id_1: Optional[str] = None, id_2: Optional[str] = None, as_dict: bool = False) -> Any:
        from lakeformat.version_control import diff as vc_diff

        return vc_diff.diff(self, id_1, id_2, as_dict)

    def merge(self, target_id: str, conflict_resolution: Optional[str] = None, delete_removed_tensors: bool = False, force: bool = False) -> Optional[str]:
        """Merge a branch or commit into the current branch; returns the merge commit's id."""
        from lakeformat.version_control import merge as vc_merge

        return vc_merge.merge(self, target_id, conflict_resolution, delete_removed_tensors, force)

    # ==========================================================================================
    # loaders
    def pytorch(self, *args: Any, **kwargs: Any) -> Any:
        from lakeformat.integrations.torch import dataset_pytorch

        return dataset_pytorch(self, *args, **kwargs)

    def query(self, text: str, params: Optional[Sequence[Any]] = None, backend: str = "numpy") -> "Dataset":
        """The view over the rows a TQL query selects, in the query's order (docs/tql.md).
        Computed SELECT columns come with `lakeformat.tql.run(ds, text)`.

        >>> ds.query("SELECT * WHERE labels == 'cat' ORDER BY score DESC LIMIT 10")  # doctest: +SKIP
        """
        from lakeformat import tql  # imported on first use: TQL is not needed to open a dataset

        view: Dataset = tql.run(self, text, params=params, backend=backend).view  # QueryResult.view is a Dataset
        return view

    def explain(self, text: str) -> str:
        """The plan of a TQL query on this dataset: tensors read, filter, order, limit."""
        from lakeformat import tql

        return tql.explain(self, text)

    # export (lakeformat/core/arrow_export.py holds the logic)
    def to_arrow(self, tensors: Optional[Sequence[str]] = None, class_labels: str = "dictionary") -> Any:
        """This handle's rows as a `pyarrow.Table`, one column per tensor, in the handle's order."""
        from lakeformat.core.arrow_export import to_arrow

        return to_arrow(self, tensors, class_labels)

    def to_pandas(self, tensors: Optional[Sequence[str]] = None, class_labels: str = "dictionary") -> Any:
        """This handle's rows as a `pandas.DataFrame` (`to_arrow(...).to_pandas()`)."""
        from lakeformat.core.arrow_export import to_pandas

        return to_pandas(self, tensors, class_labels)

    # views (lakeformat/core/view.py holds the logic)
    @property
    def view(self) -> Any:
        """This handle as a `lakeformat.View`: a frozen, serialisable selection (rows, group,
        tensors, query) pinned to the commit it reads; `View.open(ds)` gives the handle back."""
        from lakeformat.core.view import view_of

        return view_of(self)

    def filter(self, function: Any, num_workers: int = 0, scheduler: str = "threaded", progressbar: bool = False) -> "Dataset":
        """The view of the rows where `function(ds[i])` is true, in order (deeplake 3.x's
        `ds.filter`); a string is a TQL condition. See `lakeformat.core.view.filter_dataset`."""
        from lakeformat.core.view import filter_dataset

        return filter_dataset(self, function, num_workers, scheduler, progressbar)
