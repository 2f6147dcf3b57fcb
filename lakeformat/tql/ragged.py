"""`Ragged`: samples of different shapes in one flat buffer, so that TQL runs over them as
whole-buffer NumPy calls and C kernels instead of a Python loop per row.

Row i holds `values[offsets[i]:offsets[i + 1]]`, in C order, with shape
`shapes[i, :ndims[i]]`. Every row shares one dtype; rows may differ in rank (a subscript
that is out of range for some rows gives an empty `(0,)` row beside scalar rows).

>>> r = Ragged.from_rows([np.zeros((2, 4)), np.zeros((0, 4)), np.ones((1, 4))])
>>> [x.shape for x in r.rows()]
[(2, 4), (0, 4), (1, 4)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.tql.errors import TQLError


@dataclass(frozen=True)
class Ragged:
    values: np.ndarray  # 1-D: every row's elements, back to back
    offsets: np.ndarray  # int64 (n + 1,), offsets[0] == 0
    shapes: np.ndarray  # int64 (n, d): row i's shape is shapes[i, :ndims[i]]
    ndims: np.ndarray  # int64 (n,)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def sizes(self) -> np.ndarray:
        out: np.ndarray = np.diff(self.offsets)
        return out

    def row(self, i: int) -> np.ndarray:
        o = self.offsets
        shape = tuple(int(s) for s in self.shapes[i, : int(self.ndims[i])])
        return self.values[int(o[i]) : int(o[i + 1])].reshape(shape)

    def rows(self) -> List[np.ndarray]:
        return [self.row(i) for i in range(len(self))]

    def uniform_ndim(self) -> Optional[int]:
        """The rank every row has, or None."""
        if not len(self):
            return None
        d = self.ndims
        return int(d[0]) if bool((d == d[0]).all()) else None

    def uniform_shape(self) -> Optional[Tuple[int, ...]]:
        """The shape every row has (then the value is an "array"), or None."""
        nd = self.uniform_ndim()
        if nd is None:
            return None
        s = self.shapes[:, :nd]
        if not bool((s == s[0]).all()):
            return None
        return tuple(int(x) for x in s[0])

    def inner_shape(self) -> Optional[Tuple[int, ...]]:
        """The shape after the first axis, when every row has the same rank (>= 1) and the
        same trailing sizes: then `values` reshapes to (total, *inner)."""
        nd = self.uniform_ndim()
        if nd is None or nd < 1:
            return None
        s = self.shapes[:, 1:nd]
        if len(s) and not bool((s == s[0]).all()):
            return None
        return tuple(int(x) for x in s[0])

    def take(self, positions: np.ndarray) -> "Ragged":
        """The rows at `positions`, gathered as whole-buffer index arithmetic."""
        pos = np.asarray(positions, np.int64)
        starts = self.offsets[:-1][pos]
        sizes = self.sizes[pos]
        offsets = np.zeros(len(pos) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        total = int(offsets[-1])
        if total:
            idx = np.repeat(starts - offsets[:-1], sizes) + np.arange(total, dtype=np.int64)
            values = self.values[idx]
        else:
            values = self.values[:0]
        return Ragged(values, offsets, self.shapes[pos], self.ndims[pos])

    def with_values(self, values: np.ndarray) -> "Ragged":
        """The same rows and shapes over new values (an element-wise result)."""
        return Ragged(np.ascontiguousarray(values).reshape(-1), self.offsets, self.shapes, self.ndims)

    def emptied(self, mask: np.ndarray) -> "Ragged":
        """Rows where `mask` is true become empty (NULL), shape (0,)."""
        if not mask.any():
            return self
        keep = ~mask
        sizes = np.where(keep, self.sizes, 0)
        pos = np.repeat(keep, self.sizes)
        offsets = np.zeros(len(self) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        shapes = self.shapes.copy()
        ndims = self.ndims.copy()
        if shapes.shape[1] == 0:
            shapes = np.zeros((len(self), 1), np.int64)
        shapes[mask] = 0
        ndims[mask] = 1
        return Ragged(self.values[pos], offsets, shapes, ndims)

    @classmethod
    def from_buffers(cls, values: np.ndarray, offsets: np.ndarray, shapes: np.ndarray, ndims: Optional[np.ndarray] = None) -> "Ragged":
        """Wraps buffers a reader already has (chunk bytes and per-sample shapes), checking
        that they agree: sizes from `offsets` must be the products of the shapes."""
        values = np.ascontiguousarray(values).reshape(-1)
        offsets = np.ascontiguousarray(offsets, np.int64)
        shapes = np.ascontiguousarray(shapes, np.int64)
        if shapes.ndim != 2 or offsets.ndim != 1 or len(offsets) != len(shapes) + 1:
            raise ValueError(f"offsets {offsets.shape} and shapes {shapes.shape} do not describe the same rows")
        nd = np.full(len(shapes), shapes.shape[1], np.int64) if ndims is None else np.ascontiguousarray(ndims, np.int64)
        if len(nd) != len(shapes) or (nd < 0).any() or (nd > shapes.shape[1]).any():
            raise ValueError("ndims must give each row's rank, at most shapes.shape[1]")
        if len(offsets) and (offsets[0] != 0 or offsets[-1] != len(values) or (np.diff(offsets) < 0).any()):
            raise ValueError("offsets must start at 0, never decrease and end at len(values)")
        if (shapes < 0).any():
            raise ValueError("shapes must be >= 0")
        cols = np.arange(shapes.shape[1])[None, :] < nd[:, None]
        expect = np.where(cols, shapes, 1).prod(axis=1) if len(shapes) else np.zeros(0, np.int64)
        if not np.array_equal(expect, np.diff(offsets)):
            raise ValueError("a row's size (from offsets) is not the product of its shape")
        return cls(values, offsets, shapes, nd)

    @classmethod
    def from_rows(cls, rows: Sequence[Any]) -> "Ragged":
        """Rows from one array each (the one place a Python object per row is read)."""
        arrs = [r if isinstance(r, np.ndarray) else np.asarray(r) for r in rows]
        n = len(arrs)
        dtypes = {a.dtype for a in arrs}
        if any(d.kind == "O" for d in dtypes):
            raise TQLError("per-row results must be numbers, not Python objects")
        if len(dtypes) == 1:
            dtype = dtypes.pop()
        else:
            present = {a.dtype for a in arrs if a.size} or dtypes
            try:
                dtype = np.result_type(*present) if present else np.dtype(np.float64)
            except TypeError:
                raise TQLError("per-row results of incompatible types") from None
        ndims = np.fromiter((a.ndim for a in arrs), np.int64, n)
        d = int(ndims.max()) if n else 0
        if n and int(ndims.min()) == d:
            shapes = np.array([a.shape for a in arrs], np.int64).reshape(n, d)
        else:
            shapes = np.zeros((n, d), np.int64)
            for i, a in enumerate(arrs):
                shapes[i, : a.ndim] = a.shape
        sizes = np.where(np.arange(d)[None, :] < ndims[:, None], shapes, 1).prod(axis=1) if d else np.ones(n, np.int64)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        values = np.concatenate([a.ravel() for a in arrs]).astype(dtype, copy=False) if n else np.zeros(0, dtype)
        return cls(values, offsets, shapes, ndims)

    @classmethod
    def from_uniform(cls, data: np.ndarray) -> "Ragged":
        """An (n, *shape) array as rows of one shape."""
        n = data.shape[0]
        shape = data.shape[1:]
        size = int(np.prod(shape, dtype=np.int64))
        return cls(np.ascontiguousarray(data).reshape(-1), np.arange(n + 1, dtype=np.int64) * size,
                   np.broadcast_to(np.asarray(shape, np.int64), (n, len(shape))).copy(), np.full(n, len(shape), np.int64))

    def to_uniform(self) -> Optional[np.ndarray]:
        """(n, *shape) when every row has one shape, else None."""
        shape = self.uniform_shape()
        if shape is None:
            return None
        return self.values.reshape((len(self),) + shape)

    def first_axis(self) -> np.ndarray:
        """Each row's first size (0 for a rank-0 row)."""
        if self.shapes.shape[1] == 0:
            return np.zeros(len(self), np.int64)
        return np.where(self.ndims >= 1, self.shapes[:, 0], 0)
