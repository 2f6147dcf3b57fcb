"""Object stores and any other fsspec filesystem (s3, gcs, azure, http...)."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lakeformat.errors import KeyNotFoundInStorageError, StorageError
from lakeformat.storage.base import StorageProvider

logger = logging.getLogger(__name__)

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
    if "response_checksum_validation" in getattr(Config, "OPTION_DEFAULTS", {}):
        config = dict(opts.get("config_kwargs") or {})
        config.setdefault("response_checksum_validation", "when_required")
        opts["config_kwargs"] = config
    return opts


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


class FsspecStorage(StorageProvider):
    concurrency = 16

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None, read_only: bool = False):
        import fsspec

        self.url = url.rstrip("/")
        self.read_only = read_only
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        if protocol in ("s3", "s3a"):
            storage_options = _s3_read_defaults(storage_options)
        try:
            self.fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        except ImportError as e:
            raise StorageError(f"No filesystem for {protocol!r}: {e}. Install the matching fsspec package.") from e
        self.path = path.rstrip("/")
        self.root = self.url
        self._whole = _whole_object_kwargs(self.fs)
        self.protocol = protocol
        self._conditional = _conditional_writer(protocol, self.fs)
        # GCS (its emulator ignores ifGenerationMatch) and other filesystems: the base class
        # emulates conditional writes (see StorageProvider)
        self.conditional_writes = self._conditional is not None

    def _p(self, key: str) -> str:
        return f"{self.path}/{key}" if key else self.path

    def _wrap(self, key: str, exc: Exception) -> Exception:
        if isinstance(exc, (FileNotFoundError, KeyError)):
            return KeyNotFoundInStorageError(key)
        return StorageError(f"Storage request for {key!r} under {self.url!r} failed: {type(exc).__name__}: {exc}")

    def get(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._p(key), **self._whole)
        except Exception as e:  # noqa: BLE001 - every backend raises its own types
            raise self._wrap(key, e) from e

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        try:
            return self.fs.cat_file(self._p(key), start=start, end=end)
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e

    def get_ranges(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> List[bytes]:
        if not len(starts):
            return []
        p = self._p(key)
        try:
            # async filesystems send these concurrently
            got = self.fs.cat_ranges([p] * len(starts), [int(a) for a in starts], [int(b) for b in ends], on_error="raise")
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e
        return list(got)

    def get_many(self, keys: Sequence[str], missing_ok: bool = False) -> Dict[str, Optional[bytes]]:
        keys = list(keys)
        if not keys:
            return {}
        paths = [self._p(k) for k in keys]
        try:
            # async filesystems (s3, gcs, azure) send these concurrently in one event loop
            got = self.fs.cat_ranges(paths, None, None, on_error="return", **self._whole)
        except Exception as e:  # noqa: BLE001
            raise self._wrap(keys[0], e) from e
        out: Dict[str, Optional[bytes]] = {}
        for k, v in zip(keys, got):
            if isinstance(v, Exception) or v is None:
                if missing_ok and (v is None or isinstance(v, (FileNotFoundError, KeyError))):
                    out[k] = None
                    continue
                raise self._wrap(k, v if isinstance(v, Exception) else FileNotFoundError(k))
            out[k] = v
        return out

    def set(self, key: str, value: bytes) -> None:
        self.check_writable()
        try:
            # one PUT: object stores make it visible whole or not at all
            self.fs.pipe_file(self._p(key), bytes(value))
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e

    def set_many(self, items: Dict[str, bytes]) -> None:
        self.check_writable()
        if not items:
            return
        try:
            self.fs.pipe({self._p(k): bytes(v) for k, v in items.items()})
        except Exception as e:  # noqa: BLE001
            raise self._wrap(next(iter(items)), e) from e

    def delete(self, key: str) -> None:
        self.check_writable()
        try:
            self.fs.rm_file(self._p(key))
        except FileNotFoundError:
            pass
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.isfile(self._p(key)))
        except FileNotFoundError:
            return False
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self._p(key)))
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e

    def list(self, prefix: str = "") -> List[str]:
        base = self._p(prefix)
        try:
            self.fs.invalidate_cache()
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        except Exception as e:  # noqa: BLE001
            raise self._wrap(prefix, e) from e
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
            try:
                self.fs.rm([self._p(k) for k in keys])
            except FileNotFoundError:
                pass
            except Exception as e:  # noqa: BLE001
                raise self._wrap(prefix, e) from e
        self.fs.invalidate_cache()

    def clear(self) -> None:
        self.delete_prefix("")

    # -- conditional writes (S3 and Azure natively; the base class emulates the rest) --------
    def get_versioned(self, key: str) -> Tuple[bytes, str]:
        if self._conditional is None:
            return super().get_versioned(key)
        try:
            return self._conditional.get(self._p(key))
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e

    def set_if_absent(self, key: str, value: bytes) -> bool:
        if self._conditional is None:
            return super().set_if_absent(key, value)
        self.check_writable()
        try:
            return self._conditional.put(self._p(key), bytes(value), None)
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e
        finally:
            self.fs.invalidate_cache(self._p(key))

    def set_if_match(self, key: str, value: bytes, version: str) -> bool:
        if self._conditional is None:
            return super().set_if_match(key, value, version)
        self.check_writable()
        try:
            return self._conditional.put(self._p(key), bytes(value), version)
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e
        finally:
            self.fs.invalidate_cache(self._p(key))

    def delete_if_match(self, key: str, version: str) -> bool:
        if self._conditional is None:
            return super().delete_if_match(key, version)
        self.check_writable()
        try:
            return self._conditional.delete(self._p(key), version)
        except Exception as e:  # noqa: BLE001
            raise self._wrap(key, e) from e
        finally:
            self.fs.invalidate_cache(self._p(key))


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

    def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, fn, *args, **kwargs)

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

    def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, fn, *args, **kwargs)

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


def _conditional_writer(protocol: str, fs: Any) -> Any:
    if protocol in ("s3", "s3a") and hasattr(fs, "_call_s3"):
        return _S3Conditional(fs)
    if protocol in ("az", "abfs", "abfss") and hasattr(fs, "service_client"):
        return _AzureConditional(fs)
    return None
