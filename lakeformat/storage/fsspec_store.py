"""Object stores and any other fsspec filesystem (s3, gcs, azure, http...)."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, TypeVar

from lakeformat.errors import KeyNotFoundInStorageError, StorageError, TransientStorageError
from lakeformat.storage.base import StorageProvider
from lakeformat.storage.retry import RetryPolicy, ShortReadError, is_transient

logger = logging.getLogger(__name__)

T = TypeVar("T")

# deeplake 3.x creds names -> fsspec/s3fs storage options
_S3_CREDS_ALIASES = {
    "aws_access_key_id": "key",
    "aws_secret_access_key": "secret",
    "aws_session_token": "token",
}


def storage_options_from_creds(protocol: str, creds: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Turn deeplake-style creds or plain fsspec options into fsspec storage options."""
    if not creds:
        return {}
    opts = dict(creds)
    if protocol in ("s3", "s3a"):
        for alias, name in _S3_CREDS_ALIASES.items():
            if alias in opts:
                opts[name] = opts.pop(alias)
        endpoint = opts.pop("endpoint_url", None)
        if endpoint:
            opts.setdefault("client_kwargs", {})["endpoint_url"] = endpoint
        region = opts.pop("aws_region", None)
        if region:
            opts.setdefault("client_kwargs", {})["region_name"] = region
    return opts


def _s3_read_defaults(options: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """botocore (1.36+) checks the CRC of every object it downloads by default: CPU for every
    byte a loader reads, on top of TLS, which already guards the bytes in transit. Reads skip
    it unless the options ask for it (`config_kwargs={"response_checksum_validation": ...}`);
    uploads keep their checksums."""
    opts = dict(options or {})
    try:
        from botocore.config import Config
    except ImportError:
        return opts
    config = dict(opts.get("config_kwargs") or {})
    if "response_checksum_validation" in getattr(Config, "OPTION_DEFAULTS", {}):
        config.setdefault("response_checksum_validation", "when_required")
    # lakeformat's RetryPolicy retries (lakeformat/storage/retry.py): botocore's own
    # retries would multiply its attempts and retry conditional PUTs blindly
    config.setdefault("retries", {"total_max_attempts": 1})
    opts["config_kwargs"] = config
    return opts


def _own_the_retries(protocol: str, fs: Any, user_configured: bool) -> None:
    """Switch off the retries of the library under `fs` where lakeformat's policy replaces
    them (s3fs's loop around botocore; the Azure SDK's policy, whose first retry waits 15 s),
    unless the caller configured them."""
    if user_configured:
        return
    if protocol in ("s3", "s3a") and hasattr(fs, "retries"):
        fs.retries = 1
    if protocol in ("az", "abfs", "abfss"):
        policy = getattr(getattr(getattr(fs, "service_client", None), "_config", None), "retry_policy", None)
        for name in ("total_retries", "connect_retries", "read_retries", "status_retries"):
            if hasattr(policy, name):
                setattr(policy, name, 0)


def _whole_object_kwargs(fs: Any) -> Dict[str, Any]:
    """Arguments that make a whole-object read one GET. s3fs (2024.12+) first sends a HEAD
    for the size, to split large objects into concurrent ranged GETs: a second round trip
    per object, for objects (chunks, metadata) that lakeformat already fetches side by side."""
    import inspect

    try:
        params = inspect.signature(fs._cat_file).parameters
    except (AttributeError, TypeError, ValueError):
        return {}
    return {"max_concurrency": 1} if "max_concurrency" in params else {}


#: protocols whose library keeps retrying underneath (gcsfs's own loop on 5xx, 429 and
#: connection errors): lakeformat adds one retry, for what it alone sees (short bodies)
_LIBRARY_RETRIES = {"gs": 2, "gcs": 2}


class FsspecStorage(StorageProvider):
    """A store over an fsspec filesystem. Every request runs under `retry` (a `RetryPolicy`,
    an attempt count or a dict of its fields; also the storage option ``"retry"``; default
    from the environment, see `RetryPolicy.from_env`); a failure that may pass and outlasts
    it raises `TransientStorageError`, any other failure `StorageError`."""

    concurrency = 16

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None, read_only: bool = False,
                 retry: Any = None):
        import fsspec

        self.url = url.rstrip("/")
        self.read_only = read_only
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        storage_options = dict(storage_options or {})
        if "retry" in storage_options:
            retry = storage_options.pop("retry") if retry is None else retry
            storage_options.pop("retry", None)
        self.retry = RetryPolicy.coerce(retry, _LIBRARY_RETRIES.get(protocol))
        user_retries = "retries" in (storage_options.get("config_kwargs") or {})
        if protocol in ("s3", "s3a"):
            storage_options = _s3_read_defaults(storage_options)
        try:
            self.fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        except ImportError as e:
            raise StorageError(f"No filesystem for {protocol!r}: {e}. Install the matching fsspec package.") from e
        self._user_retries = user_retries
        _own_the_retries(protocol, self.fs, user_retries)
        self.path = path.rstrip("/")
        self.root = self.url
        self._whole = _whole_object_kwargs(self.fs)
        self.protocol = protocol
        self._conditional = _conditional_writer(protocol, self.fs)
        # GCS (its emulator ignores ifGenerationMatch) and other filesystems: the base class
        # emulates conditional writes (see StorageProvider)
        self.conditional_writes = self._conditional is not None

    def __setstate__(self, state: Dict[str, Any]) -> None:
        # unpickled in another process (a spawned loader worker): its filesystem is a new
        # instance, with its library's retries back on
        self.__dict__.update(state)
        _own_the_retries(self.protocol, self.fs, self.__dict__.get("_user_retries", False))

    def rebind(self, fs: Any) -> "FsspecStorage":
        """This store over `fs`, a filesystem for the same URL made in this process (a forked
        loader worker's), with the same retry policy and conditional writes bound to it."""
        import copy

        s = copy.copy(self)
        s.fs = fs
        _own_the_retries(self.protocol, fs, self._user_retries)
        s._conditional = _conditional_writer(self.protocol, fs)
        return s

    def _p(self, key: str) -> str:
        return f"{self.path}/{key}" if key else self.path

    def _wrap(self, key: str, exc: BaseException, what: str = "request") -> Exception:
        if isinstance(exc, (FileNotFoundError, KeyError)):
            return KeyNotFoundInStorageError(key)
        if is_transient(exc):
            return TransientStorageError(
                f"Storage {what} for {key!r} under {self.url!r} failed {self.retry.attempts} time(s), "
                f"the last with {type(exc).__name__}: {exc}")
        return StorageError(f"Storage {what} for {key!r} under {self.url!r} failed: {type(exc).__name__}: {exc}")

    def _run(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """`fn()` under the retry policy; failures come out typed, naming the key."""
        try:
            return self.retry.run(fn, f"{what} {key!r} under {self.url!r}")
        except Exception as e:  # noqa: BLE001 - every backend raises its own types
            raise self._wrap(key, e, what) from e

    def _check_range(self, path: str, start: int, end: Optional[int], data: bytes) -> bytes:
        """A range shorter than asked for is the object's end, or a truncated answer: the
        object's size tells which (a truncated answer raises, and is retried)."""
        if end is None or len(data) >= end - start:
            return data
        size = int(self.fs.info(path)["size"])
        if size >= end:
            raise ShortReadError(f"{path!r}: {len(data)} bytes came back for the range [{start}, {end}) of {size}")
        return data

    def get(self, key: str) -> bytes:
        def go() -> bytes:
            data: bytes = self.fs.cat_file(self._p(key), **self._whole)
            return data

        return self._run("GET", key, go)

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        p = self._p(key)
        return self._run("GET range", key, lambda: self._check_range(p, start, end, self.fs.cat_file(p, start=start, end=end)))

    def get_ranges(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> List[bytes]:
        if not len(starts):
            return []
        p = self._p(key)
        a = [int(x) for x in starts]
        b = [int(x) for x in ends]

        def go() -> List[bytes]:
            # async filesystems send these concurrently
            got = self.fs.cat_ranges([p] * len(a), a, b, on_error="raise")
            return [self._check_range(p, s, e, bytes(d)) for s, e, d in zip(a, b, got)]

        return self._run("GET ranges", key, go)

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        keys = list(keys)
        if not keys:
            return {}
        out: Dict[str, Optional[bytes]] = {}
        todo = keys
        for attempt in range(1, self.retry.attempts + 1):
            try:
                # async filesystems (s3, gcs, azure) send these concurrently in one event loop
                got = self.fs.cat_ranges([self._p(k) for k in todo], None, None, on_error="return", **self._whole)
            except Exception as e:  # noqa: BLE001
                got = [e] * len(todo)
            again = []
            for k, v in zip(todo, got):
                if isinstance(v, Exception) or v is None:
                    if missing_ok and (v is None or isinstance(v, (FileNotFoundError, KeyError))):
                        out[k] = None
                        continue
                    err = v if isinstance(v, Exception) else FileNotFoundError(k)
                    if attempt < self.retry.attempts and is_transient(err):
                        again.append((k, err))
                        continue
                    raise self._wrap(k, err, "GET") from err
                out[k] = v
            if not again:
                break
            pause = self.retry.delay(attempt)
            logger.warning("GET of %d of %d objects under %r failed (attempt %d of %d), e.g. %r: %s: %s; "
                           "retrying in %.3f s", len(again), len(todo), self.url, attempt, self.retry.attempts,
                           again[0][0], type(again[0][1]).__name__, again[0][1], pause)
            time.sleep(pause)
            todo = [k for k, _ in again]
        return {k: out[k] for k in keys}

    def set(self, key: str, value: bytes) -> None:
        self.check_writable()
        data = bytes(value)
        # one PUT of the whole object: visible whole or not at all, so sending it again is safe
        self._run("PUT", key, lambda: self.fs.pipe_file(self._p(key), data))

    def set_many(self, items: Dict[str, bytes]) -> None:
        self.check_writable()
        if not items:
            return
        if len(items) == 1:
            k, v = next(iter(items.items()))
            return self.set(k, v)
        todo = {k: bytes(v) for k, v in items.items()}
        for attempt in range(1, self.retry.attempts + 1):
            # each object retried on its own: retrying the whole batch for one failure would
            # send them all again, and a large batch would rarely get through a flaky network
            errors = self._put_each(todo)
            for k, err in errors.items():
                if attempt >= self.retry.attempts or not is_transient(err):
                    raise self._wrap(k, err, "PUT") from err
            if not errors:
                return
            pause = self.retry.delay(attempt)
            k0, e0 = next(iter(errors.items()))
            logger.warning("PUT of %d of %d objects under %r failed (attempt %d of %d), e.g. %r: %s: %s; "
                           "retrying in %.3f s", len(errors), len(todo), self.url, attempt, self.retry.attempts,
                           k0, type(e0).__name__, e0, pause)
            time.sleep(pause)
            todo = {k: todo[k] for k in errors}

    def _put_each(self, items: Dict[str, bytes]) -> Dict[str, BaseException]:
        """PUT every item concurrently; the failures, by key."""
        if getattr(self.fs, "async_impl", False):
            import asyncio

            from fsspec.asyn import sync

            async def go() -> List[Any]:
                sem = asyncio.Semaphore(self.concurrency)

                async def one(k: str, v: bytes) -> None:
                    async with sem:
                        await self.fs._pipe_file(self._p(k), v)

                return await asyncio.gather(*(one(k, v) for k, v in items.items()), return_exceptions=True)

            results = sync(self.fs.loop, go)
        else:
            def one_sync(kv: Tuple[str, bytes]) -> Optional[BaseException]:
                try:
                    self.fs.pipe_file(self._p(kv[0]), kv[1])
                except Exception as e:  # noqa: BLE001 - collected per key
                    return e
                return None

            with ThreadPoolExecutor(min(self.concurrency, len(items))) as pool:
                results = list(pool.map(one_sync, items.items()))
        return {k: r for k, r in zip(items, results) if isinstance(r, BaseException)}

    def delete(self, key: str) -> None:
        self.check_writable()

        def go() -> None:
            try:
                self.fs.rm_file(self._p(key))
            except FileNotFoundError:
                pass

        self._run("DELETE", key, go)

    def exists(self, key: str) -> bool:
        p = self._p(key)

        def go() -> bool:
            # not fs.isfile: it answers False for any failure, a 503 included
            try:
                return bool(self.fs.info(p).get("type") == "file")
            except FileNotFoundError:
                return False

        return self._run("HEAD", key, go)

    def size(self, key: str) -> int:
        return self._run("HEAD", key, lambda: int(self.fs.size(self._p(key))))

    def list(self, prefix: str = "") -> List[str]:
        base = self._p(prefix)

        def go() -> List[str]:
            self.fs.invalidate_cache()
            try:
                found: List[str] = self.fs.find(base)
            except FileNotFoundError:
                return []
            return found

        found = self._run("LIST", prefix, go)
        root = self.path.strip("/") + "/"
        out = []
        for p in found:
            p = p.strip("/")
            if p.startswith(root):
                out.append(p[len(root):])
        return sorted(out)

    def delete_prefix(self, prefix: str) -> None:
        self.check_writable()
        keys = self.list(prefix)
        if keys:
            paths = [self._p(k) for k in keys]

            def go() -> None:
                try:
                    self.fs.rm(paths)
                except FileNotFoundError:
                    pass

            self._run("DELETE", prefix, go)
        self.fs.invalidate_cache()

    def clear(self) -> None:
        self.delete_prefix("")

    # -- conditional writes (S3 and Azure natively; the base class emulates the rest) --------
    # A conditional write whose answer was lost (a reset, a timeout, a 5xx after the store
    # applied it) is ambiguous: its retry then loses to the first attempt's own write. Retries
    # happen below this layer too (aiohttp sends a PUT again, unseen, when a kept-alive
    # connection drops), so every lost condition reads the object back: holding exactly the
    # bytes this call wrote means the write happened (a lock create must not report "taken by
    # someone else", a version-tree update must not be applied twice).
    def get_versioned(self, key: str) -> Tuple[bytes, str]:
        if self._conditional is None:
            return super().get_versioned(key)
        cond = self._conditional
        return self._run("GET", key, lambda: cond.get(self._p(key)))

    def _conditional_put(self, cond: _ConditionalWriter, key: str, value: bytes, version: Optional[str]) -> bool:
        self.check_writable()
        p = self._p(key)
        data = bytes(value)

        def go() -> bool:
            if cond.put(p, data, version):
                return True
            try:
                held, _ = cond.get(p)
            except FileNotFoundError:
                return False
            if held == data:
                logger.info("conditional PUT %r under %r: an earlier attempt's write landed", key, self.url)
            return held == data

        try:
            return self._run("conditional PUT", key, go)
        finally:
            self.fs.invalidate_cache(p)

    def set_if_absent(self, key: str, value: bytes) -> bool:
        if self._conditional is None:
            return super().set_if_absent(key, value)
        return self._conditional_put(self._conditional, key, value, None)

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        if self._conditional is None:
            return super().set_if_match(key, value, version)
        return self._conditional_put(self._conditional, key, value, version)

    def delete_if_match(self, key: str, version: str) -> bool:
        if self._conditional is None:
            return super().delete_if_match(key, version)
        self.check_writable()
        cond = self._conditional
        p = self._p(key)

        def go() -> bool:
            if cond.delete(p, version):
                return True
            # lost, and gone: an attempt of this call whose answer was lost deleted it (only
            # the holder of `version` deletes it; either way that version is gone)
            try:
                cond.get(p)
            except FileNotFoundError:
                return True
            return False

        try:
            return self._run("conditional DELETE", key, go)
        finally:
            self.fs.invalidate_cache(p)


def _error_code(exc: BaseException) -> str:
    """The service's error code of an exception, or of the one it was raised from."""
    e: Optional[BaseException] = exc
    while e is not None:
        resp = getattr(e, "response", None)
        if isinstance(resp, dict):
            err = resp.get("Error", {})
            return str(err.get("Code", "")) or str(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        code = getattr(e, "status_code", None)
        if code is not None:
            return str(code)
        e = e.__cause__ or e.__context__
    return ""


class _S3Conditional:
    """If-None-Match / If-Match on PUT, with the ETag as the version. A condition that fails
    answers 412; a conditional write racing another one on the same key may answer 409
    (ConditionalRequestConflict): both mean "not written"."""

    _LOST = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")

    def __init__(self, fs: Any):
        self.fs = fs

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        from fsspec.asyn import sync

        result: T = sync(self.fs.loop, fn, *args, **kwargs)
        return result

    def get(self, path: str) -> Tuple[bytes, str]:
        bucket, key, _ = self.fs.split_path(path)

        async def go() -> Tuple[bytes, str]:
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            body = resp["Body"]
            try:
                data = await body.read()
            finally:
                body.close()
            return data, str(resp["ETag"])

        return self._run(go)

    def put(self, path: str, data: bytes, version: Optional[str]) -> bool:
        bucket, key, _ = self.fs.split_path(path)
        cond = {"IfNoneMatch": "*"} if version is None else {"IfMatch": version}
        try:
            self._run(self.fs._call_s3, "put_object", Bucket=bucket, Key=key, Body=data, **cond)
        except FileNotFoundError:
            return False  # If-Match on a key deleted meanwhile
        except Exception as e:  # noqa: BLE001
            if isinstance(e, FileExistsError) or _error_code(e) in self._LOST:
                return False
            raise
        return True

    def delete(self, path: str, version: str) -> bool:
        # DeleteObject's If-Match is not honoured everywhere (moto ignores it): compare, then
        # delete. Only a lock's holder deletes it, so the window costs at most a lock another
        # writer took over from this (expired) holder in between; docs/version_control.md.
        try:
            _, cur = self.get(path)
        except FileNotFoundError:
            return False
        if cur != version:
            return False
        bucket, key, _ = self.fs.split_path(path)
        self._run(self.fs._call_s3, "delete_object", Bucket=bucket, Key=key)
        return True


class _AzureConditional:
    """Blob uploads with If-None-Match: * (overwrite=False) or If-Match: <etag>."""

    def __init__(self, fs: Any):
        self.fs = fs

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        from fsspec.asyn import sync

        result: T = sync(self.fs.loop, fn, *args, **kwargs)
        return result

    def _split(self, path: str) -> Tuple[str, str]:
        container, blob, _ = self.fs.split_path(path)
        return container, blob

    def get(self, path: str) -> Tuple[bytes, str]:
        from azure.core.exceptions import ResourceNotFoundError

        container, blob = self._split(path)

        async def go() -> Tuple[bytes, str]:
            async with self.fs.service_client.get_blob_client(container, blob) as bc:
                stream = await bc.download_blob()
                data = await stream.readall()
                return data, str(stream.properties.etag)

        try:
            return self._run(go)
        except ResourceNotFoundError as e:
            raise FileNotFoundError(path) from e

    def put(self, path: str, data: bytes, version: Optional[str]) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        container, blob = self._split(path)

        async def go() -> None:
            async with self.fs.service_client.get_blob_client(container, blob) as bc:
                if version is None:
                    await bc.upload_blob(data, overwrite=False)
                else:
                    await bc.upload_blob(data, overwrite=True, etag=version, match_condition=MatchConditions.IfNotModified)

        try:
            self._run(go)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        except Exception as e:  # noqa: BLE001
            if _error_code(e) in ("409", "412"):
                return False
            raise
        return True

    def delete(self, path: str, version: str) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        container, blob = self._split(path)

        async def go() -> None:
            async with self.fs.service_client.get_blob_client(container, blob) as bc:
                await bc.delete_blob(etag=version, match_condition=MatchConditions.IfNotModified)

        try:
            self._run(go)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True


class _ConditionalWriter(Protocol):
    """Conditional PUT and DELETE of one object store's SDK, the object's ETag as version."""

    def get(self, path: str) -> Tuple[bytes, str]: ...

    def put(self, path: str, data: bytes, version: Optional[str]) -> bool: ...

    def delete(self, path: str, version: str) -> bool: ...


def _conditional_writer(protocol: str, fs: Any) -> Optional[_ConditionalWriter]:
    if protocol in ("s3", "s3a") and hasattr(fs, "_call_s3"):
        return _S3Conditional(fs)
    if protocol in ("az", "abfs", "abfss") and hasattr(fs, "service_client"):
        return _AzureConditional(fs)
    return None
