"""TensorLayout (a tensor at a commit, as a plain value) and the one decode module."""
import pickle

import numpy as np
import pytest

import lakeformat
from lakeformat.core import decode
from lakeformat.core.layout import SampleFormat, TensorLayout, chunk_folder


@pytest.fixture
def ds(tmp_path):
    ds = lakeformat.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=4096)
        ds.create_tensor("names", htype="text")
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int32")
        ds.create_tensor("big", dtype="uint8", max_chunk_size=64 * 1024, tiling_threshold=16 * 1024)
        ds.create_tensor("png", htype="image", sample_compression="png")
        ds.x.extend(np.arange(2000).reshape(-1, 2))
        ds.names.extend(["a", "bb", None, "ccc"])
        ds.seq.extend([np.arange(3, dtype=np.int32).reshape(3, 1), np.arange(5, dtype=np.int32).reshape(5, 1)])
        ds.big.append(np.arange(300 * 300, dtype=np.uint8).reshape(300, 300))
        ds.png.extend([np.full((8, 6, 3), i, np.uint8) for i in range(3)])
    return ds


def test_layout_pickles_and_equals_itself_at_one_commit(ds):
    for name in ("x", "names", "seq", "big", "png"):
        a, b = TensorLayout.of(ds[name]), TensorLayout.of(ds[name])
        assert a == b and hash(a) == hash(b)
        back = pickle.loads(pickle.dumps(a))
        assert back == a and back.chunk_keys == a.chunk_keys and back.tiles == a.tiles
        assert a.num_chunks == len(a.first_index) == len(a.last_index) and a.chunk_stats is None


def test_layout_facts(ds):
    x = TensorLayout.of(ds.x)
    assert x.fixed_shape == (2,) and x.np_dtype == np.int64 and x.num_samples == 1000 and x.num_chunks > 1
    assert int(x.last_index[-1]) == 999 and int(x.first_index[0]) == 0
    assert list(x.rows_of(np.array([0, 999]))) == [0, x.num_chunks - 1]
    assert x.shapes_source is not None and x.checksum_folders == ((x.key, x.commit_id),)
    assert all(chunk_folder(k) == (x.key, x.commit_id) for k in x.chunk_keys)
    names = TensorLayout.of(ds.names)
    assert names.is_text_like and names.fixed_shape is None
    seq = TensorLayout.of(ds.seq)
    assert seq.is_sequence and seq.num_samples == 2 and seq.num_items == 8
    items, offsets = seq.items_of(np.array([1, 0]))
    assert items.tolist() == [3, 4, 5, 6, 7, 0, 1, 2] and offsets.tolist() == [0, 5, 8]
    big = TensorLayout.of(ds.big)
    assert big.tiles and len(big.tile_rows(0)) == big.num_chunks > 1
    png = TensorLayout.of(ds.png)
    assert png.is_image and png.fixed_shape is None and png.sample_compression == "png"


def test_layout_changes_with_the_tensor_and_spans_the_commit_chain(ds):
    before = TensorLayout.of(ds.x)
    first = ds.commit("one")
    ds.x.extend(np.full((600, 2), 7))
    after = TensorLayout.of(ds.x)
    assert after != before and after.num_items == 1600
    assert after.chunk_keys[0] == before.chunk_keys[0]  # the earlier chunk, from its own folder
    assert len(after.checksum_folders) == 2 and after.commit_id != first
    ds.checkout(first)
    assert TensorLayout.of(ds.x) == before
    with pytest.raises(TypeError):
        before < after  # noqa: B015 - a layout is a value, not an ordering


def test_decode_gives_what_the_tensor_reads(ds):
    """The decode module on the engine's stored bytes equals Tensor's reads (the same code
    path the loader's workers use)."""
    for name in ("x", "names", "png"):
        t = ds[name]
        fmt = t.sample_format
        items = np.arange(t.num_samples, dtype=np.int64)
        datas, shapes = t.engine.read_items_bytes(items)
        got = decode.decode_samples(fmt, datas, shapes, items)
        want = t.numpy(aslist=True) if name != "names" else [v for v in t.values()]
        for g, w in zip(got, want):
            if name == "names":
                assert g == w
            else:
                np.testing.assert_array_equal(g, w)
    big = ds.big
    np.testing.assert_array_equal(big[0].numpy(), np.arange(300 * 300, dtype=np.uint8).reshape(300, 300))


def test_decode_text_like_and_images_into():
    assert decode.decode_text(memoryview(b""), "text", (0,)) is None
    assert decode.decode_text(memoryview(b""), "text", (1,)) == ""
    assert decode.decode_text(memoryview(b""), "list", (0,)) == []
    assert decode.decode_text(memoryview(b'{"a": 1}'), "json", (1,)) == {"a": 1}
    arr = decode.text_like_array(["a", "bb"], "list")
    assert arr.dtype == object and arr.tolist() == ["a", "bb"]
    assert decode.stack_text(["a", None], "text").dtype == object
    assert decode.convert_to_text([[0, 5]], ["cat", "dog"]) == [["cat", None]]
    out = np.full((4, 4, 3), 9, np.uint8)
    assert decode.decode_image_into(memoryview(b""), "png", (4, 4, 3), np.dtype(np.uint8), out) is None and not out.any()


def test_a_damaged_image_is_named(ds):
    fmt = SampleFormat.of_meta("png", ds.png.meta)
    with pytest.raises(lakeformat.errors.SampleDecodeError, match="png"):
        decode.decode_sample(fmt, memoryview(b"\x89PNG\r\n\x1a\n not an image"), (8, 6, 3))
    reasons = []
    with pytest.raises(KeyError):
        decode.decode_samples(fmt, [memoryview(b"junk")], [(8, 6, 3)], np.array([0]), fail=lambda k, r: reasons.append(r) or KeyError(k))
    assert reasons and reasons[0].startswith("stored png bytes do not decode")
