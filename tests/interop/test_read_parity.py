"""Reads equal deeplake 3.9.52's on the same stored bytes.

lakeformat writes one dataset with a tensor of every htype we share with deeplake 3.x
(generic, list, json, text, class_label, bbox, embedding, sequence[...], link[image] to local
files, image); then lakeformat and deeplake 3.9.52 (in its own interpreter) run the same reads
(`reads.reads`: t[i].numpy(), t[a:b].numpy(), t.numpy(aslist=True), t[i].numpy(aslist=True),
t[i].data(), t[a:b].data(), ...) and the results must agree in type, dtype, shape and value,
or both raise the same kind of error.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from PIL import Image

import lakeformat

from . import reads
from .deeplake3 import run_deeplake3

DL_READS = """
import deeplake, reads
ds = deeplake.load(INPUT["path"], read_only=True)
emit(reads.dump_reads(ds, INPUT["names"]))
"""


def _png(folder: Path, name: str, arr: np.ndarray) -> str:
    path = str(folder / f"{name}.png")
    Image.fromarray(arr).save(path)
    return path


def _write(root: Path) -> List[str]:
    rng = np.random.default_rng(11)
    files = root / "files"
    files.mkdir()
    imgs = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(4, 5), (6, 3), (4, 5), (2, 2), (5, 4)]]
    paths = [_png(files, f"im{k}", a) for k, a in enumerate(imgs)]
    ds = lakeformat.empty(str(root / "ds"))
    with ds:
        ds.create_tensor("gen_fixed", dtype="int32")
        ds.gen_fixed.extend(rng.integers(-50, 50, (5, 2, 3), dtype=np.int32))
        ds.create_tensor("gen_ragged", dtype="float32")
        ds.gen_ragged.extend([rng.random((k, 2), dtype=np.float32) for k in (1, 3, 1, 2, 4)])
        ds.create_tensor("gen_scalar", dtype="int64")
        ds.gen_scalar.extend(np.arange(5, dtype=np.int64) * 7)
        ds.create_tensor("lists", htype="list")
        ds.lists.extend([["a", "bb", "ccc"], ["d"], [], ["x", "y", "z"], ["ü"]])
        ds.create_tensor("lists_even", htype="list")
        ds.lists_even.extend([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"], ["i", "j"]])
        ds.create_tensor("js", htype="json")
        ds.js.extend([{"a": 1}, {}, {"b": [1, 2], "c": {"d": "e"}}, {"x": None}, {"f": 1.5}])
        ds.create_tensor("txt", htype="text")
        ds.txt.extend(["hi", "", "there", "ünï", "a longer line of text"])
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "bird"])
        ds.labels.extend([1, 0, 2, 2, 1])
        ds.create_tensor("labels_multi", htype="class_label", class_names=["a", "b", "c"])
        ds.labels_multi.extend([[1], [0, 2], [2], [], [0, 1, 2]])
        ds.create_tensor("labels_plain", htype="class_label")
        ds.labels_plain.extend([3, 1, 4, 1, 5])
        ds.create_tensor("boxes", htype="bbox", dtype="float32")
        ds.boxes.extend([rng.random((k, 4), dtype=np.float32) for k in (2, 1, 2, 3, 0)])
        ds.create_tensor("boxes_fixed", htype="bbox", dtype="float32")
        ds.boxes_fixed.extend(rng.random((5, 2, 4), dtype=np.float32))
        ds.create_tensor("emb", htype="embedding", dtype="float32")
        ds.emb.extend(rng.random((5, 8), dtype=np.float32))
        ds.create_tensor("seq_gen", htype="sequence[generic]", dtype="int32")
        ds.seq_gen.extend([[[1, 2], [3, 4]], [[5, 6]], [[7, 8], [9, 10]], [[0, 0], [1, 1]], [[2, 2]]])
        ds.create_tensor("seq_text", htype="sequence[text]")
        ds.seq_text.extend([["a", "b"], ["c"], ["d", "e"], ["f", "g"], ["h"]])
        ds.create_tensor("seq_json", htype="sequence[json]")
        ds.seq_json.extend([[{"a": 1}, {"b": 2}], [{}], [{"c": 3}, {}], [{"d": [1]}, {"e": 2}], [{"f": "g"}]])
        ds.create_tensor("seq_labels", htype="sequence[class_label]", class_names=["x", "y"])
        ds.seq_labels.extend([[0, 1], [1], [0, 0], [1, 1], [0]])
        ds.create_tensor("img_fixed", htype="image", sample_compression="png")
        ds.img_fixed.extend([lakeformat.read(paths[k]) for k in (0, 2, 0, 2, 0)])
        ds.create_tensor("img_ragged", htype="image", sample_compression="png")
        ds.img_ragged.extend([lakeformat.read(p) for p in paths])
        ds.create_tensor("img_arrays", htype="image", sample_compression="png")
        ds.img_arrays.extend([imgs[0], imgs[2], imgs[1], imgs[3], imgs[4]])
        ds.create_tensor("link_img", htype="link[image]", sample_compression="png")
        ds.link_img.extend([lakeformat.link(p) for p in paths])
        ds.create_tensor("link_img_fixed", htype="link[image]", sample_compression="png")
        ds.link_img_fixed.extend([lakeformat.link(paths[k]) for k in (0, 2, 0, 2, 2)])
        ds.create_tensor("seq_img", htype="sequence[image]", sample_compression="png")
        ds.seq_img.extend([[lakeformat.read(paths[0]), lakeformat.read(paths[2])], [lakeformat.read(paths[1])], [lakeformat.read(paths[3])], [lakeformat.read(paths[0])], [lakeformat.read(paths[4]), lakeformat.read(paths[4])]])
    return sorted(ds.tensors)


def _diff(a: Any, b: Any, where: str = "") -> str:
    """Where two described trees first differ ('' when equal)."""
    if type(a) is not type(b):
        return f"{where}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"
    if isinstance(a, dict):
        if set(a) != set(b):
            return f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            d = _diff(a[k], b[k], f"{where}.{k}")
            if d:
                return d
        return ""
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)} ({json.dumps(a)[:200]} != {json.dumps(b)[:200]})"
        for k, (x, y) in enumerate(zip(a, b)):
            d = _diff(x, y, f"{where}[{k}]")
            if d:
                return d
        return ""
    return "" if a == b else f"{where}: {a!r} != {b!r}"


def _without_messages(tree: Dict[str, Any]) -> Dict[str, Any]:
    return {k: ({"error": v["error"]} if isinstance(v, dict) and "error" in v else v) for k, v in tree.items()}


@pytest.fixture(scope="module")
def both_reads(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    names = _write(root)
    ours = reads.dump_reads(lakeformat.load(str(root / "ds"), read_only=True), names)
    theirs = run_deeplake3(DL_READS, inputs={"path": str(root / "ds"), "names": names})
    return names, ours, theirs


def test_every_htype_is_covered(both_reads):
    names, _, _ = both_reads
    assert len(names) == 23


@pytest.mark.parametrize("name", [
    "gen_fixed", "gen_ragged", "gen_scalar", "lists", "lists_even", "js", "txt", "labels", "labels_multi",
    "labels_plain", "boxes", "boxes_fixed", "emb", "seq_gen", "seq_text", "seq_json", "seq_labels",
    "img_fixed", "img_ragged", "img_arrays", "link_img", "link_img_fixed", "seq_img",
])
def test_reads_equal_deeplake3(both_reads, name):
    names, ours, theirs = both_reads
    assert name in names
    mine, ref = _without_messages(ours[name]), _without_messages(theirs[name])
    assert set(mine) == set(ref)
    diffs = [f"{label}{_diff(mine[label], ref[label])}" for label in ref if _diff(mine[label], ref[label])]
    assert not diffs, f"{name}: lakeformat differs from deeplake 3.9.52:\n" + "\n".join(diffs)
    # the reads that deeplake answers with values must be values here too (not two errors)
    assert any("error" not in v for v in ref.values())
