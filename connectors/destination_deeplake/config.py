"""The destination's configuration: a frozen value parsed from the spec's JSON object.

Every field is data. Nothing in a config is ever evaluated as code (the 2022 connector ran
`eval()` on a config string); an unknown or malformed value is a config error.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.destination_deeplake.errors import CONFIG, traced

DEFAULT_FLUSH_RECORDS = 50_000
DEFAULT_FLUSH_MB = 64.0
DEFAULT_FLUSH_SECONDS = 60.0
DEFAULT_CHUNK_COMPRESSION = "lz4"
DEFAULT_MAX_FILE_MB = 1024.0
NON_IMAGE_FILES = ("binary", "link")

_HTYPE_OPTIONS = ("htype", "dtype", "sample_compression", "chunk_compression")


def config_error(message: str) -> Exception:
    return traced(message, CONFIG)


def _none_if_none(value: str | None) -> str | None:
    return None if value in (None, "", "none", "None") else value


@dataclass(frozen=True)
class TensorOverride:
    """How one field's tensor is created instead of the default mapping."""

    htype: str | None = None
    dtype: str | None = None
    sample_compression: str | None = None
    chunk_compression: str | None = None


@dataclass(frozen=True)
class LinkField:
    """A field of URL strings stored as links (`link[image]`...) through a creds key."""

    htype: str = "link[image]"
    creds_key: str | None = None


StreamKey = tuple[str | None, str]  # (namespace, stream name)


@dataclass(frozen=True)
class DestinationConfig:
    path: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    flush_every_records: int = DEFAULT_FLUSH_RECORDS
    flush_every_mb: float = DEFAULT_FLUSH_MB
    flush_every_seconds: float = DEFAULT_FLUSH_SECONDS
    chunk_compression: str | None = DEFAULT_CHUNK_COMPRESSION
    tensor_overrides: dict[StreamKey, dict[str, TensorOverride]] = field(default_factory=dict)
    link_fields: dict[StreamKey, dict[str, LinkField]] = field(default_factory=dict)
    # files of file-based sources (records with a `file_reference`): see files.py
    non_image_files: str = "binary"
    max_file_mb: float = DEFAULT_MAX_FILE_MB

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def shown_path(self) -> str:
        """`path` as messages may show it: its credentials redacted."""
        from connectors.redaction import redact_url

        return redact_url(self.path)

    @property
    def secrets(self) -> list[str]:
        """Secret values of this config (the path URL's password and secret query values,
        secret-named storage options): masked in every message, TRACE and log line."""
        from connectors.redaction import option_secrets, url_secrets

        return url_secrets(self.path) + option_secrets(self.storage_options)

    @property
    def creds(self) -> dict[str, Any] | None:
        return dict(self.storage_options) or None

    def overrides_for(self, key: StreamKey) -> dict[str, TensorOverride]:
        return {**self.tensor_overrides.get((None, key[1]), {}), **self.tensor_overrides.get(key, {})}

    def links_for(self, key: StreamKey) -> dict[str, LinkField]:
        return {**self.link_fields.get((None, key[1]), {}), **self.link_fields.get(key, {})}

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> DestinationConfig:
        """Parse and check a config object; raise a config-error AirbyteTracedException."""
        if not isinstance(raw, Mapping):
            raise config_error("The config must be a JSON object.")
        path = raw.get("path")
        if not isinstance(path, str) or not path.strip():
            raise config_error("`path` must be a non-empty string: a local folder or an fsspec URL.")
        opts = raw.get("storage_options") or {}
        if not isinstance(opts, Mapping):
            raise config_error("`storage_options` must be a JSON object of plain values.")

        def positive(name: str, default: float, kind: type) -> Any:
            value = raw.get(name, default)
            if value is None:
                value = default
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise config_error(f"`{name}` must be a positive number, got {value!r}.")
            return kind(value)

        cc = _none_if_none(raw.get("chunk_compression", DEFAULT_CHUNK_COMPRESSION))
        if cc not in (None, "lz4", "zstd"):
            raise config_error(f"`chunk_compression` must be none, lz4 or zstd, got {cc!r}.")
        overrides: dict[StreamKey, dict[str, TensorOverride]] = {}
        for item in raw.get("tensor_overrides") or []:
            key, fname = _stream_field(item, "tensor_overrides")
            unknown = set(item) - {"stream", "namespace", "field", *_HTYPE_OPTIONS}
            if unknown:
                raise config_error(f"`tensor_overrides` entry for {fname!r}: unknown keys {sorted(unknown)}.")
            ov = TensorOverride(**{k: _none_if_none(item.get(k)) for k in _HTYPE_OPTIONS})
            if ov.htype is not None:
                _check_htype(ov.htype, f"tensor_overrides {key[1]}.{fname}")
            overrides.setdefault(key, {})[fname] = ov
        from lakeformat.htypes import is_link_htype  # on first use, as _check_htype imports it

        links: dict[StreamKey, dict[str, LinkField]] = {}
        for item in raw.get("link_fields") or []:
            key, fname = _stream_field(item, "link_fields")
            htype = item.get("htype") or "link[image]"
            if not (isinstance(htype, str) and is_link_htype(htype) and htype.endswith("]")):
                raise config_error(f"`link_fields` {key[1]}.{fname}: htype must be link[...], got {htype!r}.")
            _check_htype(htype, f"link_fields {key[1]}.{fname}")
            links.setdefault(key, {})[fname] = LinkField(htype=htype, creds_key=item.get("creds_key") or None)
        non_image = raw.get("non_image_files") or "binary"
        if non_image not in NON_IMAGE_FILES:
            raise config_error(f"`non_image_files` must be binary or link, got {non_image!r}.")
        return cls(
            path=path.strip(),
            storage_options=dict(opts),
            flush_every_records=positive("flush_every_records", DEFAULT_FLUSH_RECORDS, int),
            flush_every_mb=positive("flush_every_mb", DEFAULT_FLUSH_MB, float),
            flush_every_seconds=positive("flush_every_seconds", DEFAULT_FLUSH_SECONDS, float),
            chunk_compression=cc,
            tensor_overrides=overrides,
            link_fields=links,
            non_image_files=non_image,
            max_file_mb=positive("max_file_mb", DEFAULT_MAX_FILE_MB, float),
        )


def _stream_field(item: Any, where: str) -> tuple[StreamKey, str]:
    if not isinstance(item, Mapping) or not isinstance(item.get("stream"), str) or not isinstance(item.get("field"), str):
        raise config_error(f"each `{where}` entry needs string `stream` and `field`, got {item!r}.")
    return (item.get("namespace") or None, item["stream"]), item["field"]


def _check_htype(htype: str, where: str) -> None:
    from lakeformat.errors import HtypeError
    from lakeformat.htypes import parse_htype

    try:
        parse_htype(htype)
    except HtypeError as e:
        raise config_error(f"{where}: {e}") from None
