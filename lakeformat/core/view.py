"""Views: a frozen, serialisable selection of rows over a dataset at a commit.

A `View` is a value, not a handle: the dataset's path, the commit it reads, the rows (a
`RowSelection`: ranges, or an int64 array when the rows are scattered), the tensors (None: all),
the group, and the query that made it (TQL fills it). Slicing, `Dataset.filter` and TQL
produce them (`handle.view`); the loader, saved views and materialization consume them
(`View.open(...)` gives a dataset handle over the same rows). It round-trips through
`to_dict`/`from_dict` (JSON-safe) and pickle, so it can cross processes and be saved.

Pinning. A view taken where the data cannot change (a past commit, or a branch head with no
uncommitted changes: its last commit holds the same data) records that commit and reopens
anywhere, any time, with the same values. A view taken on a branch head with uncommitted
changes cannot be pinned: it records the head's (pending) commit id, the branch and the
number of rows then, and says so (`uncommitted=True`). It reopens only while that head is
still the branch's head and has the same number of rows; once the head is committed (the
branch moves on) or its rows changed, `open` raises `StaleViewError`. Values edited in place
without changing the number of rows cannot be seen: commit before taking a view to keep.

>>> ds = lakeformat.empty("memory://views-doc")                      # doctest: +SKIP
>>> ds.create_tensor("x"); ds.x.extend(np.arange(10)); ds.commit("ten rows")  # doctest: +SKIP
>>> v = ds[2:8].filter(lambda s: s.x.numpy() % 2 == 0).view           # doctest: +SKIP
>>> View.from_dict(json.loads(json.dumps(v.to_dict()))).open(ds).x.numpy().tolist()  # doctest: +SKIP
[2, 4, 6]
"""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat.core.dataset import Dataset
from lakeformat.core.index import InvalidIndexError, RowSelection
from lakeformat.errors import IndexOutOfRangeError, LakeFormatError, TensorDoesNotExistError

VIEW_FORMAT = 1  # the version of `View.to_dict`'s layout


class ViewError(LakeFormatError, ValueError):
    """A view that cannot be made, read back or opened (says which and why)."""


class StaleViewError(ViewError):
    """A view of uncommitted changes, opened after its branch head moved or changed."""


class FilterError(LakeFormatError):
    """The filter function raised in a worker (the original error is the cause)."""


@dataclass(frozen=True)
class View:
    """Rows `rows` of the dataset at `path`, read at commit `commit_id` (see the module's doc).

    - `rows`: a `RowSelection` (positions in the group's rows at that commit, in order).
    - `tensors`: the tensors the view shows (names relative to `group`), None for all.
    - `group`: the group the view is over ("" for the whole dataset).
    - `query`: the TQL text that selected the rows, when a query did (None otherwise).
    - `branch`: the branch it was taken on (None at a detached commit; not compared: the same
      rows of the same commit are the same view wherever they were taken).
    - `uncommitted`: taken on a branch head with uncommitted changes (then `commit_id` is the
      head's pending id, and the view reopens only while that head stands unchanged).
    - `source_length`: the group's number of rows at the commit when the view was taken.
    """

    path: str
    commit_id: str
    rows: RowSelection
    source_length: int
    tensors: Optional[Tuple[str, ...]] = None
    group: str = ""
    query: Optional[str] = None
    branch: Optional[str] = field(default=None, compare=False)  # provenance: a commit reopened is detached
    uncommitted: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.rows, RowSelection):
            raise ViewError(f"View.rows must be a RowSelection, not {type(self.rows).__name__}")
        if self.tensors is not None:
            if isinstance(self.tensors, str) or not all(isinstance(t, str) for t in self.tensors):
                raise ViewError(f"View.tensors must be a sequence of tensor names or None, not {self.tensors!r}")
            object.__setattr__(self, "tensors", tuple(self.tensors))
        bounds = self.rows.bounds()
        if bounds is not None and bounds[1] >= self.source_length:
            raise IndexOutOfRangeError(f"view row {bounds[1]} is out of range for {self.source_length} rows")

    # -- rows --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def is_single(self) -> bool:
        """One row picked by an integer (its handle reads samples, not stacks of them)."""
        return self.rows.single

    def row_indices(self, limit: Optional[int] = None) -> np.ndarray:
        """The rows, as int64 positions in the group at the commit (the first `limit` when given)."""
        if limit is None or self.rows.single:
            return self.rows.to_array()[: limit]
        return self.rows.select(slice(0, max(0, int(limit)))).to_array()

    def __getitem__(self, item: Any) -> "View":
        """The view of `self`'s rows `item`, as NumPy's `arange(n)[rows][item]` (an int, a
        slice, a list of ints or a boolean mask). The query text is dropped: it no longer
        describes the rows."""
        return replace(self, rows=self.rows.select(item), query=None)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """A JSON-safe dict (`json.dumps` takes it as is); `View.from_dict` reads it back."""
        return {
            "format": VIEW_FORMAT,
            "path": self.path,
            "commit_id": self.commit_id,
            "branch": self.branch,
            "uncommitted": self.uncommitted,
            "source_length": self.source_length,
            "rows": self.rows.to_dict(),
            "tensors": list(self.tensors) if self.tensors is not None else None,
            "group": self.group,
            "query": self.query,
        }

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "View":
        if not isinstance(d, dict):
            raise ViewError(f"a view's dict must be a dict, not {type(d).__name__}")
        fmt = d.get("format", VIEW_FORMAT)
        if fmt != VIEW_FORMAT:
            raise ViewError(f"view format {fmt!r} is not supported (this version reads {VIEW_FORMAT})")
        missing = [k for k in ("path", "commit_id", "rows", "source_length") if k not in d]
        if missing:
            raise ViewError(f"a view's dict lacks {', '.join(missing)}")
        for k, typ in (("path", str), ("commit_id", str), ("group", str), ("query", (str, type(None))), ("branch", (str, type(None)))):
            if k in d and not isinstance(d[k], typ):
                raise ViewError(f"a view's {k!r} must be {getattr(typ, '__name__', 'a string or null')}, not {d[k]!r}")
        if not isinstance(d["source_length"], int) or isinstance(d["source_length"], bool) or d["source_length"] < 0:
            raise ViewError(f"a view's 'source_length' must be a row count, not {d['source_length']!r}")
        if not isinstance(d["rows"], dict):
            raise ViewError(f"a view's 'rows' must be a dict, not {d['rows']!r}")
        tensors = d.get("tensors")
        if tensors is not None and not isinstance(tensors, list):
            raise ViewError(f"a view's 'tensors' must be a list of names or null, not {tensors!r}")
        try:
            rows = RowSelection.from_dict(d["rows"])
        except InvalidIndexError as e:
            raise ViewError(f"a view's rows: {e}") from None
        return View(d["path"], d["commit_id"], rows, d["source_length"], tuple(tensors) if tensors is not None else None,
                    d.get("group", ""), d.get("query"), d.get("branch"), bool(d.get("uncommitted", False)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @staticmethod
    def from_json(text: str) -> "View":
        try:
            return View.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ViewError(f"a view's JSON does not parse: {e}") from None

    def __repr__(self) -> str:
        pinned = f"uncommitted head of branch {self.branch!r} ({self.commit_id})" if self.uncommitted else f"commit {self.commit_id}"
        extra = "".join(f", {k}={v!r}" for k, v in (("group", self.group), ("tensors", self.tensors), ("query", self.query)) if v)
        return f"View({self.path!r} at {pinned}, {len(self)} of {self.source_length} rows{extra})"

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def of(cls, handle: Dataset) -> "View":
        """The view of a dataset handle (`handle.view`)."""
        return view_of(handle)

    def open(self, ds_or_path: Union[Dataset, str, None] = None, read_only: bool = True, creds: Optional[Dict[str, Any]] = None) -> Dataset:
        """A dataset handle over the view's rows, tensors and group, at its commit.

        `ds_or_path`: the dataset (a handle of it, whole: not a view or a group), used as is
        when it reads the view's commit and else reopened read-only at that commit; or a
        path/URL (default: the view's own `path`), opened at the commit (`read_only=False`
        only for a view of a branch head, which stays writable). Raises `StaleViewError` for a
        view of uncommitted changes whose head moved, `ViewError` when the dataset does not
        match the view.

        >>> View.from_json(saved).open("s3://bucket/ds").images.numpy()  # doctest: +SKIP
        """
        root = self._root(ds_or_path, read_only, creds)
        try:
            base = root[self.group] if self.group else root
        except TensorDoesNotExistError:
            raise ViewError(f"the dataset at {root.path!r} has no group {self.group!r} at commit {self.commit_id}") from None
        if not isinstance(base, Dataset):
            raise ViewError(f"{self.group!r} is a tensor of the dataset at {root.path!r}, not a group")
        n = _base_length(base)
        if n != self.source_length:
            if self.uncommitted:
                raise StaleViewError(f"the view was taken on uncommitted changes of branch {self.branch!r} with {self.source_length} rows; "
                                     f"the head has {n} rows now: commit before taking a view to keep it")
            raise ViewError(f"commit {self.commit_id} of {root.path!r} has {n} rows but the view was taken with {self.source_length}: not the same dataset")
        if self.tensors is not None:
            have = set(base.tensors)
            gone = [t for t in self.tensors if t not in have]
            if gone:
                raise ViewError(f"the view's tensors {gone} are not in {root.path!r} at commit {self.commit_id}")
        if self.rows.is_all(n):
            handle = base
        elif self.rows.single:
            handle = base[self.rows.row(0)]  # type: ignore[assignment]
        else:
            handle = base[self.rows.to_array()]  # type: ignore[assignment]
        return with_selection(handle, self.tensors, self.query)

    def _reads(self, ds: Dataset) -> bool:
        """Whether `ds` reads the data of the view's commit."""
        if ds.pending_commit_id == self.commit_id:
            return True
        return (not self.uncommitted and ds.version_state.is_head and ds.commit_id == self.commit_id
                and not ds.has_head_changes)

    def _root(self, ds_or_path: Union[Dataset, str, None], read_only: bool, creds: Optional[Dict[str, Any]]) -> Dataset:
        if not self.uncommitted and not read_only:
            raise ViewError(f"a view of commit {self.commit_id} opens read-only (a past commit cannot change)")
        if isinstance(ds_or_path, Dataset):
            ds = ds_or_path
            if ds.group or ds.index.samples is not None or ds.index.ops:
                raise ViewError("View.open takes the dataset itself (ds), not a view or a group of it")
            if self._reads(ds):
                if not read_only and ds.read_only:
                    raise ViewError(f"{ds.path!r} is open read-only: open it writable to get a writable view")
                return ds
            if self.uncommitted:
                raise StaleViewError(f"the view was taken on uncommitted changes at the head of branch {self.branch!r} "
                                     f"(pending commit {self.commit_id}); {ds.path!r} reads {ds.pending_commit_id} now")
            path: str = ds.path
        elif ds_or_path is None or isinstance(ds_or_path, str):
            path = self.path if ds_or_path is None else ds_or_path
        else:
            raise ViewError(f"View.open takes a Dataset or a path, not {type(ds_or_path).__name__}")
        from lakeformat.api import load  # the facade's opener: a path becomes a dataset here only

        if self.uncommitted:
            opened = load(path, read_only=read_only, creds=creds, version=self.branch)
            if opened.pending_commit_id != self.commit_id:
                raise StaleViewError(f"the view was taken on uncommitted changes at the head of branch {self.branch!r} "
                                     f"(pending commit {self.commit_id}); the branch has moved on to {opened.pending_commit_id}")
            return opened
        return load(path, read_only=True, creds=creds, version=self.commit_id)


def _base_length(ds: Dataset) -> int:
    """Rows of the handle's group at its commit, whatever rows the handle selects."""
    n = getattr(type(ds), "base_length", None)
    if isinstance(n, property):
        return int(ds.base_length)
    return int(ds._base_length())


def view_of(handle: Dataset) -> View:
    """The `View` of a dataset handle: its rows, group, tensors and query, pinned to the commit
    it reads (see the module's doc on views of uncommitted changes)."""
    n = _base_length(handle)
    try:
        rows = handle.index.rows(n)
    except InvalidIndexError as e:
        raise ViewError(str(e)) from None
    vs = handle.version_state
    uncommitted = False
    if vs.is_head:
        last = handle.commit_id
        if last is None or handle.has_head_changes:
            commit, uncommitted = handle.pending_commit_id, True
        else:
            commit = last
    else:
        commit = handle.pending_commit_id
    tensors = handle.__dict__.get("view_tensors")
    query = handle.__dict__.get("view_query")
    return View(str(handle.path), commit, rows, n, tensors, handle.group, query, handle.branch, uncommitted)


# -- handles that show some tensors, or carry their query ----------------------------------------
class SelectedDataset(Dataset):
    """A dataset handle that shows only some tensors (`view_tensors`, names relative to its
    group) and/or carries the query text that selected its rows (`view_query`). Made by
    `View.open` and `with_selection`; indexing it keeps the tensors and drops the query."""

    @property
    def tensors(self) -> Dict[str, Any]:
        shown = self.__dict__["view_tensors"]
        every = super().tensors
        return every if shown is None else {n: t for n, t in every.items() if n in shown}

    @property
    def groups(self) -> Dict[str, Dataset]:
        return {name: self._nested(g, name) for name, g in super().groups.items()}

    def __getitem__(self, item: Any) -> Any:
        shown = self.__dict__["view_tensors"]
        if isinstance(item, str):
            name = item.strip("/")
            out = super().__getitem__(item)
            if isinstance(out, Dataset):
                return self._nested(out, name)
            if shown is not None and name not in shown and name in super().tensors:
                raise TensorDoesNotExistError(f"{name} (not among the view's tensors {list(shown)})")
            return out
        out = super().__getitem__(item)
        return with_selection(out, shown, None) if isinstance(out, Dataset) else out

    def _nested(self, group: Dataset, name: str) -> Dataset:
        shown = self.__dict__["view_tensors"]
        inner = None if shown is None else tuple(t[len(name) + 1:] for t in shown if t.startswith(name + "/"))
        return with_selection(group, inner, None)


def with_selection(handle: Dataset, tensors: Optional[Sequence[str]], query: Optional[str]) -> Dataset:
    """`handle`, showing only `tensors` (None: all) and carrying `query` (None: no query)."""
    if tensors is None and query is None:
        if isinstance(handle, SelectedDataset):
            out = object.__new__(Dataset)
            out.__dict__.update({k: v for k, v in handle.__dict__.items() if k not in ("view_tensors", "view_query")})
            return out
        return handle
    out = object.__new__(SelectedDataset)
    out.__dict__.update(handle.__dict__)
    out.__dict__["view_tensors"] = tuple(tensors) if tensors is not None else None
    out.__dict__["view_query"] = query
    return out


# -- filter ------------------------------------------------------------------------------------
SCHEDULERS = ("threaded", "processed")


def filter_dataset(ds: Dataset, function: Union[Callable[[Dataset], Any], str], num_workers: int = 0,
                   scheduler: str = "threaded", progressbar: bool = False) -> Dataset:
    """The view of the rows of `ds` for which `function(ds[i])` is true, in order (deeplake
    3.x's `ds.filter`). A string is a TQL condition (`"labels == 'cat' AND x > 2"`) or a
    whole query (`"SELECT * WHERE ..."`), run by `ds.query`; its text is the view's query.

    `num_workers > 0` evaluates blocks of rows in a pool: threads (`scheduler="threaded"`),
    or processes (`"processed"`: `function` must pickle, and each worker reopens the
    dataset from its path, so it must not be `memory://`). An error of `function` in a
    worker raises `FilterError` (the original is its cause); without workers it propagates.
    """
    if isinstance(function, str):
        text = function.strip()
        if not text.upper().startswith("SELECT"):
            text = f"SELECT * WHERE {text}"
        return with_selection(ds.query(text), ds.__dict__.get("view_tensors"), text)
    if not callable(function):
        raise ViewError(f"filter takes a function of a sample or a TQL string, not {type(function).__name__}")
    if ds.index.is_single:
        raise ViewError("filter needs rows to choose from: this handle is one sample (ds[i]); filter ds or a slice of it")
    if scheduler not in SCHEDULERS:
        raise ViewError(f"scheduler must be one of {SCHEDULERS}, not {scheduler!r}")
    n = len(ds)
    if num_workers <= 0:
        keep = _filter_block(ds, function, 0, n, _progress(progressbar, n))
    else:
        keep = _filter_pool(ds, function, int(num_workers), scheduler, progressbar)
    return ds[np.asarray(keep, dtype=np.int64)]  # type: ignore[return-value]


def _progress(on: bool, total: int) -> Any:
    if not on:
        return None
    from tqdm import tqdm  # a dependency of the loader's progress bars; imported when asked for

    return tqdm(total=total)


def _filter_block(ds: Dataset, function: Callable[[Dataset], Any], start: int, stop: int, bar: Any = None) -> List[int]:
    keep = []
    for i in range(start, stop):
        if function(ds[i]):  # type: ignore[arg-type]
            keep.append(i)
        if bar is not None:
            bar.update(1)
    return keep


def _blocks(n: int, workers: int) -> List[Tuple[int, int]]:
    """Contiguous blocks of rows, a few per worker (so a slow block does not idle the rest)."""
    count = max(1, min(n, workers * 4))
    edges = np.linspace(0, n, count + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _filter_pool(ds: Dataset, function: Callable[[Dataset], Any], workers: int, scheduler: str, progressbar: bool) -> List[int]:
    blocks = _blocks(len(ds), workers)
    bar = _progress(progressbar, len(ds))
    try:
        if scheduler == "threaded":
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(lambda b: _filter_block(ds, function, b[0], b[1], bar), blocks))
        else:
            view = _shareable_view(ds)
            with ProcessPoolExecutor(workers) as pool:
                parts = list(pool.map(_filter_in_process, [(view, function, a, b) for a, b in blocks]))
    except ViewError:
        raise
    except Exception as e:
        raise FilterError(f"the filter function failed: {type(e).__name__}: {e}") from e
    finally:
        if bar is not None:
            bar.close()
    return [i for part in parts for i in part]


def _shareable_view(ds: Dataset) -> View:
    """The view a worker process reopens; what is not yet in storage gets there first."""
    from lakeformat.storage import protocol_of

    if protocol_of(str(ds.path)) in ("memory", "mem"):
        raise ViewError(f"scheduler='processed' reopens the dataset in each worker, and {ds.path!r} lives in this process only: use scheduler='threaded'")
    if not ds.read_only:
        ds.flush()
    return view_of(ds)


_OPENED: Dict[View, Dataset] = {}  # per worker process: the handle of each view it filters


def _filter_in_process(job: Tuple[View, Callable[[Dataset], Any], int, int]) -> List[int]:
    view, function, start, stop = job
    handle = _OPENED.get(view)
    if handle is None:
        handle = _OPENED[view] = view.open(view.path, read_only=True)
    return _filter_block(handle, function, start, stop)
