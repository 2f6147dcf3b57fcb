"""Text and JSON samples as bytes: the tagged JSON that deeplake 3.x reads back (arrays, bytes,
samples), fast batch encodings (one join for ASCII text, native narrowing of NumPy str arrays,
orjson where its output decodes to what json.dumps' does) and `EncodedSamples`, pre-encoded
samples that `ds.extend` stores as given."""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

import numpy as np

from lakeformat import _native
from lakeformat.core.sample import Sample

if TYPE_CHECKING:
    from typing_extensions import Buffer

# a batch encoded as one buffer: ([the bytes], int64 byte length of each sample)
EncodedBatch = Tuple[List[Union[bytes, memoryview]], np.ndarray]


# The type tag of deeplake 3.x's tagged JSON, and the values its decoder acts on.
TYPE_TAG = "_hub_custom_type"
TAGGED_KINDS = ("ndarray", "bytes", "Sample")
_TAG_BYTES = TYPE_TAG.encode()
# A user dict whose tag would be decoded (its value is one of TAGGED_KINDS) is stored with the
# key escaped as "$_hub_custom_type"; a key of the escaped form ("$", "$$", ... before the tag)
# gets one more "$", always, so that reading removes exactly one (docs/format.md, json).
_ESCAPED_TAG = re.compile(r"^\$+_hub_custom_type$")


def escape_json(value: Any) -> Any:
    """A JSON value in which no user dict reads as a tagged value: each dict's tag key whose
    value deeplake would decode becomes "$_hub_custom_type", and each key already of the form
    "$..$_hub_custom_type" gains one more "$" (`unescape_json_dict` undoes both). Other values
    (arrays, bytes, samples) are left for the encoder to tag.

    >>> escape_json({"_hub_custom_type": "bytes", "data": "aGk="})
    {'$_hub_custom_type': 'bytes', 'data': 'aGk='}
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and (k == TYPE_TAG and isinstance(v, str) and v in TAGGED_KINDS or _ESCAPED_TAG.match(k)):
                k = "$" + k
            out[k] = escape_json(v)
        return out
    if isinstance(value, (list, tuple)):
        return [escape_json(v) for v in value]
    return value


def unescape_json_dict(obj: Dict[str, Any]) -> Dict[str, Any]:
    """One decoded dict with its escaped tag keys restored (the inverse of `escape_json`)."""
    if not any(isinstance(k, str) and k[:1] == "$" and _ESCAPED_TAG.match(k) for k in obj):
        return obj
    return {k[1:] if isinstance(k, str) and _ESCAPED_TAG.match(k) else k: v for k, v in obj.items()}


class JsonEncoder(json.JSONEncoder):
    """JSON with arrays and bytes, in the tagged form deeplake 3.x reads back; user dicts that
    carry the tag themselves are escaped (`escape_json`) so that they read back as written."""

    def encode(self, o: Any) -> str:
        text = super().encode(o)
        if TYPE_TAG in text and _needs_escape(o):
            text = super().encode(escape_json(o))
        return text

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


def _needs_escape(value: Any) -> bool:
    """Whether some dict inside `value` has a key that `escape_json` changes."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and (k == TYPE_TAG and isinstance(v, str) and v in TAGGED_KINDS or _ESCAPED_TAG.match(k)):
                return True
            if isinstance(v, (dict, list, tuple)) and _needs_escape(v):
                return True
        return False
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, (dict, list, tuple)) and _needs_escape(v) for v in value)
    return False


def json_object_hook(obj: Dict[str, Any]) -> Any:
    """A decoded dict: a tagged value (array, bytes, sample) or the user's dict. A tagged dict
    that does not decode (data written before tags were escaped, or by another writer) is
    returned as it is rather than failing the whole read."""
    kind = obj.get(TYPE_TAG)
    if isinstance(kind, str) and kind in TAGGED_KINDS:
        try:
            if kind == "ndarray":
                dtype = np.dtype(obj["dtype"])
                if dtype.hasobject:
                    raise ValueError("object arrays are never stored")
                return np.frombuffer(base64.b64decode(obj["data"], validate=True), dtype=dtype).reshape(obj["shape"])
            if kind == "bytes":
                return base64.b64decode(obj["data"], validate=True)
            return Sample(buffer=base64.b64decode(obj["data"], validate=True), compression=obj.get("compression"))
        except (KeyError, TypeError, ValueError, binascii.Error):
            return obj
    return unescape_json_dict(obj)


def json_loads(data: Buffer) -> Any:
    """One stored json sample, decoded: tagged values become arrays, bytes and samples, and
    escaped user dicts read back as written."""
    raw = bytes(data)
    if _TAG_BYTES not in raw:
        return json.loads(raw.decode("utf-8"))  # no tag anywhere: no hook to run per dict
    return json.loads(raw.decode("utf-8"), object_hook=json_object_hook)


def encode_all_str(values: List[Any]) -> Optional[EncodedBatch]:
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


def encode_ascii_array(values: np.ndarray) -> Optional[EncodedBatch]:
    """A NumPy str array of ASCII text in one buffer with no Python str per value (native
    narrowing of its UCS4 code points); None when some value is not ASCII."""
    n = len(values)
    if values.dtype.kind != "U" or n == 0 or values.dtype.itemsize == 0:
        return None
    width = values.dtype.itemsize // 4
    src = np.ascontiguousarray(values).view(np.uint32)
    out = np.empty(n * width, np.uint8)
    lengths = np.empty(n, np.int64)
    high, written = _native.narrow_ucs4(src.data, width, out.data, lengths.data)
    if high >= 128:
        return None
    return [out.data[:written]], lengths


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
    _orjson = None  # type: ignore[assignment]  # checked before each use


def orjson_all(values: List[Any]) -> Optional[EncodedBatch]:
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
        if b"null" in data or _TAG_BYTES in data:
            # NaN/Infinity came out as null, or a user dict carries the type tag: json.dumps
            # (with JsonEncoder's escape) is the reference for those samples
            out = [b if (b"null" not in b or v is None) and _TAG_BYTES not in b
                   else json.dumps(v, cls=JsonEncoder, allow_nan=True).encode("utf-8")
                   for v, b in zip(part, out)]
            data = b"".join(out)
        sizes[start : start + len(out)] = np.fromiter(map(len, out), dtype=np.int64, count=len(out))
        joined.append(data)
    return [b"".join(joined)], sizes
