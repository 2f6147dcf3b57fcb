"""`DestinationDeeplake`: the Airbyte protocol (spec, check, write) on the CDK's `Destination`.

The CLI's `write` goes through `protocol.run_write` (orjson lines in, plain dicts out); the
CDK's `write(config, catalog, input_messages)` is implemented too, for callers holding
`AirbyteMessage` objects, and goes through the same writer. stdout carries only protocol
messages; logs go to stderr.
"""
from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import orjson
from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
    ConnectorSpecification,
    Status,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.errors import failure_from, scrubbed_failure
from connectors.redaction import protect_logs, scrub, scrub_obj, url_secrets
from connectors.destination_deeplake.protocol import emitter, read_json, run_write

logger = logging.getLogger("airbyte.destination_deeplake")


def _load_spec() -> dict[str, Any]:
    return json.loads(resources.files("connectors.destination_deeplake").joinpath("spec.json").read_text())


class DestinationDeeplake(Destination):
    """Lands each synced stream as a versioned tensor dataset."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        """The spec as the CDK's dataclass, which has no field for some keys the platform reads
        (supportsRefreshes, supportsFileTransfer): those are in the SPEC message `run` emits."""
        import dataclasses

        known = {f.name for f in dataclasses.fields(ConnectorSpecification)}
        return ConnectorSpecification(**{k: v for k, v in _load_spec().items() if k in known})

    # ------------------------------------------------------------------------------ check
    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
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
        out: list[dict[str, Any]] = []
        lines = (orjson.dumps(AirbyteMessageSerializer.dump(m)) for m in input_messages)
        cfg = DestinationConfig.from_mapping(config)
        try:
            for _ in run_write(cfg, catalog, lines, out.append, yield_each=True):
                for m in out:
                    yield AirbyteMessageSerializer.load(m)
                out.clear()
        except Exception as exc:
            if not cfg.secrets:
                raise
            raise scrubbed_failure(exc, "write", cfg.secrets) from None  # the CDK reports it as it is
        for m in out:
            yield AirbyteMessageSerializer.load(m)

    # ------------------------------------------------------------------------------ CLI
    def run(self, args: list[str]) -> None:
        """spec | check --config C | write --config C --catalog K (records on stdin)."""
        parsed = self.parse_args(args)
        out = sys.stdout.buffer
        emit = emitter(out)
        secrets: list[str] = []
        try:
            if parsed.command == "spec":
                emit({"type": "SPEC", "spec": _load_spec()})
            elif parsed.command == "check":
                config = read_json(parsed.config, "config")
                secrets = _raw_secrets(config)
                protect_logs(secrets)
                status = self.check(logger, config)
                emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": status.status.value, "message": status.message}})
            elif parsed.command == "write":
                config = DestinationConfig.from_mapping(read_json(parsed.config, "config"))
                secrets = config.secrets
                protect_logs(secrets)
                catalog = read_json(parsed.catalog, "catalog")
                for _ in run_write(config, catalog, sys.stdin.buffer, emit):
                    pass
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            traced = failure_from(exc, parsed.command)
            logger.error("%s", traced.message, exc_info=exc)
            emit(scrub_obj(orjson.loads(orjson.dumps(AirbyteMessageSerializer.dump(traced.as_airbyte_message()))), secrets))
            out.flush()
            sys.exit(1)
        out.flush()


def _raw_secrets(config: Any) -> list[str]:
    """The secrets of a config that may not parse (check reports a bad config as a status)."""
    from connectors.redaction import option_secrets

    if not isinstance(config, Mapping):
        return []
    path = config.get("path")
    return (url_secrets(path) if isinstance(path, str) else []) + option_secrets(config.get("storage_options"))


def check_storage(cfg: DestinationConfig) -> dict[str, Any]:
    """Write, read back and delete a probe object under `path`: {status, message}. The
    message names the path with its credentials redacted, and masks them wherever a
    backend's error quoted them."""
    res = _check_storage(cfg)
    return {**res, "message": scrub(res["message"].replace(repr(cfg.path), repr(cfg.shown_path)), cfg.secrets)}


def _check_storage(cfg: DestinationConfig) -> dict[str, Any]:
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
        if "file" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)):
            fs.makedirs(root, exist_ok=True)  # object stores: no folders, and no bucket is ever created here
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
