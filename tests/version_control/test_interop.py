"""Histories cross over: one made by lakeformat opens in deeplake 3.9.52 with the same
branches, log and data at every version, and one made by deeplake opens in lakeformat."""
from __future__ import annotations

import numpy as np

import lakeformat
from lakeformat.verify import verify

from ._helpers import dump_deeplake3, dump_lakeformat, run_deeplake3


def _img(v: int) -> np.ndarray:
    return np.full((4, 5, 3), v, np.uint8)


def build_lakeformat_history(path: str) -> None:
    """3 branches besides main's, 12+ commits, updates, pops, a rename, merges."""
    ds = lakeformat.empty(path, overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("lbl", htype="class_label")
    ds.create_tensor("t", htype="text")
    ds.create_tensor("img", htype="image", sample_compression="png")
    ds.extend({"x": np.arange(20), "lbl": ["cat", "dog"] * 10, "t": [f"s{i}" for i in range(20)], "img": [_img(i) for i in range(20)]})
    ds.commit("c1 base")
    ds.x[3] = 300
    ds.pop(5)
    ds.commit("c2 update and pop")
    ds.checkout("a", create=True)
    ds.extend({"x": [100, 101], "lbl": ["bird", "cat"], "t": ["a0", "a1"], "img": [_img(100), _img(101)]})
    ds.commit("c3 a append")
    ds.lbl[0] = "bird"
    ds.t[1] = "a-updated"
    ds.commit("c4 a update")
    ds.checkout("main")
    ds.checkout("b", create=True)
    ds.pop(0)
    ds.commit("c5 b pop")
    ds.x[7] = -7
    ds.img[2] = _img(222)
    ds.commit("c6 b update")
    ds.checkout("main")
    ds.extend({"x": [50, 51, 52], "lbl": ["dog"] * 3, "t": ["m0", "m1", "m2"], "img": [_img(50 + i) for i in range(3)]})
    ds.commit("c7 main append")
    ds.merge("a")  # c8: the merge commit
    ds.checkout("c", create=True)
    ds.x[1] = 11
    ds.commit("c9 c update")
    ds.rename_tensor("t", "text")
    ds.commit("c10 c rename")
    ds.checkout("main")
    ds.x[2] = 22
    ds.commit("c11 main update")
    ds.merge("b", conflict_resolution="theirs")  # c12
    ds.x[0] = 1000
    ds.commit("c13 after merges")


DL3_BUILD = r'''
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
import deeplake
path = sys.argv[1]
ds = deeplake.empty(path, overwrite=True, verbose=False)
img = lambda v: np.full((4, 5, 3), v, np.uint8)
with ds:
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("lbl", htype="class_label")
    ds.create_tensor("t", htype="text")
    ds.create_tensor("img", htype="image", sample_compression="png")
    ds.extend({"x": np.arange(20), "lbl": ["cat", "dog"] * 10, "t": [f"s{i}" for i in range(20)], "img": [img(i) for i in range(20)]})
ds.commit("d1 base")
ds.x[3] = 300
ds.pop(5)
ds.commit("d2 update and pop")
ds.checkout("a", create=True)
ds.extend({"x": [100, 101], "lbl": ["bird", "cat"], "t": ["a0", "a1"], "img": [img(100), img(101)]})
ds.commit("d3 a append")
ds.lbl[0] = "bird"
ds.t[1] = "a-updated"
ds.commit("d4 a update")
ds.checkout("main")
ds.checkout("b", create=True)
ds.pop(0)
ds.commit("d5 b pop")
ds.x[7] = -7
ds.commit("d6 b update")
ds.checkout("main")
ds.extend({"x": [50, 51, 52], "lbl": ["dog"] * 3, "t": ["m0", "m1", "m2"], "img": [img(50 + i) for i in range(3)]})
ds.commit("d7 main append")
ds.merge("a")
ds.checkout("c", create=True)
ds.x[1] = 11
ds.commit("d9 c update")
ds.checkout("main")
ds.x[2] = 22
ds.commit("d10 main update")
ds.x[0] = 1000
ds.commit("d11 main update")
'''


def _assert_same(ours: dict, theirs: dict) -> None:
    assert ours["branches"] == theirs["branches"]
    assert ours["log"] == theirs["log"]
    assert sorted(ours["data"]) == sorted(theirs["data"])
    for cid in ours["data"]:
        assert ours["data"][cid] == theirs["data"][cid], f"data differs at version {cid}"


def test_lakeformat_history_opens_in_deeplake3(tmp_path):
    path = str(tmp_path / "lf")
    build_lakeformat_history(path)
    ours = dump_lakeformat(path)
    assert ours["branches"] == ["a", "b", "c", "main"]
    assert len({c for log in ours["log"].values() for c, _ in log}) >= 13
    assert [m for _, m in ours["log"]["main"]][:3] == ["c13 after merges", "Merge b into main", "c11 main update"]
    main_head = ours["log"]["main"][0][0]
    x = ours["data"][main_head]["x"]
    assert x[0] == [1000] and [-7] in x and [100] in x and [52] in x
    assert verify(path).ok
    _assert_same(ours, dump_deeplake3(path))


def test_deeplake3_history_opens_in_lakeformat(tmp_path):
    path = str(tmp_path / "dl")
    run_deeplake3(DL3_BUILD, path)
    theirs = dump_deeplake3(path)
    ours = dump_lakeformat(path)
    assert ours["branches"] == ["a", "b", "c", "main"]
    assert len({c for log in ours["log"].values() for c, _ in log}) >= 10
    _assert_same(ours, theirs)
    assert verify(path).ok
    # and lakeformat keeps writing it: a commit and a merge on top of deeplake's history
    ds = lakeformat.load(path)
    ds.merge("b", conflict_resolution="theirs")
    ds.x[1] = 42
    ds.commit("lakeformat on top")
    ds.checkout("c")
    assert ds.x[1].numpy().tolist() == [11]
    after = dump_lakeformat(path)
    _assert_same(after, dump_deeplake3(path))
