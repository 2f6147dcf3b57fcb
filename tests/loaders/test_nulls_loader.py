"""The torch loader over nullable columns: NaN placeholders for floats, and each nullable
column's validity as "<name>.null"."""
from __future__ import annotations

import numpy as np
import torch

import lakeformat
from loaders import dataloader


def test_nullable_columns_collate_with_their_mask(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "n"))
    ds.create_tensor("price", dtype="float64", nullable=True)
    ds.create_tensor("qty", dtype="int64", nullable=True)
    ds.create_tensor("plain", dtype="int64")
    ds.extend({"price": [1.5, None, np.nan, 4.0], "qty": [0, 2, None, 4], "plain": np.arange(4)})
    b = next(iter(dataloader(ds).batch(4).pytorch(num_workers=0)))
    assert set(b) == {"price", "qty", "plain", "price.null", "qty.null"}
    assert b["qty"].shape == (4, 1) and b["qty"].dtype == torch.int64
    assert b["qty.null"].ravel().tolist() == [False, False, True, False]
    assert b["price.null"].ravel().tolist() == [False, True, False, False]
    assert torch.isnan(b["price"].ravel()[1]) and torch.isnan(b["price"].ravel()[2])  # NaN: a null, or stored
    b = next(iter(dataloader(ds).batch(2).pytorch(num_workers=2, tensors=["qty"])))
    assert set(b) == {"qty", "qty.null"} and b["qty.null"].ravel().tolist() == [False, False]
