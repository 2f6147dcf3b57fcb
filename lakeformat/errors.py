"""Every error lakeformat raises. One root, `LakeFormatError`; each leaf also subclasses the
builtin a caller would naturally catch (a missing dataset is a `FileNotFoundError`, a bad
sample a `ValueError` or `TypeError`)."""
from __future__ import annotations

from typing import Iterable, Mapping, Optional


class LakeFormatError(Exception):
    """Root of every lakeformat error."""


# --- datasets and storage -------------------------------------------------------------
class DatasetNotFoundError(LakeFormatError, FileNotFoundError):
    """No dataset at the given URL."""


class NotADatasetError(LakeFormatError, ValueError):
    """The location holds files, but not a dataset."""


class DatasetExistsError(LakeFormatError, FileExistsError):
    """A dataset already exists where a new one was asked for."""


class UnsupportedFormatVersionError(LakeFormatError, ValueError):
    """The dataset was written by a newer, unknown version of the format."""


class StorageError(LakeFormatError, OSError):
    """The storage backend failed (network, permissions, missing bucket)."""


class TransientStorageError(StorageError):
    """A storage request kept failing in a way that may pass (5xx, throttling, timeouts,
    resets, short bodies) after every retry, or could not be retried safely."""


class KeyNotFoundInStorageError(LakeFormatError, KeyError):
    """A key is not in the storage."""


class ReadOnlyError(LakeFormatError, PermissionError):
    """A write was attempted on a read-only dataset or an old commit."""


class CorruptDataError(LakeFormatError, ValueError):
    """Bytes at rest do not parse, or do not match their checksum (a damaged chunk, encoder
    or meta). Reads name the tensor, the storage key and the sample."""

    def __init__(self, message: str, key: Optional[str] = None, tensor: Optional[str] = None, sample: Optional[int] = None):
        where = []
        if tensor is not None:
            where.append(f"tensor {tensor!r}")
        if sample is not None:
            where.append(f"sample {sample}")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(prefix + message + (f" (key {key!r})" if key else ""))
        self.key = key
        self.tensor = tensor
        self.sample = sample
        self.reason = message


# --- tensors and samples ----------------------------------------------------------------
class TensorDoesNotExistError(LakeFormatError, KeyError):
    def __init__(self, name: str):
        super().__init__(f"Tensor {name!r} does not exist.")
        self.name = name

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class TensorAlreadyExistsError(LakeFormatError, ValueError):
    def __init__(self, name: str):
        super().__init__(f"Tensor or group {name!r} already exists.")
        self.name = name


class InvalidTensorNameError(LakeFormatError, ValueError):
    pass


class HtypeError(LakeFormatError, ValueError):
    """An htype, dtype or compression option that does not fit."""


class SampleError(LakeFormatError, ValueError):
    """A sample that cannot be stored in a tensor. Names the tensor and the sample index."""

    def __init__(self, message: str, tensor: Optional[str] = None, index: Optional[int] = None):
        where = []
        if tensor is not None:
            where.append(f"tensor {tensor!r}")
        if index is not None:
            where.append(f"sample {index}")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(prefix + message)
        self.tensor = tensor
        self.index = index
        self.reason = message


class SampleDtypeError(SampleError, TypeError):
    """The sample's dtype cannot be cast safely to the tensor's dtype."""


class SampleShapeError(SampleError):
    """The sample's rank or shape does not fit the tensor."""


class HtypeViolationError(SampleError):
    """The sample breaks a rule of the tensor's htype (a bbox without 4 coordinates...)."""


class SampleDecodeError(SampleError):
    """Compressed sample bytes (png, jpeg) could not be decoded."""


class CorruptSampleError(CorruptDataError, SampleDecodeError):
    """Stored compressed sample bytes that do not decode: damage at rest, named like every
    `CorruptDataError` (tensor, key, sample; `index` is the sample too)."""

    def __init__(self, message: str, key: Optional[str] = None, tensor: Optional[str] = None, sample: Optional[int] = None):
        CorruptDataError.__init__(self, message, key, tensor, sample)
        self.index = sample


class DynamicShapeError(LakeFormatError, ValueError):
    """`.numpy()` on samples of different shapes; use `aslist=True`."""


class IndexOutOfRangeError(LakeFormatError, IndexError):
    pass


class LinkError(LakeFormatError, OSError):
    """A linked sample could not be fetched or decoded."""


class CredsKeyError(LakeFormatError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


# --- version control ----------------------------------------------------------------------
class VersionControlError(LakeFormatError, ValueError):
    pass


class CheckoutError(VersionControlError):
    pass


class CommitError(VersionControlError):
    pass


class EmptyCommitError(CommitError):
    pass


class MergeError(VersionControlError):
    pass


class MergeConflictError(MergeError):
    def __init__(self, conflicts: Mapping[str, Iterable[int]]):
        self.conflicts = conflicts
        details = "; ".join(f"{t}: samples {sorted(idx)[:20]}" for t, idx in conflicts.items())
        super().__init__(
            "Merge conflict: the same samples changed on both sides. "
            f"{details}. Pass conflict_resolution='ours' or 'theirs'."
        )


class CommitConflictError(CommitError):
    """A commit operation was prepared against a version of its branch that is no longer
    the branch's state (another write landed meanwhile)."""

    def __init__(self, branch: Optional[str], read_version: str, current_version: str):
        super().__init__(
            f"Branch {branch!r} moved since the operation read it (read version {read_version}, now "
            f"{current_version}): read the branch again (read_version) and retry the operation."
        )
        self.branch = branch
        self.read_version = read_version
        self.current_version = current_version


class LockedError(LakeFormatError, PermissionError):
    """Another writer holds the lock of this branch."""


class DuplicateIndexError(LakeFormatError, ValueError):
    """An index given twice where each must be distinct (a bulk pop), as deeplake's ValueError."""
