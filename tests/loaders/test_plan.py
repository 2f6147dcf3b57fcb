"""The epoch plan: exactly-once sharding, determinism, the shuffle buffer."""
import numpy as np
import pytest

from loaders.plan import EpochPlan, buffer_shuffle_order, worker_count, worker_order


def _plan(n=1000, rows_per_chunk=37, **kw):
    rows = np.arange(n) // rows_per_chunk
    base = dict(seed=3, epoch=0, shuffle=True, buffer_samples=50, buffer_initial=10)
    base.update(kw)
    return EpochPlan(rows, **base)


@pytest.mark.parametrize("n", [0, 1, 7, 999, 1000])
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_every_sample_exactly_once_without_drop_last(n, world, workers):
    got = []
    for r in range(world):
        p = _plan(n, world_size=world, rank=r)
        for w in range(workers):
            o = worker_order(p, w, workers)
            assert len(o) == worker_count(p, w, workers)
            got.append(o)
    allv = np.concatenate(got) if got else np.zeros(0)
    assert sorted(allv.tolist()) == list(range(n))


@pytest.mark.parametrize("n", [10, 999])
def test_drop_last_gives_equal_rank_shards_and_no_duplicates(n):
    world, workers = 4, 2
    per_rank = []
    seen = []
    for r in range(world):
        p = _plan(n, world_size=world, rank=r, drop_last=True)
        orders = [worker_order(p, w, workers) for w in range(workers)]
        per_rank.append([len(o) for o in orders])
        seen.extend(np.concatenate(orders).tolist())
    assert all(x == per_rank[0] for x in per_rank)
    assert len(seen) == len(set(seen)) == n - n % world


def test_deterministic_per_epoch_and_different_across_epochs():
    a = worker_order(_plan(epoch=1), 0, 2)
    b = worker_order(_plan(epoch=1), 0, 2)
    c = worker_order(_plan(epoch=2), 0, 2)
    assert (a == b).all()
    assert not (a == c).all()


def test_no_shuffle_keeps_view_order():
    p = _plan(100, shuffle=False)
    assert worker_order(p, 0, 1).tolist() == list(range(100))
    assert np.concatenate([worker_order(p, w, 3) for w in range(3)]).tolist() == list(range(100))


def test_chunk_grouping_keeps_chunks_contiguous_before_the_buffer():
    p = _plan(1000, rows_per_chunk=50, buffer_samples=0)
    o = worker_order(p, 0, 1)
    chunks = o // 50
    runs = 1 + int(np.count_nonzero(np.diff(chunks)))
    assert runs == 20  # each chunk read in one run


def test_buffer_shuffle_is_a_bounded_permutation():
    rng = np.random.default_rng(0)
    o = buffer_shuffle_order(5000, 100, 10, rng)
    assert sorted(o.tolist()) == list(range(5000))
    # an item is never emitted before it can have entered the buffer, which holds 100
    k = np.arange(5000)
    assert (o <= np.minimum(2 * k + 10, k + 100) + 1).all()
    assert not (o == np.arange(5000)).all()
