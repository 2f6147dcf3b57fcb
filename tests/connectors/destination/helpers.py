"""Messages and catalogs for the destination tests: plain dicts, as a source emits them."""
from __future__ import annotations

from typing import Any

import orjson

from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.destination import run_write


def record(stream: str, data: dict[str, Any], emitted_at: int = 1_700_000_000_000, namespace: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"stream": stream, "data": data, "emitted_at": emitted_at}
    if namespace:
        rec["namespace"] = namespace
    return {"type": "RECORD", "record": rec}


def state(stream: str, value: Any, namespace: str | None = None) -> dict[str, Any]:
    desc: dict[str, Any] = {"name": stream}
    if namespace:
        desc["namespace"] = namespace
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": desc, "stream_state": value}}}


def complete(stream: str, namespace: str | None = None, status: str = "COMPLETE") -> dict[str, Any]:
    """The TRACE a source (CDK) sends when it has read a stream to its end."""
    desc: dict[str, Any] = {"name": stream}
    if namespace:
        desc["namespace"] = namespace
    return {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": 1_700_000_000_000.0,
                                       "stream_status": {"stream_descriptor": desc, "status": status}}}


def stream(name: str, properties: dict[str, Any], mode: str = "append", pk=None, cursor=None, namespace=None,
           generation_id: int = 1, minimum_generation_id: int = 0, sync_id: int = 1) -> dict[str, Any]:
    st: dict[str, Any] = {"name": name, "json_schema": {"type": "object", "properties": properties},
                          "supported_sync_modes": ["full_refresh", "incremental"]}
    if namespace:
        st["namespace"] = namespace
    return {"stream": st, "sync_mode": "incremental", "destination_sync_mode": mode,
            "primary_key": pk or [], "cursor_field": cursor or [], "generation_id": generation_id,
            "minimum_generation_id": minimum_generation_id, "sync_id": sync_id}


def catalog(*streams: dict[str, Any]) -> dict[str, Any]:
    return {"streams": list(streams)}


def write(config: dict[str, Any], cat: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run a sync in-process; returns what the destination emitted."""
    out: list[dict[str, Any]] = []
    for _ in run_write(DestinationConfig.from_mapping(config), cat, (orjson.dumps(m) for m in messages), out.append):
        pass
    return out


def states_of(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in out if m["type"] == "STATE"]
