"""Small datasets the loader tests share (written once per session, read-only after)."""
import gc
import multiprocessing

import numpy as np
import pytest

import lakeformat

N = 600


def make_images(n: int = N) -> np.ndarray:
    """Smooth gradients (so that jpeg stays close), one level per sample."""
    y, x = np.mgrid[0:16, 0:16]
    base = np.stack([x * 8, y * 8, (x + y) * 4], -1)
    return ((base[None] + (np.arange(n) % 64)[:, None, None, None]) % 256).astype(np.uint8)


@pytest.fixture(scope="session")
def mixed_ds_path(tmp_path_factory):
    """images (raw, lz4 chunks, small chunks), jpeg, class labels, text, json, ragged arrays."""
    path = str(tmp_path_factory.mktemp("mixed") / "ds")
    imgs = make_images()
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", dtype="uint8", chunk_compression="lz4", max_chunk_size=64 * 1024)
        ds.create_tensor("jpg", htype="image", sample_compression="jpeg", max_chunk_size=64 * 1024)
        ds.create_tensor("labels", htype="class_label", class_names=[f"c{i}" for i in range(10)])
        ds.create_tensor("text", htype="text")
        ds.create_tensor("info_json", htype="json")
        ds.create_tensor("ragged", htype="generic", dtype="float32", chunk_compression="zstd")
        ds.images.extend(imgs)
        ds.jpg.extend(imgs)
        ds.labels.extend((np.arange(N) % 10).astype(np.uint32))
        ds.text.extend([f"sample-{i}" for i in range(N)])
        ds.info_json.extend([{"i": i, "even": i % 2 == 0} for i in range(N)])
        ds.ragged.extend([np.full((i % 5 + 1,), i, np.float32) for i in range(N)])
    return path


@pytest.fixture
def mixed_ds(mixed_ds_path):
    return lakeformat.load(mixed_ds_path, read_only=True)


@pytest.fixture(autouse=True)
def no_worker_left_behind():
    """Every test's loader worker processes are gone when it ends, passed or failed: a worker
    left running (a suspended epoch held by a failing test's traceback) must not outlive the
    test, let alone block the session's exit."""
    yield
    gc.collect()  # a dropped loader iterator shuts its workers down when collected
    left = multiprocessing.active_children()
    for p in left:
        p.join(timeout=10)
    for p in left:
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
