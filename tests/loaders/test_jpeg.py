"""The fast jpeg path: same pixels as Pillow's, Pillow's path for anything it does not handle,
and a sample that does not decode named on its own (its neighbours still load)."""
import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

import lakeformat
from loaders import SampleLoadError, dataloader
from loaders.jpeg import decode_jpeg_into, frame_header


def _jpeg(a: np.ndarray, **kw) -> memoryview:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", **kw)
    return memoryview(buf.getvalue())


@pytest.mark.parametrize("shape,kw", [((37, 51), {}), ((37, 51, 1), {}), ((20, 33, 3), {"progressive": True}),
                                      ((64, 64, 3), {"subsampling": 0}), ((9, 8, 3), {"quality": 30})])
def test_same_pixels_as_pillow(shape, kw):
    a = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    data = _jpeg(a[..., 0] if shape[-1:] == (1,) else a, **kw)
    out = np.empty(shape, np.uint8)
    assert decode_jpeg_into(data, shape, out)
    assert np.array_equal(out.reshape(-1), np.asarray(Image.open(io.BytesIO(data))).reshape(-1))


def test_declines_what_it_does_not_handle():
    a = np.zeros((16, 24, 3), np.uint8)
    data = _jpeg(a)
    assert frame_header(data)[:3] == (16, 24, 3)
    out = np.empty((17, 24, 3), np.uint8)
    assert not decode_jpeg_into(data, (17, 24, 3), out)  # a size other than the stored one
    assert not decode_jpeg_into(data, (16, 24), np.empty((16, 24), np.uint8))  # bands differ
    assert not decode_jpeg_into(data[: len(data) // 2], (16, 24, 3), np.empty((16, 24, 3), np.uint8))  # truncated
    assert not decode_jpeg_into(memoryview(b"\xff\xd8" + b"\x00" * 40), (16, 24, 3), np.empty((16, 24, 3), np.uint8))
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8)).save(buf, format="JPEG")
    assert not decode_jpeg_into(memoryview(buf.getvalue()), (8, 8, 3), np.empty((8, 8, 3), np.uint8))


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
