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
from connectors.destination_deeplake.errors import CONFIG, traced
from connectors.destination_deeplake.sink import StreamSink, stream_url

logger = logging.getLogger("airbyte.destination_deeplake")


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
            self.streams[(st.get("namespace") or None, st["name"])] = cs
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
    def record(self, rec: Mapping[str, Any], nbytes: int) -> None:
        key = (rec.get("namespace") or None, rec["stream"])
        buf = self.buffers.get(key)
        if buf is None:
            if key not in self.sinks:
                self.sink(key)
            buf = self.buffers[key] = []
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
        data = rec.get("data")
        rows.datas.append(data if type(data) is dict else {})
        rows.emitted.append(rec.get("emitted_at"))
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
            commits.append(s.finish(self.last_state.get(key) or self.last_global))
            s.close()
        return commits

    def abort(self) -> None:
        for s in self.sinks.values():
            s.close()


def _mode(value: Any) -> str:
    v = getattr(value, "value", value) or "append"
    return str(v)
