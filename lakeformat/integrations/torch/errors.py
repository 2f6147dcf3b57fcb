"""Loader errors, under lakeformat's one root."""
from __future__ import annotations

from typing import Optional

from lakeformat.errors import LakeFormatError


class LoaderError(LakeFormatError, RuntimeError):
    """A loader misuse: bad options, a state dict that does not fit, no process group."""


class SampleLoadError(LakeFormatError, RuntimeError):
    """A sample could not be loaded: its chunk is missing or corrupt, its bytes do not decode,
    or the transform raised. The message names the dataset sample index (and the tensor when
    known). It takes one message argument so that torch can re-raise it from a worker."""

    def __init__(self, message: str, index: Optional[int] = None, tensor: Optional[str] = None):
        super().__init__(message)
        self.index = index
        self.tensor = tensor
