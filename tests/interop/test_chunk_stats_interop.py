"""Chunk statistics and deeplake 3.9.52: a dataset with them opens and reads equal there, and
after deeplake appends to it, updates it in place or pops from it (keeping no statistics), our
queries are still right: statistics that might no longer describe a chunk are not trusted."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat.core.layout import TensorLayout
from lakeformat.tql.reader import DatasetColumnReader

from .deeplake3 import run_deeplake3

DL_READ = """
import deeplake
ds = deeplake.load(INPUT["path"], read_only=True)
emit({n: ds[n].numpy().reshape(-1).tolist() for n in ("x", "labels")})
"""

DL_EDIT = """
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"])
op = INPUT["op"]
if op == "append":
    ds.x.extend(np.array([[-500], [2500]], dtype=np.int64))
    ds.labels.extend(np.array([[1], [1]], dtype=np.uint32))
elif op == "update":
    ds.x[5] = np.array([3000], dtype=np.int64)   # inside a chunk whose statistics say max 99
elif op == "pop":
    ds.pop(3)
ds.flush()
emit(len(ds))
"""

QUERIES = ["SELECT * WHERE x >= 2400", "SELECT * WHERE x < 0", "SELECT * WHERE x BETWEEN 95 AND 105", "SELECT * WHERE labels == 'dog' AND x > 990",
           "SELECT * WHERE x > 2000 LIMIT 3", "SELECT * WHERE x IN (3, 3000, 2500)"]


def _ours(path: str):
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=800)  # 100 a chunk
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"], max_chunk_size=800)
        ds.extend({"x": np.arange(1000, dtype=np.int64), "labels": np.repeat([0, 1], 500).astype(np.uint32)})
    return ds


def _answers(ds, pushdown: bool):
    out = []
    for q in QUERIES:
        reader = DatasetColumnReader(ds)
        reader.pushdown = pushdown
        out.append(lakeformat.tql.run(ds, q, reader=reader).indices.tolist())
    return out


def test_deeplake3_reads_a_dataset_with_statistics(tmp_path):
    path = str(tmp_path / "ours")
    ds = _ours(path)
    assert TensorLayout.of(ds.x, with_stats=True).chunk_stats.known.all()
    theirs = run_deeplake3(DL_READ, inputs={"path": path})
    assert theirs["x"] == list(range(1000)) and theirs["labels"] == [0] * 500 + [1] * 500


@pytest.mark.parametrize("op", ["append", "update", "pop"])
def test_queries_stay_right_after_deeplake3_writes(tmp_path, op):
    path = str(tmp_path / "ours")
    _ours(path)
    run_deeplake3(DL_EDIT, inputs={"path": path, "op": op})
    ds = lakeformat.load(path)
    got = _answers(ds, True)
    assert got == _answers(ds, False)
    x = ds.x.numpy().reshape(-1)
    assert got[0] == np.flatnonzero(x >= 2400).tolist() and got[1] == np.flatnonzero(x < 0).tolist()
    if op == "update":
        assert got[0] == [5] and got[5] == [3, 5]
    # our next write trusts statistics again, for the chunks it wrote
    ds.extend({"x": np.array([7000], np.int64), "labels": np.array([0], np.uint32)})
    st = TensorLayout.of(ds.x, with_stats=True).chunk_stats
    assert st.known[-1] and _answers(ds, True) == _answers(ds, False)
    assert lakeformat.tql.run(ds, "SELECT * WHERE x == 7000").indices.tolist() == [len(ds) - 1]
    theirs = run_deeplake3(DL_READ, inputs={"path": path})
    assert theirs["x"] == ds.x.numpy().reshape(-1).tolist()
