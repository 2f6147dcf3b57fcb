"""DatasetMeta is frozen: schema edits make a new meta, the document written is unchanged."""
from __future__ import annotations

import dataclasses
import json

import pytest

import lakeformat
from lakeformat.core.meta import DatasetMeta
from lakeformat.errors import HtypeError

DOC = {
    "tensors": ["a", "_a_id", "g/b"],
    "tensor_names": {"a": "a", "_a_id": "_a_id", "g/b": "g/b"},
    "hidden_tensors": ["_a_id"],
    "groups": ["g"],
    "allow_delete": True,
    "default_index": [{"start": None, "step": None, "stop": None}],
    "version": "3.9.52",
    "from_the_future": {"x": [1]},
}


def _meta() -> DatasetMeta:
    return DatasetMeta.from_bytes(json.dumps(DOC).encode())


def test_edits_return_new_metas_and_leave_the_original():
    m = _meta()
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.tensors = ()  # type: ignore[misc]
    added = m.with_tensor("c", "c", False).with_tensor("_c_id", "_c_id", True).with_group("h")
    assert added.tensors == ("a", "_a_id", "g/b", "c", "_c_id")
    assert added.tensor_names["c"] == "c" and added.hidden_tensors == ("_a_id", "_c_id")
    assert added.groups == ("g", "h") and added.with_group("h") is added
    assert json.loads(m.to_bytes()) == DOC  # the original is unchanged

    removed = m.without_tensor("_a_id")
    assert removed.tensors == ("a", "g/b") and removed.hidden_tensors == ()
    assert "_a_id" not in removed.tensor_names

    renamed = m.with_renamed_tensor("a", "z")
    assert renamed.tensor_names == {"_a_id": "_a_id", "g/b": "g/b", "z": "a"}
    assert renamed.tensors == m.tensors
    with pytest.raises(KeyError):
        m.without_tensor("nope")


def test_document_is_the_same_after_edits_and_not_shared():
    src = json.loads(json.dumps(DOC))
    m = DatasetMeta.from_dict(src)
    src["tensors"].append("zz")
    src["from_the_future"]["x"].append(2)
    src["default_index"][0]["start"] = 5
    assert json.loads(m.to_bytes()) == DOC  # the meta holds its own copy of what it read
    out = m.to_dict()
    out["tensors"].append("yy")
    out["from_the_future"]["x"].append(3)
    assert json.loads(m.to_bytes()) == DOC  # and to_dict gives a fresh one
    edited = m.with_tensor("c", "c", False).without_tensor("c")
    assert edited.to_bytes() == m.to_bytes()
    assert DatasetMeta.from_bytes(m.to_bytes()) == m


def test_schema_edits_through_the_dataset_replace_the_sessions_meta(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "d"))
    before = ds.meta
    ds.create_tensor("g/x", htype="class_label")
    assert before.tensors == () and ds.meta is ds.session.meta
    assert "g/x" in ds.meta.tensor_names and ds.meta.groups == ("g",)
    ds.rename_tensor("g/x", "g/y")
    ds.delete_tensor("g/y")
    assert ds.meta.tensors == () and ds.meta.groups == ("g",)
    raw = (tmp_path / "d" / "dataset_meta.json").read_bytes()
    assert json.loads(raw)["tensors"] == [] and json.loads(raw)["groups"] == ["g"]


@pytest.mark.parametrize("htype", ["text", "json", "list", "tag"])
def test_text_like_htypes_refuse_a_dtype_and_image_codecs(tmp_path, htype):
    ds = lakeformat.empty(str(tmp_path / "d"))
    with pytest.raises(HtypeError, match="takes no dtype"):
        ds.create_tensor("a", htype=htype, dtype="int32")
    with pytest.raises(HtypeError, match="sample_compression 'png' is for images"):
        ds.create_tensor("b", htype=htype, sample_compression="png")
    with pytest.raises(HtypeError, match="chunk_compression 'jpeg' is for images"):
        ds.create_tensor("c", htype=htype, chunk_compression="jpeg")
    assert ds.meta.tensors == ()
