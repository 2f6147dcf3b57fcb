"""Text and JSON samples as bytes: the tagged JSON that deeplake 3.x reads back (arrays, bytes,
samples), fast batch encodings (one join for ASCII text, native narrowing of NumPy str arrays,
orjson where its output decodes to what json.dumps' does) and `EncodedSamples`, pre-encoded
samples that `ds.extend` stores as given."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from lakeformat import _native
from lakeformat.core.sample import Sample


class JsonEncoder(json.JSONEncoder):
    """JSON with arrays and bytes, in the tagged form deeplake 3.x reads back."""

    def default(self, o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return {"_hub_custom_type": "ndarray", "data": base64.b64encode(o.tobytes()).decode(), "shape": o.shape, "dtype": o.dtype.str}
        if isinstance(o, (bytes, bytearray)):
            return {"_hub_custom_type": "bytes", "data": base64.b64encode(bytes(o)).decode()}
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, Sample):
            return {"_hub_custom_type": "Sample", "data": base64.b64encode(o.buffer).decode(), "compression": o.compression}
        return super().default(o)


def json_object_hook(obj: Dict[str, Any]) -> Any:
    kind = obj.get("_hub_custom_type")
    if kind == "ndarray":
        return np.frombuffer(base64.b64decode(obj["data"]), dtype=obj["dtype"]).reshape(obj["shape"])
    if kind == "bytes":
        return base64.b64decode(obj["data"])
    if kind == "Sample":
        return Sample(buffer=base64.b64decode(obj["data"]), compression=obj.get("compression"))
    return obj


def json_loads(data) -> Any:
    return json.loads(bytes(data).decode("utf-8"), object_hook=json_object_hook)


def encode_all_str(values: List[Any]):
    """All-str batches in one buffer: one join and one encode when the text is ASCII (the
    byte lengths are then the character lengths), else one encode per string."""
    try:
        joined = "".join(values)
    except TypeError:
        return None  # a null or a non-str: the per-sample path names it
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    data = joined.encode("utf-8")
    if len(data) == len(joined):
        return [data], lengths
    encoded = [v.encode("utf-8") for v in values]
    return [b"".join(encoded)], np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))


def encode_ascii_array(values: np.ndarray):
    """A NumPy str array of ASCII text in one buffer with no Python str per value (native
    narrowing of its UCS4 code points); None when some value is not ASCII."""
    n = len(values)
    if values.dtype.kind != "U" or n == 0 or values.dtype.itemsize == 0:
        return None
    width = values.dtype.itemsize // 4
    src = np.ascontiguousarray(values).view(np.uint32)
    out = np.empty(n * width, np.uint8)
    lengths = np.empty(n, np.int64)
    high, written = _native.narrow_ucs4(src, width, out, lengths)
    if high >= 128:
        return None
    return [memoryview(out)[:written]], lengths


@dataclass(frozen=True)
class EncodedSamples:
    """Text or JSON samples already encoded, for `ds.extend` without a Python object per
    sample: `data` holds every sample's UTF-8 bytes back to back, `sizes` each one's length
    and, for text, `nulls` (bool) marks null samples (size 0; a JSON null is the text "null").
    The bytes are stored as given: they must be what the serializer would write for the values.

    >>> import numpy as np
    >>> s = EncodedSamples(b"abcd", np.array([1, 3, 0]), nulls=np.array([False, False, True]))
    >>> len(s)
    3
    """

    data: Any
    sizes: np.ndarray
    nulls: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.sizes)


def json_samples(values: List[Any]) -> EncodedSamples:
    """JSON values encoded exactly as `ds.extend` stores them in a json tensor."""
    fast = orjson_all(values) if values else None
    if fast is None:
        parts = [json.dumps(v, cls=JsonEncoder, allow_nan=True).encode("utf-8") for v in values]
        fast = [b"".join(parts)], np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    return EncodedSamples(fast[0][0] if fast[0] else b"", fast[1])


try:
    import orjson as _orjson

    _ORJSON_OPTS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS | _orjson.OPT_PASSTHROUGH_SUBCLASS
except ImportError:  # orjson is optional: json.dumps below is the reference
    _orjson = None


def orjson_all(values: List[Any]):
    """JSON samples with orjson, decoding to exactly what json.dumps' text decodes to, as
    ([one buffer], sizes), or None (the batch then takes the json.dumps path). orjson turns
    NaN/Infinity into null, so a value whose text holds "null" is re-encoded with json.dumps;
    anything orjson would encode differently from json.dumps (numpy, bytes, datetimes,
    dataclasses, subclasses, non-str keys) raises here instead. Parts are joined every 1024
    samples: orjson's bytes carry spare capacity that would otherwise stay resident."""
    if _orjson is None:
        return None
    dumps, opts = _orjson.dumps, _ORJSON_OPTS

    def encode(v: Any) -> bytes:
        return dumps(v, option=opts)

    sizes = np.empty(len(values), dtype=np.int64)
    joined: List[bytes] = []
    for start in range(0, len(values), 1024):
        part = values[start : start + 1024]
        try:
            out = list(map(encode, part))
        except TypeError:
            return None
        data = b"".join(out)
        if b"null" in data:
            out = [b if b"null" not in b or v is None else json.dumps(v, cls=JsonEncoder, allow_nan=True).encode("utf-8")
                   for v, b in zip(part, out)]
            data = b"".join(out)
        sizes[start : start + len(out)] = np.fromiter(map(len, out), dtype=np.int64, count=len(out))
        joined.append(data)
    return [b"".join(joined)], sizes
