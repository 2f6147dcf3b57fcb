"""One worker's read pipeline: tasks fetched ahead in threads under a byte budget, samples
handed out in the plan's order. No torch here.

A *task* is a run of consecutive samples of the worker's chunk-ordered slice that share the
primary tensor's chunk (cut to at most `task_samples`). Tasks are admitted in slice order
while the bytes they are expected to hold (their chunks, compressed and decompressed, plus
their decoded samples) fit the budget; the task holding the next sample to hand out is always
admitted, so a budget smaller than one chunk still makes progress. A task's bytes are
released once all its samples have been handed out. Fetch, chunk decompression (lz4, zstd)
and image decoding (Pillow) run in the task threads and release the GIL.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import numpy.ma  # noqa: F401 - np.unique imports it lazily (0.3 s): import it once, before workers fork

from lakeformat.integrations.torch.blocks import BLOCKED
from lakeformat.core.checksums import FolderChecksums
from lakeformat.integrations.torch.chunk_cache import ChunkCache
from lakeformat.integrations.torch.direct_s3 import UrlSigner
from lakeformat.integrations.torch.reader import TensorSource, read_column, worker_storage
from lakeformat.storage import StorageProvider


@dataclass
class ReadJob:
    """Everything a worker reads with; plain data, built in the parent process."""

    sources: Dict[str, TensorSource]
    storage: StorageProvider
    view_samples: np.ndarray  # dataset sample index of each view position
    prefetch_bytes: int = 256 << 20
    num_threads: int = 4  # fetching (and chunk decompression)
    task_samples: int = 256
    decode_threads: int = 1  # sample decoding and column building, in task order
    checksums: Optional[FolderChecksums] = None  # side files read in the parent (None: read in the worker)
    url_signer: Optional[UrlSigner] = None  # presigns the workers' S3 reads (made in the parent)


class TaskResult:
    __slots__ = ("positions", "columns", "nbytes", "has_errors")

    def __init__(self, positions: np.ndarray, columns: Dict[str, Any], nbytes: int):
        self.positions = positions
        self.columns = columns
        self.nbytes = nbytes
        self.has_errors = any(
            isinstance(v, BaseException)
            for col in columns.values()
            for v in (getattr(col, "values", None) or ())
        )


class _Task:
    __slots__ = ("positions", "wanted", "reservation", "future", "remaining", "settled")

    def __init__(self, positions: np.ndarray):
        self.positions = positions
        self.wanted: Dict[str, Optional[str]] = {}
        self.reservation = 0
        self.future: Optional[Future[TaskResult]] = None
        self.remaining = len(positions)
        self.settled = False


def _primary(sources: Dict[str, TensorSource]) -> Optional[str]:
    if not sources:
        return None
    return max(sources, key=lambda n: (sources[n].num_chunks, sources[n].item_nbytes_max))


def primary_rows(sources: Dict[str, TensorSource], view_samples: np.ndarray) -> np.ndarray:
    """Chunk row of each view position in the tensor with the most chunks (the grouping key)."""
    name = _primary(sources)
    if name is None or not len(view_samples):
        return np.zeros(len(view_samples), np.int64)
    src = sources[name]
    if src.seq_ranges is not None:
        items = src.seq_ranges[0][view_samples]
        ends = src.seq_ranges[1][view_samples]
        items = np.where(ends > items, items, np.maximum(items - 1, 0))
    else:
        items = view_samples
    if not src.num_chunks:
        return np.zeros(len(view_samples), np.int64)
    return src.rows_of(np.minimum(items, int(src.last_index[-1])))


def _make_tasks(slice_rows: np.ndarray, needed: np.ndarray, task_samples: int) -> List[_Task]:
    n = len(slice_rows)
    if not n:
        return []
    cuts = np.nonzero(np.diff(slice_rows))[0] + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [n]])
    tasks = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        for lo in range(a, b, task_samples):
            hi = min(b, lo + task_samples)
            pos = np.nonzero(needed[lo:hi])[0] + lo
            if len(pos):
                tasks.append(_Task(pos.astype(np.int64)))
    return tasks


class Run:
    """Consecutive entries `entry .. entry + len(locals) - 1` of a worker's order that one task
    holds: their view positions, the task's result (or the exception that failed the task)
    and each entry's index into the task's columns."""

    __slots__ = ("entry", "positions", "result", "locals")

    def __init__(self, entry: int, positions: np.ndarray, result: Any, locals_: np.ndarray):
        self.entry = entry
        self.positions = positions
        self.result = result
        self.locals = locals_

    def __len__(self) -> int:
        return len(self.locals)


def stream_samples(job: ReadJob, slice_positions: np.ndarray, order: np.ndarray, start: int = 0) -> Iterator[Tuple[int, int, Any, int]]:
    """Yield (entry, view position, TaskResult or the exception that failed its task, local
    index in the task) for entries `start..` of `order` (indices into `slice_positions`)."""
    for run in stream_runs(job, slice_positions, order, start):
        for j, (vpos, local) in enumerate(zip(run.positions.tolist(), run.locals.tolist())):
            yield run.entry + j, vpos, run.result, (local if not isinstance(run.result, BaseException) else -1)


def stream_runs(job: ReadJob, slice_positions: np.ndarray, order: np.ndarray, start: int = 0,
                chunk_buffer: Optional[Callable[[int], Optional[np.ndarray]]] = None) -> Iterator[Run]:
    """Entries `start..` of `order` (indices into `slice_positions`) as `Run`s, in order: one
    per stretch of consecutive entries held by the same task (a whole task when the order
    is not shuffled), so that a batch is cut out of a few runs with no per-sample Python.
    `chunk_buffer(nbytes)`, when given, offers buffers (shared with the main process) that
    chunks are read or decompressed into; None from it means an ordinary buffer."""
    todo = order[start:]
    if not len(todo):
        return
    n = len(slice_positions)
    needed = np.zeros(n, bool)
    needed[todo] = True
    rows = primary_rows(job.sources, job.view_samples[slice_positions])
    tasks = _make_tasks(rows, needed, max(1, job.task_samples))
    task_of_arr = np.full(n, -1, np.int64)
    local_arr = np.zeros(n, np.int64)
    for t, task in enumerate(tasks):
        task_of_arr[task.positions] = t
        local_arr[task.positions] = np.arange(len(task.positions))
    todo_task = task_of_arr[todo]
    todo_local = local_arr[todo]
    todo_vpos = slice_positions[todo]
    cuts = np.nonzero(np.diff(todo_task))[0] + 1
    run_bounds = list(zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(todo)]]).tolist()))
    storage = worker_storage(job.storage, job.url_signer)
    cache = ChunkCache(storage, keep_recent=2 * max(1, len(job.sources)), chunk_buffer=chunk_buffer, checksums=job.checksums)
    pool = ThreadPoolExecutor(max(1, job.decode_threads), thread_name_prefix="lakeloader-decode")
    fetch_pool = ThreadPoolExecutor(max(1, job.num_threads), thread_name_prefix="lakeloader-fetch")
    budget = max(1, int(job.prefetch_bytes))
    state = {"reserved": 0, "next": 0}

    def run(task: _Task) -> TaskResult:
        samples = job.view_samples[slice_positions[task.positions]]
        chunks, fetched = cache.get(task.wanted)
        cols = {name: read_column(src, samples, chunks) for name, src in job.sources.items()}
        decoded = sum(c.held_nbytes for c in cols.values())
        return TaskResult(task.positions, cols, fetched + decoded)

    def admit(t: int) -> None:
        task = tasks[t]
        samples = job.view_samples[slice_positions[task.positions]]
        per_src = [(src, src.rows_for_samples(samples).tolist()) for src in job.sources.values()]
        keys = []
        first_local: Dict[str, int] = {}
        for src, rws in per_src:
            for r in rws:
                task.wanted[src.chunk_keys[r]] = mode = src.fetch_mode(r)
                keys.append(src.chunk_keys[r])
                if mode == BLOCKED:
                    first_local[src.chunk_keys[r]] = src.first_local(samples, r)
        new = set(cache.acquire(keys))
        cache.prefetch(task.wanted, fetch_pool, first_local)
        est = sum(src.decoded_estimate(len(samples)) for src, _ in per_src)
        est += sum(src.chunk_estimate(r) for src, rws in per_src for r in rws if src.chunk_keys[r] in new)
        task.reservation = est
        state["reserved"] += est
        task.future = pool.submit(run, task)

    def pump(force_upto: int = -1) -> None:
        while state["next"] < len(tasks):
            t = state["next"]
            if t > force_upto and state["reserved"] > 0 and state["reserved"] + _peek_estimate(t) > budget:
                break
            admit(t)
            state["next"] = t + 1

    est_cache: Dict[int, int] = {}

    def _peek_estimate(t: int) -> int:
        e = est_cache.get(t)
        if e is None:
            task = tasks[t]
            e = 0
            for src in job.sources.values():
                e += src.decoded_estimate(len(task.positions))
                e += sum(src.chunk_estimate(r) for r in src.rows_for_samples(job.view_samples[slice_positions[task.positions[:1]]]).tolist())
            est_cache[t] = e
        return e

    try:
        pump()
        for a, b in run_bounds:
            t = int(todo_task[a])
            if t >= state["next"]:
                pump(force_upto=t)
            task = tasks[t]
            try:
                assert task.future is not None, "pump submitted every task up to this one"
                res: Any = task.future.result()
                if not task.settled:
                    state["reserved"] += res.nbytes - task.reservation
                    task.reservation = res.nbytes
                    task.settled = True
            except Exception as e:  # noqa: BLE001 - every sample of the task reports it
                res = e
            yield Run(start + a, todo_vpos[a:b], res, todo_local[a:b])
            task.remaining -= b - a
            if task.remaining == 0:
                state["reserved"] -= task.reservation
                task.future = None
                cache.release(list(task.wanted))
                pump()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        fetch_pool.shutdown(wait=False, cancel_futures=True)
        cache.close()  # a task still running must not wait for a fetch that will never run
