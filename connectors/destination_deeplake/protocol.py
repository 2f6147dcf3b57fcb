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
    """One line through the exact Python path. Errors name the line and the cause, never the
    line's content (a record may hold personal data; the platform stores failure messages)."""
    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        if not line.strip():
            return  # blank lines are no messages
        cause = parse_failure_cause(bytes(line), e)
        raise traced(f"Input line {lineno} is not an Airbyte message: {cause}.", SYSTEM, f"line {lineno}: {cause}") from None
    mtype = msg.get("type") if type(msg) is dict else None
    if mtype is None:
        raise traced(f"Input line {lineno} is not an Airbyte message: it is not a JSON object with a `type`.", SYSTEM,
                     f"line {lineno}: a JSON {type(msg).__name__} without `type`")
    if mtype == "RECORD":
        rec = msg.get("record")
        if type(rec) is not dict or not isinstance(rec.get("stream"), str):
            raise traced(f"Input line {lineno} is a malformed RECORD message: no `record` object with a string `stream`.",
                         SYSTEM, f"line {lineno}: record is a {type(rec).__name__}")
        data = rec.get("data")
        if type(data) is not dict:
            # an all-null row with no change recorded would hide the loss: refuse it
            ns = rec.get("namespace")
            name = f"{ns}.{rec['stream']}" if ns else rec["stream"]
            raise traced(f"Input line {lineno}: the RECORD of stream {name!r} has `data` that is a JSON "
                         f"{_json_type(data)}, not an object.", SYSTEM, f"line {lineno}: stream {name!r}: data is {_json_type(data)}")
        writer.record(rec, len(line), lineno)
    elif mtype == "STATE":
        writer.state(msg)
    elif mtype == "TRACE":
        writer.trace(msg)


def _json_type(v: object) -> str:
    return {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(v), type(v).__name__)


MAX_DEPTH = 1024  # orjson's nesting limit


def parse_failure_cause(line: bytes, e: orjson.JSONDecodeError) -> str:
    """Why a line is not JSON, in words, with a byte offset and none of its content."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as u:
        # orjson reports encoding errors at offset 0; Python's decoder knows where
        return f"invalid UTF-8 at byte {u.start}"
    msg, pos = e.msg, e.pos
    if "depth limit" in msg or "recursion" in msg:
        return f"nesting deeper than {MAX_DEPTH} levels (at byte {pos})"
    if "surrogate" in msg:
        return f"a lone UTF-16 surrogate escape in a string (at byte {pos})"
    if "infinity" in msg:
        return f"a number out of the double range (at byte {pos})"
    rest = line[pos : pos + 9].lstrip(b"-")
    if rest.startswith((b"NaN", b"Infinity")):
        return f"NaN or Infinity, which JSON does not allow (at byte {pos})"
    return f"invalid JSON: {msg} (at byte {pos})"


def trace_message(exc: BaseException, during: str, secrets: list[str] | None = None) -> dict[str, Any]:
    """The TRACE message (a dict) reporting `exc` to the platform, with `secrets` masked in
    every string of it (message, internal message, stack trace)."""
    from airbyte_cdk.models import AirbyteMessageSerializer

    from connectors.destination_deeplake.errors import failure_from
    from connectors.redaction import scrub_obj

    traced_exc = failure_from(exc, during)
    msg = AirbyteMessageSerializer.dump(traced_exc.as_airbyte_message())  # type: ignore[attr-defined]
    return scrub_obj(msg, secrets or [])  # type: ignore[return-value]


def main_write(args: list) -> int:
    """`destination-deeplake write --config C --catalog K`, records on stdin; the exit code."""
    import argparse
    import logging
    import sys

    from connectors.redaction import protect_logs

    p = argparse.ArgumentParser(prog="destination-deeplake write")
    p.add_argument("--config", required=True)
    p.add_argument("--catalog", required=True)
    parsed = p.parse_args(args)
    out = sys.stdout.buffer
    emit = emitter(out)
    secrets: list[str] = []
    try:
        config = DestinationConfig.from_mapping(read_json(parsed.config, "config"))
        secrets = config.secrets
        protect_logs(secrets)  # stderr: a backend's error may quote the path URL
        catalog = read_json(parsed.catalog, "catalog")
        for _ in run_write(config, catalog, sys.stdin.buffer, emit):
            pass
    except Exception as exc:
        logging.getLogger("airbyte.destination_deeplake").error("write failed: %s", exc, exc_info=exc)
        emit(trace_message(exc, "write", secrets))
        return 1
    return 0
