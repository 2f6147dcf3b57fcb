"""The datasets the interop tests write: one plan of ops per direction, with its expectation.

`build_plan(rng, files_dir, writer)` returns a `Plan`: the ops (see `ops.py`) that create and
fill about thirty tensors covering every htype and compression deeplake 3.9.52 supports, with
ragged shapes, empty samples, several chunks per tensor, tiles, groups, renames, deletes, pops,
updates and info, and, beside them, what every tensor must hold afterwards.

Random data comes from a seeded numpy generator; `INTEROP_SEED` picks a fresh seed (CI keeps
the default).
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

DEFAULT_SEED = 20240917
N = 14  # samples per tensor before the appends, pops and updates


def seed() -> int:
    return int(os.environ.get("INTEROP_SEED", DEFAULT_SEED))


@dataclass
class Expect:
    """What one tensor must hold: `kind` says how values compare."""

    htype: str
    dtype: Optional[str]
    kind: str  # array | jpeg | text | json | list | label
    values: List[Any] = field(default_factory=list)
    class_names: Optional[List[str]] = None
    info: Dict[str, Any] = field(default_factory=dict)
    sequence: bool = False
    sample_compression: Optional[str] = None
    chunk_compression: Optional[str] = None
    min_chunks: int = 1  # the writer must have used at least this many chunks
    tiled: bool = False


class Plan:
    """Records ops and keeps the expected contents in step with them."""

    def __init__(self) -> None:
        self.ops: List[list] = []
        self.expect: Dict[str, Expect] = {}
        self.ds_info: Dict[str, Any] = {}
        self.files: Dict[str, np.ndarray] = {}  # linked/read file path -> decoded pixels

    def create(self, name: str, expect: Expect, **kwargs: Any) -> None:
        self.ops.append(["create_tensor", name, kwargs])
        expect.sample_compression = kwargs.get("sample_compression")
        expect.chunk_compression = kwargs.get("chunk_compression")
        if "class_names" in kwargs:
            expect.class_names = list(kwargs["class_names"])
        self.expect[name] = expect

    def _resolve(self, name: str, v: Any) -> Any:
        """The value a reader must return for sample `v` written to `name`."""
        e = self.expect[name]
        if e.sequence:
            return [self._resolve_one(e, x) for x in (v or [])]
        return self._resolve_one(e, v)

    def _resolve_one(self, e: Expect, v: Any) -> Any:
        if isinstance(v, dict) and ("__link__" in v or "__read__" in v):
            return self.files[v.get("__link__") or v.get("__read__")]
        if e.kind == "label" and v is not None:
            labels = v if isinstance(v, (list, tuple, np.ndarray)) else [v]
            out = []
            for x in labels:
                if isinstance(x, str):
                    if e.class_names is None:
                        e.class_names = []
                    if x not in e.class_names:
                        e.class_names.append(x)
                    out.append(e.class_names.index(x))
                else:
                    out.append(int(x))
            return np.asarray(out, np.uint32)
        return copy.deepcopy(v)

    def extend(self, samples: Dict[str, List[Any]], per_tensor: bool = False) -> None:
        if per_tensor:
            for k, vs in samples.items():
                self.ops.append(["t_extend", k, vs])
        else:
            self.ops.append(["extend", samples])
        for k, vs in samples.items():
            self.expect[k].values.extend(self._resolve(k, v) for v in vs)

    def append(self, sample: Dict[str, Any]) -> None:
        self.ops.append(["append", sample])
        for k, v in sample.items():
            self.expect[k].values.append(self._resolve(k, v))

    def update(self, name: str, index: int, value: Any) -> None:
        self.ops.append(["update", name, index, value])
        self.expect[name].values[index] = self._resolve(name, value)

    def pop(self, index: int) -> None:
        self.ops.append(["pop", index])
        for e in self.expect.values():
            e.values.pop(index)

    def rename(self, old: str, new: str) -> None:
        self.ops.append(["rename", old, new])
        self.expect[new] = self.expect.pop(old)

    def delete(self, name: str) -> None:
        self.ops.append(["delete", name])
        self.expect.pop(name)

    def info(self, name: Optional[str], d: Dict[str, Any]) -> None:
        if name is None:
            self.ops.append(["ds_info", d])
            self.ds_info.update(d)
        else:
            self.ops.append(["t_info", name, d])
            self.expect[name].info.update(d)


    def continued_by(self, other: "Plan", deeplake_pops: bool = False) -> "Plan":
        """A plan of `other`'s writes (extends, appends, updates, pops) onto the dataset this
        plan leaves behind: tensors renamed here are written under their new names, deleted
        ones not at all. Its expectation starts from this plan's. `deeplake_pops`: move each
        pop to a sample whose sequences are not empty (deeplake 3.9.52's ds.pop leaves an
        empty sequence in place)."""
        out = Plan()
        out.expect = copy.deepcopy(self.expect)
        out.files = {**self.files, **other.files}
        out.ds_info = dict(self.ds_info)
        renames = {op[1]: op[2] for op in self.ops if op[0] == "rename"}
        gone = {op[1] for op in self.ops if op[0] == "delete"}

        def live(d):
            return {renames.get(k, k): v for k, v in d.items() if k not in gone}

        for op in other.ops:
            kind = op[0]
            if kind == "extend":
                out.extend(live(op[1]))
            elif kind == "t_extend" and op[1] not in gone:
                out.extend({renames.get(op[1], op[1]): op[2]}, per_tensor=True)
            elif kind == "append":
                out.append(live(op[1]))
            elif kind == "update" and op[1] not in gone:
                out.update(renames.get(op[1], op[1]), op[2], op[3])
            elif kind == "pop":
                index = op[1]
                if deeplake_pops:
                    seqs = [e.values for e in out.expect.values() if e.sequence]
                    while any(not v[index] for v in seqs):
                        index -= 1
                out.pop(index)
        return out

    def subset(self, names: List[str]) -> "Plan":
        """The same plan restricted to tensors `names` (names before any rename)."""
        keep = set(names)
        out = Plan()
        out.files, out.ds_info = self.files, self.ds_info
        renamed = {}
        for op in self.ops:
            kind = op[0]
            if kind in ("extend", "append"):
                op = [kind, {k: v for k, v in op[1].items() if k in keep}]
            elif kind == "rename":
                if op[1] not in keep:
                    continue
                keep.add(op[2])
                renamed[op[2]] = op[1]
            elif kind in ("create_tensor", "t_extend", "t_append", "update", "t_pop", "delete", "t_info") and op[1] not in keep:
                continue
            out.ops.append(op)
        out.expect = {k: v for k, v in self.expect.items() if k in keep}
        return out


# --------------------------------------------------------------------------------- generators


def _ragged(rng, n, dims, dtype, lo=0, hi=5, empty_every=5, value=None):
    """n arrays of random shapes (each axis in [lo, hi] or a fixed int), with an empty sample
    (None) or a zero-size array every `empty_every` samples."""
    out = []
    for i in range(n):
        if empty_every and i % empty_every == 2:
            out.append(None if (i // empty_every) % 2 == 0 else np.zeros(tuple(0 if k == 0 else (d if isinstance(d, int) else 2) for k, d in enumerate(dims)), dtype))
            continue
        shape = tuple(d if isinstance(d, int) else int(rng.integers(d[0], d[1] + 1)) for d in dims)
        if np.dtype(dtype) == bool:
            out.append(rng.random(shape) < 0.5)
        elif np.dtype(dtype).kind == "f":
            out.append((rng.standard_normal(shape) * 100).astype(dtype))
        else:
            info = np.iinfo(dtype)
            out.append(rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), size=shape, dtype=dtype, endpoint=True))
    return out


def _image(rng, h, w, c):
    """A smooth image (so that jpeg stays close) with some noise (so that png has work)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(yy / 5.0 + rng.random() * 6)[..., None] * 60 + np.cos(xx / 7.0)[..., None] * 60 + 128)
    base = np.repeat(base, c, axis=2) + rng.integers(0, 8, size=(h, w, c))
    return np.clip(base, 0, 255).astype(np.uint8)


def _images(rng, n, c, hw=(8, 24), empty_every=0, squeeze=False):
    out = []
    for i in range(n):
        if empty_every and i % empty_every == 3:
            out.append(None)
            continue
        img = _image(rng, int(rng.integers(*hw)), int(rng.integers(*hw)), c)
        out.append(img[..., 0] if squeeze else img)
    return out


_WORDS = ["cat", "dog", "zebra", "ünïcödé", "日本語", "", "a b c", "emoji 🙂", "x" * 50]


def _texts(rng, n, none_every=6):
    out = []
    for i in range(n):
        if none_every and i % none_every == 4:
            out.append(None)
        else:
            k = int(rng.integers(0, 4))
            out.append(" ".join(rng.choice(_WORDS, size=k).tolist()))
    return out


def _jsons(rng, n, none_every=6):
    out = []
    for i in range(n):
        if none_every and i % none_every == 1:
            out.append(None)
            continue
        k = int(rng.integers(0, 4))
        out.append({
            f"k{j}": [int(x) for x in rng.integers(0, 100, size=int(rng.integers(0, 4)))] if j % 2 else {"s": str(rng.choice(_WORDS)), "f": float(rng.random()), "b": bool(j), "n": None}
            for j in range(k)
        })
    return out


def _lists(rng, n):
    return [[str(x) for x in rng.choice(_WORDS, size=int(rng.integers(0, 4)))] for _ in range(n)]


def _write_png(path: str, arr: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr).save(path)


# --------------------------------------------------------------------------------- the plan


def build_plan(rng: np.random.Generator, files_dir: str, writer: str) -> Plan:
    """Ops for a dataset of every htype (`writer` is "lakeformat" or "deeplake": deeplake
    refuses None for bbox and embedding samples, so those get none when it writes)."""
    p = Plan()
    dl = writer == "deeplake"
    n = N
    small = 100  # bytes: a chunk holds a handful of samples

    # link targets: png files on the local disk
    paths = []
    for i in range(6):
        arr = _image(rng, int(rng.integers(6, 20)), int(rng.integers(6, 20)), 3)
        path = os.path.join(files_dir, f"link_{i}.png")
        _write_png(path, arr)
        p.files[path] = arr
        paths.append(path)

    def A(htype, dtype, kind="array", **kw):
        return Expect(htype=htype, dtype=dtype, kind=kind, **kw)

    T: Dict[str, List[Any]] = {}

    # generic, every dtype, scalars and nd, raw / lz4 sample / lz4 chunk compression
    p.create("gen_int32", A("generic", "int32", min_chunks=3), dtype="int32", max_chunk_size=small)
    T["gen_int32"] = _ragged(rng, n, [(0, 6), (1, 5)], "int32")
    p.create("gen_float64_3d", A("generic", "float64", min_chunks=2), dtype="float64", max_chunk_size=2 * small)
    T["gen_float64_3d"] = _ragged(rng, n, [(1, 4), (1, 3), 2], "float64")
    p.create("gen_bool", A("generic", "bool"), dtype="bool")
    T["gen_bool"] = _ragged(rng, n, [(0, 9)], "bool")
    p.create("gen_uint8_scalar", A("generic", "uint8"), dtype="uint8")
    T["gen_uint8_scalar"] = [int(x) for x in rng.integers(0, 256, n)]
    p.create("gen_float32_fixed", A("generic", "float32", min_chunks=3), dtype="float32", max_chunk_size=small)
    T["gen_float32_fixed"] = [x for x in (rng.standard_normal((n, 3, 4)).astype("float32"))]
    p.create("gen_int64_lz4", A("generic", "int64", min_chunks=2), dtype="int64", sample_compression="lz4", max_chunk_size=small)
    T["gen_int64_lz4"] = _ragged(rng, n, [(0, 6)], "int64")
    p.create("gen_int16_lz4c", A("generic", "int16", min_chunks=2), dtype="int16", chunk_compression="lz4", max_chunk_size=small)
    T["gen_int16_lz4c"] = _ragged(rng, n, [(2, 8), (2, 8)], "int16")
    p.create("gen_uint16_inferred", A("generic", "uint16"))  # dtype taken from the first sample
    T["gen_uint16_inferred"] = _ragged(rng, n, [(1, 3)], "uint16", empty_every=0)

    # text-like
    p.create("text", A("text", "str", "text", min_chunks=2), htype="text", max_chunk_size=64)
    T["text"] = _texts(rng, n)
    p.create("text_lz4c", A("text", "str", "text"), htype="text", chunk_compression="lz4")
    T["text_lz4c"] = _texts(rng, n)
    p.create("json", A("json", "Any", "json", min_chunks=2), htype="json", max_chunk_size=small)
    T["json"] = _jsons(rng, n)
    p.create("list", A("list", "List", "list"), htype="list")
    T["list"] = _lists(rng, n)

    # class labels
    names = ["cat", "dog", "bird", "fish"]
    p.create("labels_named", A("class_label", "uint32", "label", min_chunks=2), htype="class_label", class_names=names, max_chunk_size=32)
    T["labels_named"] = [
        (str(rng.choice(names)) if i % 3 == 0 else [int(x) for x in rng.integers(0, 4, int(rng.integers(0, 3)))] if i % 3 == 1 else int(rng.integers(0, 4)))
        for i in range(n)
    ]
    p.create("labels_ints", A("class_label", "uint32", "label"), htype="class_label")
    T["labels_ints"] = [int(x) for x in rng.integers(0, 1000, n)]
    p.create("labels_strings", A("class_label", "uint32", "label"), htype="class_label")
    T["labels_strings"] = [str(rng.choice(["red", "green", "blue", "ünï"])) for _ in range(n)]

    # bbox, binary_mask, embedding
    p.create("boxes", A("bbox", "float32", min_chunks=2), htype="bbox", max_chunk_size=small)
    T["boxes"] = [None if (i == 5 and not dl) else (rng.random((int(rng.integers(0, 4)), 4)) * 100).astype("float32") for i in range(n)]
    p.create("masks", A("binary_mask", "bool", min_chunks=2), htype="binary_mask", max_chunk_size=small)
    T["masks"] = _ragged(rng, n, [(4, 12), (4, 12), (0, 3)], "bool")
    p.create("embedding", A("embedding", "float32", min_chunks=3), htype="embedding", max_chunk_size=small)
    T["embedding"] = [None if (i == 7 and not dl) else rng.standard_normal(16).astype("float32") for i in range(n)]

    # images: RGB and gray; png, jpeg, lz4, raw, raw + lz4 chunks
    p.create("img_png", A("image", "uint8", min_chunks=2), htype="image", sample_compression="png", max_chunk_size=1000)
    T["img_png"] = _images(rng, n, 3, empty_every=5)
    p.create("img_gray_png", A("image", "uint8"), htype="image", sample_compression="png")
    T["img_gray_png"] = _images(rng, n, 1, empty_every=5)
    p.create("img_gray2d", A("image.gray", "uint8"), htype="image.gray", sample_compression="png")
    T["img_gray2d"] = _images(rng, n, 1, squeeze=True)
    p.create("img_jpeg", A("image", "uint8", "jpeg", min_chunks=2), htype="image", sample_compression="jpeg", max_chunk_size=1000)
    T["img_jpeg"] = _images(rng, n, 3, hw=(16, 32), empty_every=5)
    p.create("img_gray_jpeg", A("image", "uint8", "jpeg"), htype="image", sample_compression="jpeg")
    T["img_gray_jpeg"] = _images(rng, n, 1, hw=(16, 32))
    p.create("img_lz4", A("image", "uint8", min_chunks=2), htype="image", sample_compression="lz4", max_chunk_size=2000)
    T["img_lz4"] = _images(rng, n, 3, empty_every=5)
    p.create("img_raw", A("image", "uint8", min_chunks=3), htype="image", sample_compression=None, max_chunk_size=2000)
    T["img_raw"] = _images(rng, n, 3, empty_every=5)
    p.create("img_raw_lz4c", A("image.rgb", "uint8", min_chunks=2), htype="image.rgb", chunk_compression="lz4", max_chunk_size=2000)
    T["img_raw_lz4c"] = _images(rng, n, 3)

    # tiles: samples bigger than the tiling threshold
    p.create("tiled_img", A("image", "uint8", min_chunks=4, tiled=True), htype="image", sample_compression=None, tiling_threshold=1500, max_chunk_size=3000)
    T["tiled_img"] = [(_image(rng, int(rng.integers(24, 40)), int(rng.integers(24, 40)), 3) if i % 4 == 0 else _image(rng, 8, 8, 3)) for i in range(n)]
    p.create("tiled_f32", A("generic", "float32", min_chunks=4, tiled=True), dtype="float32", tiling_threshold=2000, max_chunk_size=4000)
    T["tiled_f32"] = [rng.standard_normal((int(rng.integers(20, 50)), 30) if i % 3 == 0 else (2, 30)).astype("float32") for i in range(n)]

    # sequences
    p.create("seq_labels", A("class_label", "uint32", "label", sequence=True), htype="sequence[class_label]", class_names=names)
    T["seq_labels"] = [[int(x) for x in rng.integers(0, 4, int(rng.integers(0, 5)))] for _ in range(n)]
    p.create("seq_images", A("image", "uint8", sequence=True, min_chunks=2), htype="sequence[image]", sample_compression="png", max_chunk_size=2000)
    T["seq_images"] = [_images(rng, int(rng.integers(0, 4)), 3) for _ in range(n)]
    p.create("seq_generic", A("generic", "int32", sequence=True), htype="sequence[generic]", dtype="int32")
    T["seq_generic"] = [[rng.integers(-9, 9, int(rng.integers(1, 4))).astype("int32") for _ in range(int(rng.integers(0, 4)))] for _ in range(n)]

    # ds.pop(3) pops sample 3 and, later, the appended copy of sample 0. deeplake 3.9.52's
    # ds.pop leaves an empty sequence in place (its own bug), so it gets none there; lakeformat
    # pops an empty sequence at 3.
    for k in ("seq_labels", "seq_images", "seq_generic"):
        T[k][0] = T[k][0] or T[k][1] or T[k][2]
        T[k][3] = (T[k][3] or T[k][0]) if dl else []

    # links to local files, with and without a creds key
    p.ops.append(["add_creds_key", "local_key"])
    p.ops.append(["populate_creds", "local_key", {}])
    p.create("link_img", A("image", "uint8"), htype="link[image]", sample_compression="png")
    T["link_img"] = [{"__link__": paths[int(rng.integers(0, len(paths)))]} for _ in range(n)]
    p.create("link_img_creds", A("image", "uint8"), htype="link[image]", sample_compression="png")
    T["link_img_creds"] = [{"__link__": paths[int(rng.integers(0, len(paths)))], "creds_key": "local_key"} for _ in range(n)]
    p.expect["link_img"].htype = p.expect["link_img_creds"].htype = "link[image]"

    # groups, renames, deletes
    p.create("grp/sub/vals", A("generic", "int64"), dtype="int64")
    T["grp/sub/vals"] = _ragged(rng, n, [(1, 3)], "int64", empty_every=0)
    p.create("old_name", A("text", "str", "text"), htype="text")
    T["old_name"] = _texts(rng, n, none_every=0)
    p.create("to_delete", A("generic", "float32"), dtype="float32")
    T["to_delete"] = [rng.standard_normal(2).astype("float32") for _ in range(n)]

    for e in p.expect.values():
        if e.sequence:
            e.htype = f"sequence[{e.htype}]"

    # one ds.extend for the first half, per-tensor extends for the rest
    half = n // 2
    p.extend({k: v[:half] for k, v in T.items()})
    p.extend({k: v[half:] for k, v in T.items()}, per_tensor=True)
    # one ds.append of fresh samples
    extra = {
        k: (v[0] if not isinstance(v[0], dict) or "__link__" in v[0] else v[0]) for k, v in T.items()
    }
    p.append(copy.deepcopy(extra))

    # updates, pops, rename, delete, info
    p.update("gen_int32", 1, rng.integers(-5, 5, (7, 2)).astype("int32"))
    p.update("gen_float32_fixed", 0, np.full((3, 4), 1.5, "float32"))
    p.update("text", 0, "updated ✓")
    p.update("json", 0, {"updated": [1, 2, 3]})
    p.update("labels_named", 1, "fish")
    p.update("img_png", 0, _image(rng, 30, 20, 3))
    p.update("img_raw", 1, _image(rng, 5, 6, 3))
    p.update("boxes", 2, np.asarray([[1, 2, 3, 4]], "float32"))
    p.update("link_img", 0, {"__link__": paths[-1]})
    p.pop(3)
    p.pop(len(p.expect["text"].values) - 1)
    p.rename("old_name", "renamed")
    p.delete("to_delete")
    p.info(None, {"description": "interop", "version_of": {"a": [1, 2]}})
    p.info("gen_int32", {"units": "m", "scale": 2.5})
    return p
