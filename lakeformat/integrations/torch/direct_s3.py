"""A loader worker's reads from S3 as plain HTTP GETs of presigned URLs, read straight into
reused huge-page buffers.

A worker moves most of the loader's bytes, and on a few cores its CPU time is what the store
and the network stack do not get. Through s3fs a GET costs about 1.7 ms of CPU per MB
(aiobotocore's response handling; aiohttp receives the body in pieces and joins them into a
new bytes object, whose fresh pages fault in one 4 KiB page at a time). Here s3fs's own client
only signs a URL, once per object; `http.client` reads the body into a `BufferPool` array:
about a fifth of the CPU per MB (256 MB through moto: 0.45 s of CPU by s3fs, 0.08 s here).

Only reads of a plain S3 setup take this path: no proxy, no per-request extras
(`s3_additional_kwargs`, such as SSE-C keys, which a presigned URL cannot carry), no object
versions. Anything else the store answers that this reader does not expect (a redirect to
another region, an answer without a length, a malformed request) falls back to s3fs, for that
read and the rest of the worker's. Errors and retries are the store's (`RetryPolicy`): 5xx,
throttling, resets, timeouts and short bodies are retried; a missing key is
`KeyNotFoundInStorageError`. Set ``LAKEFORMAT_S3_DIRECT_READS=0`` to read through s3fs.
"""
from __future__ import annotations

import copy
import http.client
import logging
import os
import re
import threading
import time
import urllib.parse
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from lakeformat.integrations.torch.buffers import BufferPool
from lakeformat.storage import LRUCache, PrefixedStorage, StorageProvider
from lakeformat.storage.base import byte_view
from lakeformat.storage.fsspec_store import FsspecStorage

logger = logging.getLogger(__name__)

ENV_SWITCH = "LAKEFORMAT_S3_DIRECT_READS"
SIGNED_FOR_S = 3600  # how long a presigned URL is valid
RESIGN_AFTER_S = 1800  # a URL older than this is signed again before use
IDLE_S = 15.0  # a kept connection idle longer than this is closed, not reused
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")
_CODE = re.compile(rb"<Code>([^<]{1,64})</Code>")
#: chunk bodies this large are read into a reused huge-page buffer (a uint8 array, which the
#: chunk parser takes like bytes); everything else comes back as bytes
BUFFER_MIN = 1 << 20

Body = Union[np.ndarray, bytes]


@dataclass(frozen=True)
class UrlSigner:
    """Presigns GETs of one store's objects (SigV4 query auth, botocore's own signer) with
    no S3 client: what a loader worker would otherwise make first, about 0.4 s of CPU (up to
    2 s of wall time seen here) before its first request. Made in the main process from its
    reader's client (`DirectS3Reads.url_signer`): the URL of the store's root as that client
    addresses it, the region and the credentials of the moment. A worker whose signature is
    refused (expired credentials) signs with a client of its own from then on."""

    base: str  # scheme://host/path of the store's root, ending in "/"
    region: str
    access_key: str
    secret_key: str
    token: Optional[str]

    def url(self, key: str) -> str:
        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import ReadOnlyCredentials

        req = AWSRequest(method="GET", url=self.base + urllib.parse.quote(key, safe="/~"))
        S3SigV4QueryAuth(ReadOnlyCredentials(self.access_key, self.secret_key, self.token), "s3", self.region,
                         expires=SIGNED_FOR_S).add_auth(req)
        return str(req.url)

    def __repr__(self) -> str:  # never the secret
        return f"UrlSigner(base={self.base!r}, region={self.region!r})"


_PROBE = "lakeformat-url-probe"


class DirectReadError(OSError):
    """An error status from the store: `status` and the S3 error `error_code` let the retry
    policy tell throttling and 5xx (retried) from the rest."""

    def __init__(self, key: str, status: int, error_code: str):
        super().__init__(f"GET {key!r}: HTTP {status}{' ' + error_code if error_code else ''}")
        self.status = status
        self.error_code = error_code


class _Unexpected(Exception):
    """An answer this reader does not handle: the read goes through s3fs instead."""


class _ProtocolError(ConnectionError):
    """The connection broke mid-answer (a malformed status line, a closed socket): retried."""


def unsupported_reason(store: FsspecStorage) -> Optional[str]:
    """Why reads of `store` cannot go direct (None: they can)."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"{ENV_SWITCH} is off"
    fs = store.fs
    if getattr(store, "protocol", None) not in ("s3", "s3a") or type(fs).__name__ != "S3FileSystem":
        return "not s3fs"
    if getattr(fs, "version_aware", False):
        return "version_aware"
    if getattr(fs, "s3_additional_kwargs", None):
        return "s3_additional_kwargs"
    if (getattr(fs, "config_kwargs", None) or {}).get("proxies"):
        return "a proxy is configured"
    if any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS):
        return "a proxy is set in the environment"
    return None


def share_botocore_session(parent_fs: Any, fs: Any) -> None:
    """Make `fs`'s (s3fs) client from `parent_fs`'s botocore session, which has the service
    models loaded already (a fresh session parses them again: about 0.15 s of CPU). The
    session holds no event loop or connection; the client, which does, is made by `fs`."""
    session = getattr(parent_fs, "session", None)
    if session is None or getattr(fs, "session", False) is not None or not hasattr(fs, "_session_is_owned"):
        return
    fs.session = session
    fs._session_is_owned = False


def signing_options(opts: Dict[str, Any], plain_http_unverified: bool = False) -> Dict[str, Any]:
    """s3fs options for a filesystem that presigns the direct reads' URLs: SigV4 unless the
    options name a signature version (botocore presigns with SigV2 by default in the regions
    that still take it, which S3 is retiring: newer buckets refuse it); with
    `plain_http_unverified`, an ``http://`` endpoint's client skips loading CA certificates
    it will never use (about 45 ms of CPU per client)."""
    out = {**opts, "skip_instance_cache": True}
    config = dict(out.get("config_kwargs") or {})
    config.setdefault("signature_version", "s3v4")
    out["config_kwargs"] = config
    client = dict(out.get("client_kwargs") or {})
    endpoint = str(client.get("endpoint_url") or out.get("endpoint_url") or "")
    if plain_http_unverified and endpoint.startswith("http://") and "verify" not in client:
        client["verify"] = False
        out["client_kwargs"] = client
    return out


def metadata_reads(storage: StorageProvider) -> Optional[StorageProvider]:
    """A reader of `storage` (a dataset's store in this process) whose requests go direct:
    the loader reads its tensors' metadata through it (a dozen small objects side by side,
    for which s3fs's per-request CPU is most of the time). None where reads cannot go direct.
    One reader per store and process, kept while the store lives (its connections stay
    warm); a reader copied into a forked child is not used there (its connections belong to
    the parent's threads, and the child makes its own)."""
    if isinstance(storage, LRUCache):
        return metadata_reads(storage.base)  # what the cache holds, the engines' read-ahead holds
    if isinstance(storage, PrefixedStorage):
        base = metadata_reads(storage.base)
        if base is None:
            return None
        p = copy.copy(storage)
        p.base = base
        return p
    if not isinstance(storage, FsspecStorage) or unsupported_reason(storage) is not None:
        return None
    # by filesystem (fsspec hands every load of one bucket with the same options the same
    # instance): a dataset loaded again finds its reader's connections open
    with _READERS_LOCK:
        mine = _READERS.setdefault(storage.fs, {})
        reader = mine.get(storage.url)
        if reader is None or reader.pid != os.getpid() or reader.retry != storage.retry:
            reader = mine[storage.url] = DirectS3Reads.over(storage)
    return reader


_READERS: "weakref.WeakKeyDictionary[Any, Dict[str, DirectS3Reads]]" = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def direct_reads(store: FsspecStorage, signer: Optional[UrlSigner] = None) -> FsspecStorage:
    """`store` with its reads direct where the setup allows (else `store` itself); URLs
    presigned by `signer` where one is given (a worker's, made by the main process)."""
    reason = unsupported_reason(store)
    if reason is not None:
        logger.debug("loader reads from %s go through s3fs: %s", store.url, reason)
        return store
    d = DirectS3Reads.over(store)
    d.signer = signer
    return d


def url_signer(storage: StorageProvider) -> Optional[UrlSigner]:
    """A `UrlSigner` for the store under `storage` (this process's metadata reader makes it),
    or None where reads do not go direct or it cannot be made."""
    reader = metadata_reads(storage)
    while isinstance(reader, PrefixedStorage):
        reader = reader.base
    return reader.url_signer() if isinstance(reader, DirectS3Reads) else None


class DirectS3Reads(FsspecStorage):
    """An S3 `FsspecStorage` whose `get`, `get_range` and `get_many` are direct GETs; every
    other call is the store's own. Made in the process that reads (connections are per thread
    and are not carried across a fork)."""

    @classmethod
    def over(cls, store: FsspecStorage) -> "DirectS3Reads":
        d = cls.__new__(cls)
        d.__dict__.update(store.__dict__)
        d._init_direct()
        return d

    def _init_direct(self) -> None:
        self.pid = os.getpid()
        self._signer: Any = None
        self.signer: Optional[UrlSigner] = None  # presigns without a client where set
        self.buffers = BufferPool()
        self._signed: Dict[str, Tuple[urllib.parse.SplitResult, float]] = {}
        self._idle: Dict[Tuple[str, str], List[Tuple[http.client.HTTPConnection, float]]] = {}  # free, since when
        self._ssl: Any = None
        self._lock = threading.Lock()
        self._sign_lock = threading.Lock()
        self.fallback: Optional[str] = None  # why reads went back to s3fs, once they did
        config = dict(getattr(self.fs, "config_kwargs", None) or {})
        self._timeout = float(config.get("read_timeout") or 60)
        self._connect_timeout = float(config.get("connect_timeout") or 60)

    def __getstate__(self) -> Dict[str, Any]:
        # pickled (a spawned worker's job): the plain store; the reader is made again there
        state = dict(self.__dict__)
        for k in ("pid", "_signer", "signer", "buffers", "_signed", "_idle", "_ssl", "_lock", "_sign_lock", "fallback", "_timeout", "_connect_timeout"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        self._init_direct()

    # -- the reads ------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        if self.fallback is not None:
            return super().get(key)
        return self._read(key, None, None, lambda: super(DirectS3Reads, self).get(key))  # type: ignore[return-value]

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        if end is not None and end <= start:
            return b""
        if self.fallback is not None:
            return super().get_range(key, start, end)
        return self._read(key, int(start), None if end is None else int(end),  # type: ignore[return-value]
                          lambda: super(DirectS3Reads, self).get_range(key, start, end))

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        keys = list(keys)
        if self.fallback is not None or not keys:
            return super().get_many(keys, missing_ok)

        def one(k: str) -> Optional[Body]:
            try:
                return self.get(k)
            except KeyError:
                if missing_ok:
                    return None
                raise

        if len(keys) == 1:
            return {keys[0]: one(keys[0])}  # type: ignore[dict-item]
        # threads for this call only (connections outlive them, in `_idle`): nothing of a
        # store's reads keeps running once they are done
        with ThreadPoolExecutor(min(16, max(1, self.concurrency), len(keys) - 1), thread_name_prefix="lakeformat-s3-get") as pool:
            rest = [pool.submit(one, k) for k in keys[1:]]
            out = {keys[0]: one(keys[0])}
            for k, f in zip(keys[1:], rest):
                out[k] = f.result()
        return out  # type: ignore[return-value]

    def _read(self, key: str, start: Optional[int], end: Optional[int], through_s3fs: Any) -> Body:
        try:
            return self._run_direct("GET" if start is None else "GET range", key, lambda: self._once(key, start, end))
        except _Unexpected as e:
            if self.fallback is None:
                self.fallback = str(e)
                logger.info("loader reads from %s go through s3fs from here on: %s", self.url, e)
            return through_s3fs()  # type: ignore[no-any-return]

    def _run_direct(self, what: str, key: str, fn: Any) -> Body:
        try:
            return self.retry.run(fn, f"{what} {key!r} under {self.url!r}")  # type: ignore[no-any-return]
        except _Unexpected:
            raise
        except Exception as e:  # noqa: BLE001 - typed as the store types its own
            raise self._wrap(key, e, what) from e

    def _once(self, key: str, start: Optional[int], end: Optional[int], signed_again: bool = False) -> Body:
        url = self._url(key, fresh=signed_again)
        conn, reused = self._take(url)
        headers = {} if start is None else {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
        target = f"{url.path}?{url.query}" if url.query else url.path
        try:
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # a kept connection the server had closed: nothing was read, so the request
                # goes again at once on a new one (not a failure, and no attempt spent)
                conn.close()
                conn, reused = self._take(url, fresh=True)
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
            if resp.status in (200, 206):
                body = self._body(resp, key)
                self._give(url, conn)
                if resp.status == 200 and start is not None:  # the whole object: the range of it
                    return bytes(byte_view(body)[start:end])
                return body
            error = resp.read(64 << 10)
        except http.client.IncompleteRead:
            conn.close()
            raise
        except http.client.HTTPException as e:
            conn.close()
            raise _ProtocolError(f"GET {key!r}: {type(e).__name__}: {e}") from e
        except BaseException:
            conn.close()
            raise
        if resp.length:  # a long error body: not worth draining on this connection
            conn.close()
        else:
            self._give(url, conn)
        return self._status(key, resp.status, error, start, end, signed_again)

    def _status(self, key: str, status: int, error: bytes, start: Optional[int], end: Optional[int], signed_again: bool) -> Body:
        m = _CODE.search(error)
        code = m.group(1).decode("ascii", "replace") if m else ""
        if status == 404 and code in ("", "NoSuchKey"):
            raise FileNotFoundError(key)
        if status == 416:  # a range past the object's end: nothing there
            return b""
        if status == 403 and not signed_again and code in ("AccessDenied", "ExpiredToken", "RequestExpired", "SignatureDoesNotMatch",
                                                           "InvalidAccessKeyId", "InvalidToken", ""):
            # an expired URL or token, or credentials the main process signed with that the
            # store no longer takes: once more, signed by a client (fresh credentials)
            return self._once(key, start, end, signed_again=True)
        if status == 403:
            raise PermissionError(f"GET {key!r}: HTTP 403 {code}")
        if status >= 500 or status in (408, 429):
            raise DirectReadError(key, status, code)
        raise _Unexpected(f"GET {key!r} answered HTTP {status} {code}".strip())

    def _body(self, resp: http.client.HTTPResponse, key: str) -> Body:
        n = resp.length
        if n is None or n < BUFFER_MIN or "/chunks/" not in key:  # metadata, small chunks: bytes
            data = resp.read()
            if n is not None and len(data) < n:
                raise http.client.IncompleteRead(data, n - len(data))
            return data
        buf = self.buffers.get(n)
        view = byte_view(buf)
        got = 0
        while got < n:
            k = resp.readinto(view[got:])
            if not k:
                raise http.client.IncompleteRead(b"", n - got)
            got += k
        return buf

    # -- signing and connections ----------------------------------------------------------------
    def _url(self, key: str, fresh: bool = False) -> urllib.parse.SplitResult:
        now = time.monotonic()
        hit = self._signed.get(key)
        if hit is not None and not fresh and now - hit[1] < RESIGN_AFTER_S:
            return hit[0]
        if fresh:
            self.signer = None  # a refused signature: sign with a client (fresh credentials) from here on
        if self.signer is not None:
            signed = self.signer.url(key)
        else:
            with self._sign_lock:  # the first signature makes s3fs's client: once
                signed = self._signing_fs().url(self._p(key), expires=SIGNED_FOR_S, **(getattr(self.fs, "req_kw", None) or {}))
        url = urllib.parse.urlsplit(str(signed))
        self._signed[key] = (url, now)
        return url

    def url_signer(self) -> Optional[UrlSigner]:
        """A `UrlSigner` for this store, from this reader's client: None where its URLs
        carry more than SigV4 and the key (requester pays, an explicit other signature
        version) or the client will not say its credentials."""
        fs = self._signing_fs()
        if getattr(fs, "req_kw", None) or (getattr(fs, "config_kwargs", None) or {}).get("signature_version") not in ("s3v4", None):
            return None
        try:
            from fsspec.asyn import sync

            probe = self._url(_PROBE, fresh=False)  # also makes the client
            s3 = fs.s3
            creds = sync(fs.loop, s3._request_signer._credentials.get_frozen_credentials)
            region = s3.meta.region_name
        except Exception as e:  # noqa: BLE001 - only a shortcut: workers sign with a client then
            logger.debug("no URL signer for %s: %s: %s", self.url, type(e).__name__, e)
            return None
        self._signed.pop(_PROBE, None)
        base = f"{probe.scheme}://{probe.netloc}{probe.path}"
        if creds is None or not region or not base.endswith("/" + _PROBE):
            return None
        return UrlSigner(base[: -len(_PROBE)], region, creds.access_key, creds.secret_key, creds.token)

    def _signing_fs(self) -> Any:
        """The store's filesystem where it presigns with an explicit signature version (a
        worker's, see `signing_options`), else one like it that does, made once."""
        fs = self.fs
        if (getattr(fs, "config_kwargs", None) or {}).get("signature_version"):
            return fs
        with self._lock:
            if self._signer is None:
                opts = getattr(fs, "storage_options", None) or {}
                signer = type(fs)(*getattr(fs, "storage_args", ()), **signing_options(dict(opts)))
                share_botocore_session(fs, signer)
                self._signer = signer
            return self._signer

    def _take(self, url: urllib.parse.SplitResult, fresh: bool = False) -> Tuple[http.client.HTTPConnection, bool]:
        """An open connection to `url`'s host that no other request is using (and whether it
        was used before), or a new one (`fresh`: always new). Connections idle longer than
        `IDLE_S` are closed rather than reused: servers drop them (S3 after about 20 s)."""
        where = (url.scheme, url.netloc)
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(where) or []
            stale = [c for c, t in idle if now - t > IDLE_S]
            idle[:] = [(c, t) for c, t in idle if now - t <= IDLE_S]
            reused = idle.pop()[0] if idle and not fresh else None
        for c in stale:
            c.close()
        if reused is not None:
            return reused, True
        host, port = url.hostname or "", url.port
        conn: http.client.HTTPConnection
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self._connect_timeout, context=self._ssl_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(self._timeout)
        return conn, False

    def _give(self, url: urllib.parse.SplitResult, conn: http.client.HTTPConnection) -> None:
        """`conn` is free again (its last answer read to the end)."""
        with self._lock:
            self._idle.setdefault((url.scheme, url.netloc), []).append((conn, time.monotonic()))

    def _ssl_context(self) -> Any:
        """The TLS trust botocore would use: `verify` from client_kwargs (False, or a CA
        bundle's path), else AWS_CA_BUNDLE, else botocore's own bundle."""
        import ssl

        with self._lock:
            if self._ssl is None:
                verify = (getattr(self.fs, "client_kwargs", None) or {}).get("verify", getattr(self.fs, "kwargs", {}).get("verify", True))
                if verify is False:
                    ctx = ssl.create_default_context()
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                else:
                    cafile = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
                    if not cafile:
                        from botocore.httpsession import get_cert_path

                        cafile = get_cert_path(True)
                    ctx = ssl.create_default_context(cafile=cafile)
                self._ssl = ctx
            return self._ssl
