"""Fuzz targets: one function per parser, `target(data: bytes) -> None`, and its seeds.

A target feeds arbitrary bytes to an entry point and lets through only the errors that entry
point documents for bad input (`EXPECTED`); anything else (a builtin IndexError, ValueError,
OverflowError, struct.error, KeyError, RecursionError, a crash under ASAN) is a finding. The
same targets run under atheris (tests/fuzz/run_atheris.py, coverage-guided, with the C
extensions built with ASAN/UBSAN) and under hypothesis byte mutations (test_parsers.py).

Seeds are valid inputs made by the code itself, so mutations start from real structures.
"""
from __future__ import annotations

import json
from typing import Callable, Dict, List, Tuple

import numpy as np

# The errors a bad input may raise, per target. CorruptDataError is also a ValueError, so the
# checks below test for the exact typed classes, never for the builtin.
from lakeformat.errors import CorruptDataError, UnsupportedFormatVersionError


def _split(data: bytes, n: int) -> Tuple[bytes, bytes]:
    return data[:n].ljust(n, b"\0"), data[n:]


# ----------------------------------------------------------------------------- lz4 block
def target_lz4(data: bytes) -> None:
    """`_native.lz4_decode`: ValueError on corrupt input, and the same bytes as python-lz4
    for every block both decode."""
    import lz4.block

    from lakeformat import _native

    head, src = _split(data, 3)
    size = int.from_bytes(head[:2], "little")
    partial = bool(head[2] & 1)
    out = np.full(size, 0xAB, np.uint8)
    try:
        written = _native.lz4_decode(src, out, partial=partial)
    except ValueError as e:
        if type(e) is not ValueError:
            raise
        written = None
    if written is not None:
        assert 0 <= written <= size
        if not partial:
            assert written == size
    try:
        want = lz4.block.decompress(src, uncompressed_size=size)
    except lz4.block.LZ4BlockError:
        return
    # ours may refuse what python-lz4 lets through (a zero match offset, which the block
    # format calls invalid), but what both decode must be the same bytes
    if len(want) == size and not partial and written is not None:
        assert out.tobytes() == want, "lz4 decode differs from python-lz4"


def seeds_lz4() -> List[bytes]:
    import lz4.block

    rng = np.random.default_rng(7)
    payloads = [b"", b"a", b"abc" * 50, bytes(300), rng.integers(0, 4, 2000, dtype=np.uint8).tobytes(),
                rng.integers(0, 256, 500, dtype=np.uint8).tobytes(), bytes(range(256)) * 8]
    out = []
    for p in payloads:
        for mode in ("default", "high_compression"):
            block = lz4.block.compress(p, store_size=False, mode=mode)
            out.append(len(p).to_bytes(2, "little") + b"\0" + block)
            out.append(max(len(p) // 2, 1).to_bytes(2, "little") + b"\1" + block)
    return out


# ----------------------------------------------------------------------------- png unfilter
def _png_reference(src: bytes, rows: int, row_bytes: int, bpp: int) -> bytes:
    out = bytearray(rows * row_bytes)
    prev = bytearray(row_bytes)
    for r in range(rows):
        ft = src[r * (row_bytes + 1)]
        line = src[r * (row_bytes + 1) + 1 : (r + 1) * (row_bytes + 1)]
        cur = bytearray(row_bytes)
        for i in range(row_bytes):
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 0:
                p = 0
            elif ft == 1:
                p = a
            elif ft == 2:
                p = b
            elif ft == 3:
                p = (a + b) >> 1
            else:
                q = a + b - c
                pa, pb, pc = abs(q - a), abs(q - b), abs(q - c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[i] = (line[i] + p) & 0xFF
        out[r * row_bytes : (r + 1) * row_bytes] = cur
        prev = cur
    return bytes(out)


def target_png(data: bytes) -> None:
    """`_native.png_unfilter`: ValueError on bad geometry or filter types; otherwise the
    pixels of a plain Python reference of PNG section 9."""
    from lakeformat import _native

    head, body = _split(data, 4)
    rows, row_bytes, bpp, mode = head[0] % 24, head[1] % 40, head[2] % 10, head[3]
    exact = mode & 1
    src = body[: rows * (row_bytes + 1)].ljust(rows * (row_bytes + 1), b"\0") if exact else body
    # filter types mostly valid, so the arithmetic paths are what gets explored
    if exact and mode & 2:
        b = bytearray(src)
        for r in range(rows):
            b[r * (row_bytes + 1)] %= 5
        src = bytes(b)
    out = np.zeros(rows * row_bytes if not mode & 4 else len(body) % 97, np.uint8)
    try:
        _native.png_unfilter(src, rows, row_bytes, bpp, out)
    except ValueError as e:
        if type(e) is not ValueError:
            raise
        return
    assert out.tobytes() == _png_reference(src, rows, row_bytes, bpp), "png unfilter differs from the reference"


def seeds_png() -> List[bytes]:
    rng = np.random.default_rng(11)
    out = []
    for rows, rb, bpp in ((1, 3, 3), (4, 12, 3), (5, 8, 4), (3, 1, 1), (7, 16, 2)):
        body = bytearray(rng.integers(0, 256, rows * (rb + 1), dtype=np.uint8).tobytes())
        for r in range(rows):
            body[r * (rb + 1)] = r % 5
        out.append(bytes([rows, rb, bpp, 3]) + bytes(body))
    return out


# ----------------------------------------------------------------------------- record scanner
KIND_NAMES = ("INT", "FLOAT", "BOOL", "TEXT", "JSON", "TIMESTAMP_TZ", "TIMESTAMP_NTZ", "DATE", "TIME", "NULL_ONLY")


def target_records(data: bytes) -> None:
    """The destination's native `Scanner` and `parse_time`: any bytes scan without a crash;
    every count it returns is consistent with the block."""
    from connectors.destination_deeplake import _records

    head, block = _split(data, 2)
    kinds = [getattr(_records, n) for n in KIND_NAMES]
    sc = _records.Scanner()
    ns = b"ns" if head[0] & 1 else None
    i = sc.add_stream(b"s", ns)
    # the field names appear in the seeds; the kinds rotate so each name meets each parser
    rot = head[1] % len(kinds)
    names = [b"i", b"f", b"b", b"s", b"o", b"tz", b"ntz", b"d", b"t", b"n"]
    sc.set_fields(i, [(name, kinds[(k + rot) % len(kinds)]) for k, name in enumerate(names)])
    sc.enable(i, True)
    pos, total = 0, 0
    for _ in range(64):
        new_pos, n, nbytes, reason = sc.scan(block, pos, 1 + (head[0] >> 4), 1 << 20)
        assert pos <= new_pos <= len(block) and nbytes == new_pos - pos
        total += n
        if reason == _records.REASON_LINE:
            nl = block.find(b"\n", new_pos)
            new_pos = len(block) if nl < 0 else nl + 1  # Python's path takes the line
        pos = new_pos
        if sc.rows(i) >= 4 or reason != _records.REASON_LIMIT:
            rows, _, emitted, cols = sc.take(i)
            assert len(emitted) == 8 * rows and len(cols) == len(names)
            for _vals, nulls, ends, body in cols:
                assert len(nulls) == rows
                if ends is not None:
                    e = np.frombuffer(ends, np.int64)
                    assert len(e) == rows and (rows == 0 or (np.all(np.diff(e) >= 0) and e[-1] == len(body)))
        if pos >= len(block):
            break
    for kind in (_records.TIMESTAMP_TZ, _records.TIMESTAMP_NTZ, _records.DATE, _records.TIME):
        v = _records.parse_time(kind, block[:64])
        assert v is None or isinstance(v, int)


def seeds_records() -> List[bytes]:
    rec = {"i": 5, "f": -1.5e-7, "b": True, "s": "a\"b\\u00e9\ud83d\ude00", "o": {"k": [1, None, {"x": "y"}]},
           "tz": "2021-07-17T04:29:16.123456+02:00", "ntz": "2021-07-17T04:29:16", "d": "2021-07-17",
           "t": "04:29:16.5", "n": None}
    line = json.dumps({"type": "RECORD", "record": {"stream": "s", "namespace": "ns", "data": rec, "emitted_at": 1}})
    line2 = json.dumps({"type": "RECORD", "record": {"stream": "s", "data": {"i": -(2**63), "f": 1e308, "s": None}, "emitted_at": 2}})
    state = json.dumps({"type": "STATE", "state": {"type": "STREAM"}})
    return [bytes([1, r]) + "\n".join([line, line2, state, line]).encode() for r in range(0, 10, 3)] + [
        b"\0\0" + line2.encode() + b"\n" + line2.encode()]


# ----------------------------------------------------------------------------- chunks
COMPRESSIONS = (None, "lz4", "zstd", "png", None, "lz4", "jpeg", None)


def target_chunk(data: bytes) -> None:
    """`Chunk.parse` and every read of what it returns: CorruptDataError only."""
    from lakeformat.core.chunk import Chunk

    head, raw = _split(data, 1)
    compression = COMPRESSIONS[head[0] % len(COMPRESSIONS)]
    try:
        Chunk.header_nbytes_from(raw)
        chunk = Chunk.parse(raw, compression, key="fuzz/chunks/c")
        n = chunk.num_samples
        local = np.arange(min(n, 512), dtype=np.int64)
        if head[0] & 8 and compression in ("lz4", "zstd"):
            chunk.decompress_into(lambda nbytes: np.empty(nbytes, np.uint8) if nbytes < 1 << 24 else _too_big(nbytes))
        data_len = len(chunk.data)
        start, end = chunk.byte_ranges(local)
        chunk.shapes(local)
        assert np.all(start <= end) and (not len(end) or int(end.max()) <= data_len), "byte range outside the chunk"
        assert chunk.is_tile in (True, False) and chunk.ndim >= 0
    except CorruptDataError as e:
        if type(e) is not CorruptDataError:
            raise


def _too_big(nbytes: int) -> np.ndarray:
    raise CorruptDataError(f"fuzz: refusing a {nbytes}-byte buffer")


def seeds_chunk() -> List[bytes]:
    from lakeformat.core.chunk import serialize_chunk

    rng = np.random.default_rng(3)
    out = []
    for ci, comp in enumerate(COMPRESSIONS[:4]):
        for shapes in ([(2, 3)] * 3 + [(1, 1)], [(4,)] * 5, [()] * 3):
            arrs = [rng.integers(0, 255, s, dtype=np.uint8) for s in shapes]
            if comp == "png" and (not shapes[0] or len(shapes[0]) != 2):
                continue
            sizes = np.array([a.nbytes for a in arrs], np.int64)
            shp = np.array([a.shape for a in arrs], np.int64).reshape(len(arrs), -1)
            raw = serialize_chunk([a.tobytes() for a in arrs], sizes, shp, comp)
            out.append(bytes([ci]) + bytes(raw))
    tile = serialize_chunk([bytes(24)], np.array([24]), np.array([[4, 6]]), None, tile=True)
    out.append(b"\0" + bytes(tile))
    return out


# ----------------------------------------------------------------------------- encoders
def target_encoders(data: bytes) -> None:
    """The encoders' `from_bytes`: CorruptDataError only; what parses writes back the same."""
    from lakeformat.core import encoders as E

    head, body = _split(data, 1)
    cls = (E.ChunkIdEncoder, E.TileEncoder, E.RangeEncoder, E.CredsEncoder)[head[0] % 4]
    try:
        enc = cls.from_bytes(body, key="fuzz/encoder")
    except CorruptDataError as e:
        if type(e) is not CorruptDataError:
            raise
        return
    again = cls.from_bytes(enc.to_bytes(), key="fuzz/encoder")
    assert again.to_bytes() == enc.to_bytes()
    if hasattr(enc, "num_samples"):
        assert enc.num_samples >= 0


def seeds_encoders() -> List[bytes]:
    from lakeformat.core import encoders as E

    cid = E.ChunkIdEncoder()
    cid.append_chunk(12345, 9)
    cid.append_chunk(678, 20)
    tiles = E.TileEncoder({3: ((100, 80, 3), (2, 2, 1)), 7: ((10, 10, 3), (1, 2, 1))})
    rng = E.RangeEncoder()
    rng.extend(np.array([3, 0, 5], np.int64))
    creds = E.CredsEncoder()
    creds.set_values(np.array([0, 0, 1, 2, 2], np.int64))
    return [bytes([k]) + e.to_bytes() for k, e in enumerate((cid, tiles, rng, creds))] + [b"\0", b"\1"]


# ----------------------------------------------------------------------------- metas
def target_meta(data: bytes) -> None:
    """Dataset and tensor metas: CorruptDataError or UnsupportedFormatVersionError; what
    parses answers its accessors."""
    from lakeformat.core.meta import DatasetMeta, TensorMeta

    head, body = _split(data, 1)
    try:
        if head[0] & 1:
            m = DatasetMeta.from_bytes(body, key="dataset_meta.json")
            m.tensors, m.tensor_names, m.hidden_tensors, m.groups  # noqa: B018
            DatasetMeta.from_bytes(m.to_bytes())
        else:
            t = TensorMeta.from_bytes(body, key="x/tensor_meta.json")
            t.length, t.ndim, t.base_htype, t.dtype if "dtype" in t.d else None  # noqa: B018
            TensorMeta.from_bytes(t.to_bytes()).copy()
    except (CorruptDataError, UnsupportedFormatVersionError) as e:
        if type(e) not in (CorruptDataError, UnsupportedFormatVersionError):
            raise


def seeds_meta() -> List[bytes]:
    from lakeformat.core.meta import DatasetMeta, TensorMeta

    dm = DatasetMeta().with_tensor("images", "images", False).with_tensor("_images_id", "_images_id", True)
    tm = TensorMeta.new("images", "image", "uint8", "png", None, 8 << 20, 4 << 20, False, False, False, {})
    tm = tm.replace(length=10).with_shape_interval((1, 2, 3), (4, 5, 3))
    return [b"\1" + dm.to_bytes(), b"\0" + tm.to_bytes(), b"\1{\"tensors\": [], \"version\": \"3.9.52\"}"]


# ----------------------------------------------------------------------------- version-control objects
def target_vc_objects(data: bytes) -> None:
    """CommitDiff, ChunkSet and DatasetDiff `from_bytes`: CorruptDataError only; what parses
    writes back bytes that parse to the same object."""
    from lakeformat.version_control.objects import ChunkSet, CommitDiff, DatasetDiff

    head, body = _split(data, 1)
    cls = (CommitDiff, ChunkSet, DatasetDiff)[head[0] % 3]
    try:
        obj = cls.from_bytes(body, key="fuzz/vc")
    except CorruptDataError as e:
        if type(e) is not CorruptDataError:
            raise
        return
    b = obj.to_bytes()
    assert cls.from_bytes(b).to_bytes() == b


def seeds_vc_objects() -> List[bytes]:
    from lakeformat.version_control.objects import ChunkSet, CommitDiff, DatasetDiff

    cd = CommitDiff(5, created=True)
    cd.add_data(7)
    cd.update_data(2)
    cd.pop(1, 99)
    cs = ChunkSet()
    cs.add("abc")
    cs.add("def", "commit1", "key1")
    dd = DatasetDiff()
    dd.tensor_renamed("a", "b")
    dd.tensor_deleted("c")
    dd.modify_info()
    return [b"\0" + cd.to_bytes(), b"\1" + cs.to_bytes(), b"\2" + dd.to_bytes()]


TARGETS: Dict[str, Tuple[Callable[[bytes], None], Callable[[], List[bytes]]]] = {
    "lz4": (target_lz4, seeds_lz4),
    "png": (target_png, seeds_png),
    "records": (target_records, seeds_records),
    "chunk": (target_chunk, seeds_chunk),
    "encoders": (target_encoders, seeds_encoders),
    "meta": (target_meta, seeds_meta),
    "vc_objects": (target_vc_objects, seeds_vc_objects),
}

# the TQL text kernels (H4): the target lives beside their tests
from tests.native.tql_text_fuzz import seeds_tql_text, target_tql_text  # noqa: E402

TARGETS["tql_text"] = (target_tql_text, seeds_tql_text)

# the TQL numeric kernels (H5): the target lives beside their tests
from tests.native.tql_ragged_fuzz import seeds_tql_ragged, target_tql_ragged  # noqa: E402

TARGETS["tql_ragged"] = (target_tql_ragged, seeds_tql_ragged)

# the long-key lz4 encoder (H7): the target lives beside the native tests
from tests.native.lz4_encode_fuzz import seeds_lz4_encode, target_lz4_encode  # noqa: E402

TARGETS["lz4_encode"] = (target_lz4_encode, seeds_lz4_encode)

# the text decode kernels (H9): the target lives beside the native tests
from tests.native.text_decode_fuzz import seeds_text_decode, target_text_decode  # noqa: E402

TARGETS["text_decode"] = (target_text_decode, seeds_text_decode)

# the JSON path kernel (H2, TQL json paths): the target lives beside the native tests
from tests.native.json_path_fuzz import seeds_json_path, target_json_path  # noqa: E402

TARGETS["json_path"] = (target_json_path, seeds_json_path)
