"""Errors for the platform: AirbyteTracedException with a failure type, built lazily so that
the write path never imports airbyte_cdk (its import alone costs ~2 CPU-seconds) unless it fails."""
from __future__ import annotations

CONFIG = "config_error"
SYSTEM = "system_error"
TRANSIENT = "transient_error"


def traced(message: str, failure_type: str = SYSTEM, internal_message: str | None = None,
           exception: BaseException | None = None) -> Exception:
    """An `AirbyteTracedException(message, internal_message, failure_type)`."""
    from airbyte_cdk.models import FailureType
    from airbyte_cdk.utils.traced_exception import AirbyteTracedException

    return AirbyteTracedException(message=message, internal_message=internal_message or message,
                                  failure_type=FailureType(failure_type), exception=exception)


def is_traced(exc: BaseException) -> bool:
    return type(exc).__name__ == "AirbyteTracedException" and hasattr(exc, "failure_type")


def failure_from(exc: BaseException, during: str) -> Exception:
    """Any error -> an AirbyteTracedException with the failure type the platform acts on:
    permissions are config errors; I/O, network errors and a branch locked by another writer
    are transient; the rest are system errors."""
    if is_traced(exc):
        return exc  # type: ignore[return-value]
    from lakeformat.errors import LakeFormatError, LockedError, ReadOnlyError

    if isinstance(exc, LockedError):
        ft = TRANSIENT  # a killed writer's lock expires: a retry later goes through
    elif isinstance(exc, (PermissionError, ReadOnlyError)):
        ft = CONFIG
    elif isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        ft = TRANSIENT
    elif isinstance(exc, LakeFormatError):
        ft = SYSTEM
    else:
        ft = SYSTEM
    return traced(f"Deep Lake destination failed during {during}: {type(exc).__name__}: {exc}", ft, repr(exc), exc)
