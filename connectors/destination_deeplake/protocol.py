"""The write loop without the CDK: JSON lines in, protocol messages (plain dicts) out.

RECORD lines that the native scanner fully understands become columns without a Python object
per record (`columnar.py`); every other line is parsed with orjson into a dict (records never
become pydantic or dataclass objects). airbyte_cdk is imported only to report a failure.
`run()` in `run.py` sends `write` here.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import orjson

from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.errors import CONFIG, SYSTEM, traced
from connectors.destination_deeplake.writer import SyncWriter


def emitter(out: BinaryIO) -> Callable[[dict[str, Any]], None]:
    def emit(msg: dict[str, Any]) -> None:
        out.write(orjson.dumps(msg) + b"\n")
        out.flush()

    return emit


def read_json(path: str, what: str) -> Any:
    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError) as e:
        raise traced(f"Cannot read the {what} file {path!r}: {e}", CONFIG) from e


BLOCK_BYTES = 1 << 20


def read_blocks(f: BinaryIO, size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The bytes of a binary stream in blocks of whole lines (the last one may lack its
    newline). `readinto1`/`read1` return what a pipe has, so a slow source is not waited on;
    `readinto1` fills one reused buffer (no fresh pages per read)."""
    readinto = getattr(f, "readinto1", None)
    if readinto is None:
        yield from _read1_blocks(f, size)
        return
    buf = bytearray(size)
    filled = 0
    while True:
        if filled == len(buf):  # a line longer than the buffer
            buf.extend(bytes(len(buf)))
        with memoryview(buf) as mv:
            got = readinto(mv[filled:])
            if not got:
                if filled:
                    yield bytes(mv[:filled])
                return
            start, filled = filled, filled + got
            cut = buf.rfind(b"\n", start, filled) + 1
            if cut == 0:
                continue
            block = bytes(mv[:cut])
        buf[: filled - cut] = buf[cut:filled]
        filled -= cut
        yield block


def _read1_blocks(f: BinaryIO, size: int) -> Iterator[bytes]:
    read = getattr(f, "read1", None) or f.read
    pending: list[bytes] = []
    while True:
        chunk = read(size)
        if not chunk:
            if pending:
                yield b"".join(pending)
            return
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            pending.append(chunk)
            continue
        if pending:
            pending.append(chunk[:cut])
            yield b"".join(pending)
            pending = []
        else:
            yield chunk if cut == len(chunk) else chunk[:cut]
        if cut < len(chunk):
            pending.append(chunk[cut:])


def run_write(config: DestinationConfig, catalog: Mapping[str, Any], lines: Iterable[bytes] | BinaryIO,
              emit: Callable[[dict[str, Any]], None], yield_each: bool = False, fast: bool = True) -> Iterable[None]:
    """The write loop: JSON lines in, states (and a final log) out through `emit`.

    `lines` is an iterable of lines, or a binary stream (it has `read`), read in blocks. The
    RECORD lines the native scanner fully understands go in as columns (`fast`, the default);
    every other line is parsed with orjson and goes through `SyncWriter.record`/`state`."""
    writer = SyncWriter(config, catalog, emit, fast=fast)
    items = not hasattr(lines, "read")
    blocks = lines if items else read_blocks(lines)  # type: ignore[arg-type]
    ok = False
    try:
        lineno = 0
        for block in blocks:
            end = len(block)
            if items:
                if not isinstance(block, (bytes, bytearray)):
                    block = bytes(block)
                if block.find(b"\n", 0, end - 1) >= 0:
                    # an item of an iterable of lines is one message, whatever it holds
                    lineno += 1
                    _one_message(writer, block, lineno)
                    if yield_each:
                        yield None
                    continue
            pos = 0
            while pos < end:
                if writer.scanning:
                    pos, taken = writer.scan(block, pos)
                    lineno += taken
                    if pos >= end:
                        break
                nl = block.find(b"\n", pos)
                stop = end if nl < 0 else nl + 1
                lineno += 1
                _one_message(writer, block[pos:stop], lineno)
                pos = stop
            if yield_each:
                yield None
        writer.finish()
        ok = True
        emit({"type": "LOG", "log": {"level": "INFO", "message": f"destination-deeplake: wrote {writer.records_total} records in {len(writer.sinks)} streams"}})
    finally:
        if not ok:
            writer.abort()
    yield None


def _one_message(writer: SyncWriter, line: bytes, lineno: int) -> None:
    """One line through the exact Python path."""
    try:
        msg = orjson.loads(line)
        mtype = msg["type"]
    except (orjson.JSONDecodeError, TypeError, KeyError) as e:
        if not line.strip():
            return  # blank lines are no messages
        raise traced(f"Input line {lineno} is not an Airbyte message.", SYSTEM,
                     f"line {lineno}: {e}: {bytes(line[:200])!r}") from e
    if mtype == "RECORD":
        try:
            writer.record(msg["record"], len(line))
        except (KeyError, TypeError) as e:
            raise traced(f"Input line {lineno} is a malformed RECORD message.", SYSTEM, f"line {lineno}: {e!r}") from e
    elif mtype == "STATE":
        writer.state(msg)


def trace_message(exc: BaseException, during: str) -> dict[str, Any]:
    """The TRACE message (a dict) reporting `exc` to the platform."""
    from airbyte_cdk.models import AirbyteMessageSerializer

    from connectors.destination_deeplake.errors import failure_from

    traced_exc = failure_from(exc, during)
    return AirbyteMessageSerializer.dump(traced_exc.as_airbyte_message())  # type: ignore[attr-defined]


def main_write(args: list) -> int:
    """`destination-deeplake write --config C --catalog K`, records on stdin; the exit code."""
    import argparse
    import logging
    import sys

    p = argparse.ArgumentParser(prog="destination-deeplake write")
    p.add_argument("--config", required=True)
    p.add_argument("--catalog", required=True)
    parsed = p.parse_args(args)
    out = sys.stdout.buffer
    emit = emitter(out)
    try:
        config = DestinationConfig.from_mapping(read_json(parsed.config, "config"))
        catalog = read_json(parsed.catalog, "catalog")
        for _ in run_write(config, catalog, sys.stdin.buffer, emit):
            pass
    except Exception as exc:
        logging.getLogger("airbyte.destination_deeplake").error("write failed: %s", exc, exc_info=exc)
        emit(trace_message(exc, "write"))
        return 1
    return 0
