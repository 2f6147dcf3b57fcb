"""The epoch's sample plan: which view positions each (rank, worker) reads, in what order.

Pure NumPy and deterministic: every rank and worker computes the whole plan from
(view length, chunk rows, seed, epoch) on its own, with no communication, and takes its slice.

1. **Chunk grouping.** Samples are grouped by the chunk of the *primary* tensor (the one with
   the most chunks) that holds them, so that a chunk is fetched once, by one worker, per epoch
   (a chunk that straddles the boundary of two slices is fetched by both).
   Without shuffle the plan is the view order (a sorted view is already chunk-grouped).
   With shuffle the chunk order is a seeded permutation and the samples of a chunk are
   permuted among themselves.
2. **Rank shard.** The plan is cut into `world_size` contiguous slices whose lengths differ by
   at most one; rank r takes slice r. With `drop_last=True` the last `len % world_size`
   samples of the (shuffled) plan are dropped first, so every rank gets the same count.
   Without it no sample is dropped and none is repeated: ranks may differ by one sample (so by
   at most one batch per worker).
3. **Worker slice.** A rank's shard is cut the same way into `num_workers` contiguous slices.
4. **Sample buffer.** With shuffle each worker's slice is passed through a bounded shuffle
   buffer, simulated on positions (see `buffer_shuffle_order`), so the final order is known
   before any byte is read: resuming after `k` samples skips exactly the first `k`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np


@dataclass(frozen=True)
class EpochPlan:
    """The plan inputs shared by every rank and worker of one epoch."""

    primary_rows: np.ndarray = field(repr=False)  # chunk row of each view position (primary tensor)
    seed: int
    epoch: int
    shuffle: bool
    buffer_samples: int
    buffer_initial: int
    world_size: int = 1
    rank: int = 0
    drop_last: bool = False

    @property
    def num_samples(self) -> int:
        return len(self.primary_rows)


def split_bounds(n: int, parts: int, k: int) -> Tuple[int, int]:
    """[start, end) of part k when n items are cut into `parts` contiguous slices whose lengths
    differ by at most one."""
    return (k * n) // parts, ((k + 1) * n) // parts


def global_order(plan: EpochPlan) -> np.ndarray:
    """All view positions of the epoch in chunk-grouped (and, with shuffle, shuffled) order."""
    n = plan.num_samples
    if not plan.shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([plan.seed & 0xFFFFFFFF, plan.epoch, 0x10AD])
    rows = plan.primary_rows
    uniq, inverse = np.unique(rows, return_inverse=True)
    chunk_rank = rng.permutation(len(uniq))[inverse]
    within = rng.random(n)
    return np.lexsort((within, chunk_rank)).astype(np.int64)


def rank_shard(plan: EpochPlan) -> np.ndarray:
    order = global_order(plan)
    n = len(order)
    w = max(1, plan.world_size)
    if plan.drop_last and w > 1:
        n -= n % w
        order = order[:n]
    a, b = split_bounds(n, w, plan.rank)
    return order[a:b]


def buffer_shuffle_order(n: int, capacity: int, initial: int, rng: np.random.Generator) -> np.ndarray:
    """Positions 0..n-1 reordered by a bounded shuffle buffer, as `webdataset.shuffle` does it:
    each step reads one item into the buffer (two while it is not full) and, once it holds at
    least `initial` items, emits one drawn uniformly from it; at the end the rest is emitted in
    random order. An item is emitted at most `capacity + ...` reads after it entered, i.e. it
    never moves more than about `capacity` places from where the chunk order put it."""
    if n <= 1 or capacity <= 1:
        return np.arange(n, dtype=np.int64)
    capacity = min(capacity, n)
    initial = max(1, min(initial, capacity))
    u = rng.random(n)
    out = np.empty(n, dtype=np.int64)
    buf: List[int] = []
    nxt = 0
    k = 0
    while nxt < n:
        buf.append(nxt)
        nxt += 1
        if len(buf) < capacity and nxt < n:
            buf.append(nxt)
            nxt += 1
        if len(buf) >= initial:
            j = int(u[k] * len(buf))
            buf[j], buf[-1] = buf[-1], buf[j]
            out[k] = buf.pop()
            k += 1
    rest = np.asarray(buf, dtype=np.int64)
    out[k:] = rest[rng.permutation(len(rest))]
    return out


def worker_plan(plan: EpochPlan, worker: int, num_workers: int) -> Tuple[np.ndarray, np.ndarray]:
    """(the worker's chunk-ordered slice of view positions, its emission order as indices into
    that slice). The slice is what is fetched, chunk after chunk; the order is the slice
    after the shuffle buffer (the identity without shuffle)."""
    shard = rank_shard(plan)
    a, b = split_bounds(len(shard), max(1, num_workers), worker)
    mine = shard[a:b]
    if plan.shuffle and plan.buffer_samples > 1:
        rng = np.random.default_rng([plan.seed & 0xFFFFFFFF, plan.epoch, plan.rank, worker, 0xB0F])
        return mine, buffer_shuffle_order(len(mine), plan.buffer_samples, plan.buffer_initial, rng)
    return mine, np.arange(len(mine), dtype=np.int64)


def worker_order(plan: EpochPlan, worker: int, num_workers: int) -> np.ndarray:
    """View positions worker `worker` of this rank reads this epoch, in emission order."""
    mine, perm = worker_plan(plan, worker, num_workers)
    order: np.ndarray = mine[perm]
    return order


def worker_count(plan: EpochPlan, worker: int, num_workers: int) -> int:
    """len(worker_order(...)) without computing the order."""
    n = plan.num_samples
    w = max(1, plan.world_size)
    if plan.drop_last and w > 1:
        n -= n % w
    a, b = split_bounds(n, w, plan.rank)
    a2, b2 = split_bounds(b - a, max(1, num_workers), worker)
    return b2 - a2


