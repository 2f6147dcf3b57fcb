"""Reused worker buffers are never handed out while a view of them lives; a chunk read in
blocks gives each run of samples the bytes a whole read would."""
import gc

import numpy as np
import pytest

from lakeformat.core.chunk import Chunk, chunk_header
from lakeformat.storage import LocalStorage
from loaders.blocks import BlockedChunk, fetch_blocked
from loaders.buffers import BufferPool


def test_a_buffer_comes_back_only_when_no_view_of_it_is_left():
    pool = BufferPool(max_free=2)
    a = pool.get(3 << 20)
    a[:] = 7
    view = a[10:20]
    del a
    gc.collect()
    b = pool.get(3 << 20)  # the first one is still seen through `view`: a fresh one
    b[:] = 1
    assert (view == 7).all()
    del view
    gc.collect()
    assert len(pool.returned) == 1
    c = pool.get(1 << 20)  # reused (large enough), and exactly the size asked for
    assert len(c) == 1 << 20 and len(pool.free) == 0 and not pool.returned


def test_buffers_are_private_memory():
    """A worker's buffers are private mappings: an anonymous mapping is shared by default,
    and shared memory gets no huge pages (a fault per 4 KiB page instead of per 2 MiB). A
    child's write to a private buffer stays the child's."""
    import os

    pool = BufferPool()
    buf = pool.get(3 << 20)
    buf[:] = 7
    pid = os.fork()
    if pid == 0:
        buf[:] = 9
        os._exit(0)
    os.waitpid(pid, 0)
    assert (buf == 7).all()


def test_a_finalizer_never_waits_for_the_pool_lock():
    """A garbage collection can run a buffer's finalizer inside `get`, lock held."""
    pool = BufferPool()
    a = pool.get(1 << 20)
    with pool.lock:
        del a
        gc.collect()
    assert len(pool.returned) == 1
    assert len(pool.get(1 << 20)) == 1 << 20 and not pool.returned


def _chunk_file(tmp_path, sizes):
    rng = np.random.default_rng(0)
    samples = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]
    shapes = np.asarray([[n] for n in sizes], np.int64)
    header = chunk_header(np.asarray(sizes, np.int64), shapes)
    store = LocalStorage(str(tmp_path))
    store.set("chunk", header + b"".join(samples))
    return store, samples


@pytest.mark.parametrize("first_local", [None, 0, 25, 59])
def test_blocked_chunk_slices_match_a_whole_read(tmp_path, monkeypatch, first_local):
    """Whichever sample the asking task wants first (it gets a block of its own)."""
    import loaders.blocks as blocks

    monkeypatch.setattr(blocks, "FIRST_BLOCK", 5000)
    monkeypatch.setattr(blocks, "BLOCK", 7000)
    sizes = [900 + (i * 37) % 500 for i in range(60)]
    store, samples = _chunk_file(tmp_path, sizes)
    whole = Chunk.parse(store.get("chunk"), None, "chunk")
    c = fetch_blocked(store, "chunk", None, first_local)
    assert isinstance(c, BlockedChunk) and len(c.bounds) > 3 and c.nbytes == len(store.get("chunk"))
    assert [b for _, b in c.bounds[:-1]] == [a for a, _ in c.bounds[1:]]  # contiguous, in order
    if first_local:
        s0, _ = whole.byte_ranges(np.array([first_local]))
        assert int(s0[0]) + whole.header_nbytes in [a for a, _ in c.bounds]
    for lo, hi in ((0, 3), (4, 17), (20, 21), (30, 60), (0, 60)):
        local = np.arange(lo, hi, dtype=np.int64)
        sl = c.for_samples(local)
        s, e = sl.byte_ranges(local)
        assert [bytes(sl.data[a:b]) for a, b in zip(s, e)] == samples[lo:hi]
        ws, we = whole.byte_ranges(local)
        assert [bytes(whole.data[a:b]) for a, b in zip(ws, we)] == samples[lo:hi]
        assert (sl.shapes(local) == whole.shapes(local)).all()


def test_a_chunk_that_fits_the_first_block_is_read_whole(tmp_path):
    store, samples = _chunk_file(tmp_path, [100, 200, 300])
    c = fetch_blocked(store, "chunk", None)
    assert isinstance(c, Chunk)
    s, e = c.byte_ranges(np.arange(3))
    assert [bytes(c.data[a:b]) for a, b in zip(s, e)] == samples
