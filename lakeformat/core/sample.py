"""Samples that are not plain arrays: files read with `lakeformat.read` (kept compressed when
the tensor's compression matches) and links made with `lakeformat.link`."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
import numpy.typing as npt

from lakeformat.codecs import decompress_image, image_shape, sniff_image_format
from lakeformat.errors import LinkError


class Sample:
    """A file's compressed bytes with lazily decoded pixels.

    >>> s = lakeformat.read("cat.png")      # doctest: +SKIP
    >>> ds.images.append(s)                  # stored as the same png bytes
    """

    def __init__(self, path: Optional[str] = None, buffer: Optional[bytes] = None, compression: Optional[str] = None, creds: Optional[Dict[str, Any]] = None, array: Optional[np.ndarray] = None):
        self.path = path
        self._buffer = buffer
        self._array = array
        self._creds = creds
        self._compression = compression

    @property
    def buffer(self) -> bytes:
        if self._buffer is None:
            if self.path is None:
                raise ValueError("Sample has neither a path nor bytes")
            self._buffer = fetch_bytes(self.path, self._creds)
        return self._buffer

    @property
    def compression(self) -> Optional[str]:
        if self._compression is None and self._array is None:
            self._compression = sniff_image_format(self.buffer)
            if self._compression is None and self.path:
                ext = os.path.splitext(self.path)[1].lower().lstrip(".")
                self._compression = {"jpg": "jpeg"}.get(ext, ext) or None
        return self._compression

    @property
    def shape(self) -> Tuple[int, ...]:
        if self._array is not None:
            return self._array.shape
        return image_shape(self.buffer)

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = decompress_image(self.buffer)
        return self._array

    def __array__(self, dtype: Optional[npt.DTypeLike] = None, copy: Optional[bool] = None) -> np.ndarray:
        a = self.array
        return a.astype(dtype) if dtype is not None else a

    def __repr__(self) -> str:
        return f"Sample(path={self.path!r}, compression={self._compression!r})"


class LinkedSample:
    """A URL stored in a `link[...]` tensor, fetched when read.

    >>> ds.create_tensor("img", htype="link[image]", sample_compression="png")  # doctest: +SKIP
    >>> ds.img.append(lakeformat.link("s3://bucket/cat.png", creds_key="my_s3"))  # doctest: +SKIP
    """

    def __init__(self, path: str, creds_key: Optional[str] = None):
        if not isinstance(path, str):
            raise TypeError(f"a link is a URL string, got {type(path).__name__}")
        self.path = path
        self.creds_key = creds_key

    def __repr__(self) -> str:
        return f"LinkedSample(path={self.path!r}, creds_key={self.creds_key!r})"


def read(path: str, verify: bool = False, creds: Optional[Dict[str, Any]] = None, compression: Optional[str] = None) -> Sample:
    """Read a file (local path or any fsspec URL) as a sample; its bytes are stored as they are
    when the tensor's sample compression matches the file's."""
    s = Sample(path=path, creds=creds, compression=compression)
    if verify:
        s.array  # noqa: B018 - decode now so that a broken file fails here
    return s


def link(path: str, creds_key: Optional[str] = None) -> LinkedSample:
    """A link to a file, for tensors of htype `link[...]`."""
    return LinkedSample(path, creds_key)


def fetch_bytes(url: str, creds: Optional[Dict[str, Any]] = None) -> bytes:
    """Whole object at `url` through fsspec (local paths, file://, s3, gcs, azure, http)."""
    try:
        if "://" not in url or url.startswith("file://"):
            p = url[len("file://"):] if url.startswith("file://") else url
            with open(os.path.expanduser(p), "rb") as f:
                return f.read()
        import fsspec

        from lakeformat.storage import protocol_of
        from lakeformat.storage.fsspec_store import storage_options_from_creds

        proto = protocol_of(url)
        if proto == "gcs":
            url = "gs://" + url.split("://", 1)[1]
            proto = "gs"
        fs, p = fsspec.core.url_to_fs(url, **storage_options_from_creds(proto, creds))
        data: bytes = fs.cat_file(p)
        return data
    except FileNotFoundError as e:
        raise LinkError(f"linked file {url!r} not found") from e
    except LinkError:
        raise
    except Exception as e:  # noqa: BLE001 - any backend error becomes one typed error
        raise LinkError(f"fetching {url!r} failed: {type(e).__name__}: {e}") from e
