"""The write loop without the CDK: JSON lines in, protocol messages (plain dicts) out.

Lines are parsed with orjson into dicts: records never become pydantic or dataclass objects,
and airbyte_cdk is imported only to report a failure. `run()` in `run.py` sends `write` here.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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


def run_write(config: DestinationConfig, catalog: Mapping[str, Any], lines: Iterable[bytes],
              emit: Callable[[dict[str, Any]], None], yield_each: bool = False) -> Iterable[None]:
    """The write loop: JSON lines in, states (and a final log) out through `emit`."""
    writer = SyncWriter(config, catalog, emit)
    loads = orjson.loads
    record = writer.record
    ok = False
    try:
        lineno = 0
        for line in lines:
            lineno += 1
            try:
                msg = loads(line)
                mtype = msg["type"]
            except (orjson.JSONDecodeError, TypeError, KeyError) as e:
                if not line.strip():
                    continue  # blank lines are no messages
                raise traced(f"Input line {lineno} is not an Airbyte message.", SYSTEM,
                             f"line {lineno}: {e}: {bytes(line[:200])!r}") from e
            if mtype == "RECORD":
                try:
                    record(msg["record"], len(line))
                except (KeyError, TypeError) as e:
                    raise traced(f"Input line {lineno} is a malformed RECORD message.", SYSTEM, f"line {lineno}: {e!r}") from e
            elif mtype == "STATE":
                writer.state(msg)
            if yield_each:
                yield None
        writer.finish()
        ok = True
        emit({"type": "LOG", "log": {"level": "INFO", "message": f"destination-deeplake: wrote {writer.records_total} records in {len(writer.sinks)} streams"}})
    finally:
        if not ok:
            writer.abort()
    yield None




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
