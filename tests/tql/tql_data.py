"""A random dataset for the TQL tests, and the same data as plain Python for the references.

Every kind a query meets: int and float scalars, unicode text with nulls, a class label with
empty samples, a multi-label class label, ragged bounding boxes (0 to 3 per row), fixed-size
embeddings, small fixed-shape images, ragged 1-D arrays, nested json with missing keys, and
a tensor in a group.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

import lakeformat

CLASSES = ["cat", "dog", "bird", "fish"]
WORDS = ["héllo", "wörld", "cat", "Katze", "猫", "dog", "", "naïve", "CAT", "a_b", "50%"]


@dataclass
class Data:
    n: int
    i: np.ndarray  # int64
    f: np.ndarray  # float32
    s: List[Optional[str]]
    lab: List[np.ndarray]  # 0 or 1 ids each
    ml: List[np.ndarray]  # 0..3 ids each
    boxes: List[np.ndarray]  # (k, 4) float32
    emb: np.ndarray  # (n, 8) float32
    img: np.ndarray  # (n, 4, 5, 3) uint8
    r: List[np.ndarray]  # ragged int32
    j: List[Dict[str, Any]]
    gv: np.ndarray  # int32, tensor "grp/v"


def make_data(seed: int, n: int = 40) -> Data:
    rng = np.random.default_rng(seed)
    s: List[Optional[str]] = []
    for _ in range(n):
        if rng.random() < 0.15:
            s.append(None)
        else:
            s.append(" ".join(rng.choice(WORDS, size=int(rng.integers(1, 3)))))
    j: List[Dict[str, Any]] = []
    for _ in range(n):
        d: Dict[str, Any] = {"id": int(rng.integers(0, 5))}
        if rng.random() < 0.7:
            d["source"] = {"id": int(rng.integers(0, 3)), "name": str(rng.choice(["web", "cam", "sim"]))}
        if rng.random() < 0.5:
            d["tags"] = [str(t) for t in rng.choice(["a", "b", "c"], size=int(rng.integers(0, 3)))]
        j.append(d)
    return Data(
        n=n,
        i=rng.integers(-50, 50, n).astype(np.int64),
        f=np.round(rng.normal(0, 10, n), 2).astype(np.float32),
        s=s,
        lab=[np.zeros(0, np.uint32) if rng.random() < 0.15 else np.array([rng.integers(0, len(CLASSES))], np.uint32) for _ in range(n)],
        ml=[np.unique(rng.integers(0, len(CLASSES), int(rng.integers(0, 4)))).astype(np.uint32) for _ in range(n)],
        boxes=[np.round(rng.uniform(0, 20, (int(rng.integers(0, 4)), 4)), 1).astype(np.float32) for _ in range(n)],
        emb=rng.normal(0, 1, (n, 8)).astype(np.float32),
        img=rng.integers(0, 255, (n, 4, 5, 3)).astype(np.uint8),
        r=[rng.integers(-5, 5, int(rng.integers(0, 5))).astype(np.int32) for _ in range(n)],
        j=j,
        gv=rng.integers(0, 10, n).astype(np.int32),
    )


def build(path: str, d: Data) -> Any:
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("i", dtype="int64")
        ds.create_tensor("f", dtype="float32")
        ds.create_tensor("s", htype="text")
        ds.create_tensor("lab", htype="class_label", class_names=CLASSES)
        ds.create_tensor("ml", htype="class_label", class_names=CLASSES)
        ds.create_tensor("boxes", htype="bbox", dtype="float32")
        ds.create_tensor("emb", htype="embedding", dtype="float32")
        ds.create_tensor("img", dtype="uint8")
        ds.create_tensor("r", dtype="int32")
        ds.create_tensor("j", htype="json")
        ds.create_tensor("grp/v", dtype="int32")
        ds.extend({
            "i": d.i, "f": d.f, "s": d.s, "lab": d.lab, "ml": d.ml, "boxes": d.boxes, "emb": d.emb,
            "img": d.img, "r": d.r, "j": d.j, "grp/v": d.gv,
        })
    return lakeformat.load(path, read_only=True)
