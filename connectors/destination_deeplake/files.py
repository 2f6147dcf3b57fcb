"""Files of Airbyte file-based sources: a RECORD's `file_reference` -> samples of file tensors.

A file-based source (S3, GCS, Azure Blob, SFTP, local files ...) whose stream is configured
with `include_files: true` copies each file to the destination's staging folder and sends a
RECORD whose `file_reference` names it (`staging_file_url`, `source_file_relative_path`,
`file_size_bytes`); the record's `data` holds the file's metadata (folder, name, dates ...),
which lands in the stream's ordinary tensors. The file itself lands by its content (magic
bytes, not its name):

===========================  ===========================================================
file                         tensors of its row
===========================  ===========================================================
PNG (8-bit L, RGB, RGBA)     `image_png`  (image, sample_compression png): the file's bytes
JPEG (L, RGB)                `image_jpeg` (image, sample_compression jpeg): the file's bytes
WebP, TIFF, and PNG / JPEG   `image_png`: the decoded pixels as 8-bit L, RGB or RGBA, png
of other modes (palette,     (lossless for those pixels; first frame only), and the file's
16-bit, CMYK ...)            own bytes in `file`, so that nothing is lost
anything else                `file`: its bytes (generic uint8, shape (n,)), or with
                             `non_image_files: link` a `link[generic]` to the staged path
===========================  ===========================================================

Every file row also has `file_path` (the source's relative path, text), `file_size` (bytes,
int64) and `file_type` (image/png, image/jpeg, image/webp, image/tiff, application/pdf or
application/octet-stream). A row of a tensor it does not use holds an empty sample; a row
without a file holds nulls in all six. The names get a suffix when a source field has one.

lakeformat (and so the format) keeps image samples compressed as png or jpeg only; deeplake
3.9.52 also knows webp and tiff, hence the conversion above rather than a third tensor.
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from connectors.destination_deeplake.errors import (
    BadFileReferenceError,
    StagedFileMissingError,
    StagedFileTooLargeError,
    StagedFileUnreadableError,
)

ROLE_PATH = "path"
ROLE_SIZE = "size"
ROLE_TYPE = "type"
ROLE_FILE = "file"
ROLE_PNG = "image_png"
ROLE_JPEG = "image_jpeg"
# role -> preferred tensor name
TENSOR_NAMES = {ROLE_PATH: "file_path", ROLE_SIZE: "file_size", ROLE_TYPE: "file_type",
                ROLE_PNG: "image_png", ROLE_JPEG: "image_jpeg", ROLE_FILE: "file"}
INFO_KEY = "airbyte_file"  # tensor info: which role a tensor plays

MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "tiff": "image/tiff",
               "pdf": "application/pdf"}
OCTET_STREAM = "application/octet-stream"
IMAGE_FORMATS = ("png", "jpeg", "webp", "tiff")
# PIL modes whose bytes an image tensor of that compression stores and decodes as they are
_AS_IS_MODES = {"png": ("L", "RGB", "RGBA"), "jpeg": ("L", "RGB")}
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def sniff_format(head: bytes) -> str | None:
    """The format of a file from its first bytes: png, jpeg, webp, tiff, pdf, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"%PDF-"):
        return "pdf"
    return None


@dataclass
class StagedFile:
    """One record's file, read and classified (see the module docstring)."""

    staged_path: str
    relative_path: str | None
    size: int
    media_type: str
    image_role: str | None = None  # ROLE_PNG / ROLE_JPEG, or None
    image: Any = None  # a Sample (the file's bytes as they are) or an array (converted pixels)
    original: bytes | None = None  # for a binary `file` tensor
    link: str | None = None  # for a link `file` tensor

    @property
    def memory_bytes(self) -> int:
        """Bytes this file holds in memory until its batch is written (for the flush bounds)."""
        n = len(self.original or b"")
        img = self.image
        if isinstance(img, np.ndarray):
            n += img.nbytes
        elif img is not None:
            n += len(img.buffer)
        return n


def _local_path(url: str) -> str:
    return url[len("file://"):] if url.startswith("file://") else url


def stage_file(ref: Any, *, stream: str, line: int | None, non_image_files: str, max_bytes: int) -> StagedFile:
    """Read and classify the file a `file_reference` names. Raises a `StagedFileError` (naming
    the stream, the input line and the path) when the reference is malformed, the file is
    missing, unreadable, of another size than the reference says, or over `max_bytes`."""
    if not isinstance(ref, Mapping) or not isinstance(ref.get("staging_file_url"), str) or not ref["staging_file_url"]:
        raise BadFileReferenceError("cannot be found: the record's file_reference has no string staging_file_url",
                                    stream=stream, line=line, path=None)
    url = ref["staging_file_url"]
    rel = ref.get("source_file_relative_path")
    rel = rel if isinstance(rel, str) else None
    declared = ref.get("file_size_bytes")
    path = _local_path(url)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise StagedFileMissingError("does not exist (was it staged on this machine, and kept until the write?)",
                                     stream=stream, line=line, path=url) from None
    except OSError as e:
        raise StagedFileUnreadableError(f"cannot be opened: {type(e).__name__}: {e.strerror or e}",
                                        stream=stream, line=line, path=url) from None
    with f:
        try:
            st = os.fstat(f.fileno())
            if not os.path.isfile(path):
                raise IsADirectoryError(path)
            size = st.st_size
            if size > max_bytes:
                raise StagedFileTooLargeError(f"has {size} bytes, over the limit max_file_mb = {max_bytes / 2**20:g} MiB",
                                              stream=stream, line=line, path=url)
            if isinstance(declared, int) and not isinstance(declared, bool) and declared != size:
                raise StagedFileUnreadableError(f"has {size} bytes but the record says {declared} (a partial copy?)",
                                                stream=stream, line=line, path=url)
            head = f.read(16)
            fmt = sniff_format(head)
            if fmt in IMAGE_FORMATS or non_image_files == "binary":
                data = head + f.read()
                if len(data) != size:
                    raise StagedFileUnreadableError(f"changed while it was read ({len(data)} of {size} bytes)",
                                                    stream=stream, line=line, path=url)
            else:
                data = None
        except OSError as e:
            if isinstance(e, StagedFileUnreadableError):
                raise
            raise StagedFileUnreadableError(f"cannot be read: {type(e).__name__}: {e.strerror or e}",
                                            stream=stream, line=line, path=url) from None
    out = StagedFile(url, rel, size, MEDIA_TYPES.get(fmt or "", OCTET_STREAM))
    link = os.path.abspath(path) if "://" not in url or url.startswith("file://") else url
    if fmt in IMAGE_FORMATS and data is not None:
        if _classify_image(out, data, fmt):
            if out.original is not None and non_image_files == "link":
                out.original, out.link = None, link  # a converted image's original: linked like other files
            return out
        out.media_type = OCTET_STREAM  # does not decode as the image it claims to be: a plain file
    if non_image_files == "link":
        out.link = link
    else:
        out.original = data if data is not None else b""
    return out


def _classify_image(out: StagedFile, data: bytes, fmt: str) -> bool:
    """Fill `out`'s image (as-is or converted); False when the bytes do not open as an image."""
    from PIL import Image, UnidentifiedImageError

    from lakeformat.core.sample import Sample

    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            if fmt in _AS_IS_MODES and mode in _AS_IS_MODES[fmt] and img.format == fmt.upper():
                img.verify()  # png: every chunk's CRC; a damaged file is caught here, not at read
                out.image_role = ROLE_PNG if fmt == "png" else ROLE_JPEG
                out.image = Sample(buffer=data, compression=fmt)
                return True
            img.load()
            if mode in ("L", "RGB", "RGBA"):
                conv = img
            elif mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info):
                conv = img.convert("RGBA")
            elif mode in ("1", "I;16", "I;16B", "I;16L", "I", "F"):
                conv = img.convert("L") if mode == "1" else Image.fromarray(_to_uint8(np.asarray(img)))
            else:
                conv = img.convert("RGB")
            arr = np.asarray(conv, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
    out.image_role = ROLE_PNG
    out.image = np.ascontiguousarray(arr)
    out.original = data  # the pixels were converted: the file's own bytes are kept too
    return True


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """A 16/32-bit or float gray image scaled into 0..255 (its original stays in `file`)."""
    a = a.astype(np.float64)
    lo, hi = float(np.nanmin(a)) if a.size else 0.0, float(np.nanmax(a)) if a.size else 0.0
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)
