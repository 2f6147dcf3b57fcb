"""Damage at rest is caught: every single flipped byte of a chunk or a metadata object by
`verify` (deep), damaged chunks on reads (by policy), truncated chunks as `CorruptDataError`
naming tensor, key and sample, hand-edited metas by `verify` and on open.

`LAKEFORMAT_FLIP_EVERY=N` flips every Nth byte of every file (default: about 4 bytes per
file, a few seconds); `LAKEFORMAT_FLIP_EVERY=1` flips every byte.
"""
from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

import lakeformat
from lakeformat.errors import CorruptDataError
from lakeformat.verify import verify

# the metadata objects a tensor folder holds (the side file itself included: damage to it is
# damage too)
META_FILES = ("tensor_meta.json", "tensor_info.json", "chunks_index/unsharded", "tiles_index/unsharded",
              "commit_diff", "lakeformat_checksums.json")


def _sample_dataset(path: str) -> None:
    rng = np.random.default_rng(7)
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("raw", dtype="int64")
        ds.create_tensor("text", htype="text")
        ds.create_tensor("png", htype="image", sample_compression="png")
        ds.create_tensor("jpeg", htype="image", sample_compression="jpeg")
        ds.create_tensor("lz4", dtype="float32", chunk_compression="lz4")
        ds.create_tensor("zstd", dtype="uint16", chunk_compression="zstd")
        n = 12
        ds.extend({
            "raw": rng.integers(0, 1 << 40, n),
            "text": [f"row {i} " * (i % 4 + 1) for i in range(n)],
            "png": rng.integers(0, 255, (n, 6, 5, 3), dtype=np.uint8),
            "jpeg": rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8),
            "lz4": rng.random((n, 5)).astype(np.float32),
            "zstd": rng.integers(0, 1000, (n, 3)).astype(np.uint16),
        })
    ds.close()


def _targets(root: str) -> List[Tuple[str, str]]:
    """(kind, path) of every chunk and every metadata object of the visible tensors."""
    out = []
    for t in ("raw", "text", "png", "jpeg", "lz4", "zstd"):
        for f in sorted(glob.glob(os.path.join(root, t, "chunks", "*"))):
            out.append((f"{t} chunk", f))
        for m in META_FILES:
            p = os.path.join(root, t, m)
            if os.path.exists(p):
                out.append((f"{t} {m}", p))
    for m in ("dataset_meta.json", "dataset_info.json", "dataset_diff", "lakeformat_checksums.json"):
        if os.path.exists(os.path.join(root, m)):
            out.append((f"dataset {m}", os.path.join(root, m)))
    return out


def _flip_all(root: str, every: int) -> Dict[str, List[int]]:
    """Flip every `every`th byte of each target in turn (xor a low bit, a high bit or all of
    them: a low bit keeps JSON parseable, `1` -> `0`), run `verify`, put the byte back;
    returns kind -> [flipped, detected]."""
    tally: Dict[str, List[int]] = {}
    for kind, path in _targets(root):
        data = bytearray(Path(path).read_bytes())
        step = every or max(1, len(data) // 4)
        for n, i in enumerate(range(0, len(data), step)):
            mask = (0x01, 0x80, 0xFF)[n % 3]
            data[i] ^= mask
            Path(path).write_bytes(bytes(data))
            try:
                report = verify(root)
            finally:
                data[i] ^= mask
                Path(path).write_bytes(bytes(data))
            t = tally.setdefault(kind if kind.endswith(" chunk") or kind.startswith("dataset") else kind.split(" ", 1)[1], [0, 0])
            t[0] += 1
            t[1] += 0 if report.ok else 1
    return tally


def test_every_flipped_byte_is_detected_by_verify(tmp_path, caplog, capsys):
    root = str(tmp_path / "ds")
    _sample_dataset(root)
    assert verify(root).ok, verify(root).lines()
    caplog.set_level(logging.ERROR)
    tally = _flip_all(root, int(os.environ.get("LAKEFORMAT_FLIP_EVERY", "0")))
    flipped = sum(v[0] for v in tally.values())
    detected = sum(v[1] for v in tally.values())
    print(f"flipped {flipped} bytes, detected {detected}: " + ", ".join(f"{k} {d}/{f}" for k, (f, d) in sorted(tally.items())))
    assert flipped > 100
    assert {k: v for k, v in tally.items() if v[0] != v[1]} == {}
    assert verify(root).ok  # every byte put back


def test_a_flipped_byte_names_the_chunk_tensor_and_samples(tmp_path):
    root = str(tmp_path / "ds")
    _sample_dataset(root)
    chunk = glob.glob(os.path.join(root, "raw", "chunks", "*"))[0]
    data = bytearray(Path(chunk).read_bytes())
    data[-3] ^= 0x01  # inside the last sample's value: parses fine, reads a wrong number
    Path(chunk).write_bytes(bytes(data))
    report = verify(root)
    name = os.path.basename(chunk)
    assert any("tensor 'raw'" in p and f"chunk {name} (samples 0..11)" in p for p in report.problems), report.problems
    # a raw chunk is not decoded: the default policy reads it unchecked, verify_reads checks it
    assert lakeformat.load(root, read_only=True).raw.numpy().shape == (12, 1)
    with pytest.raises(CorruptDataError) as e:
        lakeformat.load(root, read_only=True, verify_reads=True).raw.numpy()
    assert e.value.tensor == "raw" and e.value.key.endswith(name) and e.value.sample == 0


@pytest.mark.parametrize("tensor,verify_reads", [("lz4", False), ("zstd", False), ("png", True), ("jpeg", True),
                                                  ("png", False), ("jpeg", False)])
def test_damaged_chunks_fail_reads(tmp_path, tensor, verify_reads):
    """Chunk-compressed chunks are always decompressed whole, and checked by default; samples
    of sample-compressed chunks are read by byte range (each checked against its own
    checksum) unless `verify_reads` asks for whole, checked chunks."""
    root = str(tmp_path / "ds")
    _sample_dataset(root)
    chunk = glob.glob(os.path.join(root, tensor, "chunks", "*"))[0]
    data = bytearray(Path(chunk).read_bytes())
    data[len(data) - 40] ^= 0x10
    Path(chunk).write_bytes(bytes(data))
    ds = lakeformat.load(root, read_only=True, verify_reads=verify_reads)
    with pytest.raises(CorruptDataError) as e:
        ds[tensor].numpy()
    assert e.value.tensor == tensor and os.path.basename(chunk) in str(e.value)


@pytest.mark.parametrize("tensor,shape", [("raw", (100,)), ("text", None), ("arr", (100, 7))])
def test_a_chunk_truncated_to_half_raises_corrupt_data_naming_where(tmp_path, tensor, shape):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root, overwrite=True)
    with ds:
        ds.create_tensor("raw", dtype="int64")
        ds.create_tensor("text", htype="text")
        ds.create_tensor("arr", dtype="float32")
        ds.extend({"raw": np.arange(100), "text": [str(i) for i in range(100)], "arr": np.ones((100, 7), np.float32)})
    ds.close()
    chunk = glob.glob(os.path.join(root, tensor, "chunks", "*"))[0]
    data = Path(chunk).read_bytes()
    Path(chunk).write_bytes(data[: len(data) // 2])
    for verify_reads in (False, True):
        ds = lakeformat.load(root, read_only=True, verify_reads=verify_reads)
        for read, sample in ((lambda ds=ds: ds[tensor][95].numpy(), 95), (lambda ds=ds: ds[tensor].numpy(), 0),
                             (lambda ds=ds: ds[tensor][[3, 97]].numpy(), 3)):
            with pytest.raises(CorruptDataError) as e:
                read()
            assert e.value.tensor == tensor and e.value.key.endswith(os.path.basename(chunk))
            assert e.value.sample == sample, str(e.value)
    assert not verify(root).ok


def _edit_meta(root: str, tensor: str, **changes) -> None:
    p = Path(root) / tensor / "tensor_meta.json"
    d = json.loads(p.read_text())
    for k, f in changes.items():
        d[k] = f(d[k])
    p.write_text(json.dumps(d, sort_keys=True, indent=4))


@pytest.mark.parametrize("edit", [{"dtype": lambda v: "float64"}, {"length": lambda v: v - 1}])
def test_a_hand_edited_meta_is_reported_and_never_read_as_truth(tmp_path, edit):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("y", dtype="int64")
        ds.extend({"x": np.arange(10), "y": np.arange(10) * 2})
    ds.close()
    _edit_meta(root, "x", **edit)
    report = verify(root)
    assert not report.ok
    assert any("tensor 'x': tensor_meta.json does not match its checksum" in p for p in report.problems), report.problems
    ds = lakeformat.load(root, read_only=True)
    with pytest.raises(CorruptDataError, match="tensor 'x'"):
        ds.x.numpy()
    # the other tensor still reads, and the dataset's length leaves the broken one out
    assert ds.y.numpy().ravel().tolist() == list(range(0, 20, 2))
    assert len(ds) == 10


def test_length_edit_is_also_seen_as_tensors_disagreeing(tmp_path):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.extend({"x": np.arange(10)})
    ds.close()
    _edit_meta(root, "x", length=lambda v: v - 1)
    problems = verify(root).problems
    assert any("tensor 'x' holds 9 samples at rest, its hidden tensor '_x_id' 10" in p for p in problems), problems


def test_len_survives_a_tensor_whose_meta_does_not_parse(tmp_path, caplog):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("y", dtype="int64")
        ds.extend({"x": np.arange(5), "y": np.arange(5)})
    ds.close()
    (Path(root) / "y" / "tensor_meta.json").write_bytes(b"{not json")
    ds = lakeformat.load(root, read_only=True)
    with caplog.at_level(logging.WARNING):
        assert len(ds) == 5
    assert "tensor 'y' does not open" in caplog.text
    assert ds.x.numpy().ravel().tolist() == [0, 1, 2, 3, 4]
    assert not verify(root).ok


def test_stored_image_bytes_that_do_not_decode_name_tensor_key_and_sample(tmp_path):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root)
    with ds:
        ds.create_tensor("png", htype="image", sample_compression="png")
        ds.extend({"png": np.random.default_rng(1).integers(0, 255, (6, 6, 5, 3), dtype=np.uint8)})
    ds.close()
    chunk = glob.glob(os.path.join(root, "png", "chunks", "*"))[0]
    data = bytearray(Path(chunk).read_bytes())
    data[len(data) - 30 : len(data) - 10] = bytes(20)  # inside the last sample's png stream
    Path(chunk).write_bytes(bytes(data))
    ds = lakeformat.load(root, read_only=True)  # by byte range: not checked, decoded
    with pytest.raises(CorruptDataError) as e:
        ds.png[5].numpy()
    assert e.value.tensor == "png" and e.value.sample == 5 and e.value.key.endswith(os.path.basename(chunk))


@pytest.mark.parametrize("htype, damage", [("json", b"["), ("json", b"\xff"), ("text", b"\xff")])
def test_stored_json_or_text_that_does_not_decode_is_corrupt_data(tmp_path, htype, damage):
    """A json document that no longer parses, or bytes that are no longer UTF-8 (an
    uncompressed chunk, read without its checksum by default): `CorruptDataError` naming
    tensor, key and sample on every read path, never a builtin JSONDecodeError or
    UnicodeDecodeError."""
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root)
    with ds:
        ds.create_tensor("t", htype=htype)
        ds.t.extend([{"a": i} for i in range(5)] if htype == "json" else [f"text {i}" for i in range(5)])
    ds.close()
    chunk = glob.glob(os.path.join(root, "t", "chunks", "*"))[0]
    data = bytearray(Path(chunk).read_bytes())
    last = data.rfind(b"{" if htype == "json" else b"text 4")
    data[last : last + 1] = damage  # the last sample's first byte
    Path(chunk).write_bytes(bytes(data))
    ds = lakeformat.load(root, read_only=True)
    reads = [lambda: ds.t[4].numpy(), lambda: ds.t.numpy(aslist=True), lambda: ds.t.data(), lambda: ds.t[3:5].numpy(aslist=True)]
    for read in reads:
        with pytest.raises(CorruptDataError) as e:
            read()
        assert e.value.tensor == "t" and e.value.sample == 4 and e.value.key.endswith(os.path.basename(chunk))


@pytest.mark.parametrize("tensor", ["raw", "text", "arr", "png"])
def test_a_missing_chunk_is_corrupt_data_on_every_read_path(tmp_path, tensor):
    """Whole-chunk reads, byte-range reads (a few samples of a big chunk) and header reads
    of a chunk the index points at but storage lacks: all `CorruptDataError` naming the
    tensor, the chunk's key (unquoted) and the first wanted sample it held."""
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root, overwrite=True)
    n = 20000
    with ds:
        ds.create_tensor("raw", dtype="int64")
        ds.create_tensor("text", htype="text")
        ds.create_tensor("arr", dtype="float32")
        ds.create_tensor("png", htype="image", sample_compression="png")
        ds.extend({"raw": np.arange(n), "text": [str(i) for i in range(n)], "arr": np.ones((n, 7), np.float32),
                   "png": np.zeros((n, 4, 4, 3), np.uint8)})
    ds.close()
    chunk = sorted(glob.glob(os.path.join(root, tensor, "chunks", "*")), key=os.path.getmtime)[0]
    os.remove(chunk)
    for verify_reads in (False, True):
        ds = lakeformat.load(root, read_only=True, verify_reads=verify_reads)
        reads = ((lambda ds=ds: ds[tensor][95].numpy(), 95), (lambda ds=ds: ds[tensor].numpy(), 0),
                 (lambda ds=ds: ds[tensor][[3, 97]].numpy(), 3), (lambda ds=ds: ds[tensor][7].tobytes(), 7))
        for read, sample in reads:
            with pytest.raises(CorruptDataError) as e:
                read()
            assert (e.value.tensor, e.value.sample) == (tensor, sample), str(e.value)
            assert e.value.key == f"{tensor}/chunks/{os.path.basename(chunk)}", str(e.value)
            assert "missing" in str(e.value)
    assert any("is missing" in p for p in verify(root).problems)


def test_verify_checks_a_null_mask_against_its_tensor(tmp_path):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", nullable=True)
        ds.create_tensor("y", dtype="int64")
        ds.extend({"x": [1, None, 3, 4], "y": [1, 2, 3, 4]})
    mkey = ds.x.info["null_mask"]
    report = verify(root)
    assert report.ok and report.checked["null masks"] == 1, report.lines()
    # a writer bug stands for the damage: the mask loses a row, both flushed with checksums
    eng = ds.session.engine(mkey)
    eng.clamp(3)
    eng.meta_dirty = eng.encoders_dirty = True
    ds.flush()
    ds.close()
    problems = verify(root).problems
    assert f"[main] null mask {mkey!r} has 3 rows, its tensor 'x' has 4" in problems, problems


@pytest.mark.parametrize("tensor", ["png", "jpeg"])
def test_every_flipped_byte_of_an_image_read_by_range_is_caught(tmp_path, tensor):
    """The default policy checks what is decoded anyway: png and jpeg samples read one by
    one (by byte range) are checked against the per-sample checksums of the side file, so a
    flipped byte inside one never reads back as wrong pixels (jpeg has no checksum of its
    own: without them about a third of these flips decoded silently to other pixels)."""
    from lakeformat.core.chunk import Chunk

    root = str(tmp_path / "ds")
    _sample_dataset(root)
    ds = lakeformat.load(root, read_only=True)
    n = len(ds[tensor])
    want = [ds[tensor][i].numpy() for i in range(n)]
    eng = ds[tensor].engine
    assert eng._worth_ranges(eng.chunk_ids.names()[0], 1, 64)  # one sample: a byte-range read
    chunk = glob.glob(os.path.join(root, tensor, "chunks", "*"))[0]
    data = bytearray(Path(chunk).read_bytes())
    start = Chunk.parse(bytes(data), None, header_only=True).header_nbytes
    every = int(os.environ.get("LAKEFORMAT_FLIP_EVERY", "0")) or 7
    flipped = caught = 0
    for i in range(start, len(data), every):
        data[i] ^= (0x01, 0x10, 0xFF)[flipped % 3]
        Path(chunk).write_bytes(bytes(data))
        ds = lakeformat.load(root, read_only=True)
        errors = 0
        for j in range(n):
            try:
                assert np.array_equal(ds[tensor][j].numpy(), want[j]), (i, j)
            except CorruptDataError as e:
                assert (e.tensor, e.key.rsplit("/", 1)[-1]) == (tensor, os.path.basename(chunk))
                errors += 1
        data[i] ^= (0x01, 0x10, 0xFF)[flipped % 3]
        Path(chunk).write_bytes(bytes(data))
        flipped += 1
        caught += errors == 1  # exactly the sample holding the byte
    assert caught == flipped > 50


@pytest.mark.parametrize("target", ["raw chunk", "lz4 chunk", "json chunk", "chunks_index", "tensor_meta", "commit_diff"])
def test_damage_in_an_older_commit_is_reported_by_verify(tmp_path, target):
    """verify checks every committed version, not only the branch heads: the first commit's
    own chunks and metadata sit in its folder, which the heads no longer read once they
    rewrote those chunks."""
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root)
    with ds:
        ds.create_tensor("r", dtype="int64")
        ds.create_tensor("x", dtype="int64", chunk_compression="lz4")
        ds.create_tensor("j", htype="json")
        ds.extend({"r": np.arange(50), "x": np.arange(50), "j": [{"i": i} for i in range(50)]})
    first = ds.commit("first")
    with ds:
        ds.r[5], ds.x[5], ds.j[5] = 500, 500, {"i": 500}  # the head rewrites every chunk
    ds.commit("second")
    ds.close()
    assert verify(root).ok
    tensor, rel = {"raw chunk": ("r", "chunks/*"), "lz4 chunk": ("x", "chunks/*"), "json chunk": ("j", "chunks/*"),
                   "chunks_index": ("x", "chunks_index/unsharded"), "tensor_meta": ("r", "tensor_meta.json"),
                   "commit_diff": ("j", "commit_diff")}[target]
    folder = os.path.join(root, "versions", first) if os.path.isdir(os.path.join(root, "versions", first)) else root
    path = sorted(glob.glob(os.path.join(folder, tensor, rel)))[0]
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0x55
    Path(path).write_bytes(bytes(data))
    report = verify(root)
    assert not report.ok, report.lines()
    assert any(tensor in p for p in report.problems), report.lines()


@pytest.mark.parametrize("name", ["tensor_meta.json", "chunks_index/unsharded"])
@pytest.mark.parametrize("committed", [False, True])
def test_a_damaged_metadata_object_is_named_by_its_own_key(tmp_path, name, committed):
    """The error names the object that does not match its checksum, not only its folder."""
    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(100))
    folder = "x"  # the first commit's objects stay at the root after it is committed
    if committed:
        cid = ds.commit("c1")
    del ds
    f = os.path.join(path, folder, name)
    raw = bytearray(Path(f).read_bytes())
    raw[len(raw) // 2] ^= 0x5A
    Path(f).write_bytes(bytes(raw))
    ds = lakeformat.load(path, read_only=True)
    if committed:
        ds.checkout(cid)
    with pytest.raises(CorruptDataError) as e:
        ds.x.numpy()
    assert e.value.key == f"{folder}/{name}" and e.value.tensor == "x", (e.value.key, e.value.tensor)
