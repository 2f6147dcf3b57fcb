"""`SyncWriter`: Airbyte messages (as plain dicts) in, acknowledged STATE messages out.

Records are buffered per stream and written in batches (one `ds.extend` per stream per flush).
The buffers are bounded by the config's `flush_every_records`, `flush_every_mb` and
`flush_every_seconds` over all streams, whatever the gap between states. A STATE is held until
every record before it is flushed to storage, then emitted with
`destinationStats.recordCount`; when no record waits, it goes out at once.

Records arrive two ways: `record()` takes one parsed message (the exact Python path), and
`scan()` lets the native scanner (`columnar.RecordScanner`) take the RECORD lines of a block it
fully understands as columns. A stream's buffer is the list of both kinds of batches in
arrival order; the bounds, counts and states treat both alike.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from connectors.destination_deeplake.columnar import PYTHON_RUN, ColumnBatch, RecordScanner, RowBatch
from connectors.destination_deeplake.config import DestinationConfig, StreamKey
from connectors.destination_deeplake.errors import CONFIG, StagedFileError, traced
from connectors.destination_deeplake.files import stage_file
from connectors.destination_deeplake.sink import StreamSink, stream_url

logger = logging.getLogger("airbyte.destination_deeplake")


FILE_REFERENCE_KEY = b'"file_reference"'


def _descriptor_key(desc: Mapping[str, Any]) -> StreamKey:
    return (desc.get("namespace") or None, desc["name"])


class SyncWriter:
    """One sync: a configured catalog (dict form), a config and where to emit messages."""

    def __init__(self, config: DestinationConfig, catalog: Mapping[str, Any], emit: Callable[[dict[str, Any]], None],
                 fast: bool = True):
        self.config = config
        self.emit = emit
        self.streams: dict[StreamKey, dict[str, Any]] = {}
        for cs in catalog.get("streams") or []:
            st = cs["stream"]
            if not isinstance(st.get("name"), str) or not st["name"].strip():
                # an empty name would land the stream's dataset at the destination root
                raise traced(f"A configured stream has an empty name (namespace {st.get('namespace')!r}): "
                             "every stream needs a name, its dataset's folder.", CONFIG)
            self.streams[(st.get("namespace") or None, st["name"])] = cs
        self.complete: set[StreamKey] = set()  # streams the source reported COMPLETE
        self.sinks: dict[StreamKey, StreamSink] = {}
        self.buffers: dict[StreamKey, list[RowBatch | ColumnBatch]] = {}
        self.scanner: RecordScanner | None = RecordScanner() if fast else None
        self.buffered_records = 0
        self.buffered_bytes = 0
        self.buffer_started: float | None = None
        self.max_records = config.flush_every_records
        self.max_bytes = int(config.flush_every_mb * 1024 * 1024)
        self.max_seconds = config.flush_every_seconds
        self.pending_states: list[dict[str, Any]] = []
        self.totals: dict[StreamKey, int] = {}  # records received per stream
        self.at_state: dict[StreamKey, int] = {}  # ... when its last state came
        self.at_global = 0
        self.last_state: dict[StreamKey, dict[str, Any]] = {}
        self.last_global: dict[str, Any] | None = None
        self.records_total = 0
        self._fref_block: bytes | None = None  # the block last searched for a file_reference ...
        self._fref_at = 0  # ... and where the first one at or after the search start is

    # ------------------------------------------------------------------------------ sinks
    def sink(self, key: StreamKey) -> StreamSink:
        s = self.sinks.get(key)
        if s is None:
            cs = self.streams.get(key)
            if cs is None:
                name = f"{key[0]}.{key[1]}" if key[0] else key[1]
                raise traced(f"Received a record for stream {name!r}, which is not in the configured catalog.", CONFIG,
                             f"stream {key} not in catalog {sorted(map(str, self.streams))}")
            st = cs["stream"]
            s = StreamSink(
                stream_url(self.config.path, key[0], key[1]), self.config.creds,
                stream_name=key[1], namespace=key[0], json_schema=st.get("json_schema") or {},
                sync_mode=_mode(cs.get("destination_sync_mode")),
                primary_key=cs.get("primary_key") or st.get("source_defined_primary_key") or [],
                cursor_field=cs.get("cursor_field") or st.get("default_cursor_field") or [],
                generation_id=cs.get("generation_id") or 0, minimum_generation_id=cs.get("minimum_generation_id") or 0,
                sync_id=cs.get("sync_id"), chunk_compression=self.config.chunk_compression,
                overrides=self.config.overrides_for(key), links=self.config.links_for(key),
                non_image_files=self.config.non_image_files,
                include_files=bool(cs.get("include_files")) and bool(st.get("is_file_based", True)),
            )
            s.open()
            self.sinks[key] = s
            if self.scanner is not None:
                self.scanner.register(key, s.fields)
        return s

    def open_all(self) -> None:
        for key in self.streams:
            self.sink(key)

    # ------------------------------------------------------------------------------ messages
    def record(self, rec: Mapping[str, Any], nbytes: int, lineno: int | None = None) -> None:
        """One RECORD (the `record` object); `lineno`, its input line, is named by errors."""
        key = (rec.get("namespace") or None, rec["stream"])
        buf = self.buffers.get(key)
        if buf is None:
            if key not in self.sinks:
                self.sink(key)
            buf = self.buffers[key] = []
        staged = None
        fref = rec.get("file_reference")
        if fref is not None:
            try:
                staged = stage_file(fref, stream=self.sinks[key].label, line=lineno,
                                    non_image_files=self.config.non_image_files, max_bytes=self.config.max_file_bytes)
            except StagedFileError:
                # the records before this one are written and their states acknowledged:
                # a retry loses nothing and redoes only what follows
                self.flush()
                raise
            nbytes += staged.memory_bytes  # the file's bytes wait in memory with its record
        scanner = self.scanner
        if scanner is not None and key in scanner.index:
            self._count_scanned()
            if scanner.rows(key):
                # the records the scanner took before this one go first; the stream's next
                # records take this path too for a while (no run of tiny batches)
                buf.append(scanner.take(key))
                scanner.enable(key, False)
        rows = buf[-1] if buf and type(buf[-1]) is RowBatch else None
        if rows is None:
            rows = RowBatch()
            buf.append(rows)
        rows.datas.append(rec["data"])  # a dict: protocol.py refuses any other data
        rows.emitted.append(rec.get("emitted_at"))
        if staged is not None or rows.files is not None:
            if rows.files is None:
                rows.files = [None] * (len(rows.datas) - 1)
            rows.files.append(staged)
        if scanner is not None and len(rows.datas) == PYTHON_RUN and key in scanner.index:
            scanner.enable(key, True)
        self.totals[key] = self.totals.get(key, 0) + 1
        self.buffered_records += 1
        self.buffered_bytes += nbytes
        if self.buffered_records >= self.max_records or self.buffered_bytes >= self.max_bytes:
            self.flush()
        elif (self.buffered_records & 1023) == 1:
            if self.buffer_started is None:
                self.buffer_started = time.monotonic()
            elif time.monotonic() - self.buffer_started >= self.max_seconds:
                self.flush()

    @property
    def scanning(self) -> bool:
        """Whether `scan` can take any line now (some stream has the fast path on)."""
        return self.scanner is not None and self.scanner.active

    def scan(self, block: bytes, pos: int) -> tuple[int, int]:
        """Take the RECORD lines from `pos` that the native scanner fully understands, within
        the flush bounds (flushing when one is reached): (position of the first line left to
        `record`/`state`, or the end; lines taken)."""
        scanner = self.scanner
        assert scanner is not None
        scan = scanner.native.scan
        taken = 0
        # the native scanner skips keys of a record it does not know: a line with a
        # `file_reference` goes to the Python path, which lands the file
        stop = self._file_line_start(block, pos)
        if stop is not None:
            if stop <= pos:
                return pos, 0
            block = block[:stop]
        end = len(block)
        while True:
            pos, n, nbytes, reason = scan(block, pos, max(1, self.max_records - self.buffered_records),
                                          max(1, self.max_bytes - self.buffered_bytes))
            if n:
                taken += n
                self.buffered_records += n
                self.buffered_bytes += nbytes
                if self.buffered_records >= self.max_records or self.buffered_bytes >= self.max_bytes:
                    self.flush()
                elif self.buffer_started is None:
                    self.buffer_started = time.monotonic()
                elif time.monotonic() - self.buffer_started >= self.max_seconds:
                    self.flush()
            if reason != RecordScanner.LIMIT or pos >= end or not scanner.active:
                return pos, taken

    def _file_line_start(self, block: bytes, pos: int) -> int | None:
        """Where the first line at or after `pos` that holds a `file_reference` key starts;
        None when none does. The search is kept per block, so a block is searched once."""
        if self._fref_block is not block or self._fref_at < pos:
            at = block.find(FILE_REFERENCE_KEY, pos)
            self._fref_block, self._fref_at = block, at if at >= 0 else len(block)
        at = self._fref_at
        if at >= len(block):
            return None
        return max(pos, block.rfind(b"\n", pos, at) + 1)

    def _count_scanned(self) -> None:
        if self.scanner is not None:
            for key, n in self.scanner.uncounted():
                self.totals[key] = self.totals.get(key, 0) + n

    def state(self, msg: dict[str, Any]) -> None:
        """A STATE message (the whole message dict): count, then hold or emit it."""
        self._count_scanned()
        st = msg.get("state") or {}
        stype = st.get("type")
        if stype == "STREAM":
            key = _descriptor_key(st["stream"]["stream_descriptor"])
            total = self.totals.get(key, 0)
            count = total - self.at_state.get(key, 0)
            self.at_state[key] = total
            self.last_state[key] = st
        else:  # GLOBAL or LEGACY: covers every stream
            total = sum(self.totals.values())
            count = total - self.at_global
            self.at_global = total
            self.at_state = dict(self.totals)
            self.last_global = st
        st["destinationStats"] = {"recordCount": float(count)}
        self.pending_states.append(msg)
        if self.buffered_records == 0:
            self._emit_states()
        elif self.buffer_started is not None and time.monotonic() - self.buffer_started >= self.max_seconds:
            self.flush()

    def trace(self, msg: dict[str, Any]) -> None:
        """A TRACE message: a STREAM_STATUS COMPLETE marks its stream as fully read, which a
        truncating sync needs before it replaces the previous data."""
        tr = msg.get("trace") or {}
        if tr.get("type") != "STREAM_STATUS":
            return
        status = tr.get("stream_status") or {}
        desc = status.get("stream_descriptor") or {}
        if status.get("status") == "COMPLETE" and isinstance(desc.get("name"), str):
            self.complete.add(_descriptor_key(desc))

    def _emit_states(self) -> None:
        for msg in self.pending_states:
            self.emit(msg)
        self.pending_states.clear()

    def flush(self) -> None:
        """Write every buffered record, make it durable, then emit the states it covers."""
        scanner = self.scanner
        if scanner is not None:
            self._count_scanned()
            for key in scanner.index:
                if scanner.rows(key):
                    self.buffers.setdefault(key, []).append(scanner.take(key))
        for key, batches in self.buffers.items():
            if batches:
                self.sinks[key].write_batches(batches)
        for key in self.buffers:
            self.sinks[key].flush()
        self.records_total += self.buffered_records
        self.buffers = {}
        self.buffered_records = self.buffered_bytes = 0
        self.buffer_started = None
        if scanner is not None:
            for key in scanner.index:  # writes may have made or widened fields
                scanner.respec(key, self.sinks[key].fields)
        self._emit_states()

    def finish(self) -> list[str]:
        """End of input: flush, emit the held states, then end each stream (one commit each)."""
        self.flush()
        self.open_all()  # a stream that sent no record is still overwritten / committed
        commits = []
        for key, s in self.sinks.items():
            commits.append(s.finish(self.last_state.get(key) or self.last_global, complete=key in self.complete))
            for level, text in s.notices:
                self.emit({"type": "LOG", "log": {"level": level, "message": text}})
            s.close()
        return commits

    def abort(self) -> None:
        for s in self.sinks.values():
            s.close()


def _mode(value: Any) -> str:
    v = getattr(value, "value", value) or "append"
    return str(v)
