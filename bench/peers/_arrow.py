"""Arrow-side helpers shared by the lance and parquet peers: NumPy <-> Arrow
columns and the PNG encode/decode those formats leave to the caller (Pillow)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
from PIL import Image

from _common import IMAGE_SHAPE, Columns

IMAGE_BYTES = int(np.prod(IMAGE_SHAPE))


def png_encode(images: np.ndarray) -> pa.Array:
    """Each image as PNG bytes (Pillow's default zlib level, as Deep Lake 3 uses)."""
    out = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        out.append(buf.getvalue())
    return pa.array(out, type=pa.binary())


def png_decode(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Decode every PNG into one preallocated uint8[N,128,128,3]."""
    out = np.empty((len(col),) + IMAGE_SHAPE, dtype=np.uint8)
    for i, b in enumerate(_iter_binary(col)):
        with Image.open(io.BytesIO(b)) as im:
            out[i] = np.asarray(im)
    return out


def _iter_binary(col):
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    for chunk in chunks:
        # memoryviews over Arrow's buffer, no per-row Python bytes copy.
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]
        data = memoryview(chunk.buffers()[2])
        for j in range(len(chunk)):
            yield data[offsets[j]:offsets[j + 1]]


def fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    """uint8[N,...] or float32[N,D] as fixed_size_list<dtype>[prod(...)] without a copy."""
    n = values.shape[0]
    width = int(np.prod(values.shape[1:]))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)


def fixed_binary(values: np.ndarray) -> pa.Array:
    """uint8[N,...] as fixed_size_binary(prod(...)) without a copy."""
    n = values.shape[0]
    width = int(np.prod(values.shape[1:]))
    buf = pa.py_buffer(np.ascontiguousarray(values).reshape(-1))
    return pa.Array.from_buffers(pa.binary(width), n, [None, buf])


def to_numpy_fixed(col: pa.Array | pa.ChunkedArray, dtype, item_shape: tuple[int, ...]) -> np.ndarray:
    """fixed_size_list or fixed_size_binary column -> ndarray[N, *item_shape]."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    width = int(np.prod(item_shape))
    parts = []
    for c in chunks:
        if pa.types.is_fixed_size_binary(c.type):
            raw = np.frombuffer(c.buffers()[1], dtype=np.uint8)
            parts.append(raw[c.offset * width:(c.offset + len(c)) * width].view(dtype))
        else:
            parts.append(c.flatten().to_numpy(zero_copy_only=False))
    flat = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return flat.reshape((-1,) + item_shape)


def to_numpy_plain(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Primitive or string column -> ndarray (strings as an object array of str)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.to_numpy(zero_copy_only=False)


def table_to_columns(tbl: pa.Table, workload: str) -> Columns:
    """Materialise every column of ``tbl`` as NumPy (images decoded)."""
    if workload == "tabular":
        return {k: to_numpy_plain(tbl.column(k)) for k in ("id", "value", "text", "label")}
    if workload == "embeddings":
        return {"embedding": to_numpy_fixed(tbl.column("embedding"), np.float32, (384,))}
    label = to_numpy_plain(tbl.column("label"))
    if workload == "images_png":
        return {"image": png_decode(tbl.column("image")), "label": label}
    return {"image": to_numpy_fixed(tbl.column("image"), np.uint8, IMAGE_SHAPE), "label": label}
