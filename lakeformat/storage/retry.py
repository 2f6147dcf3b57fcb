"""Retries of object-store requests: which failures may pass, and how long to wait.

One layer owns retries. `FsspecStorage` switches off the ones s3fs/botocore and the Azure
SDK would add underneath (their defaults stack up to 25 attempts on S3, and wait 15 s before
Azure's first retry) and runs each request under a `RetryPolicy`: exponential backoff with
full jitter, every retry logged on the ``lakeformat.storage.retry`` logger. Only requests that
may run twice are retried blindly (reads, listings, whole-object PUTs, deletes); conditional
writes are retried with their ambiguity resolved by the store (see `FsspecStorage`).
"""
from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Set, Tuple, TypeVar, Union

from lakeformat.errors import StorageError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: exception class names (anywhere in the MRO) of transport failures that may pass: read and
#: connect timeouts, resets, bodies shorter than their Content-Length (botocore, aiohttp,
#: azure-core, fsspec); matched by name so that no backend has to be importable
_TRANSIENT_CLASS_NAMES = frozenset({
    "ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError", "ConnectionClosedError",
    "IncompleteReadError", "ResponseStreamingError", "HTTPClientError", "ResponseParserError",
    "ClientPayloadError", "ServerDisconnectedError", "ClientOSError", "ClientConnectionError",
    "ServerTimeoutError", "SocketTimeoutError", "ContentLengthError", "TransferEncodingError",
    "FSTimeoutError", "ServiceRequestError", "ServiceResponseError", "IncompleteRead",
    "ProtocolError", "ShortReadError",
})
#: service error codes that mean "try again" (S3 and Azure spell them like this)
_TRANSIENT_CODES = frozenset({
    "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "ServerBusy", "OperationTimedOut",
    "InternalServerError",
})


class ShortReadError(StorageError):
    """A body shorter than what was asked for and what the object holds (a truncated answer)."""


def _status_and_code(exc: BaseException) -> Tuple[Optional[int], str]:
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):  # botocore ClientError
        err = resp.get("Error", {}) or {}
        status = (resp.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        code = str(err.get("Code", ""))
        if status is None and code.isdigit():
            status = int(code)
        return status, code
    status = getattr(exc, "status_code", None)  # azure HttpResponseError
    if status is None:
        status = getattr(exc, "status", None)  # aiohttp ClientResponseError
    code = getattr(exc, "error_code", None) or ""
    return (status if isinstance(status, int) else None), str(code)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: Set[int] = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen and len(seen) < 16:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) is a failure that may pass on a
    retry: a 5xx or 429 answer, throttling, a timeout, a reset or a truncated body. A missing
    key, a refused permission or any other 4xx is not."""
    for e in _chain(exc):
        if isinstance(e, (FileNotFoundError, KeyError, PermissionError, FileExistsError)):
            return False
        status, code = _status_and_code(e)
        if status is not None or code:
            return code in _TRANSIENT_CODES or (status is not None and (status >= 500 or status in (408, 429)))
        if isinstance(e, (TimeoutError, ConnectionError)):
            return True
        if any(c.__name__ in _TRANSIENT_CLASS_NAMES for c in type(e).__mro__):
            return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a request that failed transiently is sent again.

    ``attempts`` counts every try (1: no retry); the pause before retry ``k`` (1-based) is
    uniform in [0, min(max_delay_s, base_delay_s * 2 ** (k - 1))] ("full jitter": writers that
    failed together do not retry together).

    >>> RetryPolicy(attempts=3, base_delay_s=0.0).run(lambda: 42, "a read")
    42
    """

    attempts: int = 5
    base_delay_s: float = 0.1
    max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if int(self.attempts) < 1:
            raise StorageError(f"RetryPolicy.attempts must be at least 1, got {self.attempts!r}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise StorageError(f"RetryPolicy delays must not be negative, got {self.base_delay_s!r}, {self.max_delay_s!r}")

    @classmethod
    def from_env(cls, default_attempts: Optional[int] = None) -> "RetryPolicy":
        """The policy of ``LAKEFORMAT_STORAGE_RETRIES`` (attempts) and
        ``LAKEFORMAT_STORAGE_RETRY_BASE_S`` (base delay), else the defaults."""
        try:
            attempts = int(os.environ.get("LAKEFORMAT_STORAGE_RETRIES", default_attempts or cls.attempts))
            base = float(os.environ.get("LAKEFORMAT_STORAGE_RETRY_BASE_S", cls.base_delay_s))
        except ValueError as e:
            raise StorageError(f"LAKEFORMAT_STORAGE_RETRIES / LAKEFORMAT_STORAGE_RETRY_BASE_S: {e}") from e
        return cls(attempts=attempts, base_delay_s=base)

    @classmethod
    def coerce(cls, value: Union[None, int, Mapping[str, Any], "RetryPolicy"],
               default_attempts: Optional[int] = None) -> "RetryPolicy":
        """A policy from a policy, an attempt count, a dict of its fields, or None (env)."""
        if value is None:
            return cls.from_env(default_attempts)
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, bool):
            raise StorageError(f"retry: expected a RetryPolicy, an int or a dict, got {value!r}")
        if isinstance(value, int):
            return cls(attempts=value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"attempts", "base_delay_s", "max_delay_s"}
            if unknown:
                raise StorageError(f"retry: unknown settings {sorted(unknown)}; known: attempts, base_delay_s, max_delay_s")
            return cls(**dict(value))
        raise StorageError(f"retry: expected a RetryPolicy, an int or a dict, got {type(value).__name__}")

    def to_dict(self) -> Dict[str, Any]:
        return {"attempts": self.attempts, "base_delay_s": self.base_delay_s, "max_delay_s": self.max_delay_s}

    def delay(self, retry: int) -> float:
        """The pause before retry number `retry` (1-based)."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)))

    def run(self, fn: Callable[[], T], what: str) -> T:
        """`fn()`, again after each transient failure while attempts remain; the last
        failure is raised as it came (the caller turns it into a typed error)."""
        for attempt in range(1, int(self.attempts) + 1):
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - classified below
                if attempt >= self.attempts or not is_transient(e):
                    raise
                pause = self.delay(attempt)
                logger.warning("%s failed (attempt %d of %d): %s: %s; retrying in %.3f s",
                               what, attempt, self.attempts, type(e).__name__, e, pause)
                time.sleep(pause)
        raise AssertionError("unreachable")  # the loop returns or raises
