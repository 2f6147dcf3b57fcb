"""Versions in TQL: a tensor at another version (`labels@v1`), and the rows added, removed
or changed between two versions (`ROW_ADDED('v1')`, `ROW_REMOVED('v2')`, `ROW_CHANGED('v1')`).

A version is a branch name (its head, uncommitted changes included), a commit id, or a
unique prefix of one (6 characters at least, as `checkout` takes). Another version is read
from the same storage through a read-only dataset object at that commit: the handle queried
keeps its HEAD, its branch and its uncommitted changes; the version it stands on is read
through the handle itself, unflushed writes included.

Rows align by sample id: `x@v1` at a row is the sample of tensor `x` at v1 whose hidden
`_x_id` equals that row's (ids survive updates, pops and merges; they are what diff and merge
match by). A tensor without ids on either side aligns by position. A sample absent at the
other version reads as NULL there, so `x@v1 IS NULL` selects rows added since v1.
`ROW_ADDED(v)` tests that absence directly, from the ids alone; `ROW_CHANGED(v)` narrows the
rows to those a commit between the two versions updated (their commit diffs, no value read)
before comparing the values of just those rows.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Dict, FrozenSet, Iterator, List, Optional, Tuple

import numpy as np

from lakeformat.core import keys
from lakeformat.core.dataset import Dataset
from lakeformat.core.tensor import Tensor
from lakeformat.core.version_tree import VersionTree
from lakeformat.errors import LakeFormatError
from lakeformat.tql.errors import TQLError
from lakeformat.tql.functions import CallContext, register_builtin
from lakeformat.tql.reader import DatasetColumnReader
from lakeformat.tql.values import Value, pack, ragged_list, text_objects
from lakeformat.version_control.api import dataset_at
from lakeformat.version_control.diff import path_to, sample_ids

MIN_PREFIX = 6  # a commit prefix shorter than this is refused, as checkout and load refuse it


class VersionContext:
    """The versions of the dataset one query runs on: resolves names to commits, opens each
    version read-only once, and maps the query's rows to samples at those versions."""

    def __init__(self, ds: Any):
        self.ds = ds
        self.session = ds.session
        self.group: str = ds.group or ""
        self.here: str = self.session.version_state.commit_id
        self._tree: Optional[VersionTree] = None
        self._roots: Dict[str, Dataset] = {}
        self._ids: Dict[Tuple[str, str], Optional[np.ndarray]] = {}
        self._sorted: Dict[Tuple[str, str], Tuple[np.ndarray, np.ndarray]] = {}
        self._base_rows: Optional[np.ndarray] = None

    @classmethod
    def of(cls, ds: Any) -> Optional["VersionContext"]:
        """The context of `ds`, or None for a source that is not a dataset (a stand-in)."""
        if not isinstance(ds, Dataset):
            return None
        return cls(ds)

    # -- versions ------------------------------------------------------------------------------
    def tree(self) -> VersionTree:
        """The stored tree (branches other writers made since the handle opened count), or
        the handle's own where the stored one does not hold its version yet."""
        if self._tree is None:
            tree = self.session.version_state.tree
            try:
                stored = VersionTree.from_bytes(self.session.storage.get(keys.version_control_info_key()))
                if self.here in stored.commits:
                    tree = stored
            except (KeyError, LakeFormatError):
                pass
            self._tree = tree
        return self._tree

    def resolve(self, version: str) -> str:
        """A branch name, a commit id or a unique prefix of one -> the commit id."""
        tree = self.tree()
        if version in tree.branches:
            return tree.branches[version]
        if version in tree.commits:
            return version
        found = sorted(c for c in tree.commits if c.startswith(version))
        if len(found) == 1 and len(version) >= MIN_PREFIX:
            return found[0]
        if len(found) > 1 and len(version) >= MIN_PREFIX:
            shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
            raise TQLError(f"version {version!r} is ambiguous: it begins {len(found)} commits ({shown}); give more of the id")
        if found:
            raise TQLError(f"version {version!r} is too short for a commit prefix: give at least {MIN_PREFIX} characters of the id")
        branches = ", ".join(sorted(tree.branches)) or "none"
        raise TQLError(f"unknown version {version!r}: neither a branch (branches: {branches}) nor a commit of this dataset")

    def root(self, commit: str) -> Dataset:
        """The whole dataset at `commit`: the handle's own session for the version it stands
        on (its unflushed writes included), else a read-only object on the same storage."""
        d = self._roots.get(commit)
        if d is None:
            d = Dataset(self.session) if commit == self.here else dataset_at(self.ds, commit, self.tree())
            self._roots[commit] = d
        return d

    def group_at(self, commit: str) -> Dataset:
        """The group queried (the whole dataset for none), at `commit`."""
        root = self.root(commit)
        return Dataset(root.session, None, self.group) if self.group else root

    def _full(self, name: str) -> str:
        return f"{self.group}/{name}" if self.group else name

    def _visible(self, commit: str) -> Dict[str, str]:
        """full tensor name -> key, for the visible tensors at `commit`."""
        meta = self.root(commit).meta
        hidden = set(meta.hidden_tensors)
        return {n: k for n, k in meta.tensor_names.items() if k not in hidden}

    def tensor_at(self, name: str, commit: str, version: str) -> Tuple[str, str]:
        """(name relative to the group, key) of tensor `name` at `commit`; a TQLError when
        it does not exist there. `a/b` finds a tensor named `a.b` where no `a/b` exists."""
        names = self._visible(commit)
        for cand in (name, name.replace("/", ".")):
            if self._full(cand) in names:
                return cand, names[self._full(cand)]
        prefix = self.group + "/" if self.group else ""
        there = sorted(n[len(prefix):] for n in names if n.startswith(prefix)) or ["none"]
        raise TQLError(f"tensor {name!r} does not exist at version {version!r} (tensors there: {', '.join(there)})")

    # -- rows ------------------------------------------------------------------------------------
    def base_rows(self, rows: np.ndarray) -> np.ndarray:
        """The query's rows (positions in the dataset or view queried) as positions in the
        whole dataset (group) at the version it stands on."""
        if self._base_rows is None:
            self._base_rows = np.asarray(self.ds.index.resolve(self.ds.base_length), np.int64)
        return self._base_rows[np.asarray(rows, np.int64)]

    def ids(self, commit: str, key: str) -> Optional[np.ndarray]:
        k = (commit, key)
        if k not in self._ids:
            root = self.root(commit)
            self._ids[k] = sample_ids(root, key) if key in root.meta.tensors else None
        return self._ids[k]

    def num_samples(self, commit: str, key: str) -> int:
        root = self.root(commit)
        return int(root.session.engine(key).num_samples) if key in root.meta.tensors else 0

    def positions(self, key: str, commit: str, rows: np.ndarray) -> np.ndarray:
        """For each query row, the position of tensor `key`'s sample of that row at `commit`
        (-1: not there): by sample id, or by position where either side keeps no ids."""
        base = self.base_rows(rows)
        if commit == self.here:
            n_here = self.num_samples(commit, key)
            return np.where(base < n_here, base, -1)
        mine, theirs = self.ids(self.here, key), self.ids(commit, key)
        if mine is None or theirs is None:
            return np.where(base < self.num_samples(commit, key), base, -1)
        inside = base < len(mine)
        want = mine[np.where(inside, base, 0)]
        if (commit, key) not in self._sorted:
            order = np.argsort(theirs, kind="stable")
            self._sorted[(commit, key)] = (order, theirs[order])
        order, ordered = self._sorted[(commit, key)]
        if not len(ordered):
            return np.full(len(base), -1, np.int64)
        at = np.searchsorted(ordered, want)
        at_c = np.minimum(at, len(ordered) - 1)
        found = inside & (at < len(ordered)) & (ordered[at_c] == want)
        return np.where(found, order[at_c], -1).astype(np.int64)

    # -- x@version -------------------------------------------------------------------------------
    def read(self, name: str, version: str, rows: np.ndarray) -> Value:
        """Tensor `name` at `version`, over the query's rows (NULL where absent there)."""
        commit = self.resolve(version)
        rel, key = self.tensor_at(name, commit, version)
        pos = self.positions(key, commit, rows)
        present = pos >= 0
        want = pos[present]
        order = np.argsort(want, kind="stable")  # read in storage order, chunk by chunk
        got = DatasetColumnReader(self.group_at(commit))(rel, want[order])
        if len(order) and bool((np.diff(order) != 1).any()):
            got = got.take(np.argsort(order))
        return scatter(got, present)

    # -- ROW_ADDED / ROW_REMOVED / ROW_CHANGED ------------------------------------------------------
    def _tensors_for(self, commit: str, version: str, tensor: Optional[str]) -> List[Tuple[str, str]]:
        """(name, key) of the tensors a row function looks at: the one named, or every
        visible tensor of the group found (by key) at both versions."""
        here = self._visible(self.here)
        if tensor is not None:
            for cand in (tensor, tensor.replace("/", ".")):
                if self._full(cand) in here:
                    return [(cand, here[self._full(cand)])]
            raise TQLError(f"unknown tensor {tensor!r} in the dataset queried")
        prefix = self.group + "/" if self.group else ""
        there = set(self._visible(commit).values())
        return [(n[len(prefix):], k) for n, k in sorted(here.items()) if n.startswith(prefix) and k in there]

    def absent(self, version: str, tensor: Optional[str], rows: np.ndarray) -> np.ndarray:
        """Rows some of whose samples (of `tensor`, or of any tensor at both versions) are
        not at `version`."""
        commit = self.resolve(version)
        out = np.zeros(len(rows), bool)
        named = self._tensors_for(commit, version, tensor)
        if not named:  # no tensor in common: the rows past the other version's length
            return np.asarray(self.base_rows(rows) >= self.group_at(commit).base_length)
        for _, key in named:
            out |= self.positions(key, commit, rows) < 0
        return out

    def changed(self, version: str, tensor: Optional[str], rows: np.ndarray) -> np.ndarray:
        """Rows whose sample (of `tensor`, or of any tensor at both versions) is at both
        versions with different values. Candidates come from the commit diffs between the
        two versions (what was updated, by sample id); only their values are read."""
        commit = self.resolve(version)
        named = self._tensors_for(commit, version, tensor)
        out = np.zeros(len(rows), bool)
        if commit == self.here or not len(rows):
            return out
        tree = self.tree()
        base = tree.lowest_common_ancestor(self.here, commit)
        path = path_to(tree, self.here, base) + path_to(tree, commit, base)
        for rel, key in named:
            pos = self.positions(key, commit, rows)
            cand = pos >= 0
            updated = self._updated_ids(key, path)
            mine = self.ids(self.here, key)
            if updated is not None and mine is not None and self.ids(commit, key) is not None:
                base_rows = self.base_rows(rows)
                cand &= np.isin(mine[np.where(cand, base_rows, 0)], updated)
            idx = np.flatnonzero(cand & ~out)
            if len(idx):
                out[idx] = self._differ(rel, key, commit, self.base_rows(rows[idx]), pos[idx])
        return out

    def _updated_ids(self, key: str, path: List[str]) -> Optional[np.ndarray]:
        """Ids of tensor `key`'s samples updated by any version on `path` (None: unknown,
        every shared sample is a candidate)."""
        parts = [np.zeros(0, np.uint64)]
        for c in path:
            root = self.root(c)
            if key not in root.meta.tensors:
                continue
            cd = root.session.engine(key).commit_diff
            if cd.data_transformed or cd.cleared:
                return None
            upd = cd.updated_array()
            if not len(upd):
                continue
            ids = self.ids(c, key)
            if ids is None:
                return None
            parts.append(ids[upd[upd < len(ids)]])
        return np.unique(np.concatenate(parts))

    def _differ(self, rel: str, key: str, commit: str, mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
        """Whether each pair of samples (here at `mine`, there at `theirs`) differs."""
        a = _samples(self.root(self.here), self._full(rel), mine)
        full_there = [n for n, k in self._visible(commit).items() if k == key][0]
        b = _samples(self.root(commit), full_there, theirs)
        return np.fromiter((not _same(x, y) for x, y in zip(a, b)), bool, len(mine))


def _samples(root: Dataset, full: str, positions: np.ndarray) -> List[Any]:
    """Samples of tensor `full` at `positions`, None for a null."""
    t = root[full]
    if not isinstance(t, Tensor):
        raise TQLError(f"{full!r} is a group, not a tensor")
    view = t[positions.astype(np.int64)]
    if t.nullable:
        return list(view.numpy(aslist=True, nulls="mask"))
    return list(view.numpy(aslist=True))


def _same(x: Any, y: Any) -> bool:
    if x is None or y is None:
        return x is None and y is None
    a, b = np.asarray(x), np.asarray(y)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "biufc" and b.dtype.kind in "biufc":
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc"))
    return bool(a.tolist() == b.tolist())


def scatter(v: Value, present: np.ndarray) -> Value:
    """`v` (one row per True of `present`) spread over every row, NULL where not present."""
    n = len(present)
    if bool(present.all()):
        return v
    where = np.flatnonzero(present)
    if v.kind in ("text", "json"):
        src = text_objects(v) if v.kind == "text" else v.data
        out = np.empty(n, dtype=object)
        out[where] = list(src)
        return Value(v.kind, out, v.class_names)
    if v.kind == "ragged":
        got = ragged_list(v)
        dtype = got[0].dtype if got else np.float64
        empty = np.zeros((0,) + (got[0].shape[1:] if got and got[0].ndim > 1 else ()), dtype)
        rows: List[np.ndarray] = [empty] * n
        for j, r in zip(where.tolist(), got):
            rows[j] = r
        return pack(rows, v.class_names)
    data = np.asarray(v.data)
    if not len(where):
        return Value("array", np.zeros((n, 0), data.dtype), v.class_names, np.ones(n, bool), v.time)  # every row NULL
    full = np.zeros((n,) + data.shape[1:], data.dtype)
    full[where] = data
    null = ~present
    if v.null is not None:
        null[where] |= v.null
    return Value("array", full, v.class_names, null, v.time)


# -- the query's hooks -------------------------------------------------------------------------------
def check_versioned(versions: Optional[VersionContext], name: str, version: str, columns: FrozenSet[str]) -> None:
    """The planner's check of `name@version`: the version resolves and the tensor exists
    there (a TQLError without a position; the planner places it at the identifier)."""
    if name in columns:
        raise TQLError(f"{name!r} is a column computed by the sub-query, not a tensor: it has no versions")
    if versions is None:
        raise TQLError(f"{name}@{version}: this source is not a dataset with a version history")
    versions.tensor_at(name, versions.resolve(version), version)


def read_versioned(versions: Optional[VersionContext], name: str, version: str, rows: np.ndarray) -> Value:
    """The executor's read of `name@version` over the frame's rows."""
    if versions is None:
        raise TQLError(f"{name}@{version}: this source is not a dataset with a version history")
    return versions.read(name, version, rows)


_ACTIVE: ContextVar[Optional[VersionContext]] = ContextVar("lakeformat_tql_versions", default=None)


@contextmanager
def active(versions: Optional[VersionContext]) -> Iterator[None]:
    """Run a query with `versions` as the context of ROW_ADDED, ROW_REMOVED, ROW_CHANGED."""
    token = _ACTIVE.set(versions)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _row_args(fname: str, args: List[Value]) -> Tuple[VersionContext, str, Optional[str]]:
    strs = []
    for what, a in zip(("version", "tensor"), args):
        if a.kind != "const" or not isinstance(a.data, str):
            raise TQLError(f"{fname} takes the {what} as a string: {fname}('v1'{', ' + repr('labels') if what == 'tensor' else ''})")
        strs.append(a.data)
    versions = _ACTIVE.get()
    if versions is None:
        raise TQLError(f"{fname}: this source is not a dataset with a version history")
    return versions, strs[0], strs[1] if len(strs) > 1 else None


@register_builtin("ROW_ADDED", 1, 2, "ROW_ADDED('v'[, 'tensor']): the row's sample (of the tensor, or of any tensor) is not at version v: added since v")
def _row_added(ctx: CallContext, args: List[Value]) -> Value:
    versions, version, tensor = _row_args("ROW_ADDED", args)
    return Value("array", versions.absent(version, tensor, ctx.rows))


@register_builtin("ROW_REMOVED", 1, 2, "ROW_REMOVED('v'[, 'tensor']): on an older version, the row's sample is not at the newer version v: removed by v")
def _row_removed(ctx: CallContext, args: List[Value]) -> Value:
    versions, version, tensor = _row_args("ROW_REMOVED", args)
    return Value("array", versions.absent(version, tensor, ctx.rows))


@register_builtin("ROW_CHANGED", 1, 2, "ROW_CHANGED('v'[, 'tensor']): the row's sample is at version v with another value")
def _row_changed(ctx: CallContext, args: List[Value]) -> Value:
    versions, version, tensor = _row_args("ROW_CHANGED", args)
    return Value("array", versions.changed(version, tensor, ctx.rows))
