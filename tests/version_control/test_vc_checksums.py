"""Checksums of the version-control objects: version_control_info.json and each
commit_info.json carry a crc32 inside them (`lakeformat.core.checksums.embed_checksum`), checked
when the tree is read (every open) and by `lakeformat verify`; a new version's folder has its
side files from the moment it is made. deeplake 3.9.52 writing after us (its own tree and
commit infos, without our checksum) is never reported as damage."""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import numpy as np
import pytest

import lakeformat
from lakeformat.core import checksums as CS
from lakeformat.core.version_tree import VersionTree
from lakeformat.errors import CorruptDataError
from lakeformat.storage.local import LocalStorage
from lakeformat.verify import verify
from tests.interop.deeplake3 import run_deeplake3


def _versions(root: str) -> dict:
    ds = lakeformat.empty(root, overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.extend({"x": np.arange(10)})
    c1 = ds.commit("one")
    ds.checkout("b1", create=True)
    ds.extend({"x": np.arange(3)})
    c2 = ds.commit("two")
    ds.close()
    return {"c1": c1, "c2": c2}


def _flips(data: bytes):
    """Every byte of `data`, xor a low bit, a high bit or all bits in turn."""
    for i in range(len(data)):
        b = bytearray(data)
        b[i] ^= (0x01, 0x80, 0xFF)[i % 3]
        yield bytes(b)


def test_every_flipped_byte_of_the_tree_is_caught_when_it_is_read(tmp_path):
    root = str(tmp_path / "ds")
    _versions(root)
    raw = Path(root, "version_control_info.json").read_bytes()
    assert VersionTree.from_bytes(raw).branches.keys() == {"main", "b1"}
    caught = 0
    for bad in _flips(raw):
        with pytest.raises(CorruptDataError):
            VersionTree.from_bytes(bad)
        caught += 1
    assert caught == len(raw) > 300
    # on open, and in verify's report
    Path(root, "version_control_info.json").write_bytes(next(_flips(raw[:-40])) + raw[-40:])
    with pytest.raises(CorruptDataError, match="version_control_info.json"):
        lakeformat.load(root, read_only=True)
    assert not verify(root).ok


def test_every_flipped_byte_of_a_commit_info_is_reported_by_verify(tmp_path):
    root = str(tmp_path / "ds")
    ids = _versions(root)
    report = verify(root)
    assert report.ok and report.checked["commit infos checksummed"] == 4, report.lines()
    path = Path(root, "versions", ids["c2"], "commit_info.json")
    raw = path.read_bytes()
    every = int(os.environ.get("LAKEFORMAT_FLIP_EVERY", "0")) or 7  # verify per flip: a sample unless asked
    flipped = detected = 0
    for i, bad in enumerate(_flips(raw)):
        if i % every and i != len(raw) - 1:
            continue
        path.write_bytes(bad)
        problems = verify(root).problems
        flipped += 1
        detected += any(f"commit info versions/{ids['c2']}/commit_info.json" in p for p in problems)
    path.write_bytes(raw)
    assert detected == flipped > 20
    assert verify(root).ok


def test_a_new_version_is_checksummed_before_its_first_flush(tmp_path):
    root = str(tmp_path / "ds")
    ds = lakeformat.empty(root, overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.extend({"x": np.arange(10)})
    ds.commit("one")
    ds.close()
    tree = json.loads(Path(root, "version_control_info.json").read_bytes())
    head = tree["branches"]["main"]
    st = LocalStorage(root)
    for key in ("x", "_x_id", "_x_shape"):
        assert CS.load_and_classify(st, key, head)[1].state == "ok", key
    assert CS.classify_dataset(st, head).state == "ok"
    report = verify(root)
    assert report.ok and "tensors without checksums" not in report.checked, report.lines()
    # damage to a copied meta of the new version is seen
    meta = Path(root, "versions", head, "x", "tensor_meta.json")
    d = json.loads(meta.read_bytes())
    d["length"] -= 1
    meta.write_text(json.dumps(d))
    assert any("tensor 'x': tensor_meta.json does not match its checksum" in p for p in verify(root).problems)


_DEEPLAKE_VERSIONS = """
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"])
ds.checkout("main")
ds.x.append(np.int64(99))
ds.commit("deeplake's")
ds.checkout("dl_branch", create=True)
ds.x.append(np.int64(7))
ds.commit("on a branch of deeplake's")
ds.checkout("main")
emit(sorted(ds.branches))
"""


def test_deeplake_versions_after_ours_are_not_damage(tmp_path):
    root = str(tmp_path / "ds")
    _versions(root)
    assert run_deeplake3(_DEEPLAKE_VERSIONS, inputs={"path": root}) == ["b1", "dl_branch", "main"]
    report = verify(root)
    assert report.ok, report.lines()
    ds = lakeformat.load(root)
    assert sorted(ds.branches) == ["b1", "dl_branch", "main"]
    assert ds.x.numpy().ravel().tolist()[-1] == 99
    ds.extend({"x": [5]})
    ds.commit("ours again")  # our tree write puts the checksum back
    ds.close()
    raw = Path(root, "version_control_info.json").read_bytes()
    assert CS.EMBEDDED_KEY.encode() in raw
    report = verify(root)
    assert report.ok and report.checked.get("commit infos without checksums", 0) >= 2, report.lines()
    assert glob.glob(os.path.join(root, "versions", "*", "commit_info.json"))
