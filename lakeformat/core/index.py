"""Indexing: which samples a tensor or dataset view covers, and what sub-index applies inside
each sample. Views are plain index lists over a commit (what a planner or loader wants)."""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np

from lakeformat.errors import IndexOutOfRangeError

SampleSel = Union[int, slice, np.ndarray]


def normalize_sample_index(sel: Any, length: int) -> Tuple[Union[int, np.ndarray], bool]:
    """A user's first-axis selector -> (int, True) for one sample or (int64 array, False)."""
    if isinstance(sel, (int, np.integer)) and not isinstance(sel, bool):
        i = int(sel)
        if i < 0:
            i += length
        if not 0 <= i < length:
            raise IndexOutOfRangeError(f"index {int(sel)} is out of range for length {length}")
        return i, True
    if isinstance(sel, slice):
        return np.arange(*sel.indices(length), dtype=np.int64), False
    if isinstance(sel, (list, tuple, np.ndarray, range)):
        arr = np.asarray(list(sel) if isinstance(sel, (tuple, range)) else sel)
        if arr.dtype == bool:
            if len(arr) != length:
                raise IndexOutOfRangeError(f"boolean mask of length {len(arr)} for length {length}")
            return np.nonzero(arr)[0].astype(np.int64), False
        arr = arr.astype(np.int64).reshape(-1)
        arr = np.where(arr < 0, arr + length, arr)
        if len(arr) and (arr.min() < 0 or arr.max() >= length):
            raise IndexOutOfRangeError(f"indices out of range for length {length}")
        return arr, False
    raise TypeError(f"cannot index with {type(sel).__name__}")


class Index:
    """Samples selected (None: all, an int: one, an int64 array: several) and the sub-index
    applied within each sample."""

    def __init__(self, samples: Optional[Union[int, np.ndarray]] = None, sub: Tuple[Any, ...] = ()):
        self.samples = samples
        self.sub = sub

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

    def compose(self, item: Any, base_length: int) -> "Index":
        """self[item]: index into the current selection."""
        if not isinstance(item, tuple):
            item = (item,)
        if not item:
            return self
        first, rest = item[0], item[1:]
        if self.is_single:
            return Index(self.samples, self.sub + item)
        current = self.resolve(base_length)
        sel, single = normalize_sample_index(first, len(current))
        if single:
            return Index(int(current[sel]), self.sub + rest)
        return Index(current[sel], self.sub + rest)
