"""How the loader collates each kind of htype (read from the htype table, lakeformat/htypes.py):
class labels as int64 (one label per sample as a 1-D batch), text-like samples (text, json,
list, tag) as Python lists, never collated into tensors."""
import numpy as np
import torch

import lakeformat
from loaders import dataloader


def test_labels_are_int64_and_text_like_samples_are_lists(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"), overwrite=True)
    with ds:
        ds.create_tensor("labels", htype="class_label")
        ds.create_tensor("multi", htype="class_label")
        ds.create_tensor("text", htype="text")
        ds.create_tensor("doc", htype="json")
        ds.create_tensor("lst", htype="list")
        ds.create_tensor("tags", htype="tag")
        ds.labels.extend(np.arange(6, dtype=np.uint32))
        ds.multi.extend([np.array([i, i + 1], np.uint32) for i in range(6)])
        ds.text.extend([f"t{i}" for i in range(6)])
        ds.doc.extend([{"i": i} for i in range(6)])
        ds.lst.extend([["x"] * (i % 3 + 1) for i in range(6)])
        ds.tags.extend([["a", "b"][: i % 2 + 1] for i in range(6)])
    ds = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    batches = list(dataloader(ds).batch(3).pytorch())
    assert len(batches) == 2
    for k, b in enumerate(batches):
        idx = range(3 * k, 3 * k + 3)
        assert b["labels"].dtype == torch.int64 and b["labels"].tolist() == list(idx)
        assert b["multi"].dtype == torch.int64 and b["multi"].tolist() == [[i, i + 1] for i in idx]
        assert b["text"] == [f"t{i}" for i in idx]
        assert b["doc"] == [{"i": i} for i in idx]
        assert b["lst"] == [["x"] * (i % 3 + 1) for i in idx]
        assert b["tags"] == [["a", "b"][: i % 2 + 1] for i in idx]
