"""A chunk the index points at that storage lacks, met by the loader: the sample's error names
the sample and, through its cause, the chunk's key (a `CorruptDataError`, as on the dataset's
own reads), in the main process and in workers."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import lakeformat
from lakeformat.errors import CorruptDataError
from loaders import SampleLoadError, dataloader


@pytest.mark.parametrize("tensor", ["raw", "png"])
def test_a_missing_chunk_is_damage_in_the_loader(tmp_path, tensor):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root)
    with ds:
        ds.create_tensor("raw", dtype="int64")
        ds.create_tensor("png", htype="image", sample_compression="png")
        ds.extend({"raw": np.arange(40), "png": np.zeros((40, 4, 4, 3), np.uint8)})
    ds.close()
    chunk = glob.glob(os.path.join(root, tensor, "chunks", "*"))[0]
    os.remove(chunk)
    ds = lakeformat.load(root, read_only=True)
    with pytest.raises(SampleLoadError, match=r"sample 0 could not be read: CorruptDataError: chunk missing from storage") as e:
        for _ in dataloader(ds).batch(8).pytorch(num_workers=0, tensors=[tensor]):
            pass
    assert isinstance(e.value.__cause__, CorruptDataError) and e.value.__cause__.key == f"{tensor}/chunks/{os.path.basename(chunk)}"
    with pytest.raises(SampleLoadError, match=f"chunk missing from storage \\(key '{tensor}/chunks/"):
        for _ in dataloader(ds).batch(8).pytorch(num_workers=2, tensors=[tensor]):
            pass
