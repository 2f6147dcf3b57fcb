"""A real file-based source into destination-deeplake: airbyte-source-s3 (PyPI, its own venv)
reads a bucket on moto's S3 server with the file-transfer delivery method and
`include_files: true`; its RECORDs carry `file_reference`s to files it staged on this disk;
`destination-deeplake write` lands them as tensors. Every file's bytes (and pixels) and its
metadata are checked against what the test put in the bucket."""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import airbyte_cdk  # noqa: F401 - required: a missing CDK fails the run, never skips it

import lakeformat

REPO = Path(__file__).resolve().parents[2]
BUCKET = "assets-bucket"


@pytest.fixture(scope="session")
def s3_source_exe() -> str:
    """source-s3 in .venvs/source-s3, made once and kept between runs (like source-faker's)."""
    out = subprocess.run(["bash", str(Path(__file__).with_name("setup_source_s3_venv.sh"))], capture_output=True,
                         text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def destination_exe(tmp_path_factory) -> str:
    found = shutil.which("destination-deeplake")
    if found:
        return found
    wrapper = tmp_path_factory.mktemp("bin") / "destination-deeplake"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -m connectors.destination_deeplake "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(wrapper)


def _image(arr: np.ndarray, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def folder_of_files(seed: int) -> dict[str, bytes]:
    """Images (png, jpeg, one png named .jpg, a webp) and documents (text, pdf-like, json,
    an empty file) in nested folders."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return {
        "images/cats/cat1.png": _image(photo, "PNG"),
        "images/cats/cat2.png": _image(rng.integers(0, 256, (10, 12, 4), dtype=np.uint8), "PNG"),
        "images/dogs/dog.jpg": _image(photo, "JPEG", quality=90),
        "images/dogs/gray.jpeg": _image(rng.integers(0, 256, (16, 8), dtype=np.uint8), "JPEG"),
        "images/misnamed.jpg": _image(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8), "PNG"),
        "images/lossless.webp": _image(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), "WEBP", lossless=True),
        "docs/readme.txt": "A folder of files for training. ünïcode ✓\n".encode(),
        "docs/paper.pdf": b"%PDF-1.5\n" + rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes() + b"\n%%EOF\n",
        "docs/labels.json": json.dumps({"cat1.png": "cat", "dog.jpg": "dog"}).encode(),
        "docs/empty.dat": b"",
    }


def source_env(tmp_path: Path, staging: Path) -> dict[str, str]:
    """source-s3 offline: NLTK data present (empty archives: the file-transfer path parses nothing),
    no usage reports, no instance metadata, every other host behind a dead proxy."""
    nltk = tmp_path / "nltk_data" / "tokenizers"
    nltk.mkdir(parents=True, exist_ok=True)
    for name in ("punkt.zip", "punkt_tab.zip", "averaged_perceptron_tagger_eng.zip"):
        with zipfile.ZipFile(nltk / name, "w"):
            pass  # an empty archive: found, so never downloaded
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update({
        "NLTK_DATA": str(tmp_path / "nltk_data"), "AIRBYTE_STAGING_DIRECTORY": str(staging),
        "SCARF_NO_ANALYTICS": "true", "DO_NOT_TRACK": "true", "AWS_EC2_METADATA_DISABLED": "true",
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    return env


def _messages(stdout: bytes, kind: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        if line.startswith(b"{") and f'"type": "{kind}"'.encode() in line or f'"type":"{kind}"'.encode() in line:
            out.append(json.loads(line))
    return out


@pytest.mark.parametrize("non_image_files", ["binary", "link"])
def test_s3_files_land_as_tensors(non_image_files, s3_source_exe, destination_exe, s3_server, tmp_path):
    files = folder_of_files(seed=21)
    bucket = s3_server.make_bucket(f"{BUCKET}-{non_image_files}")
    client = s3_server.boto3_client()
    for key, data in files.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)

    staging = tmp_path / "staging"
    staging.mkdir()
    env = source_env(tmp_path, staging)
    src_cfg = {
        "bucket": bucket, "aws_access_key_id": s3_server.access_key, "aws_secret_access_key": s3_server.secret_key,
        "endpoint": s3_server.endpoint_url, "region_name": "us-east-1",
        "delivery_method": {"delivery_type": "use_file_transfer", "preserve_directory_structure": True},
        "streams": [{"name": "assets", "globs": ["**"], "format": {"filetype": "unstructured"}}],
    }
    (tmp_path / "source.json").write_text(json.dumps(src_cfg))
    disc = subprocess.run([s3_source_exe, "discover", "--config", str(tmp_path / "source.json")], capture_output=True,
                          env=env, timeout=600)
    catalogs = _messages(disc.stdout, "CATALOG")
    assert disc.returncode == 0 and catalogs, disc.stderr.decode()[-3000:] + disc.stdout.decode()[-3000:]
    streams = catalogs[0]["catalog"]["streams"]
    assert [s["name"] for s in streams] == ["assets"] and streams[0].get("is_file_based") is True
    configured = {"streams": [{
        "stream": streams[0], "sync_mode": "full_refresh", "destination_sync_mode": "append",
        "include_files": True, "generation_id": 1, "minimum_generation_id": 0, "sync_id": 1,
        "cursor_field": [], "primary_key": [],
    }]}
    (tmp_path / "catalog.json").write_text(json.dumps(configured))
    read = subprocess.run([s3_source_exe, "read", "--config", str(tmp_path / "source.json"), "--catalog",
                           str(tmp_path / "catalog.json")], capture_output=True, env=env, timeout=600)
    assert read.returncode == 0, read.stderr.decode()[-3000:] + read.stdout.decode()[-3000:]
    records = [m["record"] for m in _messages(read.stdout, "RECORD")]
    assert len(records) == len(files) and all("file_reference" in r for r in records)
    # the source staged every file on this disk, byte for byte
    for r in records:
        ref = r["file_reference"]
        assert Path(ref["staging_file_url"]).read_bytes() == files[ref["source_file_relative_path"]]

    lake = tmp_path / "lake"
    (tmp_path / "dest.json").write_text(json.dumps({"path": str(lake), "non_image_files": non_image_files}))
    dst = subprocess.run([destination_exe, "write", "--config", str(tmp_path / "dest.json"), "--catalog",
                          str(tmp_path / "catalog.json")], input=read.stdout, capture_output=True, timeout=600)
    assert dst.returncode == 0, dst.stderr.decode()[-3000:] + dst.stdout.decode()[-3000:]
    out = [json.loads(line) for line in dst.stdout.splitlines()]
    states = [m for m in out if m["type"] == "STATE"]
    assert states and sum(s["state"]["destinationStats"]["recordCount"] for s in states) == len(files)

    ds = lakeformat.load(str(lake / "assets"), read_only=True)
    assert len(ds) == len(files)
    assert ds.image_png.meta.sample_compression == "png" and ds.image_jpeg.meta.sample_compression == "jpeg"
    by_path = {ds.file_path[i].text(): i for i in range(len(ds))}
    assert set(by_path) == set(files)
    by_record = {r["file_reference"]["source_file_relative_path"]: r for r in records}
    for rel, data in files.items():
        i, rec = by_path[rel], by_record[rel]["data"]
        # metadata: the reference's size and path, and the record's own fields beside them
        assert ds.file_size[i].numpy().tolist() == [len(data)], rel
        assert ds.file_name[i].text() == rec["file_name"] == rel.rsplit("/", 1)[-1]
        assert ds.folder[i].text() == rec["folder"]
        assert ds.source_uri[i].text() == rec["source_uri"] and rel in rec["source_uri"]
        assert ds.bytes[i].numpy().tolist() == [rec["bytes"]] == [len(data)]
        png, jpeg, file_ = ds.image_png[i], ds.image_jpeg[i], ds.file[i].numpy()
        if rel.endswith(".png") or rel == "images/misnamed.jpg":
            assert ds.file_type[i].text() == "image/png"
            assert png.tobytes() == data, rel  # the file's own bytes, not re-encoded
            with Image.open(io.BytesIO(data)) as img:
                assert np.array_equal(png.numpy(), np.asarray(img)), rel
            assert jpeg.numpy().size == 0 and file_.size == 0
        elif rel.endswith((".jpg", ".jpeg")):
            assert ds.file_type[i].text() == "image/jpeg"
            assert jpeg.tobytes() == data, rel
            with Image.open(io.BytesIO(data)) as img:
                want = np.asarray(img)
            assert np.array_equal(jpeg.numpy().reshape(want.shape), want), rel
            assert png.numpy().size == 0 and file_.size == 0
        elif rel.endswith(".webp"):
            assert ds.file_type[i].text() == "image/webp"
            with Image.open(io.BytesIO(data)) as img:
                assert np.array_equal(png.numpy(), np.asarray(img.convert("RGB"))), rel  # lossless pixels
            assert file_.tobytes() == data  # and the original file
        else:
            assert file_.tobytes() == data, rel
            assert png.numpy().size == 0 and jpeg.numpy().size == 0
    if non_image_files == "link":
        assert ds.file.htype == "link[generic]"
    else:
        assert ds.file.htype == "generic" and ds.file.dtype == np.uint8
    log = lakeformat.load(str(lake / "assets"), read_only=True)
    from lakeformat.version_control import api as vc

    assert f"{len(files)} written" in vc.log(log)[0]["message"]
