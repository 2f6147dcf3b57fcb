"""`Session`, the state of an open dataset that its handles share (lakeformat.core.session)."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat.core.journal import decode_journal, encode_journal
from lakeformat.core.session import Session
from lakeformat.errors import TensorDoesNotExistError


def _ds(tmp_path, n: int = 10):
    ds = lakeformat.empty(str(tmp_path / "ds"), overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=64)
        ds.create_tensor("t", htype="text")
        ds.extend({"x": np.arange(n), "t": [f"s{i}" for i in range(n)]})
    return ds


def test_handles_and_views_share_one_session(tmp_path):
    ds = _ds(tmp_path)
    st = ds.session
    assert isinstance(st, Session)
    assert ds[2:5].session is st and ds["x"].dataset.session is st
    assert st.path == ds.path and st.meta is ds.meta and st.version_state is ds.version_state


def test_engines_are_opened_once_and_forgotten_on_demand(tmp_path):
    ds = _ds(tmp_path)
    st = ds.session
    eng = st.engine("x")
    assert st.engine("x") is eng and st.open_engines()["x"] is eng
    st.forget_engine("x")
    assert "x" not in st.open_engines()
    again = st.engine("x")
    assert again is not eng and again.num_samples == 10


def test_base_length_ignores_the_handle_index(tmp_path):
    ds = _ds(tmp_path)
    view = ds[2:5]
    assert len(view) == 3 and view.base_length == 10 and ds.base_length == 10


def test_has_changes_follows_writes_and_commits(tmp_path):
    ds = _ds(tmp_path)
    assert ds.session.has_changes
    ds.commit("first")
    assert not ds.session.has_changes
    ds.x.append(99)
    assert ds.session.has_changes and ds.has_head_changes


def test_reload_drops_what_was_not_flushed(tmp_path):
    ds = _ds(tmp_path)
    with ds:
        ds.extend({"x": [100, 101], "t": ["a", "b"]})
        assert len(ds) == 12
        ds.session.reload()
        assert len(ds) == 10
    assert len(lakeformat.load(ds.path, read_only=True)) == 10


def test_reload_at_a_commit(tmp_path):
    ds = _ds(tmp_path)
    first = ds.commit("ten rows")
    ds.x.extend([10, 11])
    ds.t.extend(["x", "y"])
    ds.commit("twelve rows")
    ds.checkout(first)
    assert len(ds) == 10
    ds.checkout("main")
    assert len(ds) == 12 and ds.x[11].numpy() == 11


def test_truncate_cuts_tensors_back_and_flushes(tmp_path):
    ds = _ds(tmp_path, n=40)
    st = ds.session
    cut = st.truncate({k: 7 for k in ds.meta.tensor_names.values()})
    assert cut == len(ds.meta.tensor_names)  # x, t and their hidden tensors were all longer
    back = lakeformat.load(ds.path, read_only=True)
    assert len(back) == 7
    assert back.x.numpy().reshape(-1).tolist() == list(range(7))
    assert back.t.numpy(aslist=True) == [f"s{i}" for i in range(7)]
    assert st.truncate({"x": 7, "t": 9}) == 0  # nothing longer: no flush, nothing cut
    ds.extend({"x": [70], "t": ["after"]})  # appending continues from the cut
    assert lakeformat.load(ds.path, read_only=True).x.numpy().reshape(-1).tolist() == list(range(7)) + [70]


def test_truncate_names_unknown_tensors(tmp_path):
    ds = _ds(tmp_path)
    with pytest.raises(TensorDoesNotExistError, match="nope"):
        ds.session.truncate({"nope": 1})


def test_the_flush_journal_round_trips():
    saved = {"a/meta.json": b"{}", "gone": None, "bin": bytes(range(256))}
    lengths = {"x": 3}
    assert decode_journal(encode_journal(saved, lengths)) == (lengths, saved)
    assert decode_journal(b'{"lengths": {"x": 5}}') == ({"x": 5}, None)
    assert decode_journal(b"not json") == ({}, None)


def test_read_version_is_the_operations_token(tmp_path):
    from lakeformat.version_control.operations import read_version

    ds = _ds(tmp_path)
    before = ds.read_version
    assert before == read_version(ds)
    ds.commit("moves the branch")
    assert ds.read_version != before


def test_tensor_metadata_can_be_read_through_another_reader_of_the_store(tmp_path):
    """`open_tensors(names, storage=...)` reads the tensors' metadata through the reader given
    (a loader's faster one), in one batched call, and the engines open from what it read."""
    _ds(tmp_path, 30)
    ds = lakeformat.load(str(tmp_path / "ds"), read_only=True)
    calls = []

    class Counting:
        def __init__(self, base):
            self.base = base

        def get_many(self, keys, missing_ok=False):
            calls.append(list(keys))
            return self.base.get_many(keys, missing_ok)

    ds.open_tensors(["x", "t"], storage=Counting(ds.storage))
    assert len(calls) == 1 and any(k.endswith("x/tensor_meta.json") for k in calls[0])
    assert any(k.endswith("t/tensor_info.json") for k in calls[0])
    assert ds.x.numpy().ravel().tolist() == list(range(30)) and ds.t[29].text() == "s29"
