"""Handles over query results that are not a plain list of rows: GROUP BY's groups and
UNGROUP BY's items, and the TQL values of sequence tensors.

- `GroupedView` (GROUP BY): row g is the group `groups[g]` of rows of `source` (the dataset or
  view queried); each tensor's sample at g is the sequence of the group's samples.
  `gv[g]` is `source[groups[g]]`, a plain dataset view of the group's rows.
- `ItemView` (UNGROUP BY on sequence tensors): row k is item `items[k]` of row `rows[k]` of
  `source`; a sequence tensor reads that item, any other tensor the row's sample.

Both are queried again with `tql.run(handle, ...)` (their `column_reader()` is the reader).
A sequence's TQL value in a row (a stored sequence tensor, or a tensor of a grouped view) is
its items stacked, `(items, *item shape)`, when they share a shape, else concatenated along
their first axis (all of a row's boxes or labels); empty items add nothing.

>>> gv = tql.run(ds, "SELECT * GROUP BY video").view                 # doctest: +SKIP
>>> [len(frames) for frames in gv["frame"].numpy(aslist=True)]       # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.core.dataset import Dataset
from lakeformat.core.view import View, with_selection
from lakeformat.errors import DynamicShapeError, LakeFormatError
from lakeformat.tql import values as V
from lakeformat.tql.errors import TQLError
from lakeformat.tql.reader import DatasetColumnReader
from lakeformat.tql.text_reader import JSON_HTYPES, TEXT_HTYPES
from lakeformat.tql.values import Value, pack

GROUPED_FORMAT = 1  # the version of GroupedView.to_dict's layout
ITEMS_FORMAT = 1  # the version of ItemView.to_dict's layout


# -- sequence values -----------------------------------------------------------------------------
def _class_names(t: Any) -> Optional[Tuple[str, ...]]:
    if t.base_htype != "class_label":
        return None
    info = t.info
    cn = info.get("class_names") if hasattr(info, "get") else None
    return tuple(cn) if cn else None


def fixed_items(t: Any) -> bool:
    """Whether every sample (item) of tensor `t`, or of the tensor it reads, has one shape."""
    while getattr(t, "meta", None) is None and hasattr(t, "source"):
        t = t.source
    m = getattr(t, "meta", None)
    return m is not None and m.min_shape is not None and m.min_shape == m.max_shape


def join_items(name: str, items: Sequence[np.ndarray], dtype: Any, stack: bool) -> np.ndarray:
    """One row's items as one array: stacked, (items, *item shape), for a tensor whose items
    share one shape (`stack`); else concatenated along their first axis (all of a row's
    boxes or labels). No items: an empty (NULL) sample."""
    arrs = [np.asarray(x) for x in items]
    if not arrs:
        return np.zeros((0,), dtype if dtype is not None else np.float64)
    if stack and all(a.shape == arrs[0].shape for a in arrs):
        return np.stack(arrs)
    present = [a.reshape((1,) if a.ndim == 0 else a.shape) for a in arrs if a.size]
    if not present:
        return np.zeros((0,), arrs[0].dtype)
    if all(a.shape[1:] == present[0].shape[1:] for a in present):
        return np.concatenate(present)
    raise TQLError(f"tensor {name!r}: a row's items differ in shape and cannot be one value; UNGROUP BY {name} to query them one by one")


def sequence_value(name: str, rows: Sequence[Sequence[np.ndarray]], class_names: Optional[Tuple[str, ...]], dtype: Any, stack: bool) -> Value:
    """Per-row lists of items -> a TQL value (see the module's doc)."""
    return pack([join_items(name, r, dtype, stack) for r in rows], class_names)


def read_sequence(t: Any, rows: np.ndarray) -> Value:
    """A stored sequence tensor's rows as a TQL value (the reader's sequence branch)."""
    if t.base_htype in TEXT_HTYPES or t.base_htype in JSON_HTYPES:
        raise TQLError(f"tensor {t.name!r} is a sequence of {t.base_htype}: UNGROUP BY {t.name} to query its items")
    vals = t[rows.astype(np.int64)].numpy(aslist=True) if len(rows) else []
    return sequence_value(t.name, vals, _class_names(t), t.dtype, fixed_items(t))


def item_counts(t: Any, rows: np.ndarray) -> np.ndarray:
    """How many items each of `rows` holds in sequence tensor `t` (a stored one, or a tensor
    of a grouped view), without reading the items."""
    counts = getattr(t, "item_counts", None)
    if counts is not None:
        out: np.ndarray = counts(rows)
        return out
    if not len(rows):
        return np.zeros(0, np.int64)
    sub = t[rows.astype(np.int64)]
    samples = np.asarray(sub.index.resolve(sub.num_samples), np.int64)
    starts, ends = sub.engine.seq.item_ranges(samples)
    lengths: np.ndarray = (np.asarray(ends) - np.asarray(starts)).astype(np.int64)
    return lengths


def group_value(name: str, v: Value, sizes: np.ndarray, stack: bool) -> Value:
    """Values over the rows of consecutive groups of `sizes` rows -> one sequence value per
    group (`stack`: the tensor's samples share one shape)."""
    if v.kind in ("text", "json"):
        raise TQLError(f"tensor {name!r} holds {v.kind}: a group's {v.kind} values are not one value; UNGROUP BY {name} to query them one by one")
    v = V.null_to_ragged(v)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    if v.kind == "array" and stack:
        return pack([v.data[a:b] for a, b in zip(bounds[:-1], bounds[1:])], v.class_names)
    rows = list(v.data) if v.kind == "array" else V.ragged_list(v)
    dtype = rows[0].dtype if rows else None
    return sequence_value(name, [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])], v.class_names, dtype, stack)


# -- helpers over any handle -----------------------------------------------------------------------
def base_reader(handle: Any) -> Any:
    """The column reader of a dataset handle or of one of the handles here."""
    make = getattr(handle, "column_reader", None)
    return make() if make is not None else DatasetColumnReader(handle)


def is_derived(handle: Any) -> bool:
    """A grouped or ungrouped view (not a dataset handle)."""
    return isinstance(handle, (GroupedView, ItemView))


def take_rows(handle: Any, rows: np.ndarray, query: Optional[str] = None, tensors: Optional[Sequence[str]] = None) -> Any:
    """`handle`'s rows `rows` (positions in it), as a handle of the same kind."""
    if isinstance(handle, (GroupedView, ItemView)):
        out = handle.subset(rows, query)
        if tensors is not None:
            out.shown = tuple(tensors)
        return out
    return with_selection(handle[np.asarray(rows, np.int64)], tensors, query)


def _positions(item: Any, n: int) -> np.ndarray:
    out: np.ndarray = np.arange(n, dtype=np.int64)[item].reshape(-1)
    return out


def _stack_samples(name: str, samples: List[Any]) -> np.ndarray:
    arrs = [np.asarray(s) for s in samples]
    if arrs and any(a.shape != arrs[0].shape for a in arrs):
        raise DynamicShapeError(f"tensor {name!r}: samples of different shapes; use numpy(aslist=True)")
    return np.stack(arrs) if arrs else np.zeros((0,))


# -- what both derived views share ------------------------------------------------------------------
class _DerivedTensor:
    """A tensor of a `GroupedView` or an `ItemView`: reads go through its source tensor."""

    is_link = False

    def __init__(self, view: Any, name: str):
        self.view = view
        self.name = name
        self.source = view.source[name]

    @property
    def base_htype(self) -> str:
        return str(self.source.base_htype)

    @property
    def dtype(self) -> Any:
        return self.source.dtype

    @property
    def info(self) -> Any:
        return self.source.info

    def __len__(self) -> int:
        return len(self.view)


class _DerivedView:
    """The tensors of a view over `source` rows (those in `shown`, or all), by name or attribute."""

    source: Any
    shown: Optional[Tuple[str, ...]]
    tensor_class: Any = _DerivedTensor
    noun = "view"  # how errors name this kind of view

    @property
    def tensors(self) -> Dict[str, Any]:
        names = [n for n in self.source.tensors if self.shown is None or n in self.shown]
        return {n: self.tensor_class(self, n) for n in names}

    @property
    def commit_id(self) -> Optional[str]:
        return getattr(self.source, "commit_id", None)

    def _tensor(self, name: str) -> Any:
        if name not in self.tensors:
            raise LakeFormatError(f"tensor {name!r} is not in this {self.noun} (it has {sorted(self.tensors)})")
        return self.tensor_class(self, name)

    def __getattr__(self, name: str) -> Any:
        """A tensor as an attribute (`gv.labels`), as on a dataset."""
        if name.startswith("_") or "source" not in self.__dict__:
            raise AttributeError(name)
        if name not in self.tensors:
            raise AttributeError(f"{type(self).__name__} has no attribute or tensor {name!r}")
        return self.tensor_class(self, name)

    def query(self, text: str, params: Optional[Sequence[Any]] = None) -> Any:
        from lakeformat import tql  # tql imports this module

        return tql.run(self, text, params=params).view

    def pytorch(self, *args: Any, **kwargs: Any) -> Any:
        """A loader with one sample per row of this view (a group, or an item), with
        `ds.pytorch`'s arguments (see lakeformat/integrations/torch/groups.py)."""
        from lakeformat.integrations.torch import dataset_pytorch  # the loader sits above tql

        return dataset_pytorch(self, *args, **kwargs)


# -- GROUP BY ----------------------------------------------------------------------------------------
class GroupedTensor(_DerivedTensor):
    """One tensor of a `GroupedView`: each row is the sequence of its group's samples."""

    is_sequence = True
    view: "GroupedView"

    @property
    def htype(self) -> str:
        return f"sequence[{self.base_htype}]"

    def item_counts(self, rows: np.ndarray) -> np.ndarray:
        return self.view.group_sizes[np.asarray(rows, np.int64)]

    @property
    def shape(self) -> Tuple[Optional[int], ...]:
        """(groups, samples per group, *sample shape), None on axes that differ (deeplake 3.x's
        shape of a sequence tensor)."""
        sizes = self.view.group_sizes
        k = int(sizes[0]) if len(sizes) and (sizes == sizes[0]).all() else None
        flat = self.view.flat_rows
        item = tuple(self.view.source[self.name][flat].shape[1:]) if len(flat) else ()
        return (len(sizes), k) + item

    def __getitem__(self, item: Any) -> Any:
        """An int: the group's samples (a tensor of the source over its rows); else the tensor
        of the groups picked."""
        if isinstance(item, (int, np.integer)):
            return self.view[int(item)][self.name]
        return GroupedTensor(self.view.subset(_positions(item, len(self.view))), self.name)

    def numpy(self, aslist: bool = False) -> Any:
        """Each group's samples: with `aslist` a list (per group) of lists of samples; else one
        array (groups, items, *sample shape) when every group has as many samples of one shape."""
        flat = self.view.flat_rows
        samples = self.view.source[self.name][flat].numpy(aslist=True) if len(flat) else []
        bounds = np.concatenate([[0], np.cumsum(self.view.group_sizes)]).astype(np.int64)
        per = [list(samples[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        if aslist:
            return per
        return _stack_samples(self.name, [_stack_samples(self.name, g) for g in per])

    def __repr__(self) -> str:
        return f"GroupedTensor({self.name!r}, {len(self)} groups)"


class GroupedView(_DerivedView):
    """GROUP BY's result: `len` groups; `gv[name]` a `GroupedTensor`; `gv[g]` the dataset view
    of group g's rows; `gv[a:b]`, `gv[[...]]` fewer groups; iterating yields each group's view.

    - `source`: the handle queried; `groups`: per group, its rows as positions in `source`.
    - `ungroup()`: the source's rows of every group, in group order (UNGROUP BY's result).
    - `view`: the `lakeformat.View` of those rows, carrying the query (`to_dict` keeps the
      group sizes beside it, so that `GroupedView.from_dict` rebuilds the groups).
    """

    tensor_class = GroupedTensor
    noun = "grouped view"

    def __init__(self, source: Any, groups: Sequence[np.ndarray], tensors: Optional[Sequence[str]] = None, query: Optional[str] = None):
        self.source = source
        self.groups = [g if isinstance(g, np.ndarray) and g.dtype == np.int64 else np.asarray(g, np.int64) for g in groups]
        self.shown = tuple(tensors) if tensors is not None else None
        self.query_text = query
        self.group_sizes = np.fromiter(map(len, self.groups), np.int64, len(self.groups))

    # -- rows ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.groups)

    @property
    def flat_rows(self) -> np.ndarray:
        """Every group's rows, back to back (positions in `source`)."""
        return np.concatenate(self.groups).astype(np.int64) if self.groups else np.zeros(0, np.int64)

    def subset(self, positions: np.ndarray, query: Optional[str] = None) -> "GroupedView":
        return GroupedView(self.source, [self.groups[int(p)] for p in positions], self.shown, query)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            return self._tensor(item)
        if isinstance(item, (int, np.integer)):
            g = self.groups[int(item)]
            return take_rows(self.source, g)
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], (int, np.integer)):
            members = self.groups[int(item[0])]  # gv[g, j]: sample(s) j of group g, as deeplake 3.x
            return take_rows(self.source, members[_positions(item[1], len(members))])
        return self.subset(_positions(item, len(self)))

    def __iter__(self) -> Iterator[Any]:
        for g in range(len(self)):
            yield self[g]

    def ungroup(self) -> Any:
        return take_rows(self.source, self.flat_rows)

    def column_reader(self) -> "GroupedColumnReader":
        return GroupedColumnReader(self)

    # -- views ---------------------------------------------------------------------------------
    @property
    def view(self) -> View:
        """The `View` of the groups' rows back to back, with the query that grouped them."""
        flat = self.ungroup()
        if not isinstance(flat, Dataset):
            raise LakeFormatError("a grouped view of a grouped or ungrouped view has no lakeformat.View: take it of the dataset's query")
        v: View = with_selection(flat, self.shown, self.query_text).view
        return v

    def to_dict(self) -> Dict[str, Any]:
        return {"format": GROUPED_FORMAT, "view": self.view.to_dict(), "group_sizes": self.group_sizes.tolist()}

    @staticmethod
    def from_dict(d: Dict[str, Any], ds: Any = None) -> "GroupedView":
        """The grouped view `to_dict` gave, over `ds` (default: the view's own path)."""
        if not isinstance(d, dict) or d.get("format") != GROUPED_FORMAT or "view" not in d or "group_sizes" not in d:
            raise LakeFormatError(f"not a grouped view's dict (format {GROUPED_FORMAT}): {d!r:.200}")
        v = View.from_dict(d["view"])
        sizes = np.asarray(d["group_sizes"], np.int64)
        if sizes.ndim != 1 or (sizes < 0).any() or int(sizes.sum()) != len(v):
            raise LakeFormatError(f"a grouped view's group_sizes must add up to its {len(v)} rows")
        root = v.open(ds)  # a handle over the view's rows: group members are positions in it
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        rows = np.arange(len(v), dtype=np.int64)
        return GroupedView(root, [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])], v.tensors, v.query)

    def __repr__(self) -> str:
        return f"GroupedView({len(self)} groups of {int(self.group_sizes.sum())} rows" + (f", query={self.query_text!r})" if self.query_text else ")")


class GroupedColumnReader:
    """TQL's reader over a `GroupedView`: a tensor's value per group (see the module's doc)."""

    def __init__(self, view: GroupedView):
        self.ds = view
        self.length = len(view)
        self.base = base_reader(view.source)

    def __call__(self, name: str, rows: np.ndarray) -> Value:
        groups = [self.ds.groups[int(r)] for r in rows]
        flat = np.concatenate(groups).astype(np.int64) if groups else np.zeros(0, np.int64)
        stack = fixed_items(self.ds.source[name])
        return group_value(name, self.base(name, flat), self.ds.group_sizes[np.asarray(rows, np.int64)], stack)


# -- UNGROUP BY ----------------------------------------------------------------------------------------
class ItemTensor(_DerivedTensor):
    """One tensor of an `ItemView`: a sequence tensor reads each row's item, any other the
    row's sample."""

    is_sequence = False
    view: "ItemView"

    def __getitem__(self, item: Any) -> "ItemTensor":
        return ItemTensor(self.view.subset(_positions(item, len(self.view))), self.name)

    def samples(self) -> List[Any]:
        """One sample per row (an item of a sequence tensor), as `numpy(aslist=True)` reads it."""
        rows, items = self.view.rows, self.view.items
        if not len(rows):
            return []
        if not getattr(self.source, "is_sequence", False):
            return list(self.source[rows].numpy(aslist=True))
        uniq, inv = np.unique(rows, return_inverse=True)
        seqs = self.source[uniq].numpy(aslist=True)
        out = []
        for k, (u, j) in enumerate(zip(inv.tolist(), items.tolist())):
            seq = seqs[u]
            if j >= len(seq):
                raise LakeFormatError(f"tensor {self.name!r}: row {int(rows[k])} has {len(seq)} items, fewer than the UNGROUP BY tensors; leave it out with SELECT")
            out.append(seq[j])
        return out

    def numpy(self, aslist: bool = False) -> Any:
        s = self.samples()
        return s if aslist else _stack_samples(self.name, s)

    def __repr__(self) -> str:
        return f"ItemTensor({self.name!r}, {len(self)} items)"


class ItemView(_DerivedView):
    """UNGROUP BY's result over stored sequence tensors: row k is item `items[k]` of row
    `rows[k]` of `source`. `iv[name]` an `ItemTensor`; `iv[a:b]`, `iv[[...]]` fewer items."""

    tensor_class = ItemTensor
    noun = "view of items"

    def __init__(self, source: Any, rows: np.ndarray, items: np.ndarray, tensors: Optional[Sequence[str]] = None, query: Optional[str] = None):
        self.source = source
        self.rows = np.asarray(rows, np.int64)
        self.items = np.asarray(items, np.int64)
        self.shown = tuple(tensors) if tensors is not None else None
        self.query_text = query

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, positions: np.ndarray, query: Optional[str] = None) -> "ItemView":
        p = np.asarray(positions, np.int64)
        return ItemView(self.source, self.rows[p], self.items[p], self.shown, query)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            return self._tensor(item)
        return self.subset(_positions(item, len(self)))

    def __iter__(self) -> Iterator["ItemView"]:
        for k in range(len(self)):
            yield self.subset(np.array([k]))

    def column_reader(self) -> "ItemColumnReader":
        return ItemColumnReader(self)

    # -- views ---------------------------------------------------------------------------------
    @property
    def view(self) -> View:
        """The `View` of the items' rows (a row once per item, in item order), with the query
        that ungrouped them (`to_dict` keeps the item numbers beside it, so that
        `ItemView.from_dict` rebuilds the items)."""
        rows = take_rows(self.source, self.rows)
        if not isinstance(rows, Dataset):
            raise LakeFormatError("a view of items of a grouped or ungrouped view has no lakeformat.View: take it of the dataset's query")
        v: View = with_selection(rows, self.shown, self.query_text).view
        return v

    def to_dict(self) -> Dict[str, Any]:
        return {"format": ITEMS_FORMAT, "view": self.view.to_dict(), "items": self.items.tolist()}

    @staticmethod
    def from_dict(d: Dict[str, Any], ds: Any = None) -> "ItemView":
        """The view of items `to_dict` gave, over `ds` (default: the view's own path)."""
        if not isinstance(d, dict) or d.get("format") != ITEMS_FORMAT or "view" not in d or "items" not in d:
            raise LakeFormatError(f"not a view of items' dict (format {ITEMS_FORMAT}): {d!r:.200}")
        v = View.from_dict(d["view"])
        items = np.asarray(d["items"], np.int64)
        if items.ndim != 1 or len(items) != len(v) or (items < 0).any():
            raise LakeFormatError(f"a view of items needs one item number (>= 0) per row: {len(items)} for {len(v)} rows")
        root = v.open(ds)  # a handle over the items' rows: row k of it is the row of item k
        return ItemView(root, np.arange(len(v), dtype=np.int64), items, v.tensors, v.query)

    def __repr__(self) -> str:
        return f"ItemView({len(self)} items of {len(np.unique(self.rows))} rows" + (f", query={self.query_text!r})" if self.query_text else ")")


class ItemColumnReader:
    """TQL's reader over an `ItemView`: an item of a sequence tensor, else the row's sample."""

    def __init__(self, view: ItemView):
        self.ds = view
        self.length = len(view)
        self.base = base_reader(view.source)

    def __call__(self, name: str, rows: np.ndarray) -> Value:
        t = self.ds[name]
        if not getattr(t.source, "is_sequence", False):
            out: Value = self.base(name, self.ds.rows[np.asarray(rows, np.int64)])
            return out
        samples = ItemTensor(self.ds.subset(np.asarray(rows, np.int64)), name).samples()
        base = t.base_htype
        if base in TEXT_HTYPES or base in JSON_HTYPES:
            data = np.empty(len(samples), dtype=object)
            data[:] = [np.asarray(s).reshape(-1)[0] if np.size(s) else None for s in samples]
            return Value("text" if base in TEXT_HTYPES else "json", data)
        return pack([np.asarray(s) for s in samples], _class_names(t.source))


def result_view(ds: Any, rows: np.ndarray, groups: Optional[List[np.ndarray]], items: Optional[np.ndarray],
                tensors: Optional[Sequence[str]], query: str) -> Any:
    """The handle a query's result gives (`QueryResult.view`) when it grouped, ungrouped, or
    ran on a grouped or ungrouped view."""
    if groups is not None:
        return GroupedView(ds, groups, tensors, query)
    if items is not None:
        if isinstance(ds, GroupedView):  # ungrouping groups gives their rows back
            offsets = np.concatenate([[0], np.cumsum(ds.group_sizes)]).astype(np.int64)
            return take_rows(ds.source, ds.flat_rows[offsets[rows] + items], query, tensors)
        return ItemView(ds, rows, items, tensors, query)
    return take_rows(ds, rows, query, tensors)
