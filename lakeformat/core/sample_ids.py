"""Sample ids for the hidden `_<t>_id` tensors that merge and diff match samples by.

Merge needs only that ids are unique within a tensor, across branches (deeplake 3.x draws
8 random bytes per sample). Ours are as unique but cost about half a byte each in an lz4
chunk. Each run of `RUN` ids is read off a string `s` of `RUN` bytes repeated 8 times,
id i being the 8 bytes at offset 8*i; `RUN` is odd, so those offsets visit every position
of `s` once and the run's ids are the `RUN` cyclic 8-byte windows of `s`.

`s` is a head `Y` of 8 random bytes and a counter byte, then `BLOCKS` blocks of 8 bytes:
the same 7 random bytes `X` followed by a counter byte. Every window that does not lie inside `Y` holds
exactly one counter byte, and the counters of a run are distinct, so two windows of a run
agree only where the random bytes repeat themselves (odds about 2**-56 a pair). Two runs
share an id with odds about 2**-42 (4 million pairs of windows, each agreeing with odds
about 2**-64; `X` itself repeats with odds 2**-56), as two batches of 2,041 of deeplake's
random ids do. lz4 stores a block as one literal and a 7-byte match (4 bytes for 8), and the
7 repeats of `s` as one long match found through `Y`, whose bytes occur once in `s`.
"""
from __future__ import annotations

import os

import numpy as np

BLOCKS = 254  # counters 0..253 after a random start; with the head's counter, 255 in all
RUN = 9 + 8 * BLOCKS  # 2041: odd, and short enough that lz4's hash table still holds `Y`


def _runs(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` strings `s` (uint8 [count, RUN]), each from 16 fresh random bytes."""
    fresh = np.frombuffer(rng.bytes(16 * count), np.uint8).reshape(count, 16)
    s = np.empty((count, RUN), np.uint8)
    s[:, :8] = fresh[:, :8]  # Y
    counters = (fresh[:, 15:16].astype(np.int64) + np.arange(BLOCKS + 1)) & 0xFF  # distinct, random start
    s[:, 8] = counters[:, 0]
    blocks = s[:, 9:].reshape(count, BLOCKS, 8)
    blocks[:, :, :7] = fresh[:, None, 8:15]  # X
    blocks[:, :, 7] = counters[:, 1:]
    return s


def new_sample_ids(n: int) -> np.ndarray:
    """`n` fresh sample ids, uint64.

    >>> ids = new_sample_ids(5000)
    >>> len(np.unique(ids)) == 5000
    True
    """
    if n <= 0:
        return np.zeros(0, np.uint64)
    # a generator seeded from the OS per call: forked writers never share a stream, and
    # drawing from it is ten times cheaper than reading the OS for every byte
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(os.urandom(16), "little")))
    full, rest = divmod(n, RUN)
    s = _runs(full + (1 if rest else 0), rng)
    out = np.empty((len(s), 8, RUN), np.uint8)
    out[...] = s[:, None, :]  # each run's string 8 times over: one pass
    # a last, partial run keeps the first windows of its string: a subset of distinct ones
    return out.reshape(-1)[: 8 * n].view("<u8").astype(np.uint64, copy=False)
