"""The destination never loses or mangles data silently (issue 14): keys missing under dedup,
unsafe field names, malformed records, truncates without a COMPLETE stream status."""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

import airbyte_cdk  # noqa: F401 - required: a missing CDK fails the run, never skips it
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

import lakeformat
from connectors.destination_deeplake import schema as S
from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.protocol import run_write
from tests.connectors.destination.helpers import catalog, complete, record, state, stream, write
from tests.connectors.destination.test_columnar import same_runs


def _cfg(tmp_path: Path, **kw):
    return {"path": str(tmp_path / "lake"), **kw}


def _load(tmp_path: Path, name: str):
    return lakeformat.load(str(tmp_path / "lake" / name), read_only=True)


def _col(ds, field):
    for t in ds.tensors.values():
        if t.info.get("airbyte_field") == field:
            return [S.value_of(t.info.get("airbyte_kind", S.JSON), v) for v in t.values()]
    raise KeyError(field)


def _run(tmp_path: Path, cat, lines, fast=True, **cfg):
    out: list = []
    for _ in run_write(DestinationConfig.from_mapping(_cfg(tmp_path, **cfg)), cat, lines, out.append, fast=fast):
        pass
    return out


# ------------------------------------------------------------------------------ 1. dedup keys
def test_dedup_on_a_key_no_record_has_is_a_config_error_and_loses_nothing(tmp_path):
    props = {"id": {"type": "integer"}, "v": {"type": "string"}}
    write(_cfg(tmp_path), catalog(stream("t", props)), [record("t", {"id": i, "v": str(i)}) for i in range(100)])
    dedup = catalog(stream("t", props, mode="append_dedup", pk=[["user_id"]], sync_id=2))
    with pytest.raises(AirbyteTracedException) as e:
        write(_cfg(tmp_path), dedup, [record("t", {"id": 100 + i, "v": "new"}) for i in range(5)])
    assert e.value.failure_type == FailureType.config_error
    assert "user_id" in e.value.message
    ds = lakeformat.load(str(tmp_path / "lake" / "t"))
    assert len(ds) == 105 and _col(ds, "id") == list(range(105))  # nothing removed


def test_dedup_keeps_and_reports_records_missing_their_key(tmp_path):
    cat = catalog(stream("t", {"id": {"type": "integer"}, "v": {"type": "string"}}, mode="append_dedup", pk=[["id"]]))
    rows = [{"id": 1, "v": "a"}, {"v": "no key 1"}, {"id": None, "v": "null key"}, {"id": 1, "v": "b"}, {"v": "no key 2"}]
    out = write(_cfg(tmp_path), cat, [record("t", r) for r in rows])
    ds = _load(tmp_path, "t")
    assert sorted(_col(ds, "v")) == ["b", "no key 1", "no key 2", "null key"]  # never merged into one row
    warns = [m["log"]["message"] for m in out if m["type"] == "LOG" and m["log"]["level"] == "WARN"]
    assert any("3 records" in w and "[id]" in w for w in warns), warns
    from lakeformat.version_control import api as vc

    assert "3 without a primary key kept" in vc.log(ds)[0]["message"]


def test_dedup_composite_key_with_a_null_part_is_not_merged(tmp_path):
    cat = catalog(stream("t", {"a": {"type": "integer"}, "b": {"type": "integer"}, "v": {"type": "string"}},
                         mode="append_dedup", pk=[["a"], ["b"]]))
    rows = [{"a": 1, "b": 1, "v": "x"}, {"a": 1, "b": 1, "v": "y"}, {"a": 1, "v": "p"}, {"a": 1, "v": "q"}]
    write(_cfg(tmp_path), cat, [record("t", r) for r in rows])
    assert sorted(_col(_load(tmp_path, "t"), "v")) == ["p", "q", "y"]


# ------------------------------------------------------------------------------ 3. names
LAYOUT_FIELDS = ["dataset_meta.json", "version_control_info.json", "lakeformat_flush.json", "_id_id", "_id_shape",
                 "dataset_diff", "dataset_info.json", "commit_info.json", "versions", "_id_info", "DATASET_META.JSON"]


@pytest.mark.parametrize("mode", ["append", "overwrite", "append_dedup"])
def test_fields_named_like_the_layout_get_safe_names(tmp_path, mode):
    props = {"id": {"type": "integer"}, **{f: {"type": "string"} for f in LAYOUT_FIELDS}}
    for sync in (1, 2):  # the second sync overwrites / appends to the first
        cat = catalog(stream("t", props, mode=mode, pk=[["id"]], generation_id=sync,
                             minimum_generation_id=sync if mode == "overwrite" else 0, sync_id=sync))
        rows = [{"id": i, **{f: f"{f}-{sync}-{i}" for f in LAYOUT_FIELDS}} for i in range(3)]
        write(_cfg(tmp_path), cat, [record("t", r) for r in rows] + [complete("t")])
    ds = _load(tmp_path, "t")
    names = {t.info["airbyte_field"]: name for name, t in ds.tensors.items() if "airbyte_field" in t.info}
    assert len(set(names.values())) == len(names)  # no two fields share a tensor
    for f in LAYOUT_FIELDS:
        assert names[f] != f and not S.unsafe_name(names[f])
        assert _col(ds, f)[-1] == f"{f}-2-2"
    assert len(ds) == {"append": 6, "overwrite": 3, "append_dedup": 3}[mode]


def test_safe_names_are_deterministic_and_never_collide():
    taken: dict[str, str] = {}
    for f in ["_id_id", "f__id_id", "dataset_diff", "f_dataset_diff", "id", "_id"]:
        taken[f] = S.tensor_name(f, taken, set())
    assert len(set(taken.values())) == len(taken)
    assert taken["_id"] == "_id" and taken["id"] == "id"
    assert S.tensor_name("_airbyte_raw_id", {}, set()) == "src_airbyte_raw_id"  # a source's own _airbyte_ field
    again: dict[str, str] = {}
    for f in taken:
        again[f] = S.tensor_name(f, again, set())
    assert again == taken


def test_permanent_layout_errors_are_never_transient():
    from connectors.destination_deeplake.errors import failure_from

    for exc in (NotADirectoryError(20, "Not a directory"), IsADirectoryError(21, "Is a directory"), FileExistsError(17, "exists")):
        assert failure_from(exc, "write").failure_type == FailureType.system_error
    assert failure_from(ConnectionError("reset"), "write").failure_type == FailureType.transient_error
    from lakeformat.errors import StorageError

    try:
        try:
            raise IsADirectoryError(21, "Is a directory")
        except OSError as e:
            raise StorageError("Reading 'x' failed") from e
    except StorageError as wrapped:
        assert failure_from(wrapped, "write").failure_type == FailureType.system_error
    assert failure_from(StorageError("timed out"), "write").failure_type == FailureType.transient_error
    from lakeformat.errors import TensorAlreadyExistsError

    assert failure_from(TensorAlreadyExistsError("x"), "write").failure_type == FailureType.system_error


# ------------------------------------------------------------------------------ 5. bad records
@pytest.mark.parametrize("data", [[1, 2], "text", 7, 1.5, None, True])
@pytest.mark.parametrize("fast", [True, False])
def test_record_data_that_is_not_an_object_is_refused(tmp_path, data, fast):
    cat = catalog(stream("t", {"id": {"type": "integer"}}))
    lines = [orjson.dumps(record("t", {"id": 1})), orjson.dumps(record("t", data))]
    with pytest.raises(AirbyteTracedException) as e:
        _run(tmp_path, cat, lines, fast=fast)
    assert e.value.failure_type == FailureType.system_error
    assert "line 2" in e.value.message and "'t'" in e.value.message
    if isinstance(data, str):
        assert data not in e.value.message and data not in e.value.internal_message


SECRET = "s3cr3t-PII"
BAD_LINES = {
    "deep": (b'{"type":"RECORD","record":{"stream":"t","emitted_at":1,"data":{"id":1,"x":"' + SECRET.encode() + b'","o":'
             + b"[" * 10_000 + b"]" * 10_000 + b"}}}", "nesting deeper than"),
    "nan": (b'{"type":"RECORD","record":{"stream":"t","emitted_at":1,"data":{"x":"' + SECRET.encode() + b'","id":NaN}}}', "NaN or Infinity"),
    "inf": (b'{"type":"RECORD","record":{"stream":"t","emitted_at":1,"data":{"x":"' + SECRET.encode() + b'","id":-Infinity}}}', "NaN or Infinity"),
    "big": (b'{"type":"RECORD","record":{"stream":"t","emitted_at":1,"data":{"x":"' + SECRET.encode() + b'","id":1e400}}}', "out of the double range"),
    "utf8": (b'{"type":"RECORD","record":{"stream":"t","emitted_at":1,"data":{"x":"' + SECRET.encode() + b'\xff"}}}', "invalid UTF-8 at byte 78"),
    "surrogate_utf8": (b'{"type":"RECORD","record":{"stream":"t","emitted_at":1,"data":{"x":"' + SECRET.encode() + b'\xed\xa0\x80"}}}', "invalid UTF-8 at byte 78"),
    "surrogate_escape": (b'{"type":"RECORD","record":{"stream":"t","emitted_at":1,"data":{"x":"' + SECRET.encode() + b'\\ud800"}}}', "lone UTF-16 surrogate"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
@pytest.mark.parametrize("fast", [True, False])
def test_unparseable_lines_say_why_and_never_show_content(tmp_path, case, fast):
    line, cause = BAD_LINES[case]
    cat = catalog(stream("t", {"id": {"type": "integer"}, "x": {"type": "string"}}))
    ok = orjson.dumps(record("t", {"id": 1, "x": "fine"}))
    with pytest.raises(AirbyteTracedException) as e:
        _run(tmp_path, cat, [ok, ok, line, ok], fast=fast)
    assert e.value.failure_type == FailureType.system_error
    assert e.value.message.startswith("Input line 3 is not an Airbyte message: ") and cause in e.value.message, e.value.message
    text = json.dumps(e.value.as_airbyte_message().model_dump() if hasattr(e.value.as_airbyte_message(), "model_dump") else str(e.value.as_airbyte_message()), default=str)
    assert SECRET not in text and SECRET not in e.value.internal_message and SECRET not in e.value.message


def test_bad_lines_fail_alike_on_both_paths(tmp_path):
    ok = orjson.dumps(record("s", {"i": 1, "s": "x"}))
    for case, (line, _) in sorted(BAD_LINES.items()):
        d = tmp_path / case
        d.mkdir()
        same_runs(d, [ok, line.replace(b'"stream":"t"', b'"stream":"s"'), ok], 5, 0)
    d = tmp_path / "data"
    d.mkdir()
    same_runs(d, [ok, orjson.dumps(record("s", [1])), ok], 5, 0)


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_stream_name_is_a_config_error(tmp_path, name):
    with pytest.raises(AirbyteTracedException) as e:
        write(_cfg(tmp_path), catalog(stream(name, {"id": {"type": "integer"}})), [record(name, {"id": 1})])
    assert e.value.failure_type == FailureType.config_error
    assert not (tmp_path / "lake" / "dataset_meta.json").exists() and not (tmp_path / "lake" / "version_control_info.json").exists()


# ------------------------------------------------------------------------------ 6. truncates
def _overwrite(g: int):
    return catalog(stream("t", {"id": {"type": "integer"}}, mode="overwrite", generation_id=g, minimum_generation_id=g, sync_id=g))


@pytest.mark.parametrize("refresh", ["overwrite", "truncate_refresh"])
def test_a_truncate_without_complete_status_keeps_the_previous_data(tmp_path, refresh):
    def cat(g):
        if refresh == "overwrite":
            return _overwrite(g)
        return catalog(stream("t", {"id": {"type": "integer"}}, mode="append", generation_id=g, minimum_generation_id=g, sync_id=g))

    write(_cfg(tmp_path), cat(1), [record("t", {"id": i}) for i in range(3)] + [complete("t")])
    assert _col(_load(tmp_path, "t"), "id") == [0, 1, 2]
    out = write(_cfg(tmp_path), cat(2), [])  # no record, no status: the source said nothing
    assert _col(_load(tmp_path, "t"), "id") == [0, 1, 2]
    assert any(m["type"] == "LOG" and m["log"]["level"] == "WARN" and "COMPLETE" in m["log"]["message"] for m in out)
    write(_cfg(tmp_path), cat(3), [record("t", {"id": 9}), state("t", 1)])  # records, but not complete
    assert _col(_load(tmp_path, "t"), "id") == [0, 1, 2]
    write(_cfg(tmp_path), cat(3), [record("t", {"id": 10}), complete("t")])  # the retry completes
    ds = _load(tmp_path, "t")
    assert _col(ds, "id") == [9, 10] and ds.branches == ["main"]
    write(_cfg(tmp_path), cat(4), [complete("t")])  # complete with no record: now the stream is empty
    assert len(_load(tmp_path, "t")) == 0


def test_complete_of_another_stream_does_not_count(tmp_path):
    cat = catalog(_overwrite(1)["streams"][0], stream("u", {"id": {"type": "integer"}}, mode="overwrite", generation_id=1, minimum_generation_id=1))
    write(_cfg(tmp_path), cat, [record("t", {"id": 1}), record("u", {"id": 2}), complete("t"), complete("u")])
    cat2 = catalog(_overwrite(2)["streams"][0], stream("u", {"id": {"type": "integer"}}, mode="overwrite", generation_id=2, minimum_generation_id=2))
    write(_cfg(tmp_path), cat2, [record("t", {"id": 3}), record("u", {"id": 4}), complete("u"),
                                 complete("t", status="INCOMPLETE"), complete("t", namespace="other")])
    assert _col(_load(tmp_path, "t"), "id") == [1]
    assert _col(_load(tmp_path, "u"), "id") == [4]


def test_cdk_write_api_sees_stream_status(tmp_path):
    """AirbyteMessage objects (the CDK's `write`): the COMPLETE status survives the round trip."""
    from airbyte_cdk.models import AirbyteMessageSerializer, ConfiguredAirbyteCatalogSerializer

    from connectors.destination_deeplake.destination import DestinationDeeplake

    def sync(g, messages):
        cat = ConfiguredAirbyteCatalogSerializer.load(_overwrite(g))
        return list(DestinationDeeplake().write(_cfg(tmp_path), cat, [AirbyteMessageSerializer.load(m) for m in messages]))

    sync(1, [record("t", {"id": 1}), complete("t")])
    sync(2, [record("t", {"id": 2})])
    assert _col(_load(tmp_path, "t"), "id") == [1]
    sync(2, [record("t", {"id": 3}), complete("t")])
    assert _col(_load(tmp_path, "t"), "id") == [2, 3]
