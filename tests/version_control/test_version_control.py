"""commit, checkout, branches, log, reset, delete_branch, time travel, copy-on-write."""
from __future__ import annotations

import os

import numpy as np
import pytest

import lakeformat
from lakeformat.constants import FIRST_COMMIT_ID
from lakeformat.errors import CheckoutError, EmptyCommitError, ReadOnlyError, VersionControlError
from lakeformat.version_control.objects import CommitDiff


def _ds(tmp_path, name="ds"):
    ds = lakeformat.empty(str(tmp_path / name), overwrite=True)
    ds.create_tensor("x", dtype="int64", max_chunk_size=200)
    ds.create_tensor("t", htype="text")
    ds.extend({"x": np.arange(100), "t": [str(i) for i in range(100)]})
    return ds


def _x(ds):
    return ds.x.numpy().ravel().tolist()


def test_commit_log_and_ids(tmp_path):
    ds = _ds(tmp_path)
    assert ds.commit_id is None and ds.has_head_changes
    c1 = ds.commit("first")
    assert c1 == FIRST_COMMIT_ID and ds.commit_id == c1 and ds.pending_commit_id != c1
    assert not ds.has_head_changes
    with pytest.raises(EmptyCommitError):
        ds.commit("nothing")
    c2 = ds.commit("empty on purpose", allow_empty=True)
    ds.x[0] = 7
    assert ds.has_head_changes
    c3 = ds.commit()
    log = ds.log()
    assert [e["commit"] for e in log] == [c3, c2, c1]
    assert [e["message"] for e in log] == [None, "empty on purpose", "first"]
    assert all(e["branch"] == "main" and e["author"] and isinstance(e["time"], float) for e in log)
    assert log[0]["time"] >= log[1]["time"] >= log[2]["time"]
    info = lakeformat.load(ds.path, read_only=True)
    assert info.commit_id == c3 and info.branch == "main"
    # deeplake also keeps commit_info.json per version
    import json

    node = json.loads(open(os.path.join(ds.path, "versions", c3, "commit_info.json")).read())
    assert node["commit_message"] is None and node["commit_time"] and node["branch"] == "main"


def test_checkout_branches_and_read_only_commits(tmp_path):
    ds = _ds(tmp_path)
    c1 = ds.commit("one")
    ds.x[1] = -1
    c2 = ds.commit("two")
    ds.checkout("dev", create=True)
    assert ds.branch == "dev" and ds.branches == ["main", "dev"] and ds.commit_id == c2
    ds.x.append(1000)
    ds.checkout("main")
    assert len(ds.x) == 100
    ds.checkout(c1)
    assert _x(ds)[1] == 1 and ds.read_only and ds.branch is None
    with pytest.raises(ReadOnlyError, match="read-only"):
        ds.x[0] = 5
    with pytest.raises(ReadOnlyError):
        ds.x.append(5)
    with pytest.raises(CheckoutError):
        ds.checkout("nope")
    with pytest.raises(CheckoutError):
        ds.checkout("dev", create=True)
    # a branch from an old commit; uncommitted changes on dev were kept (flushed)
    ds.checkout("old", create=True)
    assert _x(ds)[1] == 1 and not ds.read_only
    ds.checkout("dev")
    assert _x(ds)[-1] == 1000 and ds.has_head_changes
    # creating a branch from a head with changes commits them first
    ds.checkout("dev2", create=True)
    assert [e["message"] for e in ds.log()][0] == "auto commit before checkout to dev2"
    assert _x(ds)[-1] == 1000
    ds.checkout(c2[:8])  # a unique prefix
    assert ds.pending_commit_id == c2


def test_copy_on_write_keeps_old_commits_and_writes_only_changed_chunks(tmp_path):
    ds = _ds(tmp_path)
    c1 = ds.commit("one")
    root = ds.path
    chunk_files_before = {f for f in _files(root) if "/chunks/" in f}
    ds.x[0] = -100
    ds.x.append(100)
    ds.t[5] = "five"
    c2 = ds.commit("two")
    new = {f for f in _files(root) if "/chunks/" in f} - chunk_files_before
    assert new and all(f.startswith(f"versions/{ds.version_state.tree.commits[ds.pending_commit_id]['parent']}/") for f in new)
    n_chunks_x = ds.x.engine.chunk_ids.num_chunks
    assert len([f for f in new if f.split("/")[2] == "x"]) == 2 < n_chunks_x  # the updated chunk and the new one
    assert lakeformat.load(f"{root}@{c1}", read_only=True).x.numpy().ravel().tolist() == list(range(100))
    old = lakeformat.load(root, version=c1, read_only=True)
    assert old.t[5].numpy().reshape(-1)[0] == "5"
    assert _x(lakeformat.load(root, read_only=True))[:1] == [-100]
    ds.pop(3)
    ds.commit("three")
    assert lakeformat.load(root, version=c2, read_only=True).x.numpy().ravel().tolist()[:5] == [-100, 1, 2, 3, 4]
    assert _x(ds)[:5] == [-100, 1, 2, 4, 5]


def _files(root):
    out = set()
    for folder, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(folder, f), root))
    return out


def test_reset_drops_uncommitted_changes(tmp_path):
    ds = _ds(tmp_path)
    ds.commit("one")
    ds.x[0] = 55
    ds.create_tensor("y")
    ds.rename_tensor("t", "text")
    ds.flush()
    ds.reset()
    assert _x(ds)[0] == 0 and set(ds.tensors) == {"x", "t"} and not ds.has_head_changes
    assert _x(lakeformat.load(ds.path, read_only=True))[0] == 0
    fresh = lakeformat.empty(str(tmp_path / "fresh"))
    fresh.create_tensor("z")
    fresh.reset()
    assert list(fresh.tensors) == []


def test_delete_branch(tmp_path):
    ds = _ds(tmp_path)
    ds.commit("one")
    ds.checkout("a", create=True)
    ds.x.append(1)
    ds.commit("a1")
    a_commits = [e["commit"] for e in ds.log() if e["branch"] == "a"]
    ds.checkout("b", create=True)
    ds.checkout("main")
    with pytest.raises(VersionControlError, match="branches made from it"):
        ds.delete_branch("a")
    with pytest.raises(VersionControlError):
        ds.delete_branch("main")
    ds.delete_branch("b")
    ds.delete_branch("a")
    assert ds.branches == ["main"]
    assert not any(os.path.exists(os.path.join(ds.path, "versions", c)) for c in a_commits)
    assert lakeformat.load(ds.path, read_only=True).branches == ["main"]
    # a merged branch stays
    ds.checkout("m", create=True)
    ds.create_tensor("new")
    ds.new.extend([1, 2])
    ds.commit("m1")
    ds.checkout("main")
    ds.merge("m")
    with pytest.raises(VersionControlError, match="merged"):
        ds.delete_branch("m")
    ds.checkout("m")
    with pytest.raises(VersionControlError, match="checked out"):
        ds.delete_branch("m")


def test_commit_diff_bookkeeping_matches_the_layout():
    cd = CommitDiff(10)
    cd.pop(0, 111)  # a sample there at the start
    cd.pop(0, 222)
    cd.update_data(0)  # the start's sample 2, now at 0
    cd.add_data(2)  # now at 8 and 9
    cd.update_data(8)  # an added sample: not an update
    assert cd.data_deleted == {0, 1} and cd.data_added == [8, 10] and cd.data_updated == {0}
    cd.pop(0, 333)
    assert cd.data_deleted == {0, 1, 2} and cd.data_updated == set() and cd.data_added == [7, 9]
    back = CommitDiff.from_bytes(cd.to_bytes())
    assert (back.data_deleted, back.data_added, sorted(back.data_deleted_ids)) == ({0, 1, 2}, [7, 9], [111, 222, 333])
