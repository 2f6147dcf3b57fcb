"""The loader with `spawn` and `forkserver` workers (the default start methods on macOS and
from Python 3.14): everything a worker gets is pickled, the storage object included, and a
flush that fails before the loader starts fails the loader."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat.version_control.locks import release_branch_lock
from loaders import dataloader

from .conftest import make_images

CONTEXTS = ["spawn", "forkserver"]


def _check_epoch(ds, imgs: np.ndarray, ctx: str, want: list) -> None:
    seen = []
    loader = dataloader(ds).batch(16).shuffle(seed=5).pytorch(num_workers=2, multiprocessing_context=ctx, return_index=True)
    for b in loader:
        idx = b["index"].numpy()
        seen.extend(idx.tolist())
        assert (b["images"].numpy() == imgs[idx]).all()
        assert (b["labels"].numpy().ravel() == idx % 10).all()
    assert sorted(seen) == want


@pytest.mark.parametrize("ctx", CONTEXTS)
def test_local_dataset_spawned_workers(tmp_path, ctx):
    imgs = make_images(120)
    ds = lakeformat.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("images", htype="image", dtype="uint8", sample_compression="png", max_chunk_size=16 * 1024)
        ds.create_tensor("labels", htype="class_label")
        ds.images.extend(imgs)
        ds.labels.extend((np.arange(120) % 10).astype(np.uint32))
    # rows appended but not flushed yet: the loader flushes them before its workers start
    ds.images.extend(imgs[:8])
    ds.labels.extend((np.arange(120, 128) % 10).astype(np.uint32))
    imgs = np.concatenate([imgs, imgs[:8]])
    _check_epoch(ds, imgs, ctx, list(range(128)))
    view = ds[list(range(1, 128, 3))]
    _check_epoch(view, imgs, ctx, list(range(1, 128, 3)))


@pytest.mark.parametrize("ctx", CONTEXTS)
def test_s3_dataset_spawned_workers(s3_url, ctx):
    url, opts = s3_url
    imgs = make_images(100)
    ds = lakeformat.empty(url, creds=opts)
    with ds:
        ds.create_tensor("images", htype="image", dtype="uint8", chunk_compression="lz4", max_chunk_size=32 * 1024)
        ds.create_tensor("labels", htype="class_label")
        ds.images.extend(imgs)
        ds.labels.extend((np.arange(100) % 10).astype(np.uint32))
    release_branch_lock(ds.storage, ds.branch)  # see test_s3.py: no lock refresher outliving the server
    ds = lakeformat.load(url, creds=opts, read_only=True)
    _check_epoch(ds, imgs, ctx, list(range(100)))


def test_failed_flush_fails_the_loader(tmp_path, monkeypatch):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(10))
    with ds:
        ds.x.extend(np.arange(10, 20))  # buffered until the block ends

        def broken_flush() -> None:
            raise OSError("disk full")

        monkeypatch.setattr(ds, "flush", broken_flush)
        with pytest.raises(OSError, match="disk full"):
            list(dataloader(ds).batch(4).pytorch(num_workers=0))
        monkeypatch.undo()
    # the rows reach storage with the block's own flush, and a loader then serves them all
    got = [i for b in dataloader(ds).batch(4).pytorch(num_workers=0, return_index=True) for i in b["index"].tolist()]
    assert sorted(got) == list(range(20))


@pytest.mark.parametrize("ctx, forks", [("fork", True), ("spawn", False), ("forkserver", False)])
def test_shared_buffers_follow_the_start_method(tmp_path, ctx, forks):
    """Forked workers share anonymous mappings made before they start; spawned and
    forkserver workers get torch shared-memory storages, which survive pickling."""
    import multiprocessing

    from lakeformat.integrations.torch.slabs import premade_slots, slab_flags

    ds = lakeformat.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("x", dtype="float32")
        ds.x.extend(np.zeros((8, 4), np.float32))
    loader = dataloader(ds).batch(4).pytorch(num_workers=2, multiprocessing_context=ctx)
    assert loader._forks() is forks
    as_context = dataloader(ds).batch(4).pytorch(num_workers=2, multiprocessing_context=multiprocessing.get_context(ctx))
    assert as_context._forks() is forks
    slots = premade_slots(slab_flags(2), 1 << 16, 1 << 16, forked=forks)
    assert all(st.is_shared() is not forks for mine in slots for st in mine.values())
