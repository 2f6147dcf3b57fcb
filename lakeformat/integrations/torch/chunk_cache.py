"""A worker's cache of fetched chunks: each fetched once while some admitted task needs it,
fetched ahead of the tasks in the fetch threads, read or decompressed into reused buffers (or
buffers shared with the main process, that batches can be views of)."""
from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.core.chunk import Chunk
from lakeformat.core.checksums import FolderChecksums, check_chunk_key
from lakeformat.errors import CorruptDataError, KeyNotFoundInStorageError
from lakeformat.storage import StorageProvider
from lakeformat.integrations.torch.blocks import BLOCKED, BlockedChunk, fetch_blocked
from lakeformat.integrations.torch.buffers import BufferPool


class _Fetch(Future[Any]):
    """One chunk's fetch; its result is the parsed chunk (a `Chunk`, or a `BlockedChunk` read
    in blocks)."""

    size = 0  # bytes the chunk holds in memory, once fetched
    nbytes = 0  # of those, what the first task to use it has not counted yet


class ChunkCache:
    """Parsed, decompressed chunks shared by the tasks of one worker. A chunk is fetched once
    while some admitted task needs it (reference counts) and dropped when none does, except
    the few most recently released ones (a small tensor's one chunk serves many tasks)."""

    LARGE = 4 << 20  # of released chunks larger than this, only the last one is kept
    SHARED_MIN = 1 << 20  # chunks this large go into buffers shared with the main process

    def __init__(self, storage: StorageProvider, keep_recent: int = 4, chunk_buffer: Optional[Callable[[int], Optional[np.ndarray]]] = None,
                 checksums: Optional[FolderChecksums] = None):
        self.storage = storage
        self.lock = threading.Lock()
        self.entries: Dict[str, _Fetch] = {}
        self.refs: Dict[str, int] = {}
        self.recent: List[str] = []
        self.keep_recent = keep_recent
        self.pool: Optional[Executor] = None  # the fetch pool, once a prefetch has named it
        self.buffers = BufferPool()
        self.chunk_buffer = chunk_buffer  # buffers shared with the main process, for chunk data
        self.first_local: Dict[str, int] = {}  # chunk read in blocks -> the sample wanted first
        # side files of the folders chunks come from: a copy of the tables the parent read,
        # so that a folder it did not know is read once here and not shared across workers
        self.checksums = FolderChecksums()
        if checksums is not None:
            self.checksums.tables.update(checksums.tables)

    def acquire(self, keys: Sequence[str]) -> List[str]:
        """Count one more user of each key; return those neither cached nor being fetched."""
        new = []
        with self.lock:
            for k in keys:
                n = self.refs.get(k, 0)
                if n == 0 and k not in self.entries:
                    new.append(k)
                self.refs[k] = n + 1
                if k in self.recent:
                    self.recent.remove(k)
        return new

    def release(self, keys: Sequence[str]) -> None:
        with self.lock:
            for k in keys:
                n = self.refs.get(k, 0) - 1
                if n > 0:
                    self.refs[k] = n
                    continue
                self.refs.pop(k, None)
                self.recent.append(k)
            # of the large chunks only the last released one stays: the tasks that still
            # want it come right after; the others' buffers go back to the pool for the next
            large = [k for k in self.recent if self._size(k) > self.LARGE]
            for old in large[:-1]:
                self.recent.remove(old)
                self._drop(old)
            while len(self.recent) > self.keep_recent:
                self._drop(self.recent.pop(0))

    def _size(self, key: str) -> int:
        f = self.entries.get(key)
        return f.size if f is not None else 0

    def _drop(self, key: str) -> None:
        if key not in self.refs:
            self.entries.pop(key, None)

    def prefetch(self, wanted: Dict[str, Optional[str]], pool: Executor, first_local: Optional[Dict[str, int]] = None) -> None:
        """Start fetching the chunks of {key: fetch mode} that are neither cached nor being
        fetched: whole chunks as one batched storage call in `pool`, chunks read in blocks
        (`BLOCKED`) one call each (so that fetching runs ahead of the tasks that use them).
        `first_local`: for chunks read in blocks, the first sample the asking task wants."""
        self.pool = pool
        mine: Dict[str, _Fetch] = {}
        with self.lock:
            for k in wanted:
                if k not in self.entries:
                    f = _Fetch()
                    self.entries[k] = f
                    mine[k] = f
                    if first_local and k in first_local:  # read when its fill starts
                        self.first_local[k] = first_local[k]
        try:
            self._fetch(mine, wanted, pool.submit)
        except RuntimeError as e:  # the pool is shut down: the epoch stopped
            for f in mine.values():
                _settle_future(f, exc=e)

    def close(self) -> None:
        """Fail every fetch still pending: once the pools are shut down their queued fills
        never run, and a task waiting on one would wait forever (and hold up the
        interpreter's exit, which joins pool threads)."""
        with self.lock:
            pending = [f for f in self.entries.values() if not f.done()]
            self.entries.clear()
            self.refs.clear()
            self.recent.clear()
        for f in pending:
            _settle_future(f, exc=CancelledError("the epoch stopped before this chunk was fetched"))

    def _fetch(self, mine: Dict[str, _Fetch], wanted: Dict[str, Optional[str]], run: Callable[..., Any]) -> None:
        """Fill the futures `mine`: whole chunks with one batched call, chunks read in blocks
        one call each, each call through `run(fn, *args)` (a pool's submit, or in line)."""
        whole = {k: f for k, f in mine.items() if wanted[k] != BLOCKED}
        if whole:
            run(self._fill, whole, {k: wanted[k] for k in whole})
        for k, f in mine.items():
            if wanted[k] == BLOCKED:
                run(self._fill_blocked, k, f)

    def _fill_blocked(self, key: str, f: _Fetch) -> None:
        def make() -> Tuple[Any, int]:
            c = fetch_blocked(self.storage, key, self.pool, self.first_local.pop(key, None))
            return c, (c.nbytes if isinstance(c, BlockedChunk) else len(c.data) + c.header_nbytes)

        self._settle(key, f, make)

    def _fill(self, mine: Dict[str, _Fetch], wanted: Dict[str, Optional[str]]) -> None:
        """Fetch and parse whole chunks: on a local disk read into reused buffers, one after
        the other; elsewhere with one batched storage call."""
        if getattr(self.storage, "reads_into_cheaply", False):
            for k, f in mine.items():
                def read(k: str = k) -> Tuple[Chunk, int]:
                    return self._read_local(k, wanted[k])

                self._settle(k, f, read)
            return
        try:
            got = self.storage.get_many(list(mine))
        except BaseException as e:  # noqa: BLE001 - handed to every task that wants them
            e = _as_damage(e, None)
            with self.lock:
                for k, f in mine.items():
                    if self.entries.get(k) is f:
                        self.entries.pop(k)
            for f in mine.values():
                _settle_future(f, exc=e)
            return
        for k, f in mine.items():
            def parse(k: str = k) -> Tuple[Chunk, int]:  # got[k] inside: a missing key fails this chunk only
                return self._parse(got[k], wanted[k], k)

            self._settle(k, f, parse)

    def _settle(self, key: str, f: _Fetch, make: Callable[[], Tuple[Any, int]]) -> None:
        try:
            c, nbytes = make()
            f.nbytes = f.size = nbytes
            _settle_future(f, result=c)
        except BaseException as e:  # noqa: BLE001 - handed to every task that wants it
            with self.lock:
                if self.entries.get(key) is f:
                    self.entries.pop(key)
            _settle_future(f, exc=_as_damage(e, key))

    def _data_buffer(self, nbytes: int) -> np.ndarray:
        """A buffer for a chunk's (decompressed) data: a shared one when there is one free and
        the chunk is large (a small chunk gains nothing from being a batch's memory)."""
        buf = self.chunk_buffer(nbytes) if self.chunk_buffer is not None and nbytes >= self.SHARED_MIN else None
        return buf if buf is not None else self.buffers.get(nbytes)

    def _read_local(self, key: str, compression: Optional[str]) -> Tuple[Chunk, int]:
        size = self.storage.size(key)
        raw = self.buffers.get(size) if compression else self._data_buffer(size)
        self.storage.read_into(key, 0, raw)
        return self._parse(raw, compression, key)

    def _parse(self, raw: Any, compression: Optional[str], key: str) -> Tuple[Chunk, int]:
        """A parsed chunk, decompressed here (GIL released) into a reused buffer, and the
        bytes it holds."""
        if compression:  # decompressed anyway: checked against its checksum first
            check_chunk_key(self.storage, key, raw, self.checksums)
        c = Chunk.parse(raw, compression, key)
        if not compression:
            return c, len(raw)
        c.decompress_into(self._data_buffer)
        return c, len(raw) + len(c.data)

    def get(self, wanted: Dict[str, Optional[str]]) -> Tuple[Dict[str, Chunk], int]:
        """Parsed chunks for {key: fetch mode}; fetches the missing ones here. Returns
        (chunks, bytes newly fetched and decompressed)."""
        mine: Dict[str, _Fetch] = {}
        futures: Dict[str, _Fetch] = {}
        with self.lock:
            for k in wanted:
                f = self.entries.get(k)
                if f is None:
                    f = _Fetch()
                    self.entries[k] = f
                    mine[k] = f
                futures[k] = f
        self._fetch(mine, wanted, lambda fn, *args: fn(*args))
        out: Dict[str, Chunk] = {}
        nbytes = 0
        for k, f in futures.items():
            out[k] = f.result()
            with self.lock:  # the first task to use a chunk carries its bytes
                nbytes += f.nbytes
                f.nbytes = 0
        return out, nbytes


def _as_damage(e: BaseException, key: Optional[str]) -> BaseException:
    """A chunk the index points at that storage lacks is damage, as on the dataset's own reads:
    a `CorruptDataError` naming its key (the sample's error then names both)."""
    if isinstance(e, KeyNotFoundInStorageError):
        missing = str(e.args[0]) if e.args else key
        err = CorruptDataError("chunk missing from storage", missing)
        err.__cause__ = e
        return err
    return e


def _settle_future(f: Future[Any], result: Any = None, exc: Optional[BaseException] = None) -> None:
    """Set a fetch's outcome unless it has one already (`close` may have failed it first)."""
    try:
        if exc is not None:
            f.set_exception(exc)
        else:
            f.set_result(result)
    except InvalidStateError:
        pass
