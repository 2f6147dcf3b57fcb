"""Indexing: which samples a tensor or dataset view covers, and what happens inside each sample.

Views are plain index lists over a commit (what a planner or loader wants). A chain of keys,
`t[k1][k2]...`, is composed here into one `Index` with NumPy's semantics on the stacked tensor:

* `samples`: the rows (None: all, an int: one, an int64 array: several, in order);
* `ops`: what is applied to each sample, in order (`SampleKey`: `x[key]`; `MoveAxis`;
  `PairedKey`: index arrays on the rows and on sample axes of one key, paired element by
  element, so that row j gets its own j-th values);
* `row_pos`: where the rows axis sits in the view's shape (NumPy moves it behind the axis of
  paired advanced indices, `a[:, [0, 1], :, [2, 3]]`).

The row entry of every key is composed straight into `samples` (so a row selection is one index
array before any I/O, whatever the chain); the rest is kept per sample, which is what NumPy
does on each sample of a ragged tensor.

>>> Index().compose((slice(0, 5), slice(1, 10)), 20, 2).compose((slice(None), slice(2, 4)), 20, 2).samples
array([0, 1, 2, 3, 4])
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat import _native

from lakeformat.errors import IndexOutOfRangeError, LakeFormatError


class InvalidIndexError(LakeFormatError, IndexError):
    """A key NumPy would refuse, or one lakeformat does not support (says which and why)."""


Entry = Union[int, slice, np.ndarray, EllipsisType]


@dataclass(frozen=True)
class SampleKey:
    """`x[key]` on each sample (NumPy semantics on the sample array)."""

    key: Tuple[Any, ...]


@dataclass(frozen=True)
class MoveAxis:
    """`np.moveaxis(x, src, dst)` on each sample: puts the axis of paired advanced indices where
    NumPy puts it on the stacked tensor, when that differs from where it lands in one sample."""

    src: int
    dst: int


@dataclass(frozen=True, eq=False)
class PairedKey:
    """Index arrays on the samples axis and on sample axes in one key, paired element by element
    as NumPy pairs them: row j of the view is `sample[key with each array replaced by its j-th
    value]`. `masks` are (position in key, axis length) of the boolean masks the arrays came
    from, checked against each sample as NumPy checks a mask's length."""

    key: Tuple[Any, ...]
    masks: Tuple[Tuple[int, int], ...] = ()

    def at(self, j: int) -> Tuple[Any, ...]:
        return tuple(int(e[j]) if _is_array(e) else e for e in self.key)

    def take(self, rows: np.ndarray) -> "PairedKey":
        return PairedKey(tuple(e[rows] if _is_array(e) else e for e in self.key), self.masks)

    def check_masks(self, shape: Tuple[int, ...]) -> None:
        for pos, n in self.masks:
            if pos >= len(shape) or shape[pos] != n:
                got = shape[pos] if pos < len(shape) else "none"
                raise IndexOutOfRangeError(f"boolean mask of length {n} for a sample axis of length {got}")


SampleOp = Union[SampleKey, MoveAxis, PairedKey]


def is_run(items: np.ndarray) -> bool:
    """Whether `items` are consecutive ascending integers (one native pass, no temporary)."""
    return bool(_native.is_run(np.ascontiguousarray(items, np.int64).data))


def normalize_sample_index(sel: Any, length: int) -> Tuple[Union[int, np.ndarray], bool]:
    """A user's first-axis selector -> (int, True) for one sample or (int64 array, False)."""
    e = _entry(sel)
    if isinstance(e, int):
        i = e + length if e < 0 else e
        if not 0 <= i < length:
            raise IndexOutOfRangeError(f"index {e} is out of range for length {length}")
        return i, True
    if isinstance(e, slice):
        try:
            return np.arange(*e.indices(length), dtype=np.int64), False
        except ValueError as err:  # a zero step
            raise InvalidIndexError(f"slice {e}: {err}") from None
    if e is Ellipsis:
        return np.arange(length, dtype=np.int64), False
    return _array_rows(e, length), False


def _array_rows(arr: np.ndarray, length: int) -> np.ndarray:
    if arr.dtype == bool:
        if len(arr) != length:
            raise IndexOutOfRangeError(f"boolean mask of length {len(arr)} for an axis of length {length}")
        return np.flatnonzero(arr).astype(np.int64)
    arr = arr.astype(np.int64, copy=False)
    if len(arr) and (arr.min() < -length or arr.max() >= length):
        bad = int(arr[(arr < -length) | (arr >= length)][0])
        raise IndexOutOfRangeError(f"index {bad} is out of range for length {length}")
    return np.where(arr < 0, arr + length, arr)


def _entry(x: Any) -> Entry:
    """One entry of a key, as an int, a slice, Ellipsis or a 1-d int64/bool array."""
    if isinstance(x, (bool, np.bool_)):
        raise InvalidIndexError("a boolean scalar is not an index (it would add an axis); use a boolean mask array")
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, slice):
        for part in (x.start, x.stop, x.step):
            if part is not None and not isinstance(part, (int, np.integer)) or isinstance(part, (bool, np.bool_)):
                raise InvalidIndexError(f"slice bounds must be integers or None, not {type(part).__name__} in {x}")
        if x.step is not None and int(x.step) == 0:
            raise InvalidIndexError(f"slice {x}: the step cannot be zero")
        return slice(*(None if p is None else int(p) for p in (x.start, x.stop, x.step)))
    if x is Ellipsis:
        return ...
    if x is None:
        raise InvalidIndexError("None (np.newaxis) in a key is not supported; reshape the result instead")
    if isinstance(x, (list, tuple, range, np.ndarray)):
        arr = np.asarray(list(x) if isinstance(x, (tuple, range)) else x)
        if arr.ndim == 0 and arr.dtype.kind in "iu":
            return int(arr)
        if arr.size == 0:
            return np.zeros(0, np.int64)
        if arr.ndim != 1:
            raise InvalidIndexError(f"index arrays must be 1-d (got shape {arr.shape})")
        if arr.dtype == bool:
            return arr
        if arr.dtype.kind not in "iu":
            raise InvalidIndexError(f"index arrays must hold integers or booleans, not {arr.dtype}")
        return arr.astype(np.int64, copy=False)
    raise InvalidIndexError(f"cannot index with {type(x).__name__}: use ints, slices, lists of ints or boolean masks")


def _is_array(e: Any) -> bool:
    return isinstance(e, np.ndarray)


def _consumed(entries: Sequence[Any]) -> int:
    """Axes a key consumes: every entry but Ellipsis (all arrays here are 1-d)."""
    return sum(1 for e in entries if e is not Ellipsis)


def _expand(entries: Sequence[Any], ndim: int) -> List[Any]:
    """Replace Ellipsis with slices, and check the key is not longer than the array's ndim."""
    n = _consumed(entries)
    if n > ndim:
        raise InvalidIndexError(f"too many indices: {n} for a view of {ndim} dimensions")
    out: List[Any] = []
    seen = False
    for e in entries:
        if e is Ellipsis:
            if seen:
                raise InvalidIndexError("an index can only have a single ellipsis ('...')")
            seen = True
            out.extend([slice(None)] * (ndim - n))
        else:
            out.append(e)
    return out


def out_order(entries: Sequence[Any]) -> List[Any]:
    """Where each output axis of `x[entries]` comes from, by NumPy's rules: the position of each
    kept (slice) entry, and "B" for the axis of the broadcast advanced indices, which sits where
    they are when they are adjacent (ints count as advanced once an array is there) and in front
    otherwise. `entries` hold no Ellipsis when they hold an array."""
    kept = [i for i, e in enumerate(entries) if isinstance(e, slice) or e is Ellipsis]
    adv = [i for i, e in enumerate(entries) if not (isinstance(e, slice) or e is Ellipsis)]
    if not any(_is_array(entries[i]) for i in adv):
        return kept
    if adv[-1] - adv[0] + 1 == len(adv):
        return [i for i in kept if i < adv[0]] + ["B"] + [i for i in kept if i > adv[0]]
    return ["B"] + kept


def _ndim_after(ops: Sequence[SampleOp], ndim: int) -> int:
    for op in ops:
        if isinstance(op, (SampleKey, PairedKey)):
            entries = op.key
            n = _consumed(entries)
            if n > ndim:
                raise InvalidIndexError(f"too many indices: {n} for a view of {ndim} dimensions")
            kept = sum(1 for e in entries if isinstance(e, slice)) + (ndim - n)
            # a paired key's arrays index the rows axis too: one value per sample, no axis
            ndim = kept + (1 if isinstance(op, SampleKey) and any(_is_array(e) for e in entries) else 0)
    return ndim


def _trivial(entries: Sequence[Any]) -> bool:
    return all(e is Ellipsis or (isinstance(e, slice) and e == slice(None)) for e in entries)


def apply_ops(x: Any, ops: Sequence[SampleOp], row: int = 0) -> Any:
    """The ops on one sample array, row `row` of the view (NumPy's IndexError becomes
    IndexOutOfRangeError)."""
    for op in ops:
        if isinstance(op, MoveAxis):
            x = np.moveaxis(x, op.src, op.dst)
            continue
        if isinstance(op, PairedKey):
            op.check_masks(np.shape(x))
            key = op.at(row)
        else:
            key = op.key
        try:
            x = x[key]
        except IndexError as e:
            raise IndexOutOfRangeError(f"{e} (in sample key {key!r})") from None
    return x


def apply_ops_stacked(x: np.ndarray, ops: Sequence[SampleOp]) -> np.ndarray:
    """The ops on every sample of a stacked array (rows on axis 0), vectorised: equal to
    stacking `apply_ops` of each sample."""
    for op in ops:
        if isinstance(op, PairedKey):
            op.check_masks(x.shape[1:])
            try:  # the rows axis paired with the arrays: the result's first axis, as NumPy puts it
                x = x[(np.arange(len(x)),) + tuple(op.key)]
            except IndexError as e:
                raise IndexOutOfRangeError(f"{e} (in sample key {op.key!r})") from None
        elif isinstance(op, SampleKey):
            full = (slice(None),) + tuple(op.key)
            try:
                x = x[full]
            except IndexError as e:
                raise IndexOutOfRangeError(f"{e} (in sample key {op.key!r})") from None
            rows_at = out_order(full).index(0)
            if rows_at:
                x = np.moveaxis(x, rows_at, 0)
        else:
            x = np.moveaxis(x, op.src + 1, op.dst + 1)
    return x


class Index:
    """Samples selected (None: all, an int: one, an int64 array: several), the ops applied
    within each sample, and the position of the rows axis in the view."""

    __slots__ = ("samples", "ops", "row_pos")

    def __init__(self, samples: Optional[Union[int, np.ndarray]] = None, ops: Tuple[SampleOp, ...] = (), row_pos: int = 0):
        self.samples = samples
        self.ops = tuple(ops)
        self.row_pos = row_pos

    @property
    def sub(self) -> Tuple[SampleOp, ...]:
        """The per-sample ops (empty when whole samples are read)."""
        return self.ops

    @property
    def is_single(self) -> bool:
        return isinstance(self.samples, int)

    def resolve(self, length: int) -> np.ndarray:
        if self.samples is None:
            return np.arange(length, dtype=np.int64)
        if isinstance(self.samples, int):
            return np.array([self.samples], dtype=np.int64)
        return self.samples

    def length(self, base_length: int) -> int:
        if self.samples is None:
            return base_length
        if isinstance(self.samples, int):
            return 1
        return len(self.samples)

    def rows(self, base_length: int) -> "RowSelection":
        """The rows this index selects, as a `RowSelection` (refused when the index also
        indexes within samples: a row selection carries whole samples only)."""
        if self.ops:
            raise InvalidIndexError("this handle also indexes within samples (e.g. ds[0:5, 1:3]); a row selection carries whole samples only")
        if self.samples is None:
            return RowSelection.all(base_length)
        if isinstance(self.samples, int):
            return RowSelection.one(self.samples)
        return RowSelection.from_array(self.samples)

    def sample_ndim(self, base_ndim: int) -> int:
        """ndim of one sample of the view, given the stored samples' ndim."""
        return _ndim_after(self.ops, base_ndim)

    def compose(self, item: Any, base_length: int, base_ndim: Optional[int] = None) -> "Index":
        """self[item]: the view of the current view, as NumPy would index the stacked tensor.

        `base_ndim` (the stored samples' ndim; None where unknown, as for a dataset) resolves
        Ellipsis and advanced indices on the sample axes."""
        raw = item if isinstance(item, tuple) else (item,)
        entries = [_entry(x) for x in raw]
        if not entries:
            return self
        if self.is_single:
            if base_ndim is not None:
                _expand(entries, self.sample_ndim(base_ndim))  # checks the length of the key
            return Index(self.samples, self.ops + (SampleKey(tuple(entries)),))
        has_array = any(_is_array(e) for e in entries)
        if Ellipsis in [e for e in entries if not _is_array(e)]:
            if base_ndim is None:
                if has_array or entries[0] is Ellipsis or self.row_pos:
                    raise InvalidIndexError("'...' with index arrays, or before the samples axis, needs the tensor's ndim: index a tensor, not the dataset")
            else:
                entries = _expand(entries, self.sample_ndim(base_ndim) + 1)
        elif base_ndim is not None:
            _expand(entries, self.sample_ndim(base_ndim) + 1)
        elif has_array and self.row_pos:
            raise InvalidIndexError("index arrays on a view whose samples axis moved need the tensor's ndim: index a tensor")
        while len(entries) <= self.row_pos:
            entries.append(slice(None))
        r = entries[self.row_pos]
        sample_entries = entries[: self.row_pos] + entries[self.row_pos + 1 :]
        sample_has_array = any(_is_array(e) for e in sample_entries)
        # every row selected: the positions are the rows themselves (no arange of the base)
        current = None if self.samples is None else self.resolve(base_length)
        rows, single = normalize_sample_index(r, base_length if current is None else len(current))
        paired: Optional[PairedKey] = None
        if _is_array(r) and sample_has_array and isinstance(rows, np.ndarray):
            rows, paired = _pair(rows, sample_entries)
        new_rows: Union[int, np.ndarray]
        if current is None:
            # normalize_sample_index made `rows` afresh; _pair may return views: copy those
            new_rows = int(rows) if single else (np.array(rows, np.int64) if paired is not None else np.asarray(rows, np.int64))
        else:
            new_rows = int(current[rows]) if single else current[rows]
        ops = [_take(op, rows, single) for op in self.ops] if self.ops else []
        if not has_array:  # basic indexing: no axis moves; the rows axis keeps its place among the kept axes
            if not _trivial(sample_entries):
                ops.append(SampleKey(tuple(sample_entries)))
            row_pos = 0 if single else sum(1 for e in entries[: self.row_pos] if not isinstance(e, int))
            return Index(new_rows, tuple(ops), row_pos)
        row_pos = 0
        full = out_order(entries)
        if paired is not None:  # the rows axis is the axis of the pairs, where NumPy puts it
            return Index(new_rows, tuple(ops) + (paired,), full.index("B"))

        def to_full(order: List[Any]) -> List[Any]:  # sample-key positions -> full-key positions
            return [o if o == "B" or o < self.row_pos else o + 1 for o in order]

        if _is_array(r):
            row_pos = full.index("B")
        else:
            target = [o for o in full if o != self.row_pos]
            samp = to_full(out_order(sample_entries))
            if "B" in samp and samp.index("B") != target.index("B"):
                move = MoveAxis(samp.index("B"), target.index("B"))
            else:
                move = None
            if not single:
                row_pos = full.index(self.row_pos)
        if not _trivial(sample_entries):
            ops.append(SampleKey(tuple(sample_entries)))
        if not _is_array(r) and move is not None:
            ops.append(move)
        return Index(new_rows, tuple(ops), row_pos)

    def __repr__(self) -> str:
        return f"Index(samples={self.samples!r}, ops={self.ops!r}, row_pos={self.row_pos})"


def _take(op: SampleOp, rows: Union[int, np.ndarray], single: bool) -> SampleOp:
    """An op of the view, for the rows `rows` of it (a paired key follows its rows)."""
    if not isinstance(op, PairedKey):
        return op
    if single:
        return SampleKey(op.at(int(rows)))
    return op.take(np.asarray(rows))


def _pair(rows: np.ndarray, sample_entries: List[Any]) -> Tuple[np.ndarray, PairedKey]:
    """Rows and sample-axis index arrays broadcast together (NumPy's pointwise pairing)."""
    masks = []
    arrays = []
    for pos, e in enumerate(sample_entries):
        if _is_array(e):
            if e.dtype == bool:
                masks.append((pos, len(e)))
                e = np.flatnonzero(e)
            arrays.append(e)
    try:
        rows, *arrays = np.broadcast_arrays(rows, *arrays)
    except ValueError:
        shapes = " ".join(str(a.shape) for a in [rows] + arrays)
        raise InvalidIndexError(f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}") from None
    it = iter(arrays)
    key = tuple(np.ascontiguousarray(next(it)) if _is_array(e) else e for e in sample_entries)
    return np.ascontiguousarray(rows), PairedKey(key, tuple(masks))


Range = Tuple[int, int, int]


class RowSelection:
    """Which rows of a dataset a view covers, in order: a frozen value, the rows part of an
    `Index` (`Index.rows`, `RowSelection.to_index`), and the rows of a `lakeformat.View`.

    Held as ranges `(start, stop, step)` when the rows are a few arithmetic runs (a slice is
    one), else as a read-only int64 array. `single`: one row picked by an integer (the handle
    then reads samples, not stacks of them). Two selections are equal when they hold the same
    rows in the same order, however each is held.

    >>> RowSelection.from_array(np.array([0, 2, 4, 6])).ranges
    ((0, 8, 2),)
    >>> RowSelection.all(10).select(slice(None, None, -3)).to_array()
    array([9, 6, 3, 0])
    """

    __slots__ = ("ranges", "indices", "single", "_len")
    ranges: Optional[Tuple[Range, ...]]
    indices: Optional[np.ndarray]
    single: bool
    _len: int

    def __init__(self, ranges: Optional[Sequence[Range]] = None, indices: Optional[np.ndarray] = None, single: bool = False):
        if (ranges is None) == (indices is None):
            raise InvalidIndexError("a row selection holds either ranges or an index array")
        if ranges is not None:
            held: Optional[Tuple[Range, ...]] = _normal_ranges(ranges)
            n = sum(_range_len(r) for r in held or ())
            arr = None
        else:
            held = None
            arr = np.array(indices, dtype=np.int64).reshape(-1)
            if len(arr) and int(arr.min()) < 0:
                raise InvalidIndexError(f"row {int(arr.min())} is negative: rows are positions in the dataset")
            arr.setflags(write=False)
            n = len(arr)
        if single and n != 1:
            raise InvalidIndexError(f"a single-row selection holds one row, not {n}")
        object.__setattr__(self, "ranges", held)
        object.__setattr__(self, "indices", arr)
        object.__setattr__(self, "single", bool(single))
        object.__setattr__(self, "_len", n)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a RowSelection is frozen: cannot set {name!r}")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (RowSelection, (self.ranges, self.indices, self.single))

    # -- constructors ----------------------------------------------------------------------
    @staticmethod
    def all(length: int) -> "RowSelection":
        return RowSelection(ranges=((0, int(length), 1),))

    @staticmethod
    def one(row: int) -> "RowSelection":
        return RowSelection(ranges=((int(row), int(row) + 1, 1),), single=True)

    @staticmethod
    def from_array(rows: Any, single: bool = False) -> "RowSelection":
        """Rows as ranges when that is compact (one range, or at most a third as many numbers
        as the array), else as the array."""
        arr = np.asarray(rows, dtype=np.int64).reshape(-1)
        runs = _runs(arr)
        if runs is not None:
            return RowSelection(ranges=runs, single=single)
        return RowSelection(indices=arr, single=single)

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    def to_array(self) -> np.ndarray:
        """The rows as an int64 array (read-only when held as one)."""
        if self.indices is not None:
            return self.indices
        parts = [np.arange(*r, dtype=np.int64) for r in self.ranges or ()]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def bounds(self) -> Optional[Tuple[int, int]]:
        """(smallest, largest) row, None when empty; no array is built for ranges."""
        if not self._len:
            return None
        if self.indices is not None:
            return int(self.indices.min()), int(self.indices.max())
        ends = [(r[0], r[0] + (_range_len(r) - 1) * r[2]) for r in self.ranges or ()]
        return min(min(e) for e in ends), max(max(e) for e in ends)

    def is_all(self, length: int) -> bool:
        """Every row of a dataset of `length` rows, in order (and not one picked by an int)."""
        return not self.single and self._len == length and (length == 0 or self.ranges == ((0, length, 1),))

    def select(self, item: Any) -> "RowSelection":
        """`self[item]` with NumPy's semantics on the rows: `arange(n)[rows][item]` (an int,
        a slice, a list of ints or a boolean mask)."""
        if isinstance(item, tuple):
            if len(item) != 1:
                raise InvalidIndexError(f"a row selection takes one key, not {len(item)} (a view selects rows, not sample axes)")
            item = item[0]
        if self.single:
            raise InvalidIndexError("a single row (picked by an integer) cannot be indexed on rows again")
        e = _entry(item)
        if isinstance(e, slice) and self.ranges is not None and len(self.ranges) <= 1:
            r = range(*self.ranges[0])[e] if self.ranges else range(0)
            return RowSelection(ranges=((r.start, r.stop, r.step),))
        pos, single = normalize_sample_index(e, self._len)
        if single:
            return RowSelection.one(self.row(int(pos)))
        return RowSelection.from_array(self.to_array()[pos])

    def row(self, i: int) -> int:
        """The i-th row (0 <= i < len)."""
        if self.indices is not None:
            return int(self.indices[i])
        for r in self.ranges or ():
            k = _range_len(r)
            if i < k:
                return r[0] + i * r[2]
            i -= k
        raise IndexOutOfRangeError(f"position {i} is past the end of a selection of {self._len} rows")

    def to_index(self) -> "Index":
        """The `Index` of a handle over these rows (whole samples)."""
        if self.single:
            return Index(self.row(0))
        return Index(self.to_array().copy() if self.indices is not None else self.to_array())

    # -- values ----------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe: {"ranges": [[start, stop, step], ...]} or {"indices": [...]}, and "single"."""
        out: Dict[str, Any] = {"ranges": [list(r) for r in self.ranges]} if self.ranges is not None else {"indices": [int(x) for x in self.to_array()]}
        if self.single:
            out["single"] = True
        return out

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "RowSelection":
        single = bool(d.get("single", False))
        if "ranges" in d:
            try:
                ranges = [(int(a), int(b), int(c)) for a, b, c in d["ranges"]]
            except (TypeError, ValueError):
                raise InvalidIndexError(f"row ranges must be [start, stop, step] triples of integers, not {d['ranges']!r}") from None
            return RowSelection(ranges=ranges, single=single)
        if "indices" in d:
            vals = d["indices"]
            if not isinstance(vals, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in vals):
                raise InvalidIndexError("row indices must be a list of integers")
            return RowSelection(indices=np.asarray(vals, dtype=np.int64), single=single)
        raise InvalidIndexError(f"a row selection needs 'ranges' or 'indices' (got keys {sorted(d)})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RowSelection):
            return NotImplemented
        if self.single != other.single or self._len != other._len:
            return False
        if self.ranges is not None and self.ranges == other.ranges:
            return True
        return bool(np.array_equal(self.to_array(), other.to_array()))

    def __hash__(self) -> int:
        # consistent with __eq__ whatever the representation: length and end rows
        ends = (self.row(0), self.row(self._len - 1)) if self._len else ()
        return hash((self.single, self._len) + ends)

    def __repr__(self) -> str:
        held = f"ranges={self.ranges!r}" if self.ranges is not None else f"indices=<{self._len} rows>"
        return f"RowSelection({held}{', single=True' if self.single else ''})"


def _range_len(r: Range) -> int:
    return len(range(*r))


def _normal_ranges(ranges: Sequence[Range]) -> Tuple[Range, ...]:
    """Empty ranges dropped, each written as (start, start + len * step, step) (one-row
    ranges with step 1), and consecutive runs with one step merged."""
    out: List[Range] = []
    for t in ranges:
        if len(t) != 3:
            raise InvalidIndexError(f"a row range is (start, stop, step), not {t!r}")
        start, stop, step = (int(v) for v in t)
        if step == 0:
            raise InvalidIndexError(f"row range {t!r}: the step cannot be zero")
        k = len(range(start, stop, step))
        if not k:
            continue
        if k == 1:
            step = 1
        last = start + (k - 1) * step
        if min(start, last) < 0:
            raise InvalidIndexError(f"row range {t!r} reaches row {min(start, last)}: rows are positions in the dataset")
        if out:
            ps, pe, pst = out[-1]
            pk = _range_len(out[-1])
            if pk == 1 and k == 1 and start != ps:  # two single rows make a run of their own
                out[-1] = (ps, start + (start - ps), start - ps)
                continue
            if pst == step and start == pe:
                out[-1] = (ps, start + k * step, step)
                continue
            if pk > 1 and k == 1 and start == pe:
                out[-1] = (ps, pe + pst, pst)
                continue
        out.append((start, start + k * step, step))
    return tuple(out)


def _runs(arr: np.ndarray) -> Optional[List[Range]]:
    """Greedy arithmetic runs of `arr`, or None when there are too many to be compact."""
    n = len(arr)
    if n == 0:
        return []
    if n == 1:
        return [(int(arr[0]), int(arr[0]) + 1, 1)]
    if int(arr.min()) < 0:
        return None
    limit = max(1, n // 3)
    d = np.diff(arr)
    changes = np.flatnonzero(d[1:] != d[:-1])
    if len(changes) > 2 * limit + 2:
        return None
    breaks = changes.tolist()
    out: List[Range] = []
    s = 0
    while s < n:
        if len(out) >= limit:
            return None
        x = int(arr[s])
        step = int(d[s]) if s < n - 1 else 0
        if step == 0:
            out.append((x, x + 1, 1))
            s += 1
            continue
        j = bisect.bisect_left(breaks, s)
        e = breaks[j] + 1 if j < len(breaks) else n - 1
        out.append((x, int(arr[e]) + step, step))
        s = e + 1
    return out
