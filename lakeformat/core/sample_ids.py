"""Sample ids for the hidden `_<t>_id` tensors that merge and diff match samples by.

Merge needs only that ids are unique within a tensor, across branches (deeplake 3.x draws
8 random bytes per sample). Ours are as unique but cost about one byte each in an lz4 chunk:
each run of `RUN` ids is read off a fresh random string of `RUN` bytes repeated 8 times,
id i being the 8 bytes at offset 8*i. `RUN` is odd, so those offsets visit every position
of the string once: the run's ids are its `RUN` distinct 8-byte windows (two windows of
random bytes, or of two independent strings, agree with probability about 2**-64, as two
of deeplake's ids do), and lz4 stores the run as `RUN` literals and one long match.
"""
from __future__ import annotations

import os

import numpy as np

# odd, and short enough that lz4's hash table still holds the run's start when the repeat
# begins (measured: ~1.03 bytes per id for runs of 251 to 8191)
RUN = 1021


def new_sample_ids(n: int) -> np.ndarray:
    """`n` fresh sample ids, uint64.

    >>> ids = new_sample_ids(5000)
    >>> len(np.unique(ids)) == 5000
    True
    """
    if n <= 0:
        return np.zeros(0, np.uint64)
    full, rest = divmod(n, RUN)
    # the last run's string only as long as its ids need (odd, and at least 9 bytes: an id
    # then holds 8 random bytes, as unlikely as any other to equal one of another batch)
    last = max(rest | 1, 9) if rest else 0
    # a generator seeded from the OS per call: forked writers never share a stream, and
    # drawing a megabyte from it is ten times cheaper than reading it from the OS
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(os.urandom(16), "little")))
    fresh = np.frombuffer(rng.bytes(full * RUN + last), np.uint8)
    out = np.empty(8 * n, np.uint8)
    head = 8 * full * RUN
    out[:head].reshape(full, 8, RUN)[...] = fresh[: full * RUN].reshape(full, 1, RUN)  # one pass
    if rest:
        out[head:] = np.resize(fresh[full * RUN :], 8 * rest)
    return out.view("<u8").astype(np.uint64, copy=False)
