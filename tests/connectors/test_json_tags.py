"""User JSON that carries the format's own type tag (`_hub_custom_type`) round-trips as written:
through every lakeformat writer, through the destination's native and Python paths, and
deeplake 3.9.52 still reads the column (showing the escaped key documented in docs/format.md)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pytest

import lakeformat
from lakeformat.core.text_codec import escape_json, json_loads, json_samples
from tests.connectors.destination.helpers import catalog, record, stream
from tests.connectors.destination.test_columnar import same_runs
from tests.interop.deeplake3 import deeplake3_python

TAGGED = [
    {"_hub_custom_type": "bytes", "data": "aGk="},
    {"_hub_custom_type": "ndarray", "data": "AAAAAA==", "shape": [1], "dtype": "<i4"},
    {"_hub_custom_type": "ndarray", "data": "", "shape": [], "dtype": "O"},  # made the column unreadable
    {"_hub_custom_type": "Sample", "data": "eA==", "compression": None},
    {"_hub_custom_type": "Sample"},  # no data: deeplake's decoder would fail on it
    {"_hub_custom_type": "foo", "x": 1},  # a tag value no decoder acts on: stored as it is
    {"$_hub_custom_type": "bytes", "_hub_custom_type": "bytes", "$$_hub_custom_type": 2},
    {"outer": [{"_hub_custom_type": "bytes", "data": "aGk="}, {"k": {"_hub_custom_type": "ndarray"}}]},
    [{"_hub_custom_type": "bytes", "data": "aGk="}, "_hub_custom_type", 1.5],
    "_hub_custom_type",
    {"plain": {"a": [1, None, True]}},
    None,
]


@pytest.mark.parametrize("value", TAGGED, ids=range(len(TAGGED)))
def test_codec_round_trips_tagged_user_values(value):
    stored = bytes(json_samples([value]).data)
    assert json_loads(stored) == value
    assert json_loads(json.dumps(escape_json(value)).encode()) == value


def test_tagged_values_of_the_encoder_still_decode():
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    got = json_loads(bytes(json_samples([{"a": arr, "b": b"\x00\x01", "c": {"_hub_custom_type": "bytes", "data": "aGk="}}]).data))
    np.testing.assert_array_equal(got["a"], arr)
    assert got["b"] == b"\x00\x01" and got["c"] == {"_hub_custom_type": "bytes", "data": "aGk="}


def test_legacy_crafted_tags_no_longer_break_a_column():
    # written before the escape existed: the bad sample reads as its dict, the column reads
    legacy = b'{"_hub_custom_type": "ndarray", "data": "", "shape": [], "dtype": "O"}'
    assert json_loads(legacy) == {"_hub_custom_type": "ndarray", "data": "", "shape": [], "dtype": "O"}
    assert json_loads(b'{"_hub_custom_type": "bytes", "data": "not base64!"}') == {"_hub_custom_type": "bytes", "data": "not base64!"}


def _json_values(ds, name):
    """Each json sample's value (numpy(aslist=True) gives one-element object arrays)."""
    out = []
    for v in ds[name].numpy(aslist=True):
        assert isinstance(v, np.ndarray) and v.dtype == object and v.shape == (1,)
        out.append(v[0])
    return out


@pytest.mark.parametrize("how", ["extend", "append", "setitem"])
def test_every_writer_stores_tagged_values_as_written(tmp_path, how):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("j", htype="json")
    values = [v for v in TAGGED if v is not None]
    if how == "extend":
        ds.j.extend(values)
    elif how == "append":
        for v in values:
            ds.j.append(v)
    else:
        ds.j.extend([{"x": 0}] * len(values))
        for i, v in enumerate(values):
            ds.j[i] = v
    ds.flush()
    again = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    assert _json_values(again, "j") == values


DL3_READ = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import deeplake
ds = deeplake.load(sys.argv[1], read_only=True)
out = []
for v in ds[sys.argv[2]].numpy(aslist=True):
    v = v[0] if hasattr(v, "shape") and v.shape == (1,) else v
    out.append(v)
print(json.dumps(out, default=lambda o: "<%s>" % type(o).__name__))
"""


def _deeplake3_reads(path: Path, tensor: str) -> list:
    p = subprocess.run([deeplake3_python(), "-c", DL3_READ, str(path), tensor], capture_output=True, text=True, timeout=300,
                       env={"BUGGER_OFF": "true", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_deeplake3_reads_the_escaped_column(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    ds.create_tensor("j", htype="json")
    values = [v for v in TAGGED if v is not None]
    ds.j.extend(values)
    ds.flush()
    theirs = _deeplake3_reads(tmp_path / "ds", "j")
    # deeplake shows the user's dict with the tag key escaped (docs/format.md); untagged values as they are
    assert theirs == [escape_json(v) for v in values]
    assert theirs[0] == {"$_hub_custom_type": "bytes", "data": "aGk="}
    assert theirs[5] == {"_hub_custom_type": "foo", "x": 1}


PROPS = {"i": {"type": "integer"}, "o": {"type": "object"}, "a": {}}


def test_destination_paths_store_tagged_values_as_written(tmp_path):
    """The native scanner takes json values as raw text: tagged ones must take the escape."""
    cat = catalog(stream("s", PROPS))
    datas = [{"i": k, "o": v if isinstance(v, dict) else {"v": v}, "a": v} for k, v in enumerate(TAGGED)]
    lines = [orjson.dumps(record("s", d)) for d in datas]
    lines.insert(3, b'{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"i":99,"o":{"_hub_custom_typ\\u0065":"bytes","data":"aGk="},"a":null}}}')
    datas.insert(3, {"i": 99, "o": {"_hub_custom_type": "bytes", "data": "aGk="}, "a": None})
    same_runs(tmp_path, lines, 4, 0, cat=cat)
    for d in ("python", "fast"):
        ds = lakeformat.load(str(tmp_path / d / "lake" / "s"), read_only=True)
        assert _json_values(ds, "o") == [x["o"] for x in datas]
        assert _json_values(ds, "a") == [x["a"] for x in datas]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEYS = st.one_of(st.sampled_from(["_hub_custom_type", "$_hub_custom_type", "$$_hub_custom_type", "data", "dtype", "shape",
                                  "compression", "$", "_hub_custom_type$", "x"]), st.text(max_size=4))
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(["ndarray", "bytes", "Sample", "O", "aGk=", "", "_hub_custom_type"]), st.text(max_size=6))
VALUES = st.recursive(LEAVES, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(KEYS, c, max_size=5)), max_leaves=16)


@settings(max_examples=400, deadline=None)
@given(values=st.lists(VALUES, min_size=1, max_size=6))
def test_any_json_round_trips_through_the_codec(values):
    data = json_samples(values)
    raw, ends = bytes(data.data), np.cumsum(data.sizes).tolist()
    starts = [0] + ends[:-1]
    assert [json_loads(raw[a:b]) for a, b in zip(starts, ends)] == values
