"""Tabular datasets cross over with deeplake 3.9.52 both ways, merges included.

Written with today's defaults (lz4 hidden `_id`/`_shape` tensors whose ids come in runs,
lz4 chunks of scalars and text that may be stored as one literal run, or coded by the
long-key encoder where that pays), a dataset opens in deeplake 3.9.52 with equal values,
deeplake writes a branch of it that lakeformat merges; and a dataset deeplake wrote takes a
branch from lakeformat that deeplake merges. The Airbyte destination's tensor defaults get
the same round trip.
"""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np

import lakeformat
from lakeformat.codecs import bytes_codecs
from lakeformat.core.chunk import Chunk

from .deeplake3 import run_deeplake3

N = 5_000
NAMES = ["a", "b", "c"]


def _columns(rng: np.random.Generator, n: int, start: int = 0) -> dict:
    letters = np.frombuffer((string.ascii_letters + " _").encode(), np.uint8)
    lengths = rng.integers(3, 12, n)
    codes = letters[rng.integers(0, len(letters), (n, 12))]
    text = [bytes(codes[i, : lengths[i]]).decode() for i in range(n)]
    return {
        "id": np.arange(start, start + n, dtype=np.int64) * 7,
        "value": rng.standard_normal(n),
        "text": text,
        "label": rng.integers(0, len(NAMES), n).astype(np.int32),
    }


def _create(ds) -> None:
    ds.create_tensor("id", htype="generic", dtype="int64", chunk_compression="lz4")
    ds.create_tensor("value", htype="generic", dtype="float64", chunk_compression="lz4")
    ds.create_tensor("text", htype="text", chunk_compression="lz4")
    ds.create_tensor("label", htype="class_label", dtype="int32", class_names=NAMES)


def _as_lists(cols: dict) -> dict:
    return {k: (list(v) if k == "text" else np.asarray(v).reshape(-1).tolist()) for k, v in cols.items()}


def _read_ours(path: str, branch: str = "main") -> dict:
    ds = lakeformat.load(path, read_only=True)
    ds.checkout(branch)
    out = {k: ds[k].numpy().reshape(-1).tolist() for k in ("id", "value", "label")}
    out["text"] = [str(s) for s in ds["text"].numpy().reshape(-1).tolist()]
    return out


DL_READ = """
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"], read_only=True, verbose=False)
ds.checkout(INPUT["branch"])
out = {k: ds[k].numpy().reshape(-1).tolist() for k in ("id", "value", "label")}
out["text"] = [str(s) for s in ds["text"].numpy().reshape(-1).tolist()]
out["metas"] = {t: ds[t].meta.chunk_compression for t in ds._tensors(include_hidden=True)}
out["ids_unique"] = {t: len(set(ds[t].numpy().reshape(-1).tolist())) == len(ds[t])
                     for t in ds._tensors(include_hidden=True) if t.endswith("_id")}
emit(out)
"""


def _stored_as(path: str, tensor: str, folder: str = "") -> set:
    """How the chunks of `tensor` (first commit, or the commit `folder`) hold their data:
    a literal run, or compressed by lz4's fast mode or by the long-key encoder (told apart by
    the plan the probe makes for the chunk's decoded bytes)."""
    out = set()
    root = Path(path) / folder if folder else Path(path)
    if lakeformat.load(path, read_only=True)[tensor].meta.chunk_compression != "lz4":
        return {"uncompressed"}
    for f in (root / tensor / "chunks").iterdir():
        raw = f.read_bytes()
        data = raw[Chunk.parse(raw, "lz4", header_only=True).header_nbytes :]
        if data[4] == 0xF0 and len(data) > bytes_codecs.decoded_size(data, "lz4"):
            out.add("literal run")
            continue
        plan = bytes_codecs.lz4_plan(bytes(bytes_codecs.decompress_bytes(data, "lz4")))
        out.add("long-key" if plan == bytes_codecs.LZ4_LONG else "compressed")
    return out


def _check_equal(got: dict, want: dict) -> None:
    for k in ("id", "label", "text"):
        assert got[k] == want[k], f"{k} differs"
    assert np.array_equal(np.asarray(got["value"]), np.asarray(want["value"])), "value differs"


def _probe_small_chunks(monkeypatch) -> None:
    """Let the lz4 probe judge these small chunks (as it does chunks of 256 KB and up): the
    random floats and text are stored as literal runs, the ids and labels compressed."""
    monkeypatch.setattr(bytes_codecs, "_LZ4_PROBE_MIN", 8 << 10)
    monkeypatch.setattr(bytes_codecs, "_LZ4_PROBE_SLICE", 2 << 10)


def test_lakeformat_tabular_opens_in_deeplake3_and_merges_its_branch(tmp_path, monkeypatch):
    _probe_small_chunks(monkeypatch)
    rng = np.random.default_rng(15)
    path = str(tmp_path / "lf")
    base = _columns(rng, N)
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        _create(ds)
        ds.extend(base)
    ds.commit("base")
    want = _as_lists(base)
    assert _stored_as(path, "value") == {"literal run"}  # random floats do not shrink
    assert _stored_as(path, "id") == {"compressed"}  # lz4's fast mode: the long key gains nothing
    assert _stored_as(path, "label") == {"uncompressed"}  # a class_label's default
    assert _stored_as(path, "_label_id") == {"compressed"}

    got = run_deeplake3(DL_READ, inputs={"path": path, "branch": "main"})
    _check_equal(got, want)
    # the hidden tensors are lz4 (readable, and appendable, by deeplake) with unique ids
    assert got["metas"]["_id_id"] == "lz4" and got["metas"]["_value_shape"] == "lz4"
    assert all(got["ids_unique"].values()) and len(got["ids_unique"]) == 4

    # deeplake writes a branch: appends and an update; lakeformat merges it into main
    extra = _columns(np.random.default_rng(16), 50, start=N)
    run_deeplake3("""
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"], verbose=False)
ds.checkout("dl", create=True)
ds.extend({"id": np.asarray(INPUT["id"], dtype="int64"), "value": np.asarray(INPUT["value"]),
           "text": INPUT["text"], "label": np.asarray(INPUT["label"], dtype="int32")})
ds.value[3] = 0.5
ds.text[4] = "changed by deeplake"
ds.commit("dl branch")
""", inputs={"path": path, **_as_lists(extra)})
    ds = lakeformat.load(path)
    ds.extend({k: (v[:2] if k == "text" else v[:2]) for k, v in _columns(np.random.default_rng(17), 2, start=2 * N).items()})
    main_extra = _as_lists(_columns(np.random.default_rng(17), 2, start=2 * N))
    ds.commit("main append")
    ds.merge("dl")

    for k in want:
        want[k] = want[k] + main_extra[k] + _as_lists(extra)[k]
    want["value"][3] = 0.5
    want["text"][4] = "changed by deeplake"
    _check_equal(_read_ours(path), want)
    _check_equal(run_deeplake3(DL_READ, inputs={"path": path, "branch": "main"}), want)


def test_deeplake3_tabular_merges_a_lakeformat_branch(tmp_path, monkeypatch):
    _probe_small_chunks(monkeypatch)
    rng = np.random.default_rng(25)
    path = str(tmp_path / "dl")
    base = _columns(rng, N)
    run_deeplake3("""
import deeplake, numpy as np
ds = deeplake.empty(INPUT["path"], overwrite=True, verbose=False)
with ds:
    ds.create_tensor("id", htype="generic", dtype="int64", chunk_compression="lz4")
    ds.create_tensor("value", htype="generic", dtype="float64", chunk_compression="lz4")
    ds.create_tensor("text", htype="text", chunk_compression="lz4")
    ds.create_tensor("label", htype="class_label", dtype="int32", class_names=INPUT["names"])
    ds.extend({"id": np.asarray(INPUT["id"], dtype="int64"), "value": np.asarray(INPUT["value"]),
               "text": INPUT["text"], "label": np.asarray(INPUT["label"], dtype="int32")})
ds.commit("base")
""", inputs={"path": path, "names": NAMES, **_as_lists(base)})
    want = _as_lists(base)
    _check_equal(_read_ours(path), want)

    # lakeformat writes a branch (its runs of ids, its literal-run lz4 chunks)
    extra = _columns(np.random.default_rng(26), 2_000, start=N)
    ds = lakeformat.load(path)
    ds.checkout("lf", create=True)
    ds.extend(extra)
    ds.value[1] = -1.25
    ds.text[2] = "changed by lakeformat"
    ds.commit("lf branch")

    run_deeplake3("""
import deeplake
ds = deeplake.load(INPUT["path"], verbose=False)
ds.checkout("main")
ds.merge("lf")
""", inputs={"path": path})
    for k in want:
        want[k] = want[k] + _as_lists(extra)[k]
    want["value"][1] = -1.25
    want["text"][2] = "changed by lakeformat"
    got = run_deeplake3(DL_READ, inputs={"path": path, "branch": "main"})
    _check_equal(got, want)
    assert all(got["ids_unique"].values())
    _check_equal(_read_ours(path), want)


def _destination_create(ds) -> None:
    """The tensors as the Airbyte destination creates them (its defaults: lz4 chunks of
    8 MiB, hidden `_id`/`_shape` tensors, nullable info; integers are int64)."""
    from connectors.destination_deeplake import config, schema, sink

    for name, kind in (("id", schema.INT), ("value", schema.FLOAT), ("text", schema.TEXT), ("label", schema.INT)):
        ds.create_tensor(name, chunk_compression=config.DEFAULT_CHUNK_COMPRESSION, max_chunk_size=sink.MAX_CHUNK_BYTES,
                         **schema.tensor_args(kind))
        ds[name].info.update(schema.tensor_info(kind, name))


def test_destination_defaults_cross_over_with_deeplake3(tmp_path, monkeypatch):
    _probe_small_chunks(monkeypatch)
    n = 20_000
    path = str(tmp_path / "dest")
    base = _columns(np.random.default_rng(35), n)
    base["label"] = base["label"].astype(np.int64)
    ds = lakeformat.empty(path, overwrite=True)
    with ds:
        _destination_create(ds)
        ds.extend(base)
    ds.commit("sync 1")
    want = _as_lists(base)
    assert _stored_as(path, "label") == {"long-key"}
    for t in ("id", "value", "text", "label"):  # ids at about half a byte each
        stored = sum(f.stat().st_size for f in (Path(path) / f"_{t}_id" / "chunks").iterdir())
        assert stored < 0.6 * n + 1024

    got = run_deeplake3(DL_READ, inputs={"path": path, "branch": "main"})
    _check_equal(got, want)
    assert all(got["ids_unique"].values()) and len(got["ids_unique"]) == 4

    # deeplake appends to and updates our long-key chunks on a branch; lakeformat merges it
    extra = _as_lists(_columns(np.random.default_rng(36), 300, start=n))
    run_deeplake3("""
import deeplake, numpy as np
ds = deeplake.load(INPUT["path"], verbose=False)
ds.checkout("dl", create=True)
ds.extend({"id": np.asarray(INPUT["id"], dtype="int64"), "value": np.asarray(INPUT["value"]),
           "text": INPUT["text"], "label": np.asarray(INPUT["label"], dtype="int64")})
ds.label[7] = 2
ds.commit("dl branch")
""", inputs={"path": path, **extra})
    ds = lakeformat.load(path)
    ds.merge("dl")
    for k in want:
        want[k] = want[k] + extra[k]
    want["label"][7] = 2
    _check_equal(_read_ours(path), want)
    got = run_deeplake3(DL_READ, inputs={"path": path, "branch": "main"})
    _check_equal(got, want)
    assert all(got["ids_unique"].values())
