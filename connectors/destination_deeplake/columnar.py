"""The columnar fast path of `write`: RECORD lines become per-field columns in C.

`RecordScanner` wraps the native `Scanner` (native/airbyte_records.c): for each stream whose
sink is open it knows the stream's fields and their kinds, and `scan` consumes, from a block
of raw JSON lines, every RECORD line whose values all fit their fields exactly, appending them
to that stream's columns without a Python object per record or per value. It stops at the
first line it does not fully understand (a STATE, an unknown stream or field, a value of
another type, an unusual escape or number form, malformed JSON ...); that line goes through
the exact Python path, which decides conversions, nulling, widening and errors as before.

A stream's buffered records are then a list of batches in arrival order: `RowBatch` (dicts
from the Python path) and `ColumnBatch` (columns taken from the scanner); the sink writes
them in that order.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from connectors.destination_deeplake import _records
from connectors.destination_deeplake import schema as S
from lakeformat.core.text_codec import TYPE_TAG, EncodedSamples

TYPE_TAG_BYTES = TYPE_TAG.encode()

StreamKey = tuple  # (namespace or None, name)

KIND_CODES = {
    S.INT: _records.INT, S.FLOAT: _records.FLOAT, S.BOOL: _records.BOOL, S.TEXT: _records.TEXT,
    S.JSON: _records.JSON, S.TIMESTAMP_TZ: _records.TIMESTAMP_TZ, S.TIMESTAMP_NTZ: _records.TIMESTAMP_NTZ,
    S.DATE: _records.DATE, S.TIME: _records.TIME,
    S.TIME_TZ: _records.TEXT,  # stored as its text, offset and all
    # arrays take the Python path unless null
    S.INT_ARRAY: _records.NULL_ONLY, S.FLOAT_ARRAY: _records.NULL_ONLY,
}
NUMERIC_KINDS = {S.INT, S.FLOAT, S.BOOL, *S.TIME_KINDS}
# after a record of a stream takes the Python path, the stream's next records do too until
# this many have: a stream's buffer never alternates into many tiny batches
PYTHON_RUN = 1024


class RowBatch:
    """Records from the Python path: their data dicts, emitted_at values and, once a record
    of the batch carried a `file_reference`, each row's staged file (None for a row without)."""

    __slots__ = ("datas", "emitted", "files")

    def __init__(self) -> None:
        self.datas: list[dict[str, Any]] = []
        self.emitted: list[Any] = []
        self.files: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.datas)


class Column:
    """One field of a ColumnBatch as the scanner filled it (kind: the field's kind then)."""

    __slots__ = ("kind", "values", "nulls", "ends", "data")

    def __init__(self, kind: str, values: bytes | None, nulls: bytes, ends: bytes | None, data: bytes | None):
        self.kind = kind
        self.values = values
        self.nulls = np.frombuffer(nulls, dtype=np.bool_)
        self.ends = None if ends is None else np.frombuffer(ends, dtype=np.int64)
        self.data = data

    def samples(self, kind: str) -> Any:
        """What to pass to ds.extend for a tensor of `kind`, stored exactly as the Python path
        stores the same values (nulls as empty samples, or a null text / the JSON null)."""
        n = len(self.nulls)
        if kind == S.JSON and self.kind == S.JSON:
            if TYPE_TAG_BYTES in self.data:
                # a value carries the format's type tag: the serializer escapes it (the raw
                # text would read back as bytes or an array)
                return None
            return EncodedSamples(self.data, np.diff(self.ends, prepend=0))
        if kind in (S.TEXT, S.TIME_TZ) and self.kind == kind:
            return EncodedSamples(self.data, np.diff(self.ends, prepend=0), nulls=self.nulls)
        if self.kind == S.INT_ARRAY or self.kind == S.FLOAT_ARRAY:
            return [None] * n  # only nulls took the fast path
        if kind == self.kind and kind in NUMERIC_KINDS or (self.kind, kind) == (S.INT, S.FLOAT):
            nulls = self.nulls
            if nulls.all():
                return [None] * n
            raw = np.frombuffer(self.values, dtype=np.int64)
            if self.kind == S.FLOAT:
                arr = raw.view(np.float64)
            elif self.kind == S.BOOL:
                arr = raw != 0
            else:
                arr = raw
            if kind == S.FLOAT and self.kind == S.INT:
                arr = arr.astype(np.float64)  # the tensor widened since: as np.asarray(ints, float64)
            arr = arr.reshape(-1, 1)
            if nulls.any():
                return np.ma.MaskedArray(arr, mask=nulls.reshape(-1, 1))
            return arr
        return None  # the tensor's kind changed otherwise: the caller converts raw values

    def raw_values(self) -> list[Any]:
        """The field's values as the Python path would have them (not for time kinds)."""
        import orjson

        nulls = self.nulls.tolist()
        if self.kind in (S.TEXT, S.TIME_TZ, S.JSON):
            data, ends = self.data, self.ends.tolist()
            out, start = [], 0
            for end, null in zip(ends, nulls):
                part = data[start:end]
                start = end
                out.append(None if null else orjson.loads(part) if self.kind == S.JSON else part.decode("utf-8"))
            return out
        if self.kind in (S.INT_ARRAY, S.FLOAT_ARRAY):
            return [None] * len(nulls)
        if self.kind in S.TIME_KINDS:
            raise ValueError("time values are parsed: their text is gone")
        raw = np.frombuffer(self.values, dtype=np.int64)
        vals = raw.view(np.float64).tolist() if self.kind == S.FLOAT else (raw != 0).tolist() if self.kind == S.BOOL else raw.tolist()
        return [None if null else v for v, null in zip(vals, nulls)]


class ColumnBatch:
    """Records of one stream taken from the scanner: a Column per field, emitted_at (float64,
    ms, 0 for a null or missing one), and the bytes of their lines."""

    __slots__ = ("n", "nbytes", "emitted", "columns")

    def __init__(self, n: int, nbytes: int, emitted: bytes, columns: dict[str, Column]):
        self.n = n
        self.nbytes = nbytes
        self.emitted = np.frombuffer(emitted, dtype=np.float64)
        self.columns = columns

    def __len__(self) -> int:
        return self.n


def field_codes(fields: dict[str, tuple[str, str]]) -> list[tuple[bytes, int]] | None:
    """The scanner's spec of a sink's fields (name -> (tensor, kind)); None when some kind
    (a link or an override) always takes the Python path."""
    out = []
    for fname, (_, kind) in fields.items():
        code = KIND_CODES.get(kind)
        if code is None:
            return None
        try:
            out.append((fname.encode("utf-8"), code))
        except UnicodeEncodeError:
            return None
    return out


class RecordScanner:
    """The native scanner, with the streams it serves by key."""

    LIMIT = _records.REASON_LIMIT
    LINE = _records.REASON_LINE

    def __init__(self) -> None:
        self.native = _records.Scanner()
        self.index: dict[StreamKey, int] = {}
        self.specs: list[list[tuple[bytes, int]] | None] = []
        self.kinds: list[list[str]] = []
        self.counted: list[int] = []  # rows of each stream already counted by the writer
        self.enabled: list[bool] = []

    @property
    def active(self) -> bool:
        return any(self.enabled)

    def register(self, key: StreamKey, fields: dict[str, tuple[str, str]]) -> None:
        ns, name = key
        try:
            idx = self.native.add_stream(name.encode("utf-8"), ns.encode("utf-8") if ns else None)
        except (UnicodeEncodeError, AttributeError):
            return  # a name that cannot be matched bytewise: the Python path
        self.index[key] = idx
        self.specs.append(None)
        self.kinds.append([])
        self.counted.append(0)
        self.enabled.append(False)
        self.respec(key, fields)

    def respec(self, key: StreamKey, fields: dict[str, tuple[str, str]]) -> None:
        """Fields (and kinds) of a stream after its sink changed them; enables the stream
        when every kind has a fast path. Its columns must be empty."""
        idx = self.index[key]
        spec = field_codes(fields)
        if spec != self.specs[idx]:
            if spec is not None:
                self.native.set_fields(idx, spec)
                self.kinds[idx] = [kind for _, kind in fields.values()]
            self.specs[idx] = spec
        self.enable(key, spec is not None)

    def enable(self, key: StreamKey, on: bool) -> None:
        idx = self.index[key]
        on = on and self.specs[idx] is not None
        if self.enabled[idx] != on:
            self.native.enable(idx, on)
            self.enabled[idx] = on

    def rows(self, key: StreamKey) -> int:
        return self.native.rows(self.index[key])

    def take(self, key: StreamKey) -> ColumnBatch:
        idx = self.index[key]
        n, nbytes, emitted, cols = self.native.take(idx)
        self.counted[idx] = 0
        spec, kinds = self.specs[idx], self.kinds[idx]
        assert spec is not None
        columns = {name.decode("utf-8"): Column(kind, *col) for (name, _), kind, col in zip(spec, kinds, cols)}
        return ColumnBatch(n, nbytes, emitted, columns)

    def uncounted(self) -> list[tuple[StreamKey, int]]:
        """(stream, rows scanned since the last call) for each stream with new rows."""
        out = []
        rows = self.native.rows
        for key, idx in self.index.items():
            n = rows(idx)
            if n != self.counted[idx]:
                out.append((key, n - self.counted[idx]))
                self.counted[idx] = n
        return out
