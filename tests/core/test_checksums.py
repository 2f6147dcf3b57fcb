"""The checksum side file: its format, how it classifies objects at rest, that a crash at any
write of a flush leaves it consistent with what is published, and that deeplake 3.9.52
writing after us never makes a dataset read as damaged."""
from __future__ import annotations

import os
import shutil
from typing import Any, Callable, List

import numpy as np
import pytest

import lakeformat
from lakeformat import constants as C
from lakeformat.core import checksums as CS
from lakeformat.errors import CorruptDataError
from lakeformat.storage.local import LocalStorage
from lakeformat.verify import verify
from tests.interop.deeplake3 import run_deeplake3

FIRST = C.FIRST_COMMIT_ID


def test_side_file_round_trips_and_rejects_garbage():
    t = CS.TensorChecksums({"tensor_meta.json": [1, 2], "pad_index/unsharded": [None]}, {"abc": [7]}, [5])
    assert CS.TensorChecksums.from_bytes(t.to_bytes()) == t
    for bad in (b"{", b"[]", b'{"format": 2, "algorithm": "crc32", "objects": {}, "chunks": {}}',
                b'{"format": 1, "algorithm": "crc32", "objects": {"a": "x"}, "chunks": {}}'):
        with pytest.raises(CorruptDataError, match="side file does not parse"):
            CS.TensorChecksums.from_bytes(bad, "x/lakeformat_checksums.json")


def _table(objs):
    return CS.TensorChecksums({f: [CS.checksum(v) if v is not None else None] for f, v in objs.items()}, {},
                              [CS.meta_core_checksum(objs[CS.META_FILE])])


def test_classification_one_change_is_damage_two_are_another_writer():
    objs = {CS.META_FILE: b'{"length": 3, "name": "x"}', "chunks_index/unsharded": b"ids", "commit_diff": b"d",
            CS.PAD_FILE: None}
    t = _table(objs)
    assert t.check_objects(objs).state == "ok"
    v = t.check_objects({**objs, "commit_diff": b"e"})
    assert v.state == "corrupt" and "commit_diff does not match" in v.problems[0]
    assert t.check_objects({**objs, CS.META_FILE: b'{"length": 2, "name": "x"}'}).state == "corrupt"
    assert t.check_objects({**objs, "commit_diff": b"e", "chunks_index/unsharded": b"x"}).state == "stale"
    assert t.check_objects({**objs, CS.PAD_FILE: b"\x063.9.52"}).state == "stale"  # deeplake updated in place
    assert t.check_objects({**objs, CS.META_FILE: b'{"name": "y", "length": 3}'}).state == "ok"  # renamed
    assert t.check_chunk("c", b"x") is None


def test_flush_keeps_a_side_file_per_tensor_listing_every_chunk(tmp_path):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=2000)
        ds.extend({"x": np.arange(1000)})
    ds.x[3] = 7
    ds.pop(10)
    eng = ds.x.engine
    st = LocalStorage(root)
    table, verdict = CS.load_and_classify(st, "x", FIRST)
    assert verdict.state == "ok"
    assert sorted(table.chunks) == sorted(eng.chunk_ids.names())
    for name in eng.chunk_ids.names():
        assert table.check_chunk(name, st.get(f"x/chunks/{name}"))
    report = verify(root)
    assert report.ok and report.checked["chunks checksummed"] >= len(table.chunks), report.lines()


class Crash(BaseException):
    """Stands for a kill: nothing after the k-th write happens."""


def _crash_at(monkeypatch, k: int) -> List[int]:
    count = [0]
    for m in ("set", "set_parts", "delete", "delete_prefix"):
        orig = getattr(LocalStorage, m)

        def hooked(self: Any, *a: Any, _orig: Callable[..., Any] = orig, **kw: Any) -> Any:
            count[0] += 1
            if count[0] == k:
                raise Crash()
            return _orig(self, *a, **kw)

        monkeypatch.setattr(LocalStorage, m, hooked)
    return count


def _edit_and_grow(root: str) -> None:
    ds = lakeformat.load(root)
    with ds:
        ds.x[3] = -1
        ds.z[4] = np.full(3, -1, np.float32)
        ds.pop(5)
        ds.extend({"x": np.arange(7), "t": ["new"] * 7, "z": np.zeros((7, 3), np.float32)})
    ds.extend({"x": np.arange(2), "t": ["more"] * 2, "z": np.ones((2, 3), np.float32)})  # a growth-only flush


def test_a_crash_at_any_write_leaves_checksums_consistent(tmp_path, monkeypatch):
    base = str(tmp_path / "base")
    ds = lakeformat.empty(base)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("t", htype="text")
        ds.create_tensor("z", dtype="float32", chunk_compression="lz4")
        ds.extend({"x": np.arange(50), "t": [str(i) for i in range(50)], "z": np.ones((50, 3), np.float32)})
    ds.close()
    dry = str(tmp_path / "dry")
    shutil.copytree(base, dry)
    with monkeypatch.context() as m:
        count = _crash_at(m, 0)
        _edit_and_grow(dry)
    total = count[0]
    assert total > 20
    # every write under LAKEFORMAT_KILL_EXHAUSTIVE=1 (make test-long), else every third
    step = 1 if os.environ.get("LAKEFORMAT_KILL_EXHAUSTIVE") == "1" else 3
    for k in sorted(set(range(1, total + 1, step)) | {total}):
        root = str(tmp_path / f"k{k}")
        shutil.copytree(base, root)
        with monkeypatch.context() as m:
            _crash_at(m, k)
            try:
                _edit_and_grow(root)
            except Crash:
                pass
        report = verify(root)
        assert report.ok, (k, report.lines())
        st = LocalStorage(root)
        for key in ("x", "t", "z", "_x_id", "_t_id", "_z_id"):
            assert CS.load_and_classify(st, key, FIRST)[1].state == "ok", (k, key)
        ds = lakeformat.load(root, read_only=True, verify_reads=True)
        for t in ds.tensors.values():
            t.numpy(aslist=True)


def _ours(root: str) -> None:
    ds = lakeformat.empty(root)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("t", htype="text")
        ds.create_tensor("z", dtype="float32", chunk_compression="lz4")
        ds.create_tensor("w", dtype="int64")
        ds.extend({"x": np.arange(20), "t": [str(i) for i in range(20)], "z": np.ones((20, 3), np.float32),
                   "w": np.arange(20)})
    ds.close()


_DEEPLAKE_WRITES = """
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"])
r = INPUT["round"]
ds.x[1] = np.int64(100 + r)                      # a chunk rewritten in place
ds.z[2] = np.full(3, 5 + r, "f4")                # an lz4 chunk rewritten in place
ds.t[0] = "edited %d" % r
if r == 0:
    ds.append({"x": np.int64(7), "t": "dl", "z": np.zeros(3, "f4"), "w": np.int64(1)})
    ds.w.info.update(source="deeplake")
    ds.rename_tensor("w", "w2")
ds.flush()
emit({k: [np.asarray(v).tolist() for v in ds[k].numpy(aslist=True)] for k in ds.tensors})
"""


def test_deeplake_writing_after_us_is_never_reported_damaged(tmp_path):
    root = str(tmp_path / "ds")
    _ours(root)
    for rnd in range(2):
        want = run_deeplake3(_DEEPLAKE_WRITES, inputs={"path": root, "round": rnd})
        report = verify(root)
        assert report.ok, report.lines()
        ds = lakeformat.load(root, verify_reads=True)
        got = {k: [np.asarray(v).tolist() for v in t.numpy(aslist=True)] for k, t in ds.tensors.items()}
        assert got == want
        # we write again: fresh checksums, then deeplake rewrites the same chunks in place again
        ds.x[5] = 55
        ds.extend({"x": [1], "t": ["ours"], "z": np.zeros((1, 3), np.float32), "w2": [3]})
        ds.close()
        assert verify(root).ok
        st = LocalStorage(root)
        assert CS.load_and_classify(st, "x", FIRST)[1].state == "ok"


_DEEPLAKE_GROWS_A_NULLABLE = """
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"])
ds.x.append(np.array([5]))          # it knows nothing of the validity tensor
ds.flush()
emit(len(ds.x))
"""


def test_a_null_mask_deeplake_left_behind_is_not_damage(tmp_path):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root)
    with ds:
        ds.create_tensor("x", dtype="int64", nullable=True)
        ds.extend({"x": [1, None, 3]})
    ds.close()
    assert run_deeplake3(_DEEPLAKE_GROWS_A_NULLABLE, inputs={"path": root}) == 4  # the mask keeps 3 rows
    report = verify(root)
    assert report.ok and report.checked["null masks"] == 1, report.lines()


def test_sample_checksums_round_trip_and_bad_ones_are_damage():
    crcs = np.array([1, 2**32 - 1, 7], "<u4").tobytes()
    t = CS.TensorChecksums({"tensor_meta.json": [1]}, {"abc": [7]}, [5], {"abc": crcs})
    back = CS.TensorChecksums.from_bytes(t.to_bytes())
    assert back == t and back.check_sample("abc", 2, b"x") is (CS.checksum(b"x") == 7)
    assert back.check_sample("abc", 3, b"x") is None and back.check_sample("other", 0, b"x") is None
    raw = t.to_bytes().decode()
    for bad in ('"abc":"!!!!"', '"abc":"AAA="'):  # not base64; not whole uint32s
        body = raw[: raw.rfind(',"self":')].replace(f'"abc":"{CS.base64.b64encode(crcs).decode()}"', bad)
        with pytest.raises(CorruptDataError, match="side file does not parse"):
            CS.TensorChecksums.from_bytes((body + ',"self":%d}' % CS.checksum(body.encode())).encode())
    # a chunk of png samples gets one per sample, a tile or garbage none
    from lakeformat.core.chunk import chunk_header

    data = b"aaaa" + b"bbbbbbbb"
    header = chunk_header(np.array([4, 8], np.uint32), np.array([[2, 2, 1], [2, 4, 1]], np.uint32))
    sums = CS.sample_checksums([header, data])
    assert sums == np.array([CS.checksum(b"aaaa"), CS.checksum(b"bbbbbbbb")], "<u4").tobytes()
    assert CS.sample_checksums([header + data]) == sums
    assert CS.sample_checksums([b"\x05garbage"]) is None
