"""Nullable columns and deeplake 3.9.52: it opens them and reads the placeholders (NaN, the
int64 of NaT, 0, False) and the hidden validity tensor; a dataset it writes with empty samples
for nulls (the older form) reads with its nulls here; it can append to ours."""
from __future__ import annotations

import numpy as np

import lakeformat
from lakeformat import temporal

from .deeplake3 import run_deeplake3

DL_READ = """
import deeplake
ds = deeplake.load(INPUT["path"], read_only=True)
out = {n: ds[n].numpy().reshape(-1).tolist() for n in ("i", "f", "b", "t")}
out["mask"] = ds[INPUT["mask"]].numpy().reshape(-1).tolist()
out["visible"] = sorted(ds.tensors)
emit(out)
"""

DL_WRITE_OLD = """
import deeplake, numpy as np
ds = deeplake.empty(INPUT["path"], overwrite=True)
ds.create_tensor("i", dtype="int64")
ds.i.extend([np.array([1]), np.zeros((0,), np.int64), np.array([0])])
ds.create_tensor("more", dtype="int64")
emit(None)
"""

DL_APPEND = """
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"])
ds.i.append(np.array([5]))
emit(len(ds.i))
"""


def test_deeplake3_reads_placeholders_and_the_mask(tmp_path):
    path = str(tmp_path / "ours")
    ds = lakeformat.empty(path)
    for n, dt in (("i", "int64"), ("f", "float64"), ("b", "bool"), ("t", "int64")):
        ds.create_tensor(n, dtype=dt, nullable=True)
    ds.t.info.update(temporal.info_for("timestamp", "UTC"))
    ds.extend({"i": [0, None, 3], "f": [np.nan, None, 1.5], "b": [False, None, True], "t": [0, None, 5]})
    theirs = run_deeplake3(DL_READ, inputs={"path": path, "mask": ds.i.info["null_mask"]})
    assert theirs["i"] == [0, 0, 3] and theirs["b"] == [False, False, True] and theirs["t"] == [0, np.iinfo(np.int64).min, 5]
    assert np.isnan(theirs["f"][0]) and np.isnan(theirs["f"][1]) and theirs["f"][2] == 1.5
    assert theirs["mask"] == [False, True, False]
    assert theirs["visible"] == ["b", "f", "i", "t"]  # the validity tensors are hidden
    # deeplake 3.9.52 appends to a nullable column (it does not know the mask): not null here
    assert run_deeplake3(DL_APPEND, inputs={"path": path}) == 4
    back = lakeformat.load(path, read_only=True)
    assert back.i.isnull().tolist() == [False, True, False, False]
    assert back.i.numpy(nulls="mask").compressed().tolist() == [0, 3, 5]


def test_older_datasets_with_empty_samples_read_their_nulls(tmp_path):
    path = str(tmp_path / "old")
    run_deeplake3(DL_WRITE_OLD, inputs={"path": path})
    ds = lakeformat.load(path)
    # undeclared, an empty sample is deeplake 3.x's None: an empty sample, not a typed null
    assert not ds.i.nullable and ds.i.isnull().tolist() == [False, False, False]
    assert ds.i[1].numpy().shape == (0,)
    ds.i.info.update(nullable=True)  # declared nullable: its older empty samples are its nulls
    assert ds.i.isnull().tolist() == [False, True, False]
    assert ds.i.numpy(nulls="mask").mask.ravel().tolist() == [False, True, False]
    ds.i.append(None)  # our first null: the mask starts from the older rows' nulls
    assert ds.i.isnull().tolist() == [False, True, False, True]
    assert ds.i.numpy(nulls="mask").compressed().tolist() == [1, 0]
