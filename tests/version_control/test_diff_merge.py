"""ds.diff (dict and printed forms) and ds.merge (ids, conflicts, policies, tensors)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import lakeformat
from lakeformat.cli import main as cli_main
from lakeformat.errors import MergeConflictError, MergeError
from lakeformat.verify import verify


def _base(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"), overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("lbl", htype="class_label")
    ds.create_tensor("img", htype="image", sample_compression="png")
    ds.extend({"x": np.arange(10), "lbl": ["a"] * 10, "img": [np.full((3, 3, 3), i, np.uint8) for i in range(10)]})
    base = ds.commit("base")
    return ds, base


def _x(ds):
    return ds.x.numpy().ravel().tolist()


def _tree_files(root):
    out = {}
    for folder, _, files in os.walk(root):
        for f in files:
            p = os.path.join(folder, f)
            if "/locks/" not in p:
                out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def test_diff_dict_form_across_branches(tmp_path, capsys):
    ds, base = _base(tmp_path)
    ds.checkout("alt", create=True)
    ds.x[2] = 200
    ds.pop(0)
    ds.append({"x": 10, "lbl": "b", "img": np.zeros((3, 3, 3), np.uint8)})
    ds.commit("alt 1")
    ds.create_tensor("new", htype="text")
    ds.rename_tensor("lbl", "label")
    ds.info["owner"] = "me"
    ds.commit("alt 2")
    ds.checkout("main")
    ds.delete_tensor("img")
    ds.x[9] = 99
    d = ds.diff("alt", as_dict=True)
    assert d["base"] == base
    mine, theirs = d["sides"]
    assert mine["tensors_deleted"] == ["img"] and mine["tensors"]["x"]["updated"] == [9]
    assert theirs["tensors_created"] == ["new"] and theirs["tensors_renamed"] == {"lbl": "label"}
    assert theirs["info_updated"] and len(theirs["commits"]) == 3  # 2 commits and the head
    x = theirs["tensors"]["x"]
    assert x == {"created": False, "info_updated": False, "added": [9], "updated": [1], "deleted": [0]}
    assert theirs["tensors"]["label"]["added"] == [9] and theirs["tensors"]["new"]["created"]
    # two explicit ids, and the printed form
    d2 = ds.diff(base, "alt", as_dict=True)
    assert d2["sides"][0]["commits"] == [] and d2["sides"][1]["tensors"]["x"] == x
    ds.diff(base, "alt")
    out = capsys.readouterr().out
    assert "tensor renamed: lbl -> label" in out and "x: 1 added [9]; 1 updated [1]; 1 deleted [0]" in out
    # no ids: the head against its last commit
    d3 = ds.diff(as_dict=True)
    assert d3["base"] == base and d3["sides"][0]["tensors"]["x"]["updated"] == [9] and d3["sides"][1]["commits"] == []
    with pytest.raises(ValueError):
        ds.diff(None, "alt")


def test_merge_appends_updates_and_pops_by_sample_id(tmp_path):
    ds, base = _base(tmp_path)
    ds.checkout("alt", create=True)
    ds.x[1] = 101
    ds.pop(4)
    ds.extend({"x": [20, 21], "lbl": ["b", "c"], "img": [np.full((3, 3, 3), 20 + i, np.uint8) for i in range(2)]})
    ds.create_tensor("t", htype="text")
    ds.t.extend([f"t{i}" for i in range(len(ds.x))])
    ds.commit("alt")
    alt_ids = ds._all_tensors["_x_id"].numpy().ravel().tolist()
    ds.checkout("main")
    ds.x[7] = 707
    ds.append({"x": 30, "lbl": "a", "img": np.full((3, 3, 3), 30, np.uint8)})
    ds.merge("alt")
    assert _x(ds) == [0, 101, 2, 3, 5, 6, 707, 8, 9, 30, 20, 21]
    names = ds.lbl.info.class_names
    assert [names[i] for i in ds.lbl.numpy().ravel()][-3:] == ["a", "b", "c"]
    assert ds.img[-1].numpy()[0, 0, 0] == 21 and ds.img[9].numpy()[0, 0, 0] == 30
    assert ds.t.numpy().ravel().tolist()[:2] == ["t0", "t1"]
    ids = ds._all_tensors["_x_id"].numpy().ravel().tolist()
    assert ids[-2:] == alt_ids[-2:]  # appended samples keep their ids
    log = ds.log()
    assert log[0]["message"] == "Merge alt into main" and log[0]["commit"] == ds.commit_id
    assert log[1]["message"] == "auto commit before merging alt"  # the head's own changes
    assert verify(ds.path).ok
    # merging again: every change of alt is here already, nothing is appended twice
    ds.merge("alt")
    assert _x(ds) == [0, 101, 2, 3, 5, 6, 707, 8, 9, 30, 20, 21]


def test_conflict_raises_lists_samples_and_changes_nothing(tmp_path):
    ds, base = _base(tmp_path)
    ds.checkout("alt", create=True)
    ds.x[1] = 111
    ds.x[2] = 222
    ds.x[5] = 5  # the same value as main will give it: no conflict
    ds.pop(8)
    ds.commit("alt")
    ds.checkout("main")
    ds.x[1] = -1
    ds.x[5] = 5
    ds.x[8] = -8  # alt popped it
    ds.commit("main")
    before = _tree_files(ds.path)
    with pytest.raises(MergeConflictError) as e:
        ds.merge("alt")
    assert e.value.conflicts == {"x": [1, 8]}
    assert "x: samples [1, 8]" in str(e.value)
    assert _tree_files(ds.path) == before
    ds.merge("alt", conflict_resolution="ours")
    assert _x(ds) == [0, -1, 222, 3, 4, 5, 6, 7, -8, 9]
    ds2, _ = _base(tmp_path / "two")
    ds2.checkout("alt", create=True)
    ds2.x[1] = 111
    ds2.pop(8)
    ds2.commit("alt")
    ds2.checkout("main")
    ds2.x[1] = -1
    ds2.x[8] = -8
    ds2.commit("main")
    ds2.merge("alt", conflict_resolution="theirs")
    assert _x(ds2) == [0, 111, 2, 3, 4, 5, 6, 7, 9]


def test_merge_tensor_changes_and_pending_target(tmp_path):
    ds, base = _base(tmp_path)
    ds.checkout("alt", create=True)
    ds.rename_tensor("lbl", "label")
    ds.delete_tensor("img")
    ds.create_tensor("emb", dtype="float32")
    ds.emb.extend(np.ones((10, 4), np.float32))
    ds.x.append(10)  # left uncommitted: the merge commits it on alt first
    ds.flush()
    ds.checkout("main")
    ds.merge("alt")
    assert set(ds.tensors) == {"x", "label", "img", "emb"}
    assert ds.emb.numpy().shape == (10, 4) and _x(ds)[-1] == 10
    assert lakeformat.load(ds.path, version="alt", read_only=True).log()[0]["message"] == "auto commit before merging into main"
    ds.checkout("alt2", create=True)
    ds.checkout("main")
    ds.merge("alt", delete_removed_tensors=True)  # nothing new on alt: nothing to do
    assert "img" in ds.tensors
    ds3, _ = _base(tmp_path / "three")
    ds3.checkout("alt", create=True)
    ds3.delete_tensor("img")
    ds3.commit("drop img")
    ds3.checkout("main")
    ds3.merge("alt", delete_removed_tensors=True)
    assert set(ds3.tensors) == {"x", "lbl"}
    with pytest.raises(MergeError):
        ds3.merge("alt", conflict_resolution="mine")


def test_cli_log_and_diff(tmp_path, capsys):
    ds, base = _base(tmp_path)
    ds.checkout("alt", create=True)
    ds.x[3] = 33
    ds.commit("alt change")
    assert cli_main(["log", ds.path]) == 0
    out = capsys.readouterr().out
    assert "base" in out and base in out and "Current branch: main" in out
    assert cli_main(["log", ds.path, "--version", "alt", "--json"]) == 0
    import json

    entries = json.loads(capsys.readouterr().out)
    assert [e["message"] for e in entries] == ["alt change", "base"]
    assert cli_main(["diff", ds.path, "main", "alt"]) == 0
    out = capsys.readouterr().out
    assert "x: 1 updated [3]" in out
    assert cli_main(["diff", ds.path, "main", "alt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sides"][1]["tensors"]["x"]["updated"] == [3]
