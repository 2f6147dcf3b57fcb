"""The process-wide thread pool for chunk (de)compression and other GIL-free batch work."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Dict

_POOL: Dict[int, ThreadPoolExecutor] = {}


def codec_pool() -> ThreadPoolExecutor:
    """One pool per process (a forked loader worker must not inherit its parent's threads)."""
    pid = os.getpid()
    pool = _POOL.get(pid)
    if pool is None:
        pool = _POOL[pid] = ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 2)), thread_name_prefix="lakeformat-codec")
    return pool
