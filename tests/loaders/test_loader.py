"""The loader end to end on local datasets, with real worker processes."""
import os
import re

import numpy as np
import pytest
import torch

import lakeformat
from lakeformat.storage.base import StorageProvider
from loaders import LoaderError, SampleLoadError, dataloader

from .conftest import N, make_images


def _indices(loader):
    out = []
    for b in loader:
        out.extend(b["index"].tolist())
    return out


def test_two_workers_every_type_matches_the_dataset(mixed_ds):
    imgs = make_images()
    loader = dataloader(mixed_ds).batch(50).pytorch(num_workers=2, return_index=True, pad_tensors=True)
    seen = []
    for b in loader:
        idx = b["index"].numpy()
        seen.extend(idx.tolist())
        assert b["images"].dtype == torch.uint8 and tuple(b["images"].shape[1:]) == (16, 16, 3)
        assert (b["images"].numpy() == imgs[idx]).all()
        assert tuple(b["jpg"].shape[1:]) == (16, 16, 3)
        assert np.abs(b["jpg"].numpy().astype(int) - imgs[idx].astype(int)).mean() < 8  # lossy
        assert b["labels"].dtype == torch.int64 and b["labels"].shape == (len(idx),)
        assert (b["labels"].numpy() == idx % 10).all()
        assert b["text"] == [f"sample-{i}" for i in idx]
        assert b["info_json"] == [{"i": int(i), "even": bool(i % 2 == 0)} for i in idx]
        r = b["ragged"]
        assert r.dtype == torch.float32 and r.shape == (len(idx), int((idx % 5).max()) + 1)
        for row, i in zip(r.numpy(), idx):
            assert (row[: i % 5 + 1] == i).all() and (row[i % 5 + 1 :] == 0).all()
    assert sorted(seen) == list(range(N))
    assert len(loader) == 2 * -(-(N // 2) // 50)


def test_ragged_without_padding_is_a_list(mixed_ds):
    b = next(iter(dataloader(mixed_ds).batch(8).pytorch(tensors=["ragged"])))
    assert isinstance(b["ragged"], list) and [len(x) for x in b["ragged"]] == [i % 5 + 1 for i in range(8)]


def test_sparse_view_fetches_each_chunk_once(mixed_ds_path):
    ds = lakeformat.load(mixed_ds_path, read_only=True)
    counter = CountingStorage(ds.storage)
    ds.session.storage = counter
    view = ds[list(range(3, N, 7))]
    want = list(range(3, N, 7))
    loader = dataloader(view).batch(16).shuffle(seed=5).pytorch(num_workers=0, tensors=["images", "labels"], return_index=True)
    assert sorted(_indices(loader)) == want
    fetched = [k for k in counter.keys if "/chunks/" in k]
    assert len(fetched) == len(set(fetched)), "a chunk was fetched twice in one epoch"


def test_shuffle_is_deterministic_per_epoch_and_covers_everything(mixed_ds):
    def mk():
        return dataloader(mixed_ds).batch(32).shuffle(True, seed=11).pytorch(num_workers=2, tensors=["labels"], return_index=True)
    a, b = mk(), mk()
    e0 = _indices(a)
    assert e0 == _indices(b)
    e1 = _indices(a)  # the next epoch
    assert sorted(e0) == sorted(e1) == list(range(N)) and e0 != e1
    b.set_epoch(1)
    assert _indices(b) == e1
    assert e0 != sorted(e0)


def test_resume_mid_epoch_neither_repeats_nor_skips(mixed_ds):
    def mk():
        return dataloader(mixed_ds).batch(20).shuffle(True, seed=2).pytorch(num_workers=2, tensors=["images", "labels"], return_index=True)
    first = mk()
    got = []
    it = iter(first)
    for _ in range(7):
        got.extend(next(it)["index"].tolist())
    state = first.state_dict()
    del it
    second = mk()
    second.load_state_dict(state)
    rest = _indices(second)
    assert not set(got) & set(rest)
    assert sorted(got + rest) == list(range(N))
    # the uninterrupted epoch yields the same samples in the same order
    assert got + rest != [] and sorted(_indices(mk())) == sorted(got + rest)
    assert second.state_dict()["epoch"] == 1


def test_resume_state_must_fit(mixed_ds):
    a = dataloader(mixed_ds).batch(4).pytorch(num_workers=2, tensors=["labels"])
    b = dataloader(mixed_ds).batch(4).pytorch(num_workers=1, tensors=["labels"])
    with pytest.raises(LoaderError, match="num_workers"):
        b.load_state_dict(a.state_dict())


def test_transforms_collate_and_decode_methods(mixed_ds):
    loader = (dataloader(mixed_ds).transform({"images": lambda x: x.astype(np.float32) / 255.0, "labels": lambda y: y + 100})
              .batch(10).pytorch(num_workers=2, tensors=["images", "labels", "jpg"], decode_method={"jpg": "tobytes"}))
    b = next(iter(loader))
    assert b["images"].dtype == torch.float32 and float(b["images"].max()) <= 1.0
    assert b["labels"].tolist() == [100 + i for i in range(10)]
    assert isinstance(b["jpg"][0], bytes) and b["jpg"][0][:2] == b"\xff\xd8"

    def pair(sample, scale):
        return torch.from_numpy(sample["images"]).float() * scale, int(sample["labels"])

    loader = dataloader(mixed_ds).transform(pair, scale=2.0).batch(6).pytorch(tensors=["images", "labels"])
    x, y = next(iter(loader))
    assert x.shape == (6, 16, 16, 3) and y.tolist() == list(range(6))

    loader = dataloader(mixed_ds).batch(5).pytorch(tensors=["jpg"], decode_method={"jpg": "pil"}, collate_fn=lambda s: [d["jpg"].size for d in s])
    assert next(iter(loader)) == [(16, 16)] * 5


def test_failing_transform_names_the_sample(mixed_ds):
    def boom(sample):
        if int(sample["labels"]) == 7:
            raise ValueError("bad seven")
        return sample

    loader = dataloader(mixed_ds).transform(boom).batch(4).pytorch(num_workers=2, tensors=["labels"], return_index=True)
    with pytest.raises(Exception, match=r"sample 7\b.*bad seven"):
        for _ in loader:
            pass
    loader = dataloader(mixed_ds).transform(boom).batch(4).pytorch(num_workers=2, tensors=["labels"], return_index=True, ignore_errors=True)
    seen = [int(i) for b in loader for i in b["index"]]
    assert len(seen) == N - N // 10 and all(i % 10 != 7 for i in seen)
    assert loader.skipped == N // 10


def test_corrupt_chunk_names_the_sample(tmp_path):
    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="int64", chunk_compression="lz4", max_chunk_size=800)
        ds.x.extend(np.arange(500))
    ds = lakeformat.load(path, read_only=True)
    eng = ds.x.engine
    victim = eng.chunk_key_of(eng.chunk_ids.names()[2])
    first_bad = int(eng.chunk_ids.first_indices()[2])
    with open(os.path.join(path, victim), "r+b") as f:
        f.seek(40)
        f.write(b"\xff" * 64)
    n_bad = int(eng.chunk_ids.rows[2, 1]) - first_bad + 1
    loader = dataloader(ds).batch(8).pytorch(num_workers=2)
    with pytest.raises(SampleLoadError) as info:
        for _ in loader:
            pass
    named = int(re.search(r"sample (\d+) could not be read", str(info.value)).group(1))
    assert first_bad <= named < first_bad + n_bad
    loader = dataloader(ds).batch(8).pytorch(num_workers=2, ignore_errors=True, return_index=True)
    seen = [int(i) for b in loader for i in b["index"]]
    assert len(seen) == 500 - n_bad and loader.skipped == n_bad
    assert all(not first_bad <= i < first_bad + n_bad for i in seen)


def test_tiny_prefetch_budget_still_streams(mixed_ds):
    loader = dataloader(mixed_ds).batch(64).pytorch(num_workers=0, tensors=["images"], prefetch_bytes=1, return_index=True)
    assert sorted(_indices(loader)) == list(range(N))


def test_drop_last(mixed_ds):
    loader = dataloader(mixed_ds).batch(64, drop_last=True).pytorch(num_workers=2, tensors=["labels"])
    sizes = [len(b["labels"]) for b in loader]
    assert sizes == [64] * 8 and len(loader) == 8


def test_ds_pytorch_shortcut_with_deeplake3_arguments(mixed_ds):
    loader = mixed_ds.pytorch(None, ["images", "labels"], 2, 25, shuffle=True)
    b = next(iter(loader))
    assert set(b) == {"images", "labels", "index"} and b["images"].shape == (25, 16, 16, 3)
    assert sum(len(b["index"]) for b in loader) == N


def test_sequences_links_and_tiles(tmp_path):
    from PIL import Image

    files = []
    for i in range(6):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((8, 8, 3), i * 10, np.uint8)).save(p)
        files.append(str(p))
    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int32")
        ds.create_tensor("linked", htype="link[image]", sample_compression="png")
        ds.create_tensor("big", dtype="uint8", max_chunk_size=4096, tiling_threshold=4096)
        ds.seq.extend([[np.array([i, i]), np.array([i + 1, i + 1])] for i in range(6)])
        ds.linked.extend([lakeformat.link(f) for f in files])
        ds.big.extend([np.full((100, 100), i, np.uint8) for i in range(6)])
    ds = lakeformat.load(path, read_only=True)
    assert ds.big.engine.tiles.entries, "the big samples are tiled"
    b = next(iter(dataloader(ds).batch(6).pytorch(num_workers=0)))
    assert b["seq"].shape == (6, 2, 2) and b["seq"][3].tolist() == [[3, 3], [4, 4]]
    assert b["linked"].shape == (6, 8, 8, 3) and int(b["linked"][5, 0, 0, 0]) == 50
    assert b["big"].shape == (6, 100, 100) and int(b["big"][4].min()) == int(b["big"][4].max()) == 4
    batches = list(dataloader(ds).batch(2).pytorch(num_workers=2, return_index=True))
    assert sorted(int(i) for x in batches for i in x["index"]) == list(range(6))
    for x in batches:
        for row, i in zip(x["linked"], x["index"].tolist()):
            assert int(row[0, 0, 0]) == 10 * i


class CountingStorage(StorageProvider):
    """A real store in front of another one that records every key read (to count fetches)."""

    def __init__(self, base):
        self.base = base
        self.root = base.root
        self.read_only = True
        self.keys = []

    def get(self, key):
        self.keys.append(key)
        return self.base.get(key)

    def get_range(self, key, start, end):
        self.keys.append(key)
        return self.base.get_range(key, start, end)

    def get_many(self, keys, missing_ok=False):
        self.keys.extend(keys)
        return self.base.get_many(keys, missing_ok)

    def set(self, key, value):
        raise NotImplementedError

    def delete(self, key):
        raise NotImplementedError

    def exists(self, key):
        return self.base.exists(key)

    def list(self, prefix=""):
        return self.base.list(prefix)


@pytest.fixture(scope="module")
def many_small_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("slabs") / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="uint8", chunk_compression="lz4", max_chunk_size=256 * 1024)
        ds.x.extend(np.stack([np.full((32, 32, 3), i % 251, np.uint8) for i in range(4000)]))
    return path


@pytest.mark.parametrize("keep", ["batches", "views", "nothing"])
def test_batches_kept_by_the_user_are_never_overwritten(many_small_path, keep):
    """Worker batches are views of shared slabs that the workers reuse once the main process
    holds no tensor of them: what the user keeps (whole batches or views of them) must still
    hold its samples at the end of the epoch."""
    ds = lakeformat.load(many_small_path, read_only=True)
    kept = []
    n = 0
    for b in dataloader(ds).batch(16).pytorch(num_workers=2, return_index=True):
        x, idx = b["x"], b["index"]
        assert (x.numpy() == (idx.numpy() % 251)[:, None, None, None]).all()
        n += len(idx)
        if keep == "batches":
            kept.append((x, idx))
        elif keep == "views":
            kept.append((x[1::2, :4].numpy(), idx[1::2].clone()))
    assert n == 4000
    for x, idx in kept:
        x = x.numpy() if isinstance(x, torch.Tensor) else x
        assert (x == (idx.numpy() % 251)[:, None, None, None]).all()


@pytest.fixture(scope="module")
def large_chunks_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("chunkviews") / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="uint8", chunk_compression="lz4", max_chunk_size=2 << 20)
        ds.create_tensor("y", dtype="uint8", max_chunk_size=2 << 20)  # no chunk compression
        rows = np.stack([np.full((64, 64, 3), i % 251, np.uint8) for i in range(3000)])
        ds.x.extend(rows)
        ds.y.extend(rows[:, :8])
    return path


@pytest.mark.parametrize("keep", ["batches", "every_seventh", "nothing"])
def test_batches_that_are_views_of_chunks_stay_intact(large_chunks_path, keep):
    """Batches of raw samples side by side in a chunk are views of the shared buffer the
    worker decompressed (or read) the chunk into; a buffer is reused only once neither the
    worker nor any batch the user keeps refers to it."""
    ds = lakeformat.load(large_chunks_path, read_only=True)
    kept = []
    big = 0
    for i, b in enumerate(dataloader(ds).batch(50).pytorch(num_workers=2, return_index=True)):
        want = (b["index"].numpy() % 251)[:, None, None, None]
        assert (b["x"].numpy() == want).all() and (b["y"].numpy() == want).all()
        big += b["x"].untyped_storage().nbytes() >= 2 << 20  # a view of a whole chunk's buffer
        if keep == "batches" or (keep == "every_seventh" and i % 7 == 0):
            kept.append(b)
    assert big > 0
    for b in kept:
        want = (b["index"].numpy() % 251)[:, None, None, None]
        assert (b["x"].numpy() == want).all() and (b["y"].numpy() == want).all()


def test_epoch_left_early_stops_its_workers(mixed_ds):
    import multiprocessing

    loader = dataloader(mixed_ds).batch(16).pytorch(num_workers=2, tensors=["images"])
    it = iter(loader)
    next(it)
    assert multiprocessing.active_children()
    it.close()  # what a break, an error or a failing test's dropped traceback ends in
    assert not multiprocessing.active_children()


def test_an_epoch_left_early_leaves_no_thread_waiting(tmp_path):
    """In-process loading (num_workers=0) stopped mid-epoch: fetches queued in the shut-down
    pools never run, and no task thread may wait for one forever (the interpreter's exit
    joins those threads)."""
    import threading
    import time

    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="uint8", chunk_compression="lz4", max_chunk_size=64 * 1024)
        ds.x.extend(np.random.default_rng(0).integers(0, 255, (3000, 32, 32, 3), dtype=np.uint8))
    ds = lakeformat.load(path, read_only=True)
    for _ in range(5):
        it = iter(dataloader(ds).batch(16).pytorch(num_workers=0, num_threads=1, decode_threads=2))
        next(it)
        it.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = [t.name for t in threading.enumerate() if t.name.startswith("lakeloader-")]
        if not busy:
            break
        time.sleep(0.05)
    assert not busy, f"loader threads still waiting: {busy}"


def _freeze_count(sample):
    import gc

    return {"x": sample["x"], "frozen": np.int64(gc.get_freeze_count())}


def test_forked_workers_never_collect_what_they_inherited(tmp_path):
    """The parent's objects sit in gc's permanent generation while the workers fork: a full
    collection in a worker does not copy every inherited page. The parent's collector is as
    it was afterwards, and a program that froze objects itself keeps them frozen."""
    import gc

    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(64))
    ds = lakeformat.load(path, read_only=True)
    assert gc.get_freeze_count() == 0
    loader = dataloader(ds).batch(8).pytorch(num_workers=2, transform=_freeze_count, multiprocessing_context="fork")
    counts = [int(c) for b in loader for c in b["frozen"]]
    assert len(counts) == 64 and min(counts) > 1000  # the workers' view: the parent's objects frozen
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        assert sum(len(b["x"]) for b in loader) == 64
        assert gc.get_freeze_count() > mine // 2  # still frozen (a frozen object that dies leaves the count)
    finally:
        gc.unfreeze()
