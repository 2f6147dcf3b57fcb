"""Codecs: frozen codec objects found by name (``get_codec``), and the functions of bytes (and
arrays, for image codecs) they call."""
from lakeformat.codecs.bytes_codecs import (
    BYTE_COMPRESSIONS,
    compress_bytes,
    decompress_bytes,
)
from lakeformat.codecs.image_codecs import (
    IMAGE_COMPRESSIONS,
    compress_image,
    decompress_image,
    image_shape,
    sniff_image_format,
)
from lakeformat.codecs.registry import (
    CODECS,
    ByteCodec,
    Codec,
    Jpeg,
    Lz4,
    Png,
    Uncompressed,
    UnknownCodecError,
    Zstd,
    get_codec,
    is_image_codec,
)

SAMPLE_COMPRESSIONS = (None,) + BYTE_COMPRESSIONS + IMAGE_COMPRESSIONS
CHUNK_COMPRESSIONS = (None,) + BYTE_COMPRESSIONS + IMAGE_COMPRESSIONS

__all__ = [
    "BYTE_COMPRESSIONS",
    "CHUNK_COMPRESSIONS",
    "CODECS",
    "IMAGE_COMPRESSIONS",
    "SAMPLE_COMPRESSIONS",
    "ByteCodec",
    "Codec",
    "Jpeg",
    "Lz4",
    "Png",
    "Uncompressed",
    "UnknownCodecError",
    "Zstd",
    "compress_bytes",
    "compress_image",
    "decompress_bytes",
    "decompress_image",
    "get_codec",
    "image_shape",
    "is_image_codec",
    "sniff_image_format",
]
