"""Run ``gcp-storage-emulator`` with a byte-exact parser for multipart uploads.

gcsfs frames a simple upload's parts with bare LFs (``...content\\n--==0==--``). The emulator
parses the body with the ``email`` package, which takes a content's last byte ``\\r`` as part of
a CRLF before the boundary and drops it: about one object in 256 (a chunk, a checksum side file)
came back a byte short, and a checksum caught it as corruption (a flaky concurrent-writer test on
GCS). This splits ``multipart/related`` bodies at their boundary, exactly, keeping every content
byte; every other request goes to the emulator's own code.

In memory, the emulator also serialized the metadata of every object it holds to JSON at each
write (a file only a restart on disk reads back): a cost that grew through a test session, on a
server that answers one request at a time. In memory that write is skipped. Usage is the
emulator's CLI:
``python gcs_emulator_main.py start -H 127.0.0.1 --port N --in-memory``.
"""
from __future__ import annotations

import base64
import json
import re
import sys
from typing import Any, Callable, Optional


def split_related(raw: bytes, content_type: str) -> Optional[dict]:
    """The metadata and content of a ``multipart/related`` upload body (the JSON part first,
    then the content), or None when the body is not of that shape."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if m is None:
        return None
    delim = b"--" + m.group(1).encode()
    first = raw.find(delim)
    last = raw.rfind(delim + b"--")
    if first < 0 or last <= first:
        return None
    # the line break the body uses (CRLF per RFC 2046, LF from gcsfs) frames every delimiter
    after = first + len(delim)
    eol = b"\r\n" if raw[after:after + 2] == b"\r\n" else b"\n"
    second = raw.find(eol + delim, after)
    if second < 0:
        return None
    meta_part = raw[after + len(eol):second]
    content_part = raw[second + len(eol) + len(delim) + len(eol):last]
    if not content_part.endswith(eol):
        return None
    content_part = content_part[: -len(eol)]
    meta_head, _, meta_body = meta_part.partition(eol + eol)
    head, sep, content = content_part.partition(eol + eol)
    if not sep:
        return None
    headers = {}
    for line in head.split(eol):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("content-transfer-encoding", "").lower() == "base64":
        content = base64.b64decode(content)
    return {"meta": json.loads(meta_body), "content": content,
            "content-type": headers.get("content-type", "application/octet-stream").split(";")[0].strip()}


def _patched(original: Callable[..., Any], server: Any) -> Callable[..., Any]:
    def read_data(request_handler: Any, query: Any) -> Any:
        content_type = request_handler.headers.get("Content-Type") or ""
        if not content_type.startswith("multipart/related"):
            return original(request_handler, query)
        raw = server._decode_raw_data(server._read_raw_data(request_handler), request_handler)
        if not raw:
            return None
        parsed = split_related(raw, content_type)
        if parsed is None:
            raise ValueError(f"a multipart/related upload body that does not parse ({len(raw)} bytes)")
        return parsed

    return read_data


def _config_writer(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def write_config(self: Any) -> None:
        if not self._use_memory_fs:
            original(self)

    return write_config


def main() -> None:
    from gcp_storage_emulator import server, storage
    from gcp_storage_emulator.__main__ import main as emulator_main

    server._read_data = _patched(server._read_data, server)
    storage.Storage._write_config_to_file = _config_writer(storage.Storage._write_config_to_file)
    emulator_main(sys.argv[1:])


if __name__ == "__main__":
    main()
