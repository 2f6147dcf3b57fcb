"""The columnar fast path (native scanner) against the exact Python path, on random input.

Each property runs the same lines through `run_write(fast=False)` (every line parsed by orjson
and converted in Python) and `run_write(fast=True)` (the native scanner takes what it fully
understands) and requires the same emitted messages, the same error, and datasets whose every
tensor holds the same bytes and shapes per sample.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lakeformat
from connectors.destination_deeplake import _records
from connectors.destination_deeplake import schema as S
from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.protocol import read_blocks, run_write
from tests.connectors.destination.helpers import catalog, stream

PROPS = {
    "i": {"type": "integer"},
    "f": {"type": ["null", "number"]},
    "b": {"type": "boolean"},
    "s": {"type": ["null", "string"]},
    "o": {"type": "object"},
    "tz": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
    "ntz": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
    "d": {"type": "string", "format": "date"},
    "t": {"type": "string", "format": "time"},
    "v": {"type": "array", "items": {"type": "number"}},
}

# ------------------------------------------------------------------------------ values
INT64 = st.integers(-(2**63), 2**63 - 1)
ODD_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=5), st.just([1, 2]), st.just({"k": None}))
TEXTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "null", "a\"b", "back\\slash", "/", "\x00", "\x1f\x7f", "é", "日本", "😀", "\u2028", "nullable"]),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), INT64, st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), TEXTS),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXTS, children, max_size=4)),
    max_leaves=12,
)


@st.composite
def time_texts(draw) -> str:
    """ISO-8601-ish text: mostly valid, often odd (ranges, separators, fractions, offsets)."""
    y = draw(st.sampled_from([1, 1969, 1970, 2000, 2024, 9999, 0, 10000]) | st.integers(1, 9999))
    mo = draw(st.integers(1, 12) | st.sampled_from([0, 13]))
    d = draw(st.integers(1, 28) | st.sampled_from([0, 29, 30, 31, 32]))
    date = f"{y:04d}-{mo:02d}-{d:02d}" if y < 10000 else f"{y}-{mo:02d}-{d:02d}"
    h = draw(st.integers(0, 23) | st.sampled_from([24, 99]))
    mi = draw(st.integers(0, 59) | st.just(60))
    se = draw(st.integers(0, 59) | st.just(60))
    clock = f"{h:02d}:{mi:02d}:{se:02d}"
    frac = draw(st.sampled_from(["", "", ".", ".5", ".12", ".123456", ".1234567", ".000000001"]))
    off = draw(st.sampled_from(["", "", "Z", "z", "+00:00", "-00:00", "+05:30", "-08:00", "+23:59", "+24:00",
                                "+0000", "+05", "+05:30:15", " "]))
    sep = draw(st.sampled_from(["T", "T", " ", "t", "X"]))
    form = draw(st.sampled_from(["ts", "ts", "date", "clock", "garbage"]))
    if form == "ts":
        return date + sep + clock + frac + off
    if form == "date":
        return date + draw(st.sampled_from(["", "", " ", "Z"]))
    if form == "clock":
        return clock + frac + draw(st.sampled_from(["", "", "Z", "+01:00"]))
    return draw(st.text(max_size=30))


@st.composite
def clean_times(draw, kind: str) -> str:
    """Valid text of a time kind, in the forms sources write."""
    d = draw(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)))
    if kind == "d":
        return d.date().isoformat()
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    if kind == "t":
        return d.time().isoformat(spec)
    text = d.isoformat(draw(st.sampled_from(["T", " "])), spec)
    return text + draw(st.sampled_from(["", "Z", "+00:00", "-03:30", "+14:00"]))


def field_values(name: str, clean: bool = False):
    if clean:
        return {
            "i": INT64 | st.integers(-1000, 1000), "f": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000),
            "b": st.booleans(), "s": TEXTS, "o": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(-9, 9), max_size=3),
            "tz": clean_times("tz"), "ntz": clean_times("ntz"), "d": clean_times("d"), "t": clean_times("t"),
            "v": st.none(),
        }[name] | st.none()
    good = {
        "i": INT64,
        "f": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**60), 2**60),
        "b": st.booleans(),
        "s": TEXTS,
        "o": JSON_VALUES,
        "tz": time_texts(), "ntz": time_texts(), "d": time_texts(), "t": time_texts(),
        "v": st.lists(st.integers(-5, 5) | st.floats(-1, 1), max_size=3),
    }[name]
    return st.one_of(good, good, good, st.none(), ODD_SCALARS)


@st.composite
def records(draw, clean: bool = False) -> dict[str, Any]:
    data = {}
    names = list(PROPS) if clean and draw(st.booleans()) else draw(st.permutations(list(PROPS)))
    for name in names:
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        data[name] = draw(field_values(name, clean and draw(st.integers(0, 30)) > 0))
    if draw(st.integers(0, 30)) == 0:
        data[draw(st.sampled_from(["extra", "i2"]))] = draw(ODD_SCALARS)  # a field no schema declared
    return data


def compact(msg: Any) -> bytes:
    try:
        return orjson.dumps(msg)
    except TypeError:  # integers over 64 bits
        return json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()


def encode(msg: dict[str, Any], style: int) -> bytes:
    """One message as a source might write it: compact, spaced, ASCII-escaped, keys reordered."""
    if style == 0:
        return compact(msg)
    if style == 1:
        return json.dumps(msg).encode()  # ", " and ": ", \\u escapes
    if style == 2:
        return json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode()
    if style == 3:  # keys reversed at every level of the envelope
        rec = msg.get("record")
        if isinstance(rec, dict):
            msg = {**msg, "record": dict(reversed(list(rec.items())))}
        return compact(dict(reversed(list(msg.items()))))
    return b"  " + compact(msg) + b" \r"  # whitespace around the message


@st.composite
def message_lines(draw) -> list[bytes]:
    lines = []
    n = draw(st.integers(1, 60))
    clean = draw(st.booleans())  # mostly values the fast path takes, or anything
    for k in range(n):
        roll = draw(st.integers(0, 99))
        if roll < 6:
            lines.append(orjson.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
                "stream_descriptor": {"name": "s"}, "stream_state": {"k": k}}}}))
            continue
        if roll == 6:
            lines.append(orjson.dumps({"type": "LOG", "log": {"level": "INFO", "message": "hi"}}))
            continue
        if roll == 7:
            lines.append(b"")
            continue
        rec: dict[str, Any] = {"stream": "s", "data": draw(records(clean))}
        em = draw(st.sampled_from(["int", "int", "int", "float", "missing", "null"]))
        if em == "int":
            rec["emitted_at"] = 1_700_000_000_000 + k
        elif em == "float":
            rec["emitted_at"] = 1_700_000_000_000.25 + k
        elif em == "null":
            rec["emitted_at"] = None
        extra = draw(st.integers(0, 9))
        if extra == 0:
            rec["namespace"] = None
        elif extra == 1:
            rec["meta"] = {"changes": []}
        msg: dict[str, Any] = {"type": "RECORD", "record": rec}
        lines.append(encode(msg, draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, 3, 4]))))
    return lines


# ------------------------------------------------------------------------------ runs
class Trickle(io.RawIOBase):
    """A pipe that hands out its bytes in small, random pieces."""

    def __init__(self, data: bytes, seed: int):
        self.data, self.pos, self.rnd = data, 0, random.Random(seed)

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        k = self.rnd.choice([1, 7, 64, 300, 5000])
        out = self.data[self.pos : self.pos + k]
        self.pos += len(out)
        return out

    read = read1


def run(tmp: Path, lines: list[bytes], fast: bool, mode: str, flush_every: int, seed: int = 0, cat=None,
        config: dict[str, Any] | None = None) -> tuple[list, Any]:
    cfg = DestinationConfig.from_mapping({"path": str(tmp / "lake"), "flush_every_records": flush_every, **(config or {})})
    cat = cat or catalog(stream("s", PROPS))
    out: list[dict[str, Any]] = []
    src: Any = lines if mode == "items" else Trickle(b"\n".join(lines) + b"\n", seed)
    err = None
    try:
        for _ in run_write(cfg, cat, src, out.append, fast=fast):
            pass
    except Exception as e:  # noqa: BLE001 - compared below
        err = (type(e).__name__, str(getattr(e, "message", e)), str(getattr(e, "internal_message", "")))
    return out, err


def dump(tmp: Path) -> dict[str, Any]:
    """Every tensor of every dataset: info and, per sample, its stored bytes and shape."""
    out: dict[str, Any] = {}
    root = tmp / "lake"
    if not root.exists():
        return out
    found = {p.parent for p in root.rglob("dataset_meta.json")} | {p.parent for p in root.rglob("version_control_info.json")}
    for d in sorted(d for d in found if "versions" not in d.relative_to(root).parts):
        ds = lakeformat.load(str(d), read_only=True)
        for name, t in sorted(ds.tensors.items()):
            n = t.num_samples
            info = dict(t.info)
            if n:
                datas, shapes = t.engine.read_items_bytes(np.arange(n))
                samples = [bytes(b) for b in datas]
                shapes = np.asarray(shapes).tolist()
            else:
                samples, shapes = [], []
            if name == "_airbyte_raw_id":  # random: only their form
                samples = [len(b) for b in samples]
            out[f"{d.relative_to(root)}/{name}"] = (info, t.htype, str(t.dtype), samples, shapes)
        out[f"{d.relative_to(root)}/log"] = [c["message"] for c in ds.log()] if hasattr(ds, "log") else None
    return out


def same_runs(tmp_path: Path, lines: list[bytes], flush_every: int, seed: int, mode: str = "stream", cat=None,
              config: dict[str, Any] | None = None) -> None:
    a, b = tmp_path / "python", tmp_path / "fast"
    a.mkdir()
    b.mkdir()
    out_a, err_a = run(a, lines, fast=False, mode=mode, flush_every=flush_every, seed=seed, cat=cat, config=config)
    out_b, err_b = run(b, lines, fast=True, mode=mode, flush_every=flush_every, seed=seed, cat=cat, config=config)
    assert err_a == err_b
    assert out_a == out_b
    assert dump(a) == dump(b)


# examples per property: 2.5-10 s each (two full syncs, run early beside the background
# installs); `make test-long` multiplies them
SCALE = int(os.environ.get("LAKEFORMAT_COLUMNAR_EXAMPLES_SCALE", "1"))
SETTINGS = settings(max_examples=8 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(lines=message_lines(), flush_every=st.sampled_from([1, 3, 17, 1000]), seed=st.integers(0, 1000))
def test_fast_path_stores_what_the_python_path_stores(tmp_path_factory, lines, flush_every, seed):
    same_runs(tmp_path_factory.mktemp("run"), lines, flush_every, seed)


@settings(max_examples=5 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=message_lines(), flush_every=st.sampled_from([2, 1000]))
def test_fast_path_on_an_iterable_of_lines(tmp_path_factory, lines, flush_every):
    same_runs(tmp_path_factory.mktemp("run"), lines, flush_every, 0, mode="items")


@settings(max_examples=16 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=message_lines(), cut=st.integers(0, 10_000), junk=st.binary(max_size=12), seed=st.integers(0, 1000))
def test_malformed_input_fails_alike(tmp_path_factory, lines, cut, junk, seed):
    """A line cut short or with bytes spliced in: the same TRACE-worthy error (or the same
    data, when the damage is still valid JSON), never a crash."""
    k = cut % len(lines)
    line = lines[k]
    at = cut % (len(line) + 1)
    lines = lines[:k] + [line[:at] + junk + line[at + (cut % 3):]] + lines[k + 1 :]
    assume(all(b"\n" not in ln for ln in lines))
    same_runs(tmp_path_factory.mktemp("run"), lines, 5, seed)


# ------------------------------------------------------------------------------ pieces
TIME_KINDS = {S.TIMESTAMP_TZ: _records.TIMESTAMP_TZ, S.TIMESTAMP_NTZ: _records.TIMESTAMP_NTZ,
              S.DATE: _records.DATE, S.TIME: _records.TIME}


@settings(max_examples=2000, deadline=None)
@given(text=time_texts(), kind=st.sampled_from(sorted(TIME_KINDS)))
def test_native_time_parsing_matches_convert_time(text, kind):
    """Wherever the native parser gives a value, the Python conversion gives the same one,
    alone and in a batch (the numpy bulk path)."""
    got = _records.parse_time(TIME_KINDS[kind], text.encode("utf-8", "surrogatepass"))
    if got is None:
        return
    for col in ([text], [text, text]):
        res = S.convert(kind, col)
        assert not res.nulled
        vals = res.values if isinstance(res.values, list) else list(res.values)
        assert [int(np.asarray(v).reshape(-1)[0]) for v in vals] == [got] * len(col)


def test_native_time_parsing_examples():
    p = _records.parse_time
    us = 1_000_000
    assert p(_records.TIMESTAMP_TZ, b"1970-01-01T00:00:00Z") == 0
    assert p(_records.TIMESTAMP_TZ, b"1970-01-01T01:00:00+01:00") == 0
    assert p(_records.TIMESTAMP_NTZ, b"1970-01-01T01:00:00+01:00") == 3600 * us
    assert p(_records.TIMESTAMP_TZ, b"2021-07-17 04:29:16.5") == int(dt.datetime(2021, 7, 17, 4, 29, 16, 500000, tzinfo=dt.timezone.utc).timestamp() * us)
    assert p(_records.DATE, b"2000-02-29") == (dt.date(2000, 2, 29) - dt.date(1970, 1, 1)).days * 86_400 * us
    assert p(_records.DATE, b"1900-02-29") is None
    assert p(_records.TIME, b"23:59:59.999999") == 86_400 * us - 1
    for odd in (b"0000-01-01T00:00:00", b"2021-07-17T24:00:00", b"2021-07-17T04:29:16.1234567", b"2021-07-17T04:29:16z",
                b"2021-07-17T04:29:16+0000", b" 2021-07-17T04:29:16", b"2021-07-17"):
        assert p(_records.TIMESTAMP_TZ, odd) is None


def scanner_for(fields: list[tuple[bytes, int]]) -> Any:
    sc = _records.Scanner()
    i = sc.add_stream(b"s", None)
    sc.set_fields(i, fields)
    sc.enable(i, True)
    return sc


@settings(max_examples=1500, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**80), 2**80),
       form=st.sampled_from(["repr", "%.17g", "%.3e", "%.0f", "%E", "json"]))
def test_native_numbers_match_orjson(x, form):
    text = json.dumps(x) if form == "json" or isinstance(x, int) else (repr(x) if form == "repr" else form % x)
    try:
        want = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    line = b'{"type":"RECORD","record":{"stream":"s","data":{"f":' + text.encode() + b',"i":' + text.encode() + b"}}}"
    for kind in (_records.FLOAT, _records.INT):
        sc = scanner_for([(b"f", kind), (b"i", _records.INT)])
        pos, n, _, _ = sc.scan(line, 0, 10, 1 << 20)
        if n == 0:
            continue
        rows, _, _, cols = sc.take(0)
        raw = np.frombuffer(cols[0][0], dtype=np.int64)
        got = raw.view(np.float64)[0] if kind == _records.FLOAT else raw[0]
        assert type(want) is int
        if kind == _records.FLOAT:
            assert got == float(want) and np.signbit(got) == np.signbit(float(want))
        else:
            assert got == want
    sc = scanner_for([(b"f", _records.FLOAT), (b"i", _records.FLOAT)])
    pos, n, _, _ = sc.scan(line, 0, 10, 1 << 20)
    if n:
        got = np.frombuffer(sc.take(0)[3][0][0], dtype=np.float64)[0]
        assert got == float(want) and np.signbit(got) == np.signbit(float(want))


@settings(max_examples=1500, deadline=None)
@given(value=JSON_VALUES | TEXTS, style=st.sampled_from([0, 1, 2]))
def test_native_text_and_json_match_orjson(value, style):
    """A text field holds exactly the UTF-8 of the decoded string; a json field only takes the
    fast path with the very text the serializer would store."""
    from lakeformat.core.text_codec import json_samples

    enc = encode({"v": value}, style)
    line = b'{"type":"RECORD","record":{"stream":"s","data":' + enc + b"}}"
    for kind in (_records.TEXT, _records.JSON):
        sc = scanner_for([(b"v", kind)])
        _, n, _, _ = sc.scan(line, 0, 10, 1 << 20)
        if not n:
            assert not (kind == _records.TEXT and isinstance(value, str) and style == 0)
            continue
        _, _, _, cols = sc.take(0)
        _, nulls, ends, data = cols[0]
        if value is None:
            assert nulls == b"\x01"
            continue
        if kind == _records.TEXT:
            assert data == value.encode("utf-8")
        else:
            assert data == bytes(json_samples([orjson.loads(enc)["v"]]).data)


def test_scanner_leaves_odd_lines_to_python():
    sc = scanner_for([(b"a", _records.INT), (b"t", _records.TEXT)])
    good = b'{"type":"RECORD","record":{"stream":"s","data":{"a":1,"t":"x"},"emitted_at":5}}'
    odd = [
        b'{"type":"STATE","state":{}}',
        b'{"type":"RECORD","record":{"stream":"other","data":{"a":1}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{"a":1,"b":2}}}',  # unknown field
        b'{"type":"RECORD","record":{"stream":"s","data":{"a":1,"a":2}}}',  # duplicate key
        b'{"type":"RECORD","record":{"stream":"s","data":{"a":1.5}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{"a":"1"}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{"a":9223372036854775808}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{"t":"\\ud800"}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{"t":"\xff"}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{"t":5}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":[]}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{}}} x',
        b'{"type":"RECORD","record":{"stream":"s","data":{}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{}},"type":"RECORD"}',
        b'{"t\\u0079pe":"RECORD","record":{"stream":"s","data":{}}}',
        b'{"type":"RECORD","record":{"stream":"s","data":{}, "emitted_at":"5"}}',
        b'{"type":"RECORD","record":{"stream":"s","namespace":"n","data":{}}}',
        b"",
        b"   ",
    ]
    for line in odd:
        block = good + b"\n" + line + b"\n" + good
        pos, n, nbytes, reason = sc.scan(block, 0, 100, 1 << 20)
        assert (pos, n, nbytes, reason) == (len(good) + 1, 1, len(good) + 1, _records.REASON_LINE), line
    rows, nbytes, emitted, cols = sc.take(0)
    assert rows == len(odd) and np.frombuffer(emitted).tolist() == [5.0] * rows


def test_scanner_limits_and_blocks():
    sc = scanner_for([(b"a", _records.INT)])
    line = b'{"type":"RECORD","record":{"stream":"s","data":{"a":7}}}\n'
    block = line * 10
    assert sc.scan(block, 0, 3, 1 << 20) == (3 * len(line), 3, 3 * len(line), _records.REASON_LIMIT)
    assert sc.scan(block, 3 * len(line), 100, 2 * len(line)) == (5 * len(line), 2, 2 * len(line), _records.REASON_LIMIT)
    assert sc.scan(block, 5 * len(line), 100, 1 << 20) == (len(block), 5, 5 * len(line), _records.REASON_END)
    assert sc.rows(0) == 10
    with pytest.raises(ValueError):
        sc.set_fields(0, [])  # rows not taken
    with pytest.raises(ValueError):
        sc.scan(block, len(block) + 1, 1, 1)
    rows, nbytes, _, cols = sc.take(0)
    assert rows == 10 and nbytes == len(block)
    assert np.frombuffer(cols[0][0], dtype=np.int64).tolist() == [7] * 10


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_scanner_never_crashes_on_bytes(data):
    sc = scanner_for([(b"a", _records.INT), (b"t", _records.TEXT), (b"o", _records.JSON), (b"d", _records.DATE)])
    prefix = b'{"type":"RECORD","record":{"stream":"s","data":{"a":1,"o":'
    for block in (data, prefix + data, prefix + data + b"}}}"):
        pos = 0
        while pos < len(block):
            pos, n, _, reason = sc.scan(block, pos, 1000, 1 << 30)
            if reason == _records.REASON_LINE:
                nl = block.find(b"\n", pos)
                pos = len(block) if nl < 0 else nl + 1
    if sc.rows(0):
        sc.take(0)


@pytest.mark.parametrize("data", [b"a\nbb\n\nccc\nlast", b"a\nbb\n", b"", b"no newline at all", b"\n\n" + b"x" * 50 + b"\ny"])
def test_read_blocks_keeps_lines_whole(data):
    for k in (1, 2, 3, 7, 100):
        for f in (io.BufferedReader(io.BytesIO(data), buffer_size=k), Trickle(data, k)):  # type: ignore[arg-type]
            blocks = list(read_blocks(f, size=k))
            assert b"".join(blocks) == data
            assert all(b.endswith(b"\n") for b in blocks[:-1])
            assert all(blocks)


def test_columns_then_python_then_columns_keep_order(tmp_path):
    """A stream's records alternate between the paths (an odd value every few records): the
    rows land in arrival order, each value as the Python path stores it."""
    msgs = []
    for k in range(3000):
        val: Any = k if k % 7 else str(k)  # a str in an integer field: nulled, in changes
        msgs.append(orjson.dumps({"type": "RECORD", "record": {"stream": "s", "data": {"i": val, "s": f"r{k}"}, "emitted_at": k}}))
    msgs.append(orjson.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "s"}, "stream_state": {}}}}))
    same_runs(tmp_path, msgs, 100_000, 1)
    ds = lakeformat.load(str(tmp_path / "fast" / "lake" / "s"), read_only=True)
    assert ds["s"].numpy(aslist=True) == [f"r{k}" for k in range(3000)]


@pytest.mark.parametrize("last", [b"", b'{"type":"RECORD","record":{"stream":"nope","data":{"id":1}}}'])
def test_streams_and_namespaces_interleaved(tmp_path, last):
    """Several streams (one in a namespace, one with a link field: always the Python path), keys
    in any order, an empty namespace as none; a record of a stream not in the catalog fails
    alike after the same states."""
    props = {"id": {"type": "integer"}, "name": {"type": "string"}}
    cat = catalog(stream("a", props), stream("b", props, namespace="n"), stream("c", {**props, "url": {"type": "string"}}))
    lines = []
    for k in range(400):
        which = k % 3
        if which == 0:
            lines.append(b'{"type":"RECORD","record":{"stream":"a","data":{"id":%d,"name":"a%d"},"emitted_at":%d}}' % (k, k, k))
        elif which == 1:
            lines.append(b'{"record":{"data":{"name":"b%d","id":%d},"namespace":"n","stream":"b"},"type":"RECORD"}' % (k, k))
        else:
            lines.append(b'{"type":"RECORD","record":{"namespace":"","stream":"c","data":{"id":%d,"url":"s3://x/%d.png"}}}' % (k, k))
        if k % 97 == 0:
            lines.append(b'{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"k":%d}}}}' % k)
    lines.append(last)
    links = {"link_fields": [{"stream": "c", "field": "url", "htype": "link[image]"}]}
    same_runs(tmp_path, lines, 50, 3, cat=cat, config=links)
    if not last:
        ds = lakeformat.load(str(tmp_path / "fast" / "lake" / "n" / "b"), read_only=True)
        assert ds["name"].numpy(aslist=True) == [f"b{k}" for k in range(1, 400, 3)]
