"""Info: every mutating method of dataset and tensor info persists across reopen, and
deeplake 3.9.52 reads the result."""
from __future__ import annotations

import pickle

import pytest

import lakeformat
from lakeformat.core.info import Info
from lakeformat.errors import LakeFormatError
from tests.interop.deeplake3 import run_deeplake3

DL_READ_INFO = """
import deeplake
ds = deeplake.load(INPUT, read_only=True)
emit({"ds": dict(ds.info.items()), "t": dict(ds.t.info.items())})
"""

# each step: (what it does to an info, the document expected after it)
STEPS = [
    (lambda i: i.__setitem__("a", 1), {"a": 1}),
    (lambda i: setattr(i, "b", [1, 2]), {"a": 1, "b": [1, 2]}),
    (lambda i: i.update({"c": "x"}, d=4), {"a": 1, "b": [1, 2], "c": "x", "d": 4}),
    (lambda i: i.__delitem__("a"), {"b": [1, 2], "c": "x", "d": 4}),
    (lambda i: i.pop("b"), {"c": "x", "d": 4}),
    (lambda i: i.setdefault("e", {"k": None}), {"c": "x", "d": 4, "e": {"k": None}}),
    (lambda i: i.popitem(), {"c": "x", "d": 4}),
    (lambda i: delattr(i, "c"), {"d": 4}),
    (lambda i: i.clear(), {}),
    (lambda i: i.update(final=True, n=3), {"final": True, "n": 3}),
]


@pytest.mark.parametrize("target", ["dataset", "tensor"])
def test_every_mutation_persists_across_reopen(tmp_path, target):
    path = str(tmp_path / "d")
    ds = lakeformat.empty(path)
    ds.create_tensor("t", dtype="int64")
    ds.t.append(1)
    for step, want in STEPS:
        ds = lakeformat.load(path)
        info = ds.info if target == "dataset" else ds.t.info
        step(info)
        assert dict(info) == want
        ds.flush()
        back = lakeformat.load(path, read_only=True)
        got = back.info if target == "dataset" else back.t.info
        assert dict(got) == want, step
    assert got.final is True and got["n"] == 3 and got == {"final": True, "n": 3}


def test_deeplake3_reads_the_infos(tmp_path):
    path = str(tmp_path / "d")
    ds = lakeformat.empty(path)
    ds.create_tensor("t", dtype="int64")
    ds.info.update(description="cats", gone=1)
    ds.info.pop("gone")
    ds.t.info.setdefault("unit", "m")
    ds.t.info["x"] = [1, 2]
    del ds.t.info["x"]
    ds.flush()
    theirs = run_deeplake3(DL_READ_INFO, inputs=path)
    assert theirs["ds"] == {"description": "cats"}
    assert theirs["t"]["unit"] == "m" and "x" not in theirs["t"]


def test_read_only_info_refuses_every_change(tmp_path):
    path = str(tmp_path / "d")
    lakeformat.empty(path).create_tensor("t")
    ro = lakeformat.load(path, read_only=True)
    for info in (ro.info, ro.t.info):
        for step, _ in STEPS:
            with pytest.raises(LakeFormatError):
                step(info)
        assert dict(info) == {}  # nothing changed


def test_info_is_a_mapping_that_saves():
    doc: dict = {}
    saves = []
    info = Info(doc, lambda: saves.append(dict(doc)))
    info.x = 1
    assert doc == {"x": 1} and saves == [{"x": 1}]
    assert info.setdefault("x", 5) == 1 and len(saves) == 1  # nothing added: nothing saved
    assert info.pop("missing", None) is None and len(saves) == 1
    with pytest.raises(KeyError):
        info.pop("missing")
    with pytest.raises(AttributeError):
        info.missing  # noqa: B018
    assert pickle.loads(pickle.dumps(info)) == {"x": 1}  # pickles as its plain document
    assert repr(info) == "{'x': 1}" and list(info) == ["x"] and info.nbytes > 0
