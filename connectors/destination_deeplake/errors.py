"""Errors for the platform: AirbyteTracedException with a failure type, built lazily so that
the write path never imports airbyte_cdk (its import alone costs ~2 CPU-seconds) unless it fails."""
from __future__ import annotations

from lakeformat.errors import LakeFormatError  # light: the write path imports lakeformat anyway

CONFIG = "config_error"
SYSTEM = "system_error"
TRANSIENT = "transient_error"


class StagedFileError(LakeFormatError):
    """A file named by a record's `file_reference` cannot be landed. The message names the
    stream, the input line and the staged path (never the file's content)."""

    failure_type = SYSTEM

    def __init__(self, reason: str, *, stream: str, line: int | None, path: str | None):
        where = f"line {line}" if line is not None else "a record"
        super().__init__(f"Stream {stream!r}, input {where}: staged file {path!r} {reason}")
        self.stream = stream
        self.line = line
        self.path = path


class StagedFileMissingError(StagedFileError, FileNotFoundError):
    """The staged file is not there (the source did not stage it, or it was removed)."""

    failure_type = TRANSIENT  # a retry stages the file again


class StagedFileUnreadableError(StagedFileError, OSError):
    """The staged file exists but cannot be read, or holds another size than the record says."""

    failure_type = TRANSIENT


class StagedFileTooLargeError(StagedFileError, ValueError):
    """The staged file is larger than the config's `max_file_mb`."""

    failure_type = CONFIG  # the same file fails every retry until the limit is raised


class BadFileReferenceError(StagedFileError, ValueError):
    """A record's `file_reference` is not an object with a string `staging_file_url`."""


def traced(message: str, failure_type: str = SYSTEM, internal_message: str | None = None,
           exception: BaseException | None = None) -> Exception:
    """An `AirbyteTracedException(message, internal_message, failure_type)`."""
    from airbyte_cdk.models import FailureType
    from airbyte_cdk.utils.traced_exception import AirbyteTracedException

    return AirbyteTracedException(message=message, internal_message=internal_message or message,
                                  failure_type=FailureType(failure_type), exception=exception)


def is_traced(exc: BaseException) -> bool:
    return type(exc).__name__ == "AirbyteTracedException" and hasattr(exc, "failure_type")


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and the exceptions it was raised `from` (a storage error wraps the OS error)."""
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in out and len(out) < 16:
        out.append(e)
        e = e.__cause__
    return out


def failure_from(exc: BaseException, during: str) -> Exception:
    """Any error -> an AirbyteTracedException with the failure type the platform acts on:
    permissions are config errors; network and I/O errors and a branch locked by another writer
    are transient; a file where a folder must be (or the other way round) and every other
    error are system errors: they fail the same way on every retry."""
    if is_traced(exc):
        return exc  # type: ignore[return-value]
    if isinstance(exc, StagedFileError):
        return traced(str(exc), exc.failure_type, repr(exc), exc)
    from lakeformat.errors import LakeFormatError, LockedError, ReadOnlyError

    if isinstance(exc, LockedError):
        ft = TRANSIENT  # a killed writer's lock expires: a retry later goes through
    elif isinstance(exc, (PermissionError, ReadOnlyError)):
        ft = CONFIG
    elif any(isinstance(e, (NotADirectoryError, IsADirectoryError, FileExistsError)) for e in _chain(exc)):
        ft = SYSTEM  # the layout is in the way (also under a StorageError): a retry meets the same files
    elif any(isinstance(e, ImportError) for e in _chain(exc)):
        ft = CONFIG  # no fsspec package for the path's scheme: the config names a storage we cannot reach
    elif isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        ft = TRANSIENT
    elif isinstance(exc, LakeFormatError):
        ft = SYSTEM
    else:
        ft = SYSTEM
    return traced(f"Deep Lake destination failed during {during}: {type(exc).__name__}: {exc}", ft, repr(exc), exc)


def scrubbed_failure(exc: BaseException, during: str, secrets: list[str]) -> Exception:
    """`failure_from(exc)` with every known secret (the path URL's credentials, secret storage
    options) masked in its messages; the original exception is not attached, since its
    traceback would quote them again."""
    from connectors.redaction import scrub

    t = failure_from(exc, during)
    if not secrets:
        return t
    return traced(scrub(t.message or "", secrets), t.failure_type.value, scrub(t.internal_message or "", secrets))  # type: ignore[attr-defined]
