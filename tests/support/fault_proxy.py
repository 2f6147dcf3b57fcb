"""A fault-injecting HTTP/1.1 proxy for object-store emulators (moto, azurite).

It sits between a client (s3fs, adlfs) and the emulator, forwards each request on the
client's own keep-alive connection, and on a schedule answers a request with a fault instead:

- ``500`` / ``503``: an error status, the request never reaches the server;
- ``slowdown``: S3's ``503 SlowDown`` (its XML error body);
- ``reset``: the connection is reset before the request is forwarded;
- ``reset_after``: the request is forwarded (the server applies it), then the connection is
  reset before the answer: the client cannot know whether its write happened;
- ``timeout``: the proxy holds the request for ``hang_s`` (past the client's read timeout),
  then closes; the request is not forwarded;
- ``truncate``: the answer is forwarded with its original ``Content-Length`` but only half
  its body, then the connection closes.

``latency_s`` delays every request (the loader benchmark's 20 ms). Which requests fail is a
`FaultSchedule`: at random with a seed, or at chosen request numbers, restricted to methods
and to paths matching a pattern. Every injected fault is logged in ``proxy.injected``.

Example::

    proxy = FaultProxy(s3.port, FaultSchedule(seed=3, rate=0.1)).start()
    opts = s3.storage_options_for(proxy.endpoint_url)
"""
from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

LOOPBACK = "127.0.0.1"
KINDS = ("500", "503", "slowdown", "reset", "reset_after", "timeout", "truncate")

_SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class FaultSchedule:
    """Which requests fail, and how.

    ``rate``: the chance that an eligible request fails, drawn from ``random.Random(seed)``
    (the same seed and the same request sequence give the same faults); ``at``: request
    number (1-based, counting every request the proxy sees) -> kind, applied whatever the
    rate; ``kinds``: the kinds drawn at random; ``methods``: only these HTTP methods are
    eligible (empty: all); ``path_pattern``: only paths matching this regex are eligible;
    ``max_faults``: stop injecting after this many (None: no limit)."""

    seed: int = 0
    rate: float = 0.0
    kinds: Sequence[str] = KINDS
    at: Dict[int, str] = field(default_factory=dict)
    methods: Sequence[str] = ()
    path_pattern: Optional[str] = None
    max_faults: Optional[int] = None

    def __post_init__(self) -> None:
        for k in list(self.kinds) + list(self.at.values()):
            if k not in KINDS:
                raise ValueError(f"unknown fault kind {k!r}; known: {', '.join(KINDS)}")
        self._rng = random.Random(self.seed)
        self._regex = re.compile(self.path_pattern) if self.path_pattern else None
        self._count = 0
        self._faults = 0
        self._lock = threading.Lock()

    def decide(self, method: str, path: str) -> Tuple[int, Optional[str]]:
        """The request's number and the fault to inject for it (None: forward it)."""
        with self._lock:
            self._count += 1
            n = self._count
            if self.max_faults is not None and self._faults >= self.max_faults:
                return n, None
            kind = self.at.get(n)
            eligible = (not self.methods or method in self.methods) and (
                self._regex is None or self._regex.search(path) is not None
            )
            if kind is None and eligible and self.rate > 0:
                # draw for every eligible request, so a schedule does not depend on timing
                roll = self._rng.random()
                pick = self._rng.choice(list(self.kinds))
                if roll < self.rate:
                    kind = pick
            if kind is not None:
                self._faults += 1
            return n, kind


class _Closed(Exception):
    """The peer closed the connection between messages."""


def _read_head(f) -> Tuple[bytes, List[Tuple[str, str]]]:
    """The start line and headers of one HTTP message."""
    start = f.readline(65537)
    if not start:
        raise _Closed()
    headers = []
    while True:
        line = f.readline(65537)
        if not line:
            raise _Closed()
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return start.rstrip(b"\r\n"), headers


def _header(headers: List[Tuple[str, str]], name: str) -> Optional[str]:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _read_body(f, headers: List[Tuple[str, str]], until_close: bool) -> bytes:
    """The message body, raw (chunked bodies keep their framing)."""
    if (_header(headers, "transfer-encoding") or "").lower().endswith("chunked"):
        out = []
        while True:
            line = f.readline(65537)
            out.append(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = f.readline(65537)
                    out.append(t)
                    if t in (b"\r\n", b"\n", b""):
                        break
                return b"".join(out)
            out.append(f.read(size + 2))
    length = _header(headers, "content-length")
    if length is not None:
        return f.read(int(length))
    return f.read() if until_close else b""


def _head_bytes(start: bytes, headers: List[Tuple[str, str]]) -> bytes:
    lines = [start] + [f"{k}: {v}".encode("latin-1") for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a crashed server or a middlebox does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """The proxy: `start()`, `endpoint_url`, `injected` (request number, method, path, kind),
    `requests` (how many it saw), `log` (every request, with `keep_log`), `stop()`. A
    context manager."""

    def __init__(
        self,
        target_port: int,
        schedule: Optional[FaultSchedule] = None,
        *,
        target_host: str = LOOPBACK,
        latency_s: float = 0.0,
        hang_s: float = 5.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.schedule = schedule or FaultSchedule()
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.host = LOOPBACK
        self.port: Optional[int] = None
        self.injected: List[Tuple[int, str, str, str]] = []
        #: with keep_log, every request: (number, method, path, fault kind or "")
        self.keep_log = False
        self.log: List[Tuple[int, str, str, str]] = []
        self._listener: Optional[socket.socket] = None
        self._stopping = threading.Event()
        self._conns: set = set()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> int:
        return self.schedule._count

    def start(self) -> "FaultProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(256)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._conns.update(socks)

    def _untrack(self, *socks: socket.socket) -> None:
        with self._lock:
            self._conns.difference_update(socks)

    def _serve(self, client: socket.socket) -> None:
        upstream: Optional[socket.socket] = None
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(client)
        cf = client.makefile("rb")
        uf = None
        try:
            while not self._stopping.is_set():
                try:
                    start, headers = _read_head(cf)
                    if (_header(headers, "expect") or "").lower() == "100-continue":
                        # answer it here: the client holds the body back until it hears this
                        headers = [(k, v) for k, v in headers if k.lower() != "expect"]
                        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    body = _read_body(cf, headers, until_close=False)
                except (_Closed, OSError, ValueError):
                    return
                parts = start.decode("latin-1").split(" ")
                method, path = parts[0], parts[1] if len(parts) > 1 else "/"
                n, kind = self.schedule.decide(method, path)
                with self._lock:
                    if kind is not None:
                        self.injected.append((n, method, path, kind))
                    if self.keep_log:
                        self.log.append((n, method, path, kind or ""))
                if self.latency_s:
                    time.sleep(self.latency_s)
                if kind in ("500", "503", "slowdown"):
                    self._answer_error(client, kind, method)
                    continue
                if kind == "reset":
                    _reset(client)
                    return
                if kind == "timeout":
                    self._stopping.wait(self.hang_s)
                    _reset(client)
                    return
                if upstream is None:
                    upstream = socket.create_connection(self.target, timeout=60)
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._track(upstream)
                    uf = upstream.makefile("rb")
                upstream.sendall(_head_bytes(start, headers) + body)
                try:
                    rstart, rheaders = _read_head(uf)
                    while rstart.split(b" ")[1:2] == [b"100"]:  # 100-continue: the real answer follows
                        rstart, rheaders = _read_head(uf)
                    no_body = method == "HEAD" or rstart.split(b" ")[1:2] in ([b"204"], [b"304"])
                    closes = (_header(rheaders, "connection") or "").lower() == "close"
                    rbody = b"" if no_body else _read_body(uf, rheaders, until_close=closes)
                except (_Closed, OSError, ValueError):
                    _reset(client)
                    return
                if kind == "reset_after":
                    _reset(client)
                    return
                if kind == "truncate" and len(rbody) > 1 and _header(rheaders, "content-length") is not None:
                    client.sendall(_head_bytes(rstart, rheaders) + rbody[: len(rbody) // 2])
                    _reset(client)
                    return
                client.sendall(_head_bytes(rstart, rheaders) + rbody)
                if closes:
                    return
        except OSError:
            return
        finally:
            self._untrack(client, *([upstream] if upstream is not None else []))
            with contextlib.suppress(OSError):
                client.close()
            if upstream is not None:
                with contextlib.suppress(OSError):
                    upstream.close()

    @staticmethod
    def _answer_error(client: socket.socket, kind: str, method: str) -> None:
        status = {"500": b"500 Internal Server Error", "503": b"503 Service Unavailable",
                  "slowdown": b"503 Slow Down"}[kind]
        body = _SLOWDOWN_BODY if kind == "slowdown" else (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b"<Message>injected by the fault proxy</Message></Error>" if kind == "500" else
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
            b"<Message>injected by the fault proxy</Message></Error>"
        )
        head = [b"HTTP/1.1 " + status, b"Content-Type: application/xml",
                b"Content-Length: " + str(len(body)).encode()]
        client.sendall(b"\r\n".join(head) + b"\r\n\r\n" + (b"" if method == "HEAD" else body))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Serve a proxy in its own process (benchmarks keep it off the measured process's GIL):
    prints its port on the first line of stdout, stops when stdin closes."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="fault-injecting HTTP proxy")
    ap.add_argument("--target-port", type=int, required=True)
    ap.add_argument("--latency-s", type=float, default=0.0)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    proxy = FaultProxy(a.target_port, FaultSchedule(seed=a.seed, rate=a.rate), latency_s=a.latency_s).start()
    print(proxy.port, flush=True)
    sys.stdin.read()
    proxy.stop()


if __name__ == "__main__":
    main()
