"""The loader over S3 (moto's real server), forked workers each opening their own connection."""
import numpy as np

import lakeformat
from lakeformat.version_control.locks import release_branch_lock
from loaders import dataloader

from .conftest import make_images


def test_s3_two_workers_sparse_shuffled_view(s3_url, s3_server):
    url, opts = s3_url
    imgs = make_images(300)
    ds = lakeformat.empty(url, creds=opts)
    with ds:
        ds.create_tensor("images", htype="image", dtype="uint8", chunk_compression="lz4", max_chunk_size=32 * 1024)
        ds.create_tensor("labels", htype="class_label")
        ds.images.extend(imgs)
        ds.labels.extend((np.arange(300) % 10).astype(np.uint32))
    # give the branch lock back now: its refresher thread and its release at exit would
    # otherwise talk to a server the session has already stopped
    release_branch_lock(ds.storage, ds.branch)
    ds = lakeformat.load(url, creds=opts, read_only=True)
    want = list(range(0, 300, 3))
    loader = dataloader(ds[want]).batch(16).shuffle(seed=1).pytorch(num_workers=2, return_index=True)
    seen = []
    for b in loader:
        idx = b["index"].numpy()
        seen.extend(idx.tolist())
        assert (b["images"].numpy() == imgs[idx]).all()
        assert (b["labels"].numpy() == idx % 10).all()
    assert sorted(seen) == want
    # through a 20 ms latency proxy as well
    proxy = s3_server.latency_proxy(0.02)
    ds2 = lakeformat.load(url, creds=s3_server.storage_options_for(proxy.endpoint_url), read_only=True)
    got = sorted(i for b in dataloader(ds2).batch(64).pytorch(num_workers=2, return_index=True) for i in b["index"].tolist())
    assert got == list(range(300))


def test_s3_large_chunks_come_in_blocks(s3_url, s3_server, monkeypatch):
    """Chunks without chunk compression are read in byte blocks (header block first); the
    samples are the same, whichever blocks a task's run spans."""
    import loaders.blocks as blocks
    import loaders.reader as reader

    # small blocks, so that these chunks span several (forked workers inherit the values)
    monkeypatch.setattr(blocks, "FIRST_BLOCK", 8 * 1024)
    monkeypatch.setattr(blocks, "BLOCK", 20 * 1024)
    monkeypatch.setattr(reader, "FIRST_BLOCK", 8 * 1024)
    url, opts = s3_url
    imgs = make_images(240)
    ds = lakeformat.empty(url, creds=opts)
    with ds:
        ds.create_tensor("raw", htype="image", dtype="uint8", max_chunk_size=64 * 1024)
        ds.create_tensor("jpg", htype="image", sample_compression="jpeg", max_chunk_size=64 * 1024)
        ds.create_tensor("labels", htype="class_label")
        ds.raw.extend(imgs)
        ds.jpg.extend(imgs)
        ds.labels.extend((np.arange(240) % 7).astype(np.uint32))
    release_branch_lock(ds.storage, ds.branch)
    ds = lakeformat.load(url, creds=opts, read_only=True)
    assert ds.raw.engine.chunk_ids.num_chunks > 1
    jpg = ds.jpg.numpy()
    for view, shuffle in ((ds, False), (ds[list(range(5, 240, 2))], True)):
        loader = dataloader(view).batch(24).shuffle(shuffle, seed=3).pytorch(num_workers=2, return_index=True)
        seen = []
        for b in loader:
            idx = b["index"].numpy()
            seen.extend(idx.tolist())
            assert (b["raw"].numpy() == imgs[idx]).all()
            assert (b["jpg"].numpy() == jpg[idx]).all()
            assert (b["labels"].numpy() == idx % 7).all()
        assert sorted(seen) == sorted(view.index.resolve(240).tolist())
