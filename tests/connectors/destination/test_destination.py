"""destination-deeplake in-process: mapping, nulls, sync modes, states, errors, check."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import airbyte_cdk  # noqa: F401 - required: a missing CDK fails the run, never skips it

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

import lakeformat
from connectors.destination_deeplake import schema as S
from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.destination import (
    DestinationDeeplake,
    check_storage,
)
from connectors.destination_deeplake.sink import uuid4_strings
from lakeformat import temporal
from tests.connectors.destination.helpers import (
    catalog,
    complete,
    record,
    state,
    states_of,
    stream,
    write,
)

REPO = Path(__file__).resolve().parents[3]

PROPS = {
    "id": {"type": "integer"},
    "name": {"type": ["null", "string"]},
    "score": {"type": ["null", "number"]},
    "ok": {"type": "boolean"},
    "at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
    "local": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
    "day": {"type": "string", "format": "date"},
    "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    "vec": {"type": "array", "items": {"type": "number"}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "mixed": {"type": ["string", "integer"]},
}


def _cfg(tmp_path: Path, **kw):
    return {"path": str(tmp_path / "lake"), **kw}


def _load(tmp_path: Path, name: str, ns=None):
    parts = [str(tmp_path / "lake")] + ([ns] if ns else []) + [name]
    return lakeformat.load("/".join(parts), read_only=True)


def _col(ds, name):
    t = ds[name]
    kind = t.info.get("airbyte_kind", S.JSON)
    return [S.value_of(kind, v) for v in t.values()]


def test_types_nulls_and_meta(tmp_path):
    rows = [
        {"id": 1, "name": "a", "score": 1.5, "ok": True, "at": "2024-01-02T03:04:05.123456+02:00", "local": "2024-01-02T03:04:05",
         "day": "2024-01-02", "address": {"city": "X"}, "vec": [1.0, 2.5], "tags": ["p", "q"], "mixed": "s"},
        {"id": 2, "name": None, "score": None, "ok": False, "at": "2024-06-01T00:00:00Z", "local": None,
         "day": None, "address": None, "vec": [], "tags": [], "mixed": 3},
        {"id": 3, "name": "", "score": 7, "ok": True, "at": None, "local": "1969-12-31T23:59:59.5",
         "day": "1900-01-01", "address": {}, "vec": [3], "tags": None, "mixed": None},
    ]
    out = write(_cfg(tmp_path), catalog(stream("t", PROPS)), [record("t", r) for r in rows] + [state("t", {"c": 3})])
    assert states_of(out)[0]["state"]["destinationStats"]["recordCount"] == 3
    ds = _load(tmp_path, "t")
    assert len(ds) == 3
    assert ds.id.dtype == np.int64 and ds.score.dtype == np.float64 and ds.ok.dtype == np.bool_
    assert ds.name.htype == "text" and ds.address.htype == "json" and ds.tags.htype == "json"
    assert _col(ds, "id") == [1, 2, 3]
    assert _col(ds, "name") == ["a", None, ""]  # null stays distinct from ""
    assert _col(ds, "score") == [1.5, None, 7.0]
    assert ds.score.numpy().shape == (3, 1) and ds.score.isnull().tolist() == [False, True, False]  # a dense column
    assert _col(ds, "address") == [{"city": "X"}, None, {}]
    assert _col(ds, "tags") == [["p", "q"], [], None]
    assert [list(v) for v in ds.vec.numpy(aslist=True)] == [[1.0, 2.5], [], [3.0]]
    assert _col(ds, "mixed") == ["s", 3, None]
    # time: lakeformat.temporal's representation, round-tripping to the same instant
    info = dict(ds.at.info)
    assert info["lakeformat_type"] == "timestamp" and info["timezone"] == "UTC"
    got = temporal.decode_tensor_values(ds.at.numpy(aslist=True), info)
    assert got[0] == dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=dt.timezone.utc)
    assert got[1] == dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc) and got[2] is None
    assert _col(ds, "at")[0] == temporal.to_micros("2024-01-02T03:04:05.123456+02:00", "timestamp")
    local = temporal.decode_tensor_values(ds.local.numpy(aslist=True), dict(ds.local.info))
    assert local == [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(1969, 12, 31, 23, 59, 59, 500000)]
    assert temporal.decode_tensor_values(ds.day.numpy(aslist=True), dict(ds.day.info)) == [dt.date(2024, 1, 2), None, dt.date(1900, 1, 1)]
    # Airbyte meta tensors
    raw_ids = _col(ds, "_airbyte_raw_id")
    assert len(set(raw_ids)) == 3 and all(len(r) == 36 and r[14] == "4" for r in raw_ids)
    assert _col(ds, "_airbyte_extracted_at") == [1_700_000_000_000_000] * 3
    assert _col(ds, "_airbyte_generation_id") == [1, 1, 1]
    assert _col(ds, "_airbyte_meta") == [{"sync_id": 1, "changes": []}] * 3


def test_time_fast_path_matches_temporal():
    values = ["2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05.1Z", "2024-01-02 03:04:05.123456789-05:30",
              "1950-07-08T09:10:11.000001+14:00", "2024-01-02", "not a time", 5]
    res = S.convert(S.TIMESTAMP_TZ, values)
    got = [None if v is None else int(np.asarray(v).reshape(-1)[0]) for v in res.values]
    want = [temporal.to_micros(v, "timestamp") for v in values[:5]] + [None, None]
    assert got == want and res.nulled == [5, 6]


def test_uuid4_strings_are_uuid4():
    import uuid

    for s in uuid4_strings(50):
        assert uuid.UUID(s).version == 4 and str(uuid.UUID(s)) == s


def test_new_field_mismatch_and_widening(tmp_path):
    cat = catalog(stream("t", {"id": {"type": "integer"}, "n": {"type": "integer"}}))
    write(_cfg(tmp_path), cat, [record("t", {"id": 1, "n": 1}), record("t", {"id": 2, "n": "x"}), state("t", 1)])
    ds = _load(tmp_path, "t")
    assert _col(ds, "n") == [1, None]
    assert _col(ds, "_airbyte_meta")[1] == {"sync_id": 1, "changes": [{"field": "n", "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}]}
    # a later sync: a new field, and an integer field that turns fractional widens to float
    write(_cfg(tmp_path), cat, [record("t", {"id": 3, "n": 2.5, "extra": "hello"}), record("t", {"id": 4, "n": 4}), state("t", 2)])
    ds = _load(tmp_path, "t")
    assert ds.n.dtype == np.float64 and _col(ds, "n") == [1.0, None, 2.5, 4.0]
    assert _col(ds, "extra") == [None, None, "hello", None]
    assert len(ds.log(print_out=False) if "print_out" in ds.log.__code__.co_varnames else ds.log()) == 2


def test_append_and_commit_lineage(tmp_path):
    cat = catalog(stream("users", {"id": {"type": "integer"}}, sync_id=11))
    for k in range(2):
        write(_cfg(tmp_path), cat, [record("users", {"id": i}) for i in range(5)] + [state("users", {"k": k})])
    ds = _load(tmp_path, "users")
    assert len(ds) == 10
    from lakeformat.version_control import api as vc

    log = vc.log(ds)
    assert len(log) == 2
    msg = log[0]["message"]
    assert "sync 11" in msg and "users" in msg and "5 written" in msg and '"k":1' in msg


def test_append_dedup_latest_by_cursor_then_extracted_at(tmp_path):
    props = {"id": {"type": ["null", "integer"]}, "v": {"type": "string"}, "u": {"type": ["null", "integer"]}}
    cat = catalog(stream("t", props, mode="append_dedup", pk=[["id"]], cursor=["u"]))
    write(_cfg(tmp_path), cat, [
        record("t", {"id": 1, "v": "old", "u": 1}),
        record("t", {"id": 2, "v": "b2", "u": 5}),
        record("t", {"id": None, "v": "null-a", "u": 1}),
        state("t", 1),
    ])
    write(_cfg(tmp_path), cat, [
        record("t", {"id": 1, "v": "new", "u": 2}),
        record("t", {"id": 2, "v": "stale", "u": 4}),        # older cursor: loses
        record("t", {"id": None, "v": "null-b", "u": 2}),    # a null key is no key: kept, never merged
        record("t", {"id": 3, "v": "c-null-cursor", "u": None}, emitted_at=1),
        record("t", {"id": 3, "v": "c", "u": 0}, emitted_at=1),  # a non-null cursor beats a null one
        record("t", {"id": 4, "v": "d1", "u": 7}, emitted_at=1),
        record("t", {"id": 4, "v": "d2", "u": 7}, emitted_at=2),  # same cursor: later extraction wins
        state("t", 2),
    ])
    ds = _load(tmp_path, "t")
    got = dict((i, v) for i, v in zip(_col(ds, "id"), _col(ds, "v")) if i is not None)
    assert got == {1: "new", 2: "b2", 3: "c", 4: "d2"}
    assert sorted(v for i, v in zip(_col(ds, "id"), _col(ds, "v")) if i is None) == ["null-a", "null-b"]
    assert len(ds) == 6


def test_overwrite_is_staged_and_failure_keeps_previous_data(tmp_path):
    cat = catalog(stream("t", {"id": {"type": "integer"}}, mode="overwrite", generation_id=1, minimum_generation_id=1))
    write(_cfg(tmp_path), cat, [record("t", {"id": i}) for i in range(3)] + [state("t", 1)])
    assert _col(_load(tmp_path, "t"), "id") == [0, 1, 2]

    cat2 = catalog(stream("t", {"id": {"type": "integer"}}, mode="overwrite", generation_id=2, minimum_generation_id=2, sync_id=2))

    def failing():
        yield from [record("t", {"id": 100}), record("t", {"id": 101}), state("t", 2)]
        raise OSError("network down")

    import orjson

    from connectors.destination_deeplake.destination import run_write

    out = []
    with pytest.raises(OSError):
        for _ in run_write(DestinationConfig.from_mapping(_cfg(tmp_path, flush_every_records=1)), cat2, (orjson.dumps(m) for m in failing()), out.append):
            pass
    assert [m["state"]["destinationStats"]["recordCount"] for m in states_of(out)] == [2]
    assert _col(_load(tmp_path, "t"), "id") == [0, 1, 2]  # main still serves the previous sync
    # the retry of the same generation resumes from the acknowledged state
    write(_cfg(tmp_path), cat2, [record("t", {"id": 102}), state("t", 3), complete("t")])
    ds = _load(tmp_path, "t")
    assert _col(ds, "id") == [100, 101, 102]
    assert ds.branches == ["main"]
    from lakeformat.version_control import api as vc

    messages = [e["message"] for e in vc.log(ds)]
    assert "overwrite, generation 2" in messages[0] and "overwrite, generation 1" in messages[1]
    # an overwrite with no record empties the stream, once the source reports it complete
    cat3 = catalog(stream("t", {"id": {"type": "integer"}}, mode="overwrite", generation_id=3, minimum_generation_id=3))
    write(_cfg(tmp_path), cat3, [complete("t")])
    assert len(_load(tmp_path, "t")) == 0


def test_refresh_removes_older_generations_at_the_end(tmp_path):
    def mk(g, m):
        return catalog(stream("t", {"id": {"type": "integer"}}, generation_id=g, minimum_generation_id=m))
    write(_cfg(tmp_path), mk(1, 0), [record("t", {"id": 1})])
    write(_cfg(tmp_path), mk(2, 0), [record("t", {"id": 2})])
    write(_cfg(tmp_path), mk(3, 2), [record("t", {"id": 3})])
    ds = _load(tmp_path, "t")
    assert _col(ds, "id") == [2, 3] and _col(ds, "_airbyte_generation_id") == [2, 3]


def test_namespaces_and_overrides_and_links(tmp_path):
    cat = catalog(stream("items", {"emb": {"type": "array", "items": {"type": "number"}}, "img": {"type": "string"}}, namespace="shop"))
    cfg = _cfg(tmp_path, tensor_overrides=[{"stream": "items", "field": "emb", "htype": "embedding", "dtype": "float32"}],
               link_fields=[{"stream": "items", "field": "img", "htype": "link[image]", "creds_key": "my_s3"}])
    write(cfg, cat, [record("items", {"emb": [0.5, 1.5], "img": "s3://b/cat.png"}, namespace="shop")])
    ds = _load(tmp_path, "items", ns="shop")
    assert ds.emb.htype == "embedding" and ds.emb.dtype == np.float32
    assert ds.img.htype == "link[image]" and ds.get_creds_keys() == ["my_s3"]
    np.testing.assert_allclose(ds.emb.numpy()[0], [0.5, 1.5])


def test_states_wait_for_flush_and_buffers_are_bounded(tmp_path, monkeypatch):
    from connectors.destination_deeplake import sink as sink_mod

    events = []
    real_flush = sink_mod.StreamSink.flush
    monkeypatch.setattr(sink_mod.StreamSink, "flush", lambda self: (events.append(("flush", self.records_written)), real_flush(self))[1])
    cat = catalog(stream("t", {"id": {"type": "integer"}}))
    msgs = [record("t", {"id": i}) for i in range(25)] + [state("t", "a")] + [state("t", "b")]
    import orjson

    from connectors.destination_deeplake.destination import run_write

    for _ in run_write(DestinationConfig.from_mapping(_cfg(tmp_path, flush_every_records=10)), cat, (orjson.dumps(m) for m in msgs),
                       lambda m: events.append(("emit", m["type"], m.get("state", {}).get("destinationStats")))):
        pass
    flushes = [e[1] for e in events if e[0] == "flush"]
    assert flushes[:2] == [10, 20]  # bounded by flush_every_records, with no state in between
    emits = [e for e in events if e[0] == "emit" and e[1] == "STATE"]
    first_emit = events.index(emits[0])
    assert ("flush", 25) in events[:first_emit]  # a state goes out only after its records are durable
    assert [e[2]["recordCount"] for e in emits] == [25, 0]


def test_unknown_stream_and_malformed_input_fail_with_traces(tmp_path):
    cat = catalog(stream("t", {"id": {"type": "integer"}}))
    with pytest.raises(AirbyteTracedException) as e:
        write(_cfg(tmp_path), cat, [record("nope", {"id": 1})])
    assert e.value.failure_type == FailureType.config_error
    from connectors.destination_deeplake.destination import run_write

    with pytest.raises(AirbyteTracedException) as e:
        for _ in run_write(DestinationConfig.from_mapping(_cfg(tmp_path)), cat, [b"{not json"], lambda m: None):
            pass
    assert e.value.failure_type == FailureType.system_error


def test_config_is_data_never_code(tmp_path):
    with pytest.raises(AirbyteTracedException):
        DestinationConfig.from_mapping({"path": str(tmp_path), "flush_every_records": "__import__('os')"})
    with pytest.raises(AirbyteTracedException):
        DestinationConfig.from_mapping({"path": str(tmp_path), "tensor_overrides": [{"stream": "s", "field": "f", "htype": "exec()"}]})


def test_check_messages(tmp_path):
    ok = check_storage(DestinationConfig.from_mapping({"path": str(tmp_path / "lake")}))
    assert ok["status"].value == "SUCCEEDED"
    (tmp_path / "file").write_text("x")
    bad = check_storage(DestinationConfig.from_mapping({"path": str(tmp_path / "file")}))
    assert bad["status"].value == "FAILED" and "file" in bad["message"]


def test_check_s3_missing_bucket_and_dead_endpoint(s3_server):
    bucket = s3_server.make_bucket("chk")
    opts = dict(s3_server.storage_options)
    good = check_storage(DestinationConfig.from_mapping({"path": f"s3://{bucket}/lake", "storage_options": opts}))
    assert good["status"].value == "SUCCEEDED", good
    missing = check_storage(DestinationConfig.from_mapping({"path": "s3://no-such-bucket-xyz/lake", "storage_options": opts}))
    assert missing["status"].value == "FAILED" and "Unreachable" in missing["message"]
    dead = dict(opts, client_kwargs={"endpoint_url": "http://127.0.0.1:9"})
    down = check_storage(DestinationConfig.from_mapping({"path": f"s3://{bucket}/lake", "storage_options": dead}))
    assert down["status"].value == "FAILED" and "Unreachable" in down["message"]


def _cli(args, stdin=b"", cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "connectors.destination_deeplake", *args], input=stdin,
                          capture_output=True, env=env, cwd=cwd, timeout=120)


def test_cli_spec_check_write_and_error_exit(tmp_path):
    spec = _cli(["spec"])
    assert spec.returncode == 0
    msg = json.loads(spec.stdout)
    props = msg["spec"]["connectionSpecification"]["properties"]
    assert props["storage_options"]["properties"]["secret"]["airbyte_secret"] is True
    assert set(msg["spec"]["supported_destination_sync_modes"]) == {"overwrite", "append", "append_dedup"}
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"path": str(tmp_path / "lake")}))
    chk = _cli(["check", "--config", str(cfg)])
    assert json.loads(chk.stdout)["connectionStatus"]["status"] == "SUCCEEDED"
    cat = tmp_path / "cat.json"
    cat.write_text(json.dumps(catalog(stream("t", {"id": {"type": "integer"}}))))
    lines = b"\n".join(json.dumps(m).encode() for m in [record("t", {"id": 1}), state("t", 1), record("other", {"id": 2})])
    cfg.write_text(json.dumps({"path": str(tmp_path / "lake"), "flush_every_records": 1}))
    res = _cli(["write", "--config", str(cfg), "--catalog", str(cat)], stdin=lines)
    assert res.returncode != 0
    out = [json.loads(line) for line in res.stdout.splitlines()]  # stdout: protocol messages only
    out = [m for m in out if m["type"] != "LOG"]
    assert [m["type"] for m in out] == ["STATE", "TRACE"]
    assert out[1]["trace"]["error"]["failure_type"] == "config_error"
    assert len(_load(tmp_path, "t")) == 1  # the acknowledged record is kept


def test_cdk_write_api(tmp_path):
    from airbyte_cdk.models import (
        AirbyteMessageSerializer,
        ConfiguredAirbyteCatalogSerializer,
    )

    cat = ConfiguredAirbyteCatalogSerializer.load(catalog(stream("t", {"id": {"type": "integer"}})))
    msgs = [AirbyteMessageSerializer.load(m) for m in [record("t", {"id": 1}), state("t", {"x": 1})]]
    out = list(DestinationDeeplake().write(_cfg(tmp_path), cat, msgs))
    assert [m.type.value for m in out][0] == "STATE"
    assert len(_load(tmp_path, "t")) == 1


def test_override_image_from_base64_and_bad_values_nulled(tmp_path):
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((4, 5, 3), 200, np.uint8)).save(buf, format="PNG")
    png = base64.b64encode(buf.getvalue()).decode()
    cat = catalog(stream("pics", {"img": {"type": "string"}, "emb": {"type": "array"}}))
    cfg = _cfg(tmp_path, tensor_overrides=[{"stream": "pics", "field": "img", "htype": "image", "sample_compression": "png"},
                                           {"stream": "pics", "field": "emb", "htype": "embedding", "dtype": "float32"}])
    write(cfg, cat, [record("pics", {"img": png, "emb": [1, 2]}), record("pics", {"img": "not base64!", "emb": [[1], [2]]}),
                     record("pics", {"img": None, "emb": None})])
    ds = _load(tmp_path, "pics")
    assert len(ds) == 3
    imgs = ds.img.numpy(aslist=True)
    assert imgs[0].shape == (4, 5, 3) and int(imgs[0][0, 0, 0]) == 200 and imgs[1].size == 0
    meta = _col(ds, "_airbyte_meta")
    assert meta[0]["changes"] == [] and {c["field"] for c in meta[1]["changes"]} == {"img", "emb"}
    assert meta[2]["changes"] == []
