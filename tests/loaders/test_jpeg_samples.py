"""A jpeg sample that does not decode is named on its own; its neighbours still load."""
import os

import numpy as np
import pytest
import torch

import lakeformat
from loaders import SampleLoadError, dataloader


def test_a_broken_jpeg_sample_is_named_and_skipped_alone(tmp_path):
    path = str(tmp_path / "ds")
    n = 300
    imgs = np.stack([np.full((16, 16, 3), i % 200, np.uint8) for i in range(n)])
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("jpg", htype="image", sample_compression="jpeg")
        ds.jpg.extend(imgs)
    ds = lakeformat.load(path, read_only=True)
    victim = 77
    blob = bytes(ds.jpg.engine.read_items_bytes(np.array([victim], np.int64))[0][0])
    files = [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs if "chunks" in r]
    for f in files:
        raw = open(f, "rb").read()
        at = raw.find(blob)
        if at >= 0:
            with open(f, "r+b") as fh:
                fh.seek(at + len(blob) // 2)
                fh.write(b"\x00" * (len(blob) // 2))  # the scan data's second half
            break
    else:
        raise AssertionError("sample bytes not found in any chunk")
    with pytest.raises(SampleLoadError, match=rf"sample {victim}\b"):
        for _ in dataloader(ds).batch(32).pytorch(num_workers=2):
            pass
    loader = dataloader(ds).batch(32).pytorch(num_workers=2, ignore_errors=True, return_index=True)
    seen = []
    for b in loader:
        idx = b["index"].numpy()
        assert b["jpg"].dtype == torch.uint8 and np.abs(b["jpg"].numpy().astype(int) - imgs[idx].astype(int)).max() <= 3
        seen.extend(idx.tolist())
    assert sorted(seen) == [i for i in range(n) if i != victim] and loader.skipped == 1
