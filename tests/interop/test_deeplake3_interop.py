"""Both directions of compatibility with the reference implementation, deeplake==3.9.52.

* lakeformat writes, deeplake 3.9.52 reads: equal values, shapes, dtypes, htypes, class
  names and info, tensor by tensor (and lakeformat reads its own writes the same way);
* deeplake 3.9.52 writes, lakeformat reads: equal values, likewise;
* both again with the dataset on S3 (moto's server);
* a zstd-chunk tensor (our extension of the layout) is refused by deeplake 3.9.52 with an
  error, never misread.

One dataset of about thirty tensors per direction and storage, and one deeplake subprocess per
dataset, keep the suite within a few minutes on two cores.
"""
from __future__ import annotations

import tempfile
from typing import Any, Dict, Tuple

import numpy as np
import pytest

import lakeformat

from . import cases, ops
from .compare import compare_tensor
from .deeplake3 import run_deeplake3

DL_READ = """
import deeplake, ops
ds = deeplake.load(INPUT["path"], read_only=True, creds=INPUT["creds"])
for key, creds in INPUT["link_creds"].items():
    ds.populate_creds(key, creds)
emit(ops.dump_dataset(ds, singles=INPUT["singles"]))
"""

DL_WRITE = """
import deeplake, ops
ds = deeplake.empty(INPUT["path"], overwrite=True, creds=INPUT["creds"])
if INPUT["batched"]:
    with ds:
        ops.apply_ops(deeplake, ds, INPUT["ops"])
else:
    ops.apply_ops(deeplake, ds, INPUT["ops"])
ds.flush()
emit({"tensors": sorted(ds.tensors)})
"""


def _deeplake_creds(storage_options: Dict[str, Any] | None) -> Dict[str, Any] | None:
    if not storage_options:
        return None
    return {
        "aws_access_key_id": storage_options["key"],
        "aws_secret_access_key": storage_options["secret"],
        "endpoint_url": storage_options["client_kwargs"]["endpoint_url"],
    }


# Every object store request to moto costs tens of milliseconds on a busy two-core machine, so
# the S3 datasets hold one tensor of each kind of storage path, not all of them: the layout is
# the same on every store and the local runs cover all of it.
S3_TENSORS = [
    "gen_int32", "gen_int16_lz4c", "text", "json", "labels_named", "img_png", "img_jpeg",
    "tiled_img", "seq_images", "link_img_creds", "grp/sub/vals", "old_name", "to_delete",
]


def _plan(files_dir: str, writer: str, remote: bool = False) -> cases.Plan:
    plan = cases.build_plan(np.random.default_rng(cases.seed()), files_dir, writer)
    return plan.subset(S3_TENSORS) if remote else plan


def lakeformat_writes(url: str, storage_options: Dict[str, Any] | None, files_dir: str, remote: bool = False) -> Tuple[cases.Plan, dict, dict]:
    """Write the plan with lakeformat; return it, deeplake's dump and lakeformat's own dump.

    `remote`: the ops are batched in one `with ds:` and samples are read in bulk only, since
    every object store request costs time (the local runs cover flush-per-op and t[i])."""
    plan = _plan(files_dir, "lakeformat", remote)
    ds = lakeformat.empty(url, overwrite=True, creds=storage_options)
    if remote:
        with ds:
            ops.apply_ops(lakeformat, ds, plan.ops)
    else:
        ops.apply_ops(lakeformat, ds, plan.ops)
    ds.flush()
    own = ops.dump_dataset(lakeformat.load(url, read_only=True, creds=storage_options), singles=not remote)
    theirs = run_deeplake3(DL_READ, inputs={
        "path": url, "creds": _deeplake_creds(storage_options), "link_creds": {"local_key": {}}, "singles": not remote,
    })
    return plan, theirs, own


def deeplake_writes(url: str, storage_options: Dict[str, Any] | None, files_dir: str, remote: bool = False) -> Tuple[cases.Plan, dict]:
    """Write the plan with deeplake 3.9.52; return it and lakeformat's dump of the result."""
    plan = _plan(files_dir, "deeplake", remote)
    run_deeplake3(DL_WRITE, inputs={"path": url, "creds": _deeplake_creds(storage_options), "ops": plan.ops, "batched": remote})
    ds = lakeformat.load(url, read_only=True, creds=storage_options)
    ds.populate_creds("local_key", {})
    return plan, ops.dump_dataset(ds, singles=not remote)


def _dataset_errors(plan: cases.Plan, dump: dict, check_layout: bool = True) -> list:
    errors = []
    if sorted(dump["tensor_names"]) != sorted(plan.expect):
        errors.append(f"tensors {sorted(dump['tensor_names'])} != {sorted(plan.expect)}")
    for k, v in plan.ds_info.items():
        if dump["info"].get(k) != v:
            errors.append(f"ds.info[{k!r}] {dump['info'].get(k)!r} != {v!r}")
    for name, e in plan.expect.items():
        errors += compare_tensor(name, e, dump["tensors"].get(name), check_layout)
    return errors


def _tensor_names():
    with tempfile.TemporaryDirectory() as d:
        return sorted(_plan(d, "lakeformat").expect)


TENSORS = _tensor_names()


# ----------------------------------------------------------------------------- local folder


@pytest.fixture(scope="module")
def lf_written(tmp_path_factory):
    root = tmp_path_factory.mktemp("lf_written")
    (root / "files").mkdir()
    return lakeformat_writes(str(root / "ds"), None, str(root / "files"))


@pytest.fixture(scope="module")
def dl_written(tmp_path_factory):
    root = tmp_path_factory.mktemp("dl_written")
    (root / "files").mkdir()
    return deeplake_writes(str(root / "ds"), None, str(root / "files"))


def test_lakeformat_dataset_opens_in_deeplake3(lf_written):
    plan, theirs, _ = lf_written
    assert theirs["tensor_names"] == sorted(plan.expect)
    assert {k: theirs["info"].get(k) for k in plan.ds_info} == plan.ds_info


@pytest.mark.parametrize("name", TENSORS)
def test_deeplake3_reads_lakeformat_tensor(lf_written, name):
    plan, theirs, _ = lf_written
    errors = compare_tensor(name, plan.expect[name], theirs["tensors"].get(name))
    assert not errors, "deeplake 3.9.52 reads a lakeformat-written tensor differently:\n" + "\n".join(errors)


@pytest.mark.parametrize("name", TENSORS)
def test_lakeformat_reads_own_tensor(lf_written, name):
    plan, _, own = lf_written
    errors = compare_tensor(name, plan.expect[name], own["tensors"].get(name))
    assert not errors, "lakeformat reads its own tensor differently:\n" + "\n".join(errors)


def test_deeplake3_dataset_opens_in_lakeformat(dl_written):
    plan, ours = dl_written
    assert ours["tensor_names"] == sorted(plan.expect)
    assert {k: ours["info"].get(k) for k in plan.ds_info} == plan.ds_info


@pytest.mark.parametrize("name", TENSORS)
def test_lakeformat_reads_deeplake3_tensor(dl_written, name):
    plan, ours = dl_written
    errors = compare_tensor(name, plan.expect[name], ours["tensors"].get(name))
    assert not errors, "lakeformat reads a deeplake-3.9.52-written tensor differently:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def dl_written_lf_continued(tmp_path_factory):
    """deeplake 3.9.52 writes the plan; lakeformat opens it for writing and extends, appends,
    updates and pops (a second plan's writes); deeplake 3.9.52 reads the result."""
    root = tmp_path_factory.mktemp("dl_lf_continued")
    (root / "files").mkdir()
    (root / "files2").mkdir()
    url = str(root / "ds")
    first = _plan(str(root / "files"), "deeplake")
    run_deeplake3(DL_WRITE, inputs={"path": url, "creds": None, "ops": first.ops, "batched": False})
    second = cases.build_plan(np.random.default_rng(cases.seed() + 1), str(root / "files2"), "lakeformat")
    plan = first.continued_by(second)
    ds = lakeformat.load(url)
    ds.populate_creds("local_key", {})
    ops.apply_ops(lakeformat, ds, plan.ops)
    ds.flush()
    theirs = run_deeplake3(DL_READ, inputs={"path": url, "creds": None, "link_creds": {"local_key": {}}, "singles": True})
    return plan, theirs


@pytest.mark.parametrize("name", TENSORS)
def test_deeplake3_reads_tensor_lakeformat_appended_to(dl_written_lf_continued, name):
    plan, theirs = dl_written_lf_continued
    errors = compare_tensor(name, plan.expect[name], theirs["tensors"].get(name))
    assert not errors, "deeplake 3.9.52 reads a deeplake-written tensor that lakeformat then wrote to differently:\n" + "\n".join(errors)


DL_CONTINUE = """
import deeplake, ops
ds = deeplake.load(INPUT["path"])
ds.populate_creds("local_key", {})
ops.apply_ops(deeplake, ds, INPUT["ops"])
ds.flush()
emit({"tensors": sorted(ds.tensors)})
"""


@pytest.fixture(scope="module")
def lf_written_dl_continued(tmp_path_factory):
    """lakeformat writes the plan; deeplake 3.9.52 opens it for writing and extends, appends,
    updates and pops (a second plan's writes); lakeformat reads the result."""
    root = tmp_path_factory.mktemp("lf_dl_continued")
    (root / "files").mkdir()
    (root / "files2").mkdir()
    url = str(root / "ds")
    first = _plan(str(root / "files"), "lakeformat")
    ds = lakeformat.empty(url, overwrite=True)
    ops.apply_ops(lakeformat, ds, first.ops)
    ds.flush()
    del ds
    second = cases.build_plan(np.random.default_rng(cases.seed() + 2), str(root / "files2"), "deeplake")
    plan = first.continued_by(second, deeplake_pops=True)
    run_deeplake3(DL_CONTINUE, inputs={"path": url, "ops": plan.ops})
    ds = lakeformat.load(url, read_only=True)
    ds.populate_creds("local_key", {})
    return plan, ops.dump_dataset(ds)


@pytest.mark.parametrize("name", TENSORS)
def test_lakeformat_reads_tensor_deeplake3_appended_to(lf_written_dl_continued, name):
    plan, ours = lf_written_dl_continued
    errors = compare_tensor(name, plan.expect[name], ours["tensors"].get(name))
    assert not errors, "lakeformat reads a lakeformat-written tensor that deeplake 3.9.52 then wrote to differently:\n" + "\n".join(errors)


# ----------------------------------------------------------------------------- S3 (moto)


def test_s3_lakeformat_writes_deeplake3_reads(s3_url, tmp_path):
    url, storage_options = s3_url
    plan, theirs, own = lakeformat_writes(url, storage_options, str(tmp_path), remote=True)
    errors = _dataset_errors(plan, theirs)
    assert not errors, "deeplake 3.9.52 reads a lakeformat dataset on S3 differently:\n" + "\n".join(errors)
    errors = _dataset_errors(plan, own)
    assert not errors, "lakeformat reads its own dataset on S3 differently:\n" + "\n".join(errors)


def test_s3_deeplake3_writes_lakeformat_reads(s3_url, tmp_path):
    url, storage_options = s3_url
    plan, ours = deeplake_writes(url, storage_options, str(tmp_path), remote=True)
    errors = _dataset_errors(plan, ours)
    assert not errors, "lakeformat reads a deeplake 3.9.52 dataset on S3 differently:\n" + "\n".join(errors)


# ----------------------------------------------------------------------------- zstd, our extension

DL_READ_EACH = """
import deeplake
out = {}
for path in INPUT["paths"]:
    try:
        ds = deeplake.load(path, read_only=True)
        out[path] = {"values": {name: ds[name].numpy(aslist=True) for name in sorted(ds.tensors)}}
    except Exception as e:
        chain, cause = [], e
        while cause is not None:
            chain.append(f"{type(cause).__module__}.{type(cause).__name__}: {cause}")
            cause = cause.__cause__ or cause.__context__
        out[path] = {"error": chain}
emit(out)
"""


def test_deeplake3_refuses_zstd_tensors(tmp_path):
    """zstd chunks (and zstd samples) are our extension of the layout: the tensor meta names
    the compression, so deeplake 3.9.52 raises its own error instead of returning bytes it
    cannot decode; lakeformat reads them back."""
    rng = np.random.default_rng(cases.seed())
    data = [rng.integers(-1000, 1000, (int(rng.integers(0, 9)), 3)).astype("int32") for _ in range(12)]
    paths = {}
    for kind in ("chunk_compression", "sample_compression"):
        path = str(tmp_path / kind)
        ds = lakeformat.empty(path, overwrite=True)
        ds.create_tensor("plain", dtype="int32")
        ds.create_tensor("zstd", dtype="int32", max_chunk_size=200, **{kind: "zstd"})
        ds.extend({"plain": data, "zstd": data})
        ds.flush()
        back = lakeformat.load(path, read_only=True)
        assert all(np.array_equal(a, b) for a, b in zip(back["zstd"].numpy(aslist=True), data))
        assert back["zstd"].meta.d[kind] == "zstd"
        paths[kind] = path
    got = run_deeplake3(DL_READ_EACH, inputs={"paths": list(paths.values())})
    for kind, path in paths.items():
        result = got[path]
        assert "error" in result, f"deeplake 3.9.52 read a zstd ({kind}) tensor instead of refusing it: {result.get('values')}"
        assert any("zstd" in line for line in result["error"]), f"deeplake 3.9.52 refused the zstd ({kind}) tensor, but not because of zstd: {result['error']}"


# ----------------------------------------------------------------------------- image chunk compression


def test_lakeformat_reads_deeplake3_image_chunk_compression(tmp_path):
    """deeplake 3.9.52 also compresses whole chunks of images as one png or jpeg (the samples
    side by side on one zero-padded canvas); lakeformat must read those datasets too."""
    rng = np.random.default_rng(cases.seed())
    plan = cases.Plan()
    for comp in ("png", "jpeg"):
        name = f"img_{comp}_chunks"
        # deeplake sizes image chunks by their compressed size, so it may keep them in one
        # chunk; this test is about decoding its canvases, chunk counts are not compared
        plan.create(name, cases.Expect("image", "uint8", "jpeg" if comp == "jpeg" else "array", min_chunks=1),
                    htype="image", chunk_compression=comp, max_chunk_size=4000)
        plan.extend({name: cases._images(rng, 10, 3, hw=(16, 32))}, per_tensor=True)
    url = str(tmp_path / "ds")
    run_deeplake3(DL_WRITE, inputs={"path": url, "creds": None, "ops": plan.ops, "batched": False})
    errors = []
    try:
        ours = ops.dump_dataset(lakeformat.load(url, read_only=True))
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(f"lakeformat.load failed: {type(e).__name__}: {e}")
    else:
        errors = _dataset_errors(plan, ours)
    assert not errors, "lakeformat reads deeplake 3.9.52 image chunk compression differently:\n" + "\n".join(errors)
