"""Column readers: the one seam between the executor and storage.

A reader is called with a tensor name and row positions (in the dataset queried) and returns
that tensor's samples at those rows as a `Value`. `DatasetColumnReader` reads through the
public Tensor API; a chunk-aware reader (statistics, pushdown) can replace it later without
touching the executor.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from lakeformat.tql.errors import TQLError
from lakeformat.tql.text_reader import JSON_HTYPES, TEXT_HTYPES, read_text_like
from lakeformat.tql.values import Value, pack


class ColumnReader(Protocol):
    def __call__(self, name: str, rows: np.ndarray) -> Value: ...


class DatasetColumnReader:
    """Reads columns of `ds` (a dataset or a view of one) with `ds[name][rows].numpy()`."""

    def __init__(self, ds: Any):
        self.ds = ds
        self.length = len(ds)

    def _is_all(self, rows: np.ndarray) -> bool:
        return len(rows) == self.length and (self.length == 0 or (rows[0] == 0 and rows[-1] == self.length - 1 and bool(np.all(np.diff(rows) == 1))))

    def __call__(self, name: str, rows: np.ndarray) -> Value:
        t = self.ds[name]
        if t.is_sequence:
            raise TQLError(f"tensor {name!r} is a sequence: sequence tensors are not queryable yet")
        if t.is_link:  # reading one would fetch the linked files, outside the dataset's storage
            raise TQLError(f"tensor {name!r} holds links: link tensors are not queryable yet")
        # a tensor may hold more samples than the dataset's length: always select the rows
        view = t if self._is_all(rows) and len(t) == self.length else t[rows.astype(np.int64)]
        base = t.base_htype
        if base in TEXT_HTYPES or base in JSON_HTYPES:
            return read_text_like(t, view, len(rows))
        names = None
        if base == "class_label":
            cn = t.info.get("class_names") if hasattr(t.info, "get") else None
            names = tuple(cn) if cn else None
        m = t.meta
        fixed = m.min_shape is not None and m.min_shape == m.max_shape and m.dtype not in (None, "str", "Any", "List")
        if fixed:
            arr = view.numpy()
            # nulls of a nullable column (placeholders in the data) and the time kind, if any
            null = np.asarray(view.isnull(), bool).reshape(-1) if t.nullable else None
            info = t.info
            kind = info.get("lakeformat_type") if hasattr(info, "get") else None
            time = (kind, info.get("timezone")) if kind in ("timestamp", "date", "time") else None
            return Value("array", np.asarray(arr), names, null if null is not None and null.any() else None, time)
        return pack(view.numpy(aslist=True), names)
