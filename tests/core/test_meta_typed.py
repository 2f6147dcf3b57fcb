"""Typed metas: every key read back as written (ours and deeplake 3.9.52's), unknown keys
kept, changes made as new values, bad documents refused naming the key."""
from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

import lakeformat
from lakeformat.core.meta import DatasetMeta, TensorMeta
from lakeformat.errors import CorruptDataError
from tests.interop.deeplake3 import run_deeplake3

DL_WRITE = """
import deeplake, numpy as np, json, os
ds = deeplake.empty(INPUT, overwrite=True)
ds.create_tensor("img", htype="image", sample_compression="png")
ds.create_tensor("lbl", htype="class_label", class_names=["a", "b"])
ds.create_tensor("box", htype="bbox")
ds.create_tensor("emb", htype="embedding")
ds.create_tensor("txt", htype="text")
ds.create_tensor("js", htype="json")
ds.create_tensor("ls", htype="list")
ds.create_tensor("kp", htype="keypoints_coco")
ds.create_tensor("seq", htype="sequence[generic]", dtype="int32")
ds.create_tensor("lnk", htype="link[image]", sample_compression="png")
ds.create_tensor("g/z", dtype="float64", chunk_compression="lz4")
ds.img.append(np.zeros((4, 5, 3), np.uint8))
ds.lbl.append(1); ds.box.append(np.zeros((2, 4), np.float32)); ds.txt.append("hi")
ds.seq.append([np.arange(3, dtype=np.int32)])
ds["g/z"].append(np.ones((2, 2)))
ds.flush()
out = {}
for root, _, files in os.walk(INPUT):
    for f in files:
        if f in ("tensor_meta.json", "dataset_meta.json"):
            p = os.path.join(root, f)
            out[os.path.relpath(p, INPUT)] = open(p).read()
emit(out)
"""


def _roundtrip_tensor(raw: bytes) -> None:
    meta = TensorMeta.from_bytes(raw, "t/tensor_meta.json")
    assert json.loads(meta.to_bytes()) == json.loads(raw)
    again = TensorMeta.from_bytes(meta.to_bytes())
    assert again == meta and again.to_bytes() == meta.to_bytes()


def test_deeplake_written_metas_round_trip(tmp_path):
    docs = run_deeplake3(DL_WRITE, inputs=str(tmp_path / "dl"))
    tensor_docs = {k: v for k, v in docs.items() if k.endswith("tensor_meta.json")}
    assert len(tensor_docs) >= 11 and "dataset_meta.json" in docs
    for raw in tensor_docs.values():
        _roundtrip_tensor(raw.encode())
    dm = DatasetMeta.from_bytes(docs["dataset_meta.json"].encode())
    assert json.loads(dm.to_bytes()) == json.loads(docs["dataset_meta.json"])
    lbl = TensorMeta.from_bytes(tensor_docs["lbl/tensor_meta.json"].encode())
    assert lbl.htype == "class_label" and lbl.dtype == "uint32" and lbl.length == 1
    assert lbl.class_names == [] and "_disable_temp_transform" in lbl.extra  # htype keys kept
    img = TensorMeta.from_bytes(tensor_docs["img/tensor_meta.json"].encode())
    assert img.sample_compression == "png" and img.min_shape == (4, 5, 3) and img.is_link is False
    assert TensorMeta.from_bytes(tensor_docs["seq/tensor_meta.json"].encode()).is_sequence is True
    assert "g/z" in dm.tensor_names and "g" in dm.groups


def test_our_metas_round_trip(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "d"))
    ds.create_tensor("img", htype="image", sample_compression="png")
    ds.create_tensor("lbl", htype="class_label", class_names=["x"])
    ds.create_tensor("z", dtype="int64", chunk_compression="zstd", chunk_compression_level=3)
    ds.create_tensor("s", htype="sequence[text]")
    ds.lbl.append(0)
    ds.z.extend([[1, 2], [3, 4]])
    ds.flush()
    base = tmp_path / "d"
    metas = sorted(base.glob("*/tensor_meta.json"))
    assert len(metas) >= 4
    for p in metas:
        _roundtrip_tensor(p.read_bytes())
    raw = (base / "dataset_meta.json").read_bytes()
    assert DatasetMeta.from_bytes(raw).to_bytes() == raw
    z = TensorMeta.from_bytes((base / "z" / "tensor_meta.json").read_bytes())
    assert z.zstd_level == 3 and z.length == 2 and z.max_shape == (2,)


def test_unknown_keys_are_kept_and_absent_keys_stay_absent():
    doc = {"htype": "generic", "length": 3, "from_the_future": {"a": [1, 2]}, "version": "3.9.52"}
    meta = TensorMeta.from_bytes(json.dumps(doc).encode())
    assert meta.extra == {"from_the_future": {"a": [1, 2]}} and meta.from_the_future == {"a": [1, 2]}
    assert json.loads(meta.to_bytes()) == doc  # no typed key added on the way back
    longer = meta.replace(length=4, dtype="int8")
    assert json.loads(longer.to_bytes()) == {**doc, "length": 4, "dtype": "int8"}
    assert meta.length == 3 and "dtype" not in meta.d  # the original is unchanged
    ddoc = {"tensors": ["a"], "tensor_names": {"a": "a"}, "hidden_tensors": [], "groups": [], "extra_key": 7}
    assert json.loads(DatasetMeta.from_bytes(json.dumps(ddoc).encode()).to_bytes()) == ddoc


def test_tensor_meta_is_a_frozen_value():
    m = TensorMeta.new("t", "generic", "int64", None, "lz4", None, None, False, False, False, {"zstd_level": None})
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.length = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.d["length"] = 5  # type: ignore[index]  # a read-only view, not a back door
    wider = m.with_shape_interval((1, 2), (3, 4)).with_shape_interval((2, 1), (2, 5))
    assert (wider.min_shape, wider.max_shape) == ((1, 1), (3, 5)) and m.min_shape == ()
    assert m.with_shape_interval((), ()) is m  # nothing to widen: the same value
    assert pickle.loads(pickle.dumps(wider)) == wider
    assert m.without("zstd_level").extra == {} and m.zstd_level is None and m.class_names is None
    with pytest.raises(AttributeError):
        m.no_such_key  # noqa: B018


@pytest.mark.parametrize(("doc", "key"), [
    ({"htype": "generic", "length": "7"}, "length"),
    ({"htype": "generic", "length": -1}, "length"),
    ({"htype": "generic", "min_shape": [1, "2"]}, "min_shape"),
    ({"htype": "generic", "max_shape": 3}, "max_shape"),
    ({"htype": "generic", "dtype": 5}, "dtype"),
    ({"htype": ["image"]}, "htype"),
    ({"htype": "generic", "is_sequence": "yes"}, "is_sequence"),
    ({"htype": "generic", "hidden": 1}, "hidden"),
    ({"htype": "generic", "links": []}, "links"),
    ({"htype": "generic", "max_chunk_size": 1.5}, "max_chunk_size"),
    ({"htype": "generic", "sample_compression": {}}, "sample_compression"),
])
def test_bad_tensor_metas_name_the_key(doc, key):
    with pytest.raises(CorruptDataError, match=f"tensor meta's '{key}'") as e:
        TensorMeta.from_bytes(json.dumps(doc).encode(), key="x/tensor_meta.json")
    assert "x/tensor_meta.json" in str(e.value)


@pytest.mark.parametrize(("doc", "key"), [
    ({"tensors": "abc"}, "tensors"),
    ({"tensors": [], "groups": [1]}, "groups"),
    ({"tensors": [], "tensor_names": []}, "tensor_names"),
])
def test_bad_dataset_metas_name_the_key(doc, key):
    with pytest.raises(CorruptDataError, match=f"dataset meta's '{key}'"):
        DatasetMeta.from_bytes(json.dumps(doc).encode())
    with pytest.raises(CorruptDataError, match="has no 'tensors'"):
        DatasetMeta.from_bytes(b"{}")
    with pytest.raises(CorruptDataError, match="has no 'htype'"):
        TensorMeta.from_bytes(b"{}")
