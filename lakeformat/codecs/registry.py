"""Codec objects: one frozen value per compression the format names, found by name.

A byte codec (``Lz4``, ``Zstd``, and ``Uncompressed`` for a meta's ``None``) turns bytes into
bytes; an image codec (``Png``, ``Jpeg``) turns an image array into a file's bytes and back.
The engine asks ``get_codec(meta.chunk_compression)`` once and calls its methods instead of
branching on the name. The module functions (``compress_bytes``, ``decompress_image`` ...)
are what these call.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Optional, Union

import numpy as np

from lakeformat.codecs.bytes_codecs import (
    compress_bytes,
    compress_parts,
    decoded_size,
    decompress_bytes,
    decompress_into,
)
from lakeformat.codecs.image_codecs import compress_image, decompress_image
from lakeformat.errors import LakeFormatError

__all__ = ["CODECS", "ByteCodec", "Codec", "Jpeg", "Lz4", "Png", "Uncompressed", "UnknownCodecError", "Zstd", "get_codec", "is_image_codec"]

Buffer = Any  # bytes, bytearray, memoryview or a contiguous array


class UnknownCodecError(LakeFormatError, ValueError):
    """A compression name no codec answers to."""


@dataclass(frozen=True)
class Codec:
    """What every codec answers: its name, and whether it codes bytes or images."""

    name: ClassVar[str] = ""
    is_image: ClassVar[bool] = False

    def encode(self, data: Buffer) -> bytes:
        raise NotImplementedError

    def decode(self, data: Buffer) -> Union[bytes, memoryview, np.ndarray]:
        raise NotImplementedError


@dataclass(frozen=True)
class ByteCodec(Codec):
    level: Optional[int] = None

    def encode(self, data: Buffer) -> bytes:
        """Compress; empty input stays empty (as deeplake does)."""
        return compress_bytes(data, self.name or None, self.level)

    def encode_parts(self, data: Buffer) -> list[Any]:
        """``encode`` as buffers to write back to back (no joined copy where it can be)."""
        if not self.name:
            return [data]
        return compress_parts(data, self.name, self.level)

    def decode(self, data: Buffer) -> Union[bytes, memoryview]:
        result: Union[bytes, memoryview] = decompress_bytes(data, self.name or None)
        return result

    def decoded_size(self, data: Buffer) -> int:
        """The decompressed size the compressed buffer's header records."""
        if not self.name:
            return len(data)
        return decoded_size(data, self.name)

    def decode_into(self, data: Buffer, out: Buffer, partial: bool = False) -> None:
        """Decompress into the writable buffer ``out`` (its length: all of it, or with
        ``partial`` the first bytes)."""
        if not self.name:
            memoryview(out).cast("B")[:] = memoryview(data).cast("B")[: len(memoryview(out).cast("B"))]
            return
        decompress_into(data, self.name, out, partial)


@dataclass(frozen=True)
class Uncompressed(ByteCodec):
    """A meta's ``None``: bytes as they are."""

    name: ClassVar[str] = ""

    def decode(self, data: Buffer) -> memoryview:
        return memoryview(data)  # no copy: the bytes are the samples


@dataclass(frozen=True)
class Lz4(ByteCodec):
    """lz4 block with deeplake's 4-byte little-endian size prefix."""

    name: ClassVar[str] = "lz4"


@dataclass(frozen=True)
class Zstd(ByteCodec):
    """A zstd frame with its content size (our extension of the layout); ``level`` from the
    meta's ``zstd_level``."""

    name: ClassVar[str] = "zstd"


@dataclass(frozen=True)
class _ImageCodec(Codec):
    is_image: ClassVar[bool] = True

    def encode(self, data: Buffer) -> bytes:
        """An (H, W), (H, W, 1|3|4) image array as a file's bytes."""
        return compress_image(np.asarray(data), self.name)

    def decode(self, data: Buffer, shape: Optional[tuple[int, ...]] = None) -> np.ndarray:
        """The image array of a file's bytes (``shape``: the stored sample shape)."""
        return decompress_image(data, shape)


@dataclass(frozen=True)
class Png(_ImageCodec):
    name: ClassVar[str] = "png"


@dataclass(frozen=True)
class Jpeg(_ImageCodec):
    name: ClassVar[str] = "jpeg"


CODECS: Mapping[str, type[Codec]] = MappingProxyType({"lz4": Lz4, "zstd": Zstd, "png": Png, "jpeg": Jpeg})
_ALIASES = {"jpg": "jpeg"}
_UNCOMPRESSED = Uncompressed()
_DEFAULTS: dict[str, Codec] = {name: cls() for name, cls in CODECS.items()}


def get_codec(name: Optional[str], level: Optional[int] = None) -> Codec:
    """The codec a meta's compression name stands for (``None``: ``Uncompressed``);
    ``level`` applies to zstd."""
    if name is None:
        return _UNCOMPRESSED
    key = _ALIASES.get(name.lower(), name.lower())
    if key == "zstd" and level is not None:
        return Zstd(level=int(level))
    codec = _DEFAULTS.get(key)
    if codec is None:
        raise UnknownCodecError(f"unknown compression {name!r}; known: {', '.join(CODECS)} or None")
    return codec


def is_image_codec(name: Optional[str]) -> bool:
    """Whether ``name`` is an image codec's (False for None and for names no codec has)."""
    if name is None:
        return False
    cls = CODECS.get(_ALIASES.get(name.lower(), name.lower()))
    return cls is not None and cls.is_image
