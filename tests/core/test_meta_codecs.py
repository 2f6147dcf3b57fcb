"""Codec objects and the htype table: found by name, round-trip, same bytes as the functions
they replace; the table gives the facts the old name checks gave."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lakeformat.codecs import (
    CODECS,
    Jpeg,
    Lz4,
    Png,
    Uncompressed,
    UnknownCodecError,
    Zstd,
    compress_bytes,
    compress_image,
    decompress_bytes,
    get_codec,
    is_image_codec,
)
from lakeformat.errors import HtypeError, LakeFormatError
from lakeformat.htypes import HTYPES, check_compressions, htype_of, is_numeric_dtype, parse_htype


def test_registry_finds_each_codec_by_name():
    assert set(CODECS) == {"lz4", "zstd", "png", "jpeg"}
    assert isinstance(get_codec(None), Uncompressed)
    assert get_codec("lz4") == Lz4() and get_codec("LZ4") == Lz4()
    assert get_codec("jpg") == Jpeg() and get_codec("png") == Png()
    assert get_codec("zstd", 7) == Zstd(level=7) and get_codec("zstd").level is None
    with pytest.raises(UnknownCodecError, match="'gif'") as e:
        get_codec("gif")
    assert isinstance(e.value, LakeFormatError)
    assert is_image_codec("jpeg") and is_image_codec("JPG") and not is_image_codec("lz4")
    assert not is_image_codec(None) and not is_image_codec("gif")
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_codec("zstd", 3).level = 4  # type: ignore[misc]


@pytest.mark.parametrize("name", [None, "lz4", "zstd"])
def test_byte_codecs_round_trip_as_the_functions_do(name):
    rng = np.random.default_rng(0)
    for data in (b"", b"abc" * 1000, rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes()):
        codec = get_codec(name)
        packed = codec.encode(data)
        assert packed == compress_bytes(data, name)  # the same bytes the function writes
        assert bytes(codec.decode(packed)) == data == bytes(decompress_bytes(packed, name))
        assert b"".join(bytes(p) for p in codec.encode_parts(data)) == packed
        if data:
            assert codec.decoded_size(packed) == len(data)
            out = bytearray(len(data))
            codec.decode_into(packed, out)
            assert bytes(out) == data


def test_lz4_keeps_deeplakes_size_prefix():
    packed = Lz4().encode(b"x" * 100)
    assert int.from_bytes(packed[:4], "little") == 100


@pytest.mark.parametrize("codec", [Png(), Jpeg()])
def test_image_codecs_round_trip(codec):
    img = np.zeros((16, 20, 3), np.uint8)
    img[4:10, 5:15] = (200, 30, 90)
    back = codec.decode(codec.encode(img))
    assert back.shape == img.shape
    if codec == Png():
        assert np.array_equal(back, img)
    else:
        assert codec.encode(img) == compress_image(img, "jpeg")  # the bytes the function writes
        assert np.abs(back.astype(int) - img).mean() < 10  # lossy, close
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert codec.decode(codec.encode(gray), shape=(8, 8, 1)).shape == (8, 8, 1)


def test_htype_table_facts():
    assert {h for h, r in HTYPES.items() if r.text_like} == {"text", "json", "list", "tag"}
    assert {h for h, r in HTYPES.items() if r.image_like} == {"image", "image.rgb", "image.gray"}
    assert htype_of("class_label").label and htype_of("class_label").defaults()["_info"] == ["class_names"]
    assert htype_of("list").list_like and htype_of("list").shape_tensor and not htype_of("tag").shape_tensor
    assert htype_of(None).name == "generic" and htype_of("from_the_future").name == "generic"
    assert htype_of("segment_mask").pixels and not htype_of("bbox").pixels
    assert not is_numeric_dtype("str") and not is_numeric_dtype(None) and is_numeric_dtype("int8")
    assert parse_htype("sequence[link[image]]") == ("image", True, True)
    with pytest.raises(HtypeError, match="Unknown htype"):
        parse_htype("nope")
    with pytest.raises(HtypeError, match="'text' samples"):
        check_compressions("text", "png", None, "tensor 't'")
    check_compressions("image", "png", "lz4", "tensor 'i'")  # allowed: no error
