"""`DestinationDeeplake`: the Airbyte protocol (spec, check, write) over `SyncWriter`.

`write` reads stdin as bytes and parses each line with orjson into a plain dict: records never
become pydantic or dataclass objects (that alone would cap the speed far below 100k records/s).
The CDK's `write(config, catalog, input_messages)` is implemented too, for callers holding
`AirbyteMessage` objects, and goes through the same writer. stdout carries only protocol
messages; logs go to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from importlib import resources
from typing import Any, BinaryIO, Callable, Dict, Iterable, List, Mapping

import orjson
from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
    ConnectorSpecification,
    FailureType,
    Status,
    Type,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.writer import SyncWriter

logger = logging.getLogger("airbyte.destination_deeplake")


def _load_spec() -> Dict[str, Any]:
    return json.loads(resources.files("connectors.destination_deeplake").joinpath("spec.json").read_text())


def failure_from(exc: BaseException, during: str) -> AirbyteTracedException:
    """Any error -> an AirbyteTracedException with the failure type the platform acts on."""
    if isinstance(exc, AirbyteTracedException):
        return exc
    from lakeformat.errors import LakeFormatError, LockedError, ReadOnlyError

    if isinstance(exc, (PermissionError, LockedError, ReadOnlyError)):
        ft = FailureType.config_error
    elif isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        ft = FailureType.transient_error
    elif isinstance(exc, LakeFormatError):
        ft = FailureType.system_error
    else:
        ft = FailureType.system_error
    return AirbyteTracedException(
        message=f"Deep Lake destination failed during {during}: {type(exc).__name__}: {exc}",
        internal_message=repr(exc),
        failure_type=ft,
        exception=exc,
    )


class DestinationDeeplake(Destination):
    """Lands each synced stream as a versioned tensor dataset."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:  # noqa: ARG002 - CDK signature
        return ConnectorSpecification(**_load_spec())

    # ------------------------------------------------------------------------------ check
    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:  # noqa: ARG002
        """Parse the config, then write, read back and delete a probe object at `path`."""
        try:
            cfg = DestinationConfig.from_mapping(config)
        except AirbyteTracedException as e:
            return AirbyteConnectionStatus(status=Status.FAILED, message=f"Bad config: {e.message}")
        return AirbyteConnectionStatus(**check_storage(cfg))

    # ------------------------------------------------------------------------------ write
    def write(self, config: Mapping[str, Any], configured_catalog: ConfiguredAirbyteCatalog,
              input_messages: Iterable[AirbyteMessage]) -> Iterable[AirbyteMessage]:
        """The CDK entry point: AirbyteMessage objects in and out (same writer as the CLI)."""
        catalog = ConfiguredAirbyteCatalogSerializer.dump(configured_catalog)
        out: List[Dict[str, Any]] = []
        lines = (orjson.dumps(AirbyteMessageSerializer.dump(m)) for m in input_messages)
        for msg in run_write(DestinationConfig.from_mapping(config), catalog, lines, out.append, yield_each=True):
            for m in out:
                yield AirbyteMessageSerializer.load(m)
            out.clear()
        for m in out:
            yield AirbyteMessageSerializer.load(m)

    # ------------------------------------------------------------------------------ CLI
    def run(self, args: List[str]) -> None:
        """spec | check --config C | write --config C --catalog K (records on stdin)."""
        parsed = self.parse_args(args)
        out = sys.stdout.buffer
        emit = _emitter(out)
        try:
            if parsed.command == "spec":
                emit({"type": "SPEC", "spec": _load_spec()})
            elif parsed.command == "check":
                config = _read_json(parsed.config, "config")
                status = self.check(logger, config)
                emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": status.status.value, "message": status.message}})
            elif parsed.command == "write":
                config = DestinationConfig.from_mapping(_read_json(parsed.config, "config"))
                catalog = _read_json(parsed.catalog, "catalog")
                for _ in run_write(config, catalog, sys.stdin.buffer, emit):
                    pass
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a trace message
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            traced = failure_from(exc, parsed.command)
            logger.error("%s", traced.message, exc_info=exc)
            emit(orjson.loads(orjson.dumps(AirbyteMessageSerializer.dump(traced.as_airbyte_message()))))
            out.flush()
            sys.exit(1)
        out.flush()


def _emitter(out: BinaryIO) -> Callable[[Dict[str, Any]], None]:
    def emit(msg: Dict[str, Any]) -> None:
        out.write(orjson.dumps(msg) + b"\n")
        out.flush()

    return emit


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError) as e:
        raise AirbyteTracedException(message=f"Cannot read the {what} file {path!r}: {e}", failure_type=FailureType.config_error) from e


def run_write(config: DestinationConfig, catalog: Mapping[str, Any], lines: Iterable[bytes],
              emit: Callable[[Dict[str, Any]], None], yield_each: bool = False) -> Iterable[None]:
    """The write loop: JSON lines in, states (and a final log) out through `emit`."""
    writer = SyncWriter(config, catalog, emit)
    loads = orjson.loads
    record = writer.record
    ok = False
    try:
        for lineno, line in enumerate(lines, 1):
            if not line or line.isspace():
                continue
            try:
                msg = loads(line)
                mtype = msg["type"]
            except (orjson.JSONDecodeError, TypeError, KeyError) as e:
                raise AirbyteTracedException(
                    message=f"Input line {lineno} is not an Airbyte message.",
                    internal_message=f"line {lineno}: {e}: {bytes(line[:200])!r}",
                    failure_type=FailureType.system_error,
                ) from e
            if mtype == "RECORD":
                try:
                    record(msg["record"], len(line))
                except (KeyError, TypeError) as e:
                    raise AirbyteTracedException(
                        message=f"Input line {lineno} is a malformed RECORD message.",
                        internal_message=f"line {lineno}: {e!r}", failure_type=FailureType.system_error,
                    ) from e
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


def check_storage(cfg: DestinationConfig) -> Dict[str, Any]:
    """Write, read back and delete a probe object under `path`: {status, message}."""
    import fsspec

    probe = f".airbyte-check-{uuid.uuid4().hex}"
    try:
        fs, root = fsspec.core.url_to_fs(cfg.path, **cfg.storage_options)
    except (ImportError, ValueError, TypeError) as e:
        return {"status": Status.FAILED, "message": f"Cannot open path {cfg.path!r}: {type(e).__name__}: {e} (is the URL scheme right, and its fsspec package installed?)"}
    root = root.rstrip("/")
    key = f"{root}/{probe}" if root else probe
    try:
        if fs.exists(root) and not fs.isdir(root):
            return {"status": Status.FAILED, "message": f"Path {cfg.path!r} exists and is a file, not a folder."}
        try:
            fs.makedirs(root, exist_ok=True)
        except Exception:  # noqa: BLE001 - object stores have no folders; the write below decides
            pass
        fs.pipe_file(key, b"ok")
        if fs.cat_file(key) != b"ok":
            return {"status": Status.FAILED, "message": f"Wrote a probe object at {cfg.path!r} but read back different bytes."}
        fs.rm_file(key)
    except PermissionError as e:
        return {"status": Status.FAILED, "message": f"Bad credentials or no permission to write at {cfg.path!r}: {e}"}
    except FileNotFoundError as e:
        return {"status": Status.FAILED, "message": f"Unreachable path {cfg.path!r}: it (or its bucket) does not exist: {e}"}
    except Exception as e:  # noqa: BLE001 - each backend raises its own kinds
        text = f"{type(e).__name__}: {e}"
        low = text.lower()
        if any(w in low for w in ("credential", "access denied", "accessdenied", "forbidden", "403", "signature", "invalidaccesskey", "authoriz", "authentic")):
            return {"status": Status.FAILED, "message": f"Bad credentials for {cfg.path!r}: {text}"}
        return {"status": Status.FAILED, "message": f"Unreachable path {cfg.path!r}: {text}"}
    return {"status": Status.SUCCEEDED, "message": f"Wrote, read and deleted a probe object at {cfg.path!r}."}
