"""Large byte buffers for a worker's chunks, reused instead of mapped afresh.

A worker reads and decompresses one chunk after another (16 MB each by default). Fresh
memory for each costs a page fault per 4 KiB page on first touch: on a VM that was most of
a worker's CPU time on raw images (4-5 us per fault, 8,000 faults per chunk and buffer). Here
buffers are anonymous mappings advised as transparent huge pages (one fault per 2 MiB where
the kernel allows it) and kept in a free list: an array handed out goes back to the list
when the last view of it is gone (a `weakref.finalize` on the array), so a buffer that a
batch still reads from is never reused under it.
"""
from __future__ import annotations

import collections
import mmap
import threading
import weakref
from typing import Deque, List

import numpy as np

_HUGE = 2 << 20


class BufferPool:
    """Reusable uint8 arrays of at least the size asked for, at most `max_free` kept."""

    def __init__(self, max_free: int = 8):
        self.max_free = max_free
        self.free: List[mmap.mmap] = []
        # buffers given back by finalizers: those run wherever the last reference goes,
        # a garbage collection inside `get` included, so they only append (atomic) here
        self.returned: Deque[mmap.mmap] = collections.deque()
        self.lock = threading.Lock()

    def get(self, nbytes: int) -> np.ndarray:
        """A uint8 array of exactly `nbytes`, its contents unspecified."""
        mm = None
        with self.lock:
            while self.returned:
                back = self.returned.popleft()
                if len(self.free) < self.max_free:
                    self.free.append(back)
            fits = [m for m in self.free if len(m) >= nbytes]
            if fits:
                mm = min(fits, key=len)
                self.free.remove(mm)
        if mm is None:
            # private: an anonymous mapping is shared by default, and shared memory gets no
            # huge pages (shmem_enabled is "never" on most kernels): 4 KiB faults again
            mm = mmap.mmap(-1, max(_HUGE, -(-nbytes // _HUGE) * _HUGE), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            advise = getattr(mmap, "MADV_HUGEPAGE", None)
            if advise is not None:
                try:
                    mm.madvise(advise)
                except OSError:  # THP off in this kernel: small pages then
                    pass
        arr = np.frombuffer(mm, np.uint8, count=nbytes)
        weakref.finalize(arr, self._put, mm)
        return arr

    def _put(self, mm: mmap.mmap) -> None:
        self.returned.append(mm)  # no lock: see `returned`
