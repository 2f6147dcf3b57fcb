"""Codecs are pure functions of bytes (and arrays, for image codecs), found by name."""
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

SAMPLE_COMPRESSIONS = (None,) + BYTE_COMPRESSIONS + IMAGE_COMPRESSIONS
CHUNK_COMPRESSIONS = (None,) + BYTE_COMPRESSIONS + IMAGE_COMPRESSIONS

__all__ = [
    "BYTE_COMPRESSIONS",
    "IMAGE_COMPRESSIONS",
    "SAMPLE_COMPRESSIONS",
    "CHUNK_COMPRESSIONS",
    "compress_bytes",
    "decompress_bytes",
    "compress_image",
    "decompress_image",
    "image_shape",
    "sniff_image_format",
]
