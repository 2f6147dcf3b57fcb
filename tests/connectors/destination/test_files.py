"""Files of file-based sources: RECORDs with a `file_reference`, hand-built (no source), through
destination-deeplake in-process. The real source (airbyte-source-s3) is in
integration_tests/destination/test_file_transfer.py."""
from __future__ import annotations

import io
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from PIL import Image

import airbyte_cdk  # noqa: F401 - required: a missing CDK fails the run, never skips it

import lakeformat
from connectors.destination_deeplake.config import DestinationConfig
from connectors.destination_deeplake.errors import (
    BadFileReferenceError,
    StagedFileError,
    StagedFileMissingError,
    StagedFileTooLargeError,
    StagedFileUnreadableError,
    failure_from,
)
from connectors.destination_deeplake.files import sniff_format
from connectors.destination_deeplake.protocol import run_write
from lakeformat.errors import LakeFormatError
from tests.connectors.destination.helpers import catalog, complete, record, state, states_of, stream, write

REPO = Path(__file__).resolve().parents[3]
PROPS = {"file_name": {"type": "string"}, "folder": {"type": "string"}, "bytes": {"type": "integer"}}


def _image_bytes(arr: np.ndarray, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _palette_png(rng: np.random.Generator) -> bytes:
    img = Image.fromarray(rng.integers(0, 4, (6, 5), dtype=np.uint8), mode="L").convert("P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _png16(rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 65535, (4, 3), dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def make_files(rng: np.random.Generator) -> dict[str, bytes]:
    """A folder of mixed files, some named against their content (the content decides)."""
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    return {
        "img/rgb.png": _image_bytes(rgb, "PNG"),
        "img/rgba.png": _image_bytes(rng.integers(0, 256, (5, 4, 4), dtype=np.uint8), "PNG"),
        "img/gray.png": _image_bytes(rng.integers(0, 256, (7, 3), dtype=np.uint8), "PNG"),
        "img/photo.jpg": _image_bytes(rgb, "JPEG", quality=87),
        "img/gray.jpeg": _image_bytes(rng.integers(0, 256, (8, 8), dtype=np.uint8), "JPEG"),
        "img/really_png.jpg": _image_bytes(rng.integers(0, 256, (3, 2, 3), dtype=np.uint8), "PNG"),
        "img/lossless.webp": _image_bytes(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "WEBP", lossless=True),
        "img/scan.tiff": _image_bytes(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), "TIFF"),
        "img/palette.png": _palette_png(rng),
        "img/deep.png": _png16(rng),
        "docs/readme.txt": "héllo, files\n".encode(),
        "docs/paper.pdf": b"%PDF-1.4\n" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() + b"\n%%EOF\n",
        "docs/meta.json": json.dumps({"a": [1, 2, 3], "b": None}).encode(),
        "docs/not_an_image.png": b"plain text in a .png name",
        "docs/empty.bin": b"",
        "docs/broken.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature, then garbage
    }


EXPECTED_TYPE = {
    "img/rgb.png": "image/png", "img/rgba.png": "image/png", "img/gray.png": "image/png",
    "img/photo.jpg": "image/jpeg", "img/gray.jpeg": "image/jpeg", "img/really_png.jpg": "image/png",
    "img/lossless.webp": "image/webp", "img/scan.tiff": "image/tiff", "img/palette.png": "image/png",
    "img/deep.png": "image/png", "docs/paper.pdf": "application/pdf",
}
AS_IS_PNG = {"img/rgb.png", "img/rgba.png", "img/gray.png", "img/really_png.jpg"}
AS_IS_JPEG = {"img/photo.jpg", "img/gray.jpeg"}
CONVERTED = {"img/lossless.webp", "img/scan.tiff", "img/palette.png", "img/deep.png"}


def stage(root: Path, files: dict[str, bytes]) -> dict[str, Path]:
    out = {}
    for rel, data in files.items():
        p = root / "staging" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out[rel] = p
    return out


def file_record(stream_name: str, rel: str, path: Path, size: int | None = None, **data: Any) -> dict[str, Any]:
    m = record(stream_name, {"file_name": rel.rsplit("/", 1)[-1], "folder": rel.rsplit("/", 1)[0],
                             "bytes": path.stat().st_size if path.exists() else 0, **data})
    m["record"]["file_reference"] = {"staging_file_url": str(path), "source_file_relative_path": rel,
                                     "file_size_bytes": path.stat().st_size if size is None else size}
    return m


def file_stream(name: str = "assets", **kw: Any) -> dict[str, Any]:
    cs = stream(name, PROPS, **kw)
    cs["stream"]["is_file_based"] = True
    cs["include_files"] = True
    return cs


def _pixels_of(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def _load(tmp_path: Path, name: str = "assets") -> lakeformat.Dataset:
    return lakeformat.load(str(tmp_path / "lake" / name), read_only=True)


# ---------------------------------------------------------------------------------- content
def test_sniff_by_magic_bytes() -> None:
    assert sniff_format(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_format(b"RIFF\x10\x00\x00\x00WEBPVP8L") == "webp"
    assert sniff_format(b"II*\x00\x08\x00") == "tiff" and sniff_format(b"MM\x00*\x00") == "tiff"
    assert sniff_format(b"%PDF-1.7") == "pdf"
    assert sniff_format(b"GIF89a") is None and sniff_format(b"") is None


def test_mixed_folder_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    files = make_files(rng)
    paths = stage(tmp_path, files)
    msgs = [file_record("assets", rel, p) for rel, p in paths.items()]
    msgs.insert(3, record("assets", {"file_name": "no file here", "folder": "", "bytes": 0}))  # a row without a file
    msgs.append(state("assets", {"cursor": "end"}))
    out = write({"path": str(tmp_path / "lake"), "flush_every_records": 5}, catalog(file_stream()), msgs)
    assert sum(s["state"]["destinationStats"]["recordCount"] for s in states_of(out)) == len(files) + 1

    ds = _load(tmp_path)
    assert len(ds) == len(files) + 1
    assert ds.image_png.meta.sample_compression == "png" and ds.image_jpeg.meta.sample_compression == "jpeg"
    assert ds.image_png.htype == "image" and ds.file.htype == "generic" and ds.file.dtype == np.uint8
    rows = {ds.file_path[i].text(): i for i in range(len(ds)) if ds.file_path[i].text() is not None}
    assert set(rows) == set(files)
    # the row without a file: nulls and empty samples everywhere
    blank = 3
    assert ds.file_name[blank].text() == "no file here" and ds.file_path[blank].text() is None
    assert ds.file_type[blank].text() is None and ds.file_size[blank].isnull()  # a dense column's null
    assert ds.file[blank].numpy().size == 0 and ds.image_png[blank].numpy().size == 0
    for rel, data in files.items():
        i = rows[rel]
        assert ds.file_size[i].numpy().tolist() == [len(data)], rel
        assert ds.file_name[i].text() == rel.rsplit("/", 1)[-1] and ds.folder[i].text() == rel.rsplit("/", 1)[0]
        assert ds.bytes[i].numpy().tolist() == [len(data)]
        assert ds.file_type[i].text() == EXPECTED_TYPE.get(rel, "application/octet-stream"), rel
        png, jpeg, raw = ds.image_png[i], ds.image_jpeg[i], ds.file[i].numpy()
        if rel in AS_IS_PNG:
            assert png.tobytes() == data, rel  # stored as they are, never re-encoded
            want = _pixels_of(data)
            assert np.array_equal(png.numpy().reshape(want.shape), want), rel
            assert jpeg.numpy().size == 0 and raw.size == 0
        elif rel in AS_IS_JPEG:
            assert jpeg.tobytes() == data, rel
            want = _pixels_of(data)
            assert np.array_equal(jpeg.numpy().reshape(want.shape), want), rel
            assert png.numpy().size == 0 and raw.size == 0
        elif rel in CONVERTED:
            assert raw.tobytes() == data, rel  # the original file, byte for byte
            got = png.numpy()
            assert got.dtype == np.uint8 and got.size > 0 and jpeg.numpy().size == 0
            with Image.open(io.BytesIO(data)) as img:
                assert got.shape[:2] == (img.height, img.width)
                if rel in ("img/lossless.webp", "img/scan.tiff"):
                    assert np.array_equal(got, np.asarray(img.convert("RGB"))), rel  # lossless pixels
                if rel == "img/palette.png":
                    assert np.array_equal(got, np.asarray(img.convert("RGB"))), rel
        else:
            assert raw.tobytes() == data, rel
            assert png.numpy().size == 0 and jpeg.numpy().size == 0


def test_files_open_in_deeplake_3(tmp_path: Path) -> None:
    from tests.interop.deeplake3 import run_deeplake3

    rng = np.random.default_rng(3)
    files = {k: v for k, v in make_files(rng).items() if k in ("img/rgb.png", "img/photo.jpg", "img/scan.tiff", "docs/readme.txt")}
    paths = stage(tmp_path, files)
    write({"path": str(tmp_path / "lake")}, catalog(file_stream()), [file_record("assets", r, p) for r, p in paths.items()])
    got = run_deeplake3("""
import deeplake, numpy as np
ds = deeplake.load(INPUT, read_only=True)
emit({"paths": [ds.file_path[i].data()["value"] for i in range(len(ds))],
      "png": [ds.image_png[i].numpy().tolist() for i in range(len(ds))],
      "jpeg_bytes": [ds.image_jpeg[i].tobytes().hex() for i in range(len(ds))],
      "file": [ds.file[i].numpy().tobytes().hex() for i in range(len(ds))],
      "size": [ds.file_size[i].numpy().tolist() for i in range(len(ds))]})
""", inputs=str(tmp_path / "lake" / "assets"))
    assert got["paths"] == list(files)
    i_png, i_jpg, i_tif, i_txt = range(4)
    assert np.array_equal(np.asarray(got["png"][i_png], np.uint8), _pixels_of(files["img/rgb.png"]))
    assert bytes.fromhex(got["jpeg_bytes"][i_jpg]) == files["img/photo.jpg"]
    assert bytes.fromhex(got["file"][i_tif]) == files["img/scan.tiff"]
    assert bytes.fromhex(got["file"][i_txt]) == files["docs/readme.txt"]
    assert got["size"] == [[len(v)] for v in files.values()]


def test_non_image_files_as_links(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    files = {k: v for k, v in make_files(rng).items() if k in ("img/rgb.png", "docs/readme.txt", "docs/paper.pdf", "img/scan.tiff")}
    paths = stage(tmp_path, files)
    write({"path": str(tmp_path / "lake"), "non_image_files": "link"}, catalog(file_stream()),
          [file_record("assets", r, p) for r, p in paths.items()])
    ds = _load(tmp_path)
    assert ds.file.htype == "link[generic]" and ds.file.info["file_storage"] == "link"
    for i, (rel, data) in enumerate(files.items()):
        if rel == "img/rgb.png":
            assert ds.image_png[i].tobytes() == data and ds.file[i].numpy().size == 0  # images stay samples
        else:
            assert ds.file[i].numpy().tobytes() == data, rel  # read through the link
            assert ds.file[i].numpy(aslist=True) is not None
    # a later sync with the other setting is refused, not mixed into the same tensor
    with pytest.raises(Exception) as e:
        write({"path": str(tmp_path / "lake")}, catalog(file_stream()), [file_record("assets", "docs/readme.txt", paths["docs/readme.txt"])])
    assert "non_image_files" in str(e.value) and "assets" in str(e.value)


def test_fast_path_never_takes_a_file_record(tmp_path: Path) -> None:
    """Plain records (the native scanner's) and file records interleaved in one input block: a
    file record always takes the Python path, and the rows keep their order."""
    rng = np.random.default_rng(5)
    files = make_files(rng)
    paths = stage(tmp_path, files)
    plain = stream("plain", {"n": {"type": "integer"}})
    msgs: list[dict[str, Any]] = []
    for k, (rel, p) in enumerate(paths.items()):
        msgs += [record("assets", {"file_name": f"plain {k}", "folder": "", "bytes": k}) for _ in range(3)]
        msgs += [record("plain", {"n": k}), file_record("assets", rel, p)]
    msgs.append(state("assets", 1))
    data = b"".join(orjson.dumps(m) + b"\n" for m in msgs)
    out: list[dict[str, Any]] = []
    cfg = DestinationConfig.from_mapping({"path": str(tmp_path / "lake")})
    for _ in run_write(cfg, catalog(file_stream(), plain), io.BufferedReader(io.BytesIO(data)), out.append):
        pass
    ds = _load(tmp_path)
    assert len(ds) == 4 * len(files)
    for k, (rel, data_) in enumerate(files.items()):
        i = 4 * k + 3
        assert ds.file_path[i].text() == rel and ds.file_size[i].numpy().tolist() == [len(data_)]
        assert ds.file_path[i - 1].text() is None and ds.file_name[i - 1].text() == f"plain {k}"
        if rel in AS_IS_PNG:
            assert ds.image_png[i].tobytes() == data_
    assert [v.tolist() for v in _load(tmp_path, "plain").n.numpy()] == [[k] for k in range(len(files))]


# ---------------------------------------------------------------------------------- errors
def _sync_until_error(tmp_path: Path, bad: dict[str, Any], **cfg: Any) -> tuple[BaseException, list[dict[str, Any]]]:
    rng = np.random.default_rng(1)
    good = {k: v for k, v in make_files(rng).items() if k in ("img/rgb.png", "docs/readme.txt", "img/photo.jpg")}
    paths = stage(tmp_path, good)
    items = list(paths.items())
    msgs = [file_record("assets", *items[0]), state("assets", 1), file_record("assets", *items[1]),
            file_record("assets", *items[2]), bad, file_record("assets", *items[0])]
    out: list[dict[str, Any]] = []
    config = DestinationConfig.from_mapping({"path": str(tmp_path / "lake"), **cfg})
    with pytest.raises(StagedFileError) as e:
        for _ in run_write(config, catalog(file_stream()), (orjson.dumps(m) for m in msgs), out.append):
            pass
    return e.value, out


def _written_before(tmp_path: Path, out: list[dict[str, Any]]) -> None:
    """The three records before the bad one are in the dataset, the state after the first is
    acknowledged, and nothing after the bad record was written."""
    assert [s["state"]["stream"]["stream_state"] for s in states_of(out)] == [1]
    ds = lakeformat.load(str(tmp_path / "lake" / "assets"), read_only=True)
    assert len(ds) == 3
    assert [ds.file_path[i].text() for i in range(3)] == ["img/rgb.png", "img/photo.jpg", "docs/readme.txt"]


def test_missing_staged_file(tmp_path: Path) -> None:
    gone = tmp_path / "staging" / "gone.png"
    bad = file_record("assets", "gone.png", gone, size=10)
    err, out = _sync_until_error(tmp_path, bad)
    assert isinstance(err, StagedFileMissingError) and isinstance(err, FileNotFoundError) and isinstance(err, LakeFormatError)
    assert err.stream == "assets" and err.line == 5 and err.path == str(gone)
    assert "'assets'" in str(err) and "line 5" in str(err) and str(gone) in str(err)
    assert failure_from(err, "write").failure_type.value == "transient_error"
    _written_before(tmp_path, out)


def test_file_over_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "staging" / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    big.write_bytes(b"x" * 200_000)
    err, out = _sync_until_error(tmp_path, file_record("assets", "big.bin", big), max_file_mb=0.1)
    assert isinstance(err, StagedFileTooLargeError) and isinstance(err, ValueError)
    assert "200000 bytes" in str(err) and "max_file_mb" in str(err) and str(big) in str(err) and "line 5" in str(err)
    assert failure_from(err, "write").failure_type.value == "config_error"
    _written_before(tmp_path, out)


def test_size_other_than_the_record_says(tmp_path: Path) -> None:
    part = tmp_path / "staging" / "partial.txt"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"only half")
    err, out = _sync_until_error(tmp_path, file_record("assets", "partial.txt", part, size=18))
    assert isinstance(err, StagedFileUnreadableError) and isinstance(err, OSError)
    assert "9 bytes but the record says 18" in str(err)
    _written_before(tmp_path, out)


def test_unreadable_staged_path(tmp_path: Path) -> None:
    folder = tmp_path / "staging" / "a_folder"
    folder.mkdir(parents=True)
    bad = record("assets", {"file_name": "a_folder", "folder": "", "bytes": 0})
    bad["record"]["file_reference"] = {"staging_file_url": str(folder), "source_file_relative_path": "a_folder"}
    err, out = _sync_until_error(tmp_path, bad)
    assert isinstance(err, StagedFileUnreadableError) and str(folder) in str(err)
    _written_before(tmp_path, out)


def test_malformed_file_reference(tmp_path: Path) -> None:
    bad = record("assets", {"file_name": "x", "folder": "", "bytes": 0})
    bad["record"]["file_reference"] = {"source_file_relative_path": "x"}
    err, out = _sync_until_error(tmp_path, bad)
    assert isinstance(err, BadFileReferenceError) and "staging_file_url" in str(err) and "line 5" in str(err)
    _written_before(tmp_path, out)


def test_cli_reports_a_missing_file_as_a_trace(tmp_path: Path) -> None:
    """The console script: exit 1, a TRACE naming stream, line and path; the state of the
    records before it acknowledged."""
    import subprocess
    import sys

    paths = stage(tmp_path, {"a.txt": b"a"})
    gone = tmp_path / "staging" / "gone.txt"
    msgs = [file_record("assets", "a.txt", paths["a.txt"]), state("assets", 1), file_record("assets", "gone.txt", gone, size=1)]
    (tmp_path / "c.json").write_text(json.dumps({"path": str(tmp_path / "lake")}))
    (tmp_path / "k.json").write_text(json.dumps(catalog(file_stream())))
    proc = subprocess.run([sys.executable, "-m", "connectors.destination_deeplake", "write", "--config", str(tmp_path / "c.json"),
                           "--catalog", str(tmp_path / "k.json")], input=b"".join(orjson.dumps(m) + b"\n" for m in msgs),
                          capture_output=True, cwd=str(REPO), timeout=300)
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [m["type"] for m in out] == ["STATE", "TRACE"]
    err = out[-1]["trace"]["error"]
    assert err["failure_type"] == "transient_error"
    assert "'assets'" in err["message"] and "line 3" in err["message"] and str(gone) in err["message"]


# ---------------------------------------------------------------------------------- declaration
def test_spec_and_metadata_declare_file_transfer() -> None:
    spec = json.loads((REPO / "connectors" / "destination_deeplake" / "spec.json").read_text())
    assert spec["supportsFileTransfer"] is True
    props = spec["connectionSpecification"]["properties"]
    assert props["non_image_files"]["enum"] == ["binary", "link"] and props["non_image_files"]["default"] == "binary"
    assert props["max_file_mb"]["default"] == 1024
    import yaml

    meta = yaml.safe_load((REPO / "metadata.yaml").read_text())
    assert meta["data"]["supportsFileTransfer"] is True
    import subprocess
    import sys

    from connectors.destination_deeplake.destination import DestinationDeeplake

    # the SPEC message the platform reads carries the declaration ...
    proc = subprocess.run([sys.executable, "-m", "connectors.destination_deeplake", "spec"], capture_output=True,
                          cwd=str(REPO), timeout=300, check=True)
    msg = json.loads(proc.stdout.splitlines()[-1])
    assert msg["type"] == "SPEC" and msg["spec"]["supportsFileTransfer"] is True and msg["spec"]["supportsRefreshes"] is True
    # ... and the CDK's spec() (a dataclass without those fields) still builds
    assert DestinationDeeplake().spec(None).connectionSpecification["properties"]["non_image_files"]["default"] == "binary"  # type: ignore[arg-type]


def test_config_checks_file_options() -> None:
    from airbyte_cdk.utils.traced_exception import AirbyteTracedException

    assert DestinationConfig.from_mapping({"path": "/x"}).non_image_files == "binary"
    assert DestinationConfig.from_mapping({"path": "/x", "max_file_mb": 2}).max_file_bytes == 2 * 1024 * 1024
    for bad in ({"non_image_files": "inline"}, {"max_file_mb": 0}, {"max_file_mb": "big"}):
        with pytest.raises(AirbyteTracedException):
            DestinationConfig.from_mapping({"path": "/x", **bad})


def test_checksum_damage_in_a_png_lands_it_as_a_plain_file(tmp_path: Path) -> None:
    """A PNG whose chunk CRC is wrong would fail at read time in an image tensor: it lands in
    `file`, byte for byte, typed application/octet-stream."""
    good = _image_bytes(np.zeros((4, 4, 3), np.uint8), "PNG")
    at = good.index(b"IDAT") + 4
    damaged = good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1:]
    assert zlib.crc32(damaged) != zlib.crc32(good)
    paths = stage(tmp_path, {"bad.png": damaged})
    write({"path": str(tmp_path / "lake")}, catalog(file_stream()), [file_record("assets", "bad.png", paths["bad.png"])])
    ds = _load(tmp_path)
    assert ds.file[0].numpy().tobytes() == damaged and ds.file_type[0].text() == "application/octet-stream"
    assert "image_png" not in ds.tensors or ds.image_png[0].numpy().size == 0


def test_file_bytes_count_towards_the_flush_bound(tmp_path: Path) -> None:
    """A record line is small, its file is not: the file's bytes fill the buffer, so a batch
    of large files is written before more are read."""
    from connectors.destination_deeplake.writer import SyncWriter

    paths = stage(tmp_path, {"a.bin": b"a" * 30_000, "b.bin": b"b" * 5_000})
    out: list[dict[str, Any]] = []
    cfg = DestinationConfig.from_mapping({"path": str(tmp_path / "lake"), "flush_every_mb": 0.02})  # ~20 KiB
    w = SyncWriter(cfg, catalog(file_stream()), out.append)
    w.record(file_record("assets", "b.bin", paths["b.bin"])["record"], 200, 1)
    assert w.buffered_records == 1 and w.buffered_bytes >= 5_000
    w.record(file_record("assets", "a.bin", paths["a.bin"])["record"], 200, 2)
    assert w.buffered_records == 0  # flushed: 35,000 bytes of files are over the bound
    w.finish()
    ds = _load(tmp_path)
    assert [ds.file[i].numpy().tobytes() for i in range(2)] == [b"b" * 5_000, b"a" * 30_000]


def test_overwrite_and_append_syncs_of_a_file_stream(tmp_path: Path) -> None:
    """A second sync finds the file tensors by their info (append), and an overwrite sync
    rebuilds them with only its own files."""
    from connectors.destination_deeplake import files as F

    rng = np.random.default_rng(9)
    allf = make_files(rng)
    first = {k: allf[k] for k in ("img/rgb.png", "docs/readme.txt")}
    second = {k: allf[k] for k in ("img/photo.jpg", "docs/paper.pdf")}
    p1, p2 = stage(tmp_path / "one", first), stage(tmp_path / "two", second)
    cfg = {"path": str(tmp_path / "lake")}

    def sync(paths: dict[str, Path], mode: str, gen: int) -> None:
        cs = file_stream(mode=mode, generation_id=gen, minimum_generation_id=gen if mode == "overwrite" else 0, sync_id=gen)
        msgs = [file_record("assets", r, p) for r, p in paths.items()] + [state("assets", gen), complete("assets")]
        write(cfg, catalog(cs), msgs)

    sync(p1, "append", 1)
    sync(p2, "append", 2)
    ds = _load(tmp_path)
    assert [ds.file_path[i].text() for i in range(4)] == [*first, *second]
    roles = {dict(ds[t].info).get(F.INFO_KEY) for t in ds.tensors}
    assert {"path", "size", "type", "file", "image_png", "image_jpeg"} <= roles
    assert ds.image_png[0].tobytes() == first["img/rgb.png"] and ds.image_jpeg[2].tobytes() == second["img/photo.jpg"]
    assert ds.file[1].numpy().tobytes() == first["docs/readme.txt"] and ds.file[3].numpy().tobytes() == second["docs/paper.pdf"]
    sync(p2, "overwrite", 3)
    ds = _load(tmp_path)
    assert [ds.file_path[i].text() for i in range(len(ds))] == list(second)
    assert ds.image_jpeg[0].tobytes() == second["img/photo.jpg"] and ds.file[1].numpy().tobytes() == second["docs/paper.pdf"]
