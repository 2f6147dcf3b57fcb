"""Per-chunk statistics (lakeformat.core.chunk_stats): written at flush, true for every chunk
row they are trusted for (after appends, updates, pops, commits, merges and at every kill
point of a flush), and not trusted where the chunk may have changed since."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lakeformat
from lakeformat.core.chunk_stats import STATS_FILENAME, eligible
from lakeformat.core.layout import TensorLayout
from lakeformat.verify import verify


def check_stats_true(ds: Any) -> int:
    """Every trusted entry bounds its chunk row's samples (min <= each element <= max, at least
    as many empty samples and samples); returns how many entries were trusted."""
    trusted = 0
    for name in ds.tensors:
        t = ds[name]
        if not eligible(t.meta):
            continue
        lay = TensorLayout.of(t, with_stats=True)
        st = lay.chunk_stats
        assert st is not None and len(st) == lay.num_chunks
        for r in np.flatnonzero(st.known):
            first, last = int(lay.first_index[r]), int(lay.last_index[r])
            samples = [np.asarray(v) for v in t[first:last + 1].numpy(aslist=True)]
            elems = np.concatenate([s.reshape(-1) for s in samples]) if samples else np.zeros(0)
            elems = elems[~np.isnan(elems)] if elems.dtype.kind == "f" else elems
            assert st.counts[r] >= len(samples), (name, r)
            assert st.nulls[r] >= sum(1 for s in samples if s.size == 0), (name, r)
            if elems.size:
                assert st.has_values[r] and st.mins[r] <= elems.min() and elems.max() <= st.maxs[r], (name, r, st.mins[r], st.maxs[r], elems.min(), elems.max())
            trusted += 1
    return trusted


def _dataset(path: str) -> Any:
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=80)  # 10 a chunk
        ds.create_tensor("f", dtype="float32", chunk_compression="lz4", max_chunk_size=40)
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c"], max_chunk_size=40)
        ds.create_tensor("txt", htype="text")
        ds.extend({"x": np.arange(50), "f": np.where(np.arange(50) % 7 == 0, np.nan, np.arange(50.0)).astype(np.float32),
                   "labels": [[i % 3] if i % 5 else [] for i in range(50)], "txt": [str(i) for i in range(50)]})
    return ds


def test_stats_are_written_beside_the_chunks_and_are_exact(tmp_path):
    ds = _dataset(str(tmp_path / "d"))
    raw = json.loads((tmp_path / "d" / "x" / STATS_FILENAME).read_text())
    assert raw["format"] == 1 and len(raw["chunks"]) == 5
    assert not (tmp_path / "d" / "txt" / STATS_FILENAME).exists()  # text keeps none
    st = TensorLayout.of(ds.x, with_stats=True).chunk_stats
    assert st is not None and st.known.all()
    assert st.mins.tolist() == [0, 10, 20, 30, 40] and st.maxs.tolist() == [9, 19, 29, 39, 49]
    assert st.counts.tolist() == [10] * 5 and st.nulls.tolist() == [0] * 5
    lab = TensorLayout.of(ds.labels, with_stats=True).chunk_stats
    assert lab is not None and lab.nulls.sum() == 10  # the empty samples
    f = TensorLayout.of(ds.f, with_stats=True).chunk_stats
    assert f is not None and not np.isnan(f.mins).any()  # NaN does not count as a min or max
    assert TensorLayout.of(ds.txt, with_stats=True).chunk_stats is None
    assert TensorLayout.of(ds.x).chunk_stats is None  # read only when asked for
    assert check_stats_true(ds) == int(st.known.sum()) + int(lab.known.sum()) + int(f.known.sum())


def test_edits_appends_pops_and_commits_keep_them_true(tmp_path):
    ds = _dataset(str(tmp_path / "d"))
    ds.x[3] = 1000  # chunk 0 is written under a new name, with new statistics
    st = TensorLayout.of(ds.x, with_stats=True).chunk_stats
    assert st is not None and st.known[0] and st.maxs[0] == 1000
    ds.pop(12)  # chunk 1 rewritten; later chunks shift but keep theirs
    first = ds.commit("one")
    ds.extend({"x": np.arange(5) - 7, "f": np.ones(5, np.float32), "labels": [[0]] * 5, "txt": ["y"] * 5})
    ds.labels[2] = [2, 1]
    assert check_stats_true(ds) >= 10
    st = TensorLayout.of(ds.x, with_stats=True).chunk_stats
    assert st is not None and st.known.all() and st.mins.min() == -7
    with ds:
        ds.x[0] = -100  # unflushed: the edited chunk has a new name, no entry yet
        ds.x.append(5)
        ds.f.append(5)
        ds.labels.append([1])
        ds.txt.append("z")
        st = TensorLayout.of(ds.x, with_stats=True).chunk_stats
        assert st is not None and not st.known[0] and not st.known[-1]
        assert check_stats_true(ds) > 0
    assert check_stats_true(ds) > 0
    ds.checkout(first)
    assert check_stats_true(ds) > 0


def test_merge_keeps_them_true(tmp_path):
    ds = _dataset(str(tmp_path / "d"))
    ds.commit("base")
    ds.checkout("alt", create=True)
    ds.x[1] = 77
    ds.extend({"x": [500], "f": [1.0], "labels": [[1]], "txt": ["m"]})
    ds.commit("alt")
    ds.checkout("main")
    ds.x[40] = -5
    ds.commit("main")
    ds.merge("alt")
    assert check_stats_true(ds) > 0
    assert sorted(ds.query("SELECT * WHERE x > 70").x.numpy().ravel().tolist()) == [77, 500]


def test_stats_file_damage_only_loses_skipping(tmp_path):
    ds = _dataset(str(tmp_path / "d"))
    p = tmp_path / "d" / "x" / STATS_FILENAME
    p.write_text("not json")
    ds = lakeformat.load(str(tmp_path / "d"))
    st = TensorLayout.of(ds.x, with_stats=True).chunk_stats
    assert st is not None and not st.known.any()
    assert ds.query("SELECT * WHERE x >= 48").x.numpy().ravel().tolist() == [48, 49]
    ds.x.append(3)  # the next flush writes them again
    assert TensorLayout.of(ds.x, with_stats=True).chunk_stats.known.any()


def test_a_forged_entry_is_not_trusted(tmp_path):
    """An entry whose crc is not the chunk's (a chunk rewritten by a writer that keeps no
    statistics) is ignored."""
    ds = _dataset(str(tmp_path / "d"))
    p = tmp_path / "d" / "x" / STATS_FILENAME
    raw = json.loads(p.read_text())
    name = sorted(raw["chunks"])[0]
    raw["chunks"][name][0] ^= 1
    raw["chunks"][name][4] = -1  # a max that would skip the chunk
    p.write_text(json.dumps(raw))
    ds = lakeformat.load(str(tmp_path / "d"))
    assert check_stats_true(ds) > 0
    assert len(ds.query("SELECT * WHERE x >= 0")) == 50


@pytest.mark.parametrize("scenario", ["append", "append_after_commit", "update", "pop"])
def test_stats_stay_true_at_every_kill_point(tmp_path, scenario):
    from tests.core import kill_writer
    from tests.core.kill_harness import LocalKillStore, kill_points, run_child

    store = LocalKillStore(tmp_path)
    kill_writer.SCENARIOS[scenario][0](store.path("template"))
    store.drop_locks(store.path("template"))
    full = store.copy(store.path("template"), store.path("full"))
    rec = str(tmp_path / "record.json")
    assert run_child(full, scenario, 0, str(tmp_path / "full.progress"), rec) == 0
    writes = json.loads(Path(rec).read_text())["writes"]
    trusted = check_stats_true(lakeformat.load(full, read_only=True))
    assert trusted > 0
    for k in kill_points(writes, 4):  # every write with LAKEFORMAT_KILL_EXHAUSTIVE=1
        path = store.copy(store.path("template"), store.path(f"k{k}"))
        run_child(path, scenario, k, str(tmp_path / f"k{k}.progress"))
        check_stats_true(lakeformat.load(path, read_only=True))


def test_a_changed_min_or_max_never_skips_a_chunk(tmp_path):
    """One digit of an entry changed (a flipped byte, an edit by hand), crc left as it was:
    the file's own checksum no longer holds, so none of its entries is trusted and the
    query still finds every match (a lowered max once made it skip the chunk)."""
    ds = _dataset(str(tmp_path / "d"))
    p = tmp_path / "d" / "x" / STATS_FILENAME
    raw = p.read_bytes()
    name = sorted(json.loads(raw)["chunks"])[-1]  # samples 40..49
    entry = json.loads(raw)["chunks"][name]
    old = json.dumps(entry).encode()
    assert old in raw
    p.write_bytes(raw.replace(old, json.dumps(entry[:4] + [entry[4] - 9]).encode()))
    ds = lakeformat.load(str(tmp_path / "d"), read_only=True)
    st = TensorLayout.of(ds.x, with_stats=True).chunk_stats
    assert st is not None and not st.known.any()
    assert ds.query("SELECT * WHERE x >= 45").x.numpy().ravel().tolist() == [45, 46, 47, 48, 49]
    # and `verify` reports the file, by its key
    report = verify(str(tmp_path / "d"))
    assert not report.ok and any(f"x/{STATS_FILENAME}" in p and "checksum" in p for p in report.problems), report.lines()


def test_verify_passes_a_stats_file_without_a_checksum(tmp_path):
    """A stats file an older writer left without its checksum is untrusted by reads, but it
    is not damage: `verify` passes it."""
    ds = _dataset(str(tmp_path / "d"))
    p = tmp_path / "d" / "x" / STATS_FILENAME
    d = json.loads(p.read_bytes())
    d.pop("lakeformat_crc32")
    p.write_bytes(json.dumps(d).encode())
    assert verify(str(tmp_path / "d")).ok
    ds = lakeformat.load(str(tmp_path / "d"), read_only=True)
    assert ds.query("SELECT * WHERE x >= 45").x.numpy().ravel().tolist() == [45, 46, 47, 48, 49]
