"""`verify` reports what a torn flush would leave: a hidden tensor whose length differs from its
parent's (they are written by one flush), and a chunk holding fewer samples than its index says."""
from __future__ import annotations

import json

import numpy as np

import lakeformat
from lakeformat.verify import verify


def _dataset(path: str) -> None:
    ds = lakeformat.empty(path, overwrite=True, lock=False)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=64)
        ds.create_tensor("t", htype="text")
        ds.extend({"x": np.arange(20), "t": [f"s{i}" for i in range(20)]})


def test_verify_passes_a_whole_dataset(tmp_path):
    path = str(tmp_path / "ds")
    _dataset(path)
    report = verify(path)
    assert report.ok, report.lines()
    assert report.checked["tensors"] == 5  # x, t, _x_id, _x_shape, _t_id


def test_verify_reports_a_hidden_tensor_behind_its_parent(tmp_path):
    path = str(tmp_path / "ds")
    _dataset(path)
    meta_path = tmp_path / "ds" / "_x_id" / "tensor_meta.json"
    meta = json.loads(meta_path.read_text())
    meta["length"] = 17  # as if the flush had stopped between the hidden tensor and its parent
    meta_path.write_text(json.dumps(meta))
    report = verify(path)
    assert not report.ok
    assert any("hidden tensor '_x_id' has 17 samples, 'x' has 20" in p for p in report.problems), report.problems


def test_verify_reports_a_chunk_short_of_its_index(tmp_path):
    path = str(tmp_path / "ds")
    _dataset(path)
    ds = lakeformat.load(path, read_only=True)
    eng = ds.x.engine
    name = eng.chunk_ids.names()[0]
    # the chunk of a later sample, written over the first: fewer samples than the index says
    other = eng.raw_chunk_bytes(eng.chunk_ids.names()[-1])
    (tmp_path / "ds" / "x" / "chunks" / name).write_bytes(other)
    report = verify(path)
    assert not report.ok
    assert any(f"chunk {name} holds" in p for p in report.problems), report.problems
