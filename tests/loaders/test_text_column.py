"""Text through the loader's text-buffer path (integrations/torch/text_column.py): the same
str values (None for a null, "" kept apart from it, unicode and NULs) as per-sample decoding,
shuffled across chunks and compressions; a damaged value is reported for its sample alone."""
import numpy as np
import pytest

import lakeformat
from lakeformat.integrations.torch.errors import SampleLoadError
from loaders import dataloader
from tests.core.test_text_buffers import random_texts


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_text_batches_equal_values(tmp_path, compression):
    want = random_texts(np.random.default_rng(3), 900)
    ds = lakeformat.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("t", htype="text", chunk_compression=compression, max_chunk_size=2000)
        ds.t.extend(want)
    ds = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    assert len(ds.t.engine.chunk_ids.names()) > 3
    for workers in (0, 2):
        loader = dataloader(ds).shuffle().batch(32).pytorch(num_workers=workers, return_index=True)
        seen = {}
        for b in loader:
            for i, v in zip(b["index"].tolist(), b["t"]):
                seen[int(i)] = v
        assert seen == dict(enumerate(want))


def test_damaged_text_names_its_sample(tmp_path):
    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("t", htype="text")
        ds.t.extend(["abc", "déf", "ghi"])
    (chunk,) = (tmp_path / "ds" / "t" / "chunks").iterdir()
    raw = bytearray(chunk.read_bytes())
    raw[bytes(raw).index("é".encode()) + 1] = 0x41
    chunk.write_bytes(bytes(raw))
    ds = lakeformat.load(path, read_only=True)
    loader = dataloader(ds).batch(3).pytorch(num_workers=0, ignore_errors=True, return_index=True)
    got = [(int(i), v) for b in loader for i, v in zip(b["index"].tolist(), b["t"])]
    assert got == [(0, "abc"), (2, "ghi")] and loader.skipped == 1
    with pytest.raises(SampleLoadError, match="sample 1"):
        list(dataloader(ds).batch(3).pytorch(num_workers=0))
