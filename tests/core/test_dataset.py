"""The dataset API: create/load, htypes, reads and views, writes, updates, pops, groups."""
from __future__ import annotations

import numpy as np
import pytest

import lakeformat
from lakeformat import errors


@pytest.fixture
def ds(tmp_path):
    return lakeformat.empty(str(tmp_path / "ds"))


def test_create_load_exists_delete(tmp_path):
    p = str(tmp_path / "d")
    assert not lakeformat.exists(p)
    with pytest.raises(errors.DatasetNotFoundError):
        lakeformat.load(p)
    ds = lakeformat.empty(p)
    ds.create_tensor("x")
    ds.x.append(np.array([1, 2, 3]))
    assert lakeformat.exists(p)
    with pytest.raises(errors.DatasetExistsError):
        lakeformat.empty(p)
    assert lakeformat.dataset(p).x.numpy().tolist() == [[1, 2, 3]]
    lakeformat.delete(p)
    assert not lakeformat.exists(p)


def test_not_a_dataset_and_newer_version(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "file.txt").write_text("hi")
    with pytest.raises(errors.NotADatasetError):
        lakeformat.load(str(folder))
    ds = lakeformat.empty(str(tmp_path / "new"))
    ds.create_tensor("x")
    meta = tmp_path / "new" / "dataset_meta.json"
    meta.write_text(meta.read_text().replace('"version": "3.9.52"', '"version": "9.0.0"'))
    with pytest.raises(errors.UnsupportedFormatVersionError, match="9.0.0"):
        lakeformat.load(str(tmp_path / "new"))


def test_generic_dtypes_and_shapes(ds):
    ds.create_tensor("f", dtype="float32")
    ds.f.extend(np.arange(12, dtype=np.float32).reshape(3, 4))
    ds.f.append(np.ones(4, np.float32))
    assert ds.f.shape == (4, 4)
    assert ds.f.numpy().dtype == np.float32
    assert np.array_equal(ds.f[1:3].numpy(), np.arange(4, 12, dtype=np.float32).reshape(2, 4))
    assert np.array_equal(ds.f[[3, 0]].numpy()[:, 0], [1, 0])
    assert ds.f[2, 1:3].numpy().tolist() == [9, 10]
    ds.create_tensor("r")
    ds.r.extend([np.zeros((2, 3)), np.zeros((4, 1))])
    assert ds.r.shape == (2, None, None)
    with pytest.raises(errors.DynamicShapeError):
        ds.r.numpy()
    assert [a.shape for a in ds.r.numpy(aslist=True)] == [(2, 3), (4, 1)]


def test_text_json_list_nulls(ds):
    ds.create_tensor("t", htype="text")
    ds.create_tensor("j", htype="json")
    ds.create_tensor("l", htype="list")
    ds.extend({"t": ["a", "", None, "ünï"], "j": [{"k": [1, 2]}, None, {}, [1]], "l": [["x"], [], ["a", "b"], []]})
    assert ds.t.text() == ["a", "", None, "ünï"]
    assert ds.t[0].text() == "a"
    assert ds.j.dict() == [{"k": [1, 2]}, None, {}, [1]]
    assert ds.l.list() == [["x"], [], ["a", "b"], []]
    back = lakeformat.load(ds.path, read_only=True)
    assert back.t.text() == ["a", "", None, "ünï"]


def test_class_labels(ds):
    ds.create_tensor("fixed", htype="class_label", class_names=["cat", "dog"])
    ds.create_tensor("free", htype="class_label")
    ds.extend({"fixed": ["dog", 0, "cat"], "free": ["b", "a", "b"]})
    assert ds.fixed.numpy()[:, 0].tolist() == [1, 0, 0]
    assert ds.free.info.class_names == ["b", "a"]
    assert ds.free.numpy()[:, 0].tolist() == [0, 1, 0]
    assert ds.fixed.numpy().dtype == np.uint32
    with pytest.raises(errors.HtypeViolationError) as e:
        ds.fixed.append("bird")
    assert e.value.tensor == "fixed" and e.value.index == 3
    with pytest.raises(errors.HtypeViolationError):
        ds.fixed.append(5)
    assert len(ds.fixed) == 3


def test_images_png_jpeg_and_files(ds, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    ds.create_tensor("png", htype="image", sample_compression="png")
    ds.create_tensor("jpg", htype="image", sample_compression="jpeg")
    ds.png.append(img)
    ds.jpg.append(img)
    assert np.array_equal(ds.png[0].numpy(), img)
    assert ds.jpg[0].numpy().shape == img.shape
    path = tmp_path / "a.png"
    Image.fromarray(img).save(path)
    ds.png.append(lakeformat.read(str(path)))
    raw = ds.png.engine.read_items_bytes(np.array([1]))[0][0]
    assert bytes(raw) == path.read_bytes()  # stored as it was, no re-encode
    assert np.array_equal(ds.png[1].numpy(), img)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(errors.SampleDecodeError) as e:
        ds.png.append(lakeformat.read(str(bad)))
    assert e.value.index == 2 and e.value.tensor == "png"


def test_bbox_embedding_mask_rules(ds):
    ds.create_tensor("box", htype="bbox")
    ds.create_tensor("emb", htype="embedding")
    ds.create_tensor("mask", htype="binary_mask", sample_compression="lz4")
    ds.box.append(np.ones((2, 4)))
    with pytest.raises(errors.HtypeViolationError, match="bbox"):
        ds.box.append(np.ones((2, 3)))
    ds.emb.extend(np.random.rand(5, 8).astype(np.float32))
    assert ds.emb.numpy().shape == (5, 8)
    with pytest.raises(errors.SampleShapeError):
        ds.emb.append(np.ones((2, 2), np.float32))
    m = np.random.rand(6, 6, 2) > 0.5
    ds.mask.append(m)
    assert np.array_equal(ds.mask[0].numpy(), m)


def test_dtype_and_rank_errors(ds):
    ds.create_tensor("i", dtype="int32")
    ds.i.append(1)
    with pytest.raises(errors.SampleDtypeError) as e:
        ds.i.append(np.array([1.5]))
    assert isinstance(e.value, TypeError) and e.value.index == 1
    with pytest.raises(errors.SampleDtypeError):
        ds.i.append(2**40)
    with pytest.raises(errors.SampleShapeError):
        ds.i.append(np.ones((2, 2), np.int32))
    ds.create_tensor("t", htype="text")
    with pytest.raises(errors.SampleDtypeError):
        ds.t.append(5)


def test_failing_ds_extend_changes_nothing(ds):
    ds.create_tensor("a", dtype="int64")
    ds.create_tensor("b", htype="class_label", class_names=["x"])
    ds.extend({"a": [1, 2], "b": [0, 0]})
    before = (ds.a.numpy().copy(), ds.b.numpy().copy())
    with pytest.raises(errors.HtypeViolationError) as e:
        ds.extend({"a": [3, 4, 5], "b": [0, "y", 0]})
    assert e.value.tensor == "b" and e.value.index == 3
    assert len(ds.a) == 2 and len(ds.b) == 2
    back = lakeformat.load(ds.path, read_only=True)
    assert np.array_equal(back.a.numpy(), before[0]) and np.array_equal(back.b.numpy(), before[1])
    ds.extend({"a": [3], "b": [0]})
    assert ds.a.numpy()[:, 0].tolist() == [1, 2, 3]


def test_multi_chunk_update_pop(ds):
    ds.create_tensor("x", dtype="int64", max_chunk_size=200)
    ds.create_tensor("t", htype="text", max_chunk_size=100)
    with ds:
        ds.extend({"x": np.arange(100), "t": [f"s{i}" for i in range(100)]})
    assert ds.x.engine.chunk_ids.num_chunks > 3
    ds.x[50] = 999
    ds.t[7] = "changed"
    ds.pop(3)
    assert len(ds) == 99
    expect = np.delete(np.arange(100), 3)
    expect[49] = 999
    back = lakeformat.load(ds.path, read_only=True)
    assert back.x.numpy()[:, 0].tolist() == expect.tolist()
    assert back.t[6].text() == "changed" and back.t[3].text() == "s4"
    assert len(back.session.engine("_x_id").chunk_ids.rows) and back.session.engine("_x_id").num_samples == 99


def test_tiling(ds):
    ds.create_tensor("big", dtype="uint8", max_chunk_size=4000, tiling_threshold=2000)
    a = np.random.randint(0, 255, (100, 70), dtype=np.uint8)
    ds.big.extend([a, np.ones((3, 3), np.uint8)])
    assert 0 in ds.big.engine.tiles
    assert np.array_equal(ds.big[0].numpy(), a)
    assert np.array_equal(lakeformat.load(ds.path, read_only=True).big[0].numpy(), a)
    assert ds.big[1].numpy().sum() == 9


def test_sequences(ds):
    ds.create_tensor("s", htype="sequence[class_label]", class_names=["a", "b"])
    ds.s.extend([["a", "b", "b"], ["b"], []])
    assert [x.reshape(-1).tolist() for x in ds.s[0].numpy(aslist=True)] == [0, 1, 1] or ds.s[0].numpy().reshape(-1).tolist() == [0, 1, 1]
    assert len(ds.s) == 3
    assert ds.s.engine.num_items == 4


def test_groups_rename_delete(ds):
    ds.create_tensor("g/h/x", dtype="int8")
    ds["g/h/x"].append(np.int8(1))
    assert "g" in ds.groups and "x" in ds.g.h.tensors
    ds.rename_tensor("g/h/x", "g/h/y")
    assert ds["g/h/y"].numpy().tolist() == [[1]]
    ds.delete_tensor("g/h/y")
    assert "g/h/y" not in ds.meta.tensor_names
    back = lakeformat.load(ds.path, read_only=True)
    assert back.tensors == {}


def test_views_and_dataset_append(ds):
    ds.create_tensor("a", dtype="int32")
    ds.create_tensor("b", htype="text")
    for i in range(10):
        ds.append({"a": i, "b": str(i)})
    v = ds[2:8][[0, 5]]
    assert len(v) == 2
    assert v.a.numpy()[:, 0].tolist() == [2, 7]
    assert v.b.text() == ["2", "7"]
    assert ds[4].a.numpy().tolist() == [4]
    with pytest.raises(errors.ReadOnlyError):
        v.a.append(1)
    with pytest.raises(errors.SampleError, match="missing"):
        ds.append({"a": 1})
    ds.append({"a": 1}, append_empty=True)
    assert ds.b[10].text() is None


def test_info_and_read_only(ds):
    ds.info["source"] = "unit"
    ds.create_tensor("x")
    ds.x.info["unit"] = "m"
    back = lakeformat.load(ds.path, read_only=True)
    assert back.info["source"] == "unit" and back.x.info.unit == "m"
    with pytest.raises(errors.ReadOnlyError):
        back.x.append(1)


def test_summary_runs(ds, capsys):
    ds.create_tensor("x", htype="class_label")
    ds.x.extend([0, 1])
    text = ds.summary()
    assert "class_label" in text and "(2, 1)" in text


def test_links_local(ds, tmp_path):
    from PIL import Image

    img = np.full((5, 6, 3), 7, np.uint8)
    Image.fromarray(img).save(tmp_path / "l.png")
    ds.create_tensor("l", htype="link[image]", sample_compression="png")
    ds.add_creds_key("k")
    ds.l.extend([lakeformat.link(str(tmp_path / "l.png")), None, lakeformat.link(str(tmp_path / "l.png"), creds_key="k")])
    vals = ds.l.numpy(aslist=True)
    assert np.array_equal(vals[0], img) and vals[1].size == 0 and np.array_equal(vals[2], img)
    assert ds.l.shape_interval[1] == (5, 6, 3)
    with pytest.raises(errors.SampleError, match="missing-key"):
        ds.l.append(lakeformat.link(str(tmp_path / "l.png"), creds_key="missing-key"))


def test_links_s3(ds, s3_url, tmp_path):
    from PIL import Image
    import fsspec

    url, opts = s3_url
    img = np.full((4, 4, 3), 9, np.uint8)
    Image.fromarray(img).save(tmp_path / "x.png")
    fs, p = fsspec.core.url_to_fs(url + "/x.png", **opts)
    fs.put_file(str(tmp_path / "x.png"), p)
    ds.create_tensor("l", htype="link[image]", sample_compression="png")
    ds.add_creds_key("s3")
    ds.populate_creds("s3", opts)
    ds.l.append(lakeformat.link(url + "/x.png", creds_key="s3"))
    assert np.array_equal(ds.l[0].numpy(), img)
    back = lakeformat.load(ds.path, read_only=True)
    with pytest.raises(errors.CredsKeyError):
        back.l[0].numpy()  # creds are never written to the dataset
    back.populate_creds("s3", opts)
    assert np.array_equal(back.l[0].numpy(), img)


def test_dataset_on_s3(s3_url):
    url, opts = s3_url
    ds = lakeformat.empty(url, creds=opts)
    ds.create_tensor("img", htype="image", sample_compression="png", max_chunk_size=5000)
    imgs = np.random.randint(0, 255, (20, 16, 16, 3), dtype=np.uint8)
    ds.img.extend(imgs)
    back = lakeformat.load(url, creds=opts, read_only=True)
    assert np.array_equal(back.img.numpy(), imgs)
    assert np.array_equal(back.img[[19, 2]].numpy(), imgs[[19, 2]])


def test_updates_to_and_from_tiled_samples(ds):
    ds.create_tensor("x", dtype="uint8", max_chunk_size=4000, tiling_threshold=2000)
    vals = [np.full((10, 10), i, np.uint8) for i in range(30)]
    ds.x.extend(vals)
    big = np.random.default_rng(1).integers(0, 255, (90, 70), dtype=np.uint8)
    for i, v in [(12, big), (0, big), (29, big), (12, np.ones((3, 3), np.uint8))]:
        ds.x[i] = v
        vals[i] = v
    ds.x.append(np.full((10, 10), 99, np.uint8))
    vals.append(np.full((10, 10), 99, np.uint8))
    for d in (ds, lakeformat.load(ds.path, read_only=True)):
        got = d.x.numpy(aslist=True)
        assert len(got) == len(vals)
        assert all(np.array_equal(a, b) for a, b in zip(got, vals))
    from lakeformat.verify import verify

    assert verify(ds.path).ok


def test_image_chunk_compression_canvas(ds):
    """png/jpeg as chunk compression: the chunk's images on one canvas, as deeplake 3 does."""
    rng = np.random.default_rng(3)
    vals = [rng.integers(0, 255, (int(rng.integers(1, 9)), int(rng.integers(1, 9)), 3), dtype=np.uint8) for _ in range(40)]
    vals[5] = np.zeros((0, 0, 0), np.uint8)
    ds.create_tensor("p", htype="image", chunk_compression="png", max_chunk_size=500)
    ds.p.extend(vals)
    ds.p[3] = np.ones((2, 2, 3), np.uint8)
    vals[3] = np.ones((2, 2, 3), np.uint8)
    assert ds.p.engine.chunk_ids.num_chunks > 1
    got = lakeformat.load(ds.path, read_only=True).p.numpy(aslist=True)
    assert all(np.array_equal(a, b) for a, b in zip(got, vals))


def test_appending_a_reused_buffer_keeps_each_value(ds):
    """The dataset copies what it is given: a caller may refill its buffer right away."""
    ds.create_tensor("x", dtype="float32")
    ds.create_tensor("big", dtype="uint8", max_chunk_size=1000)
    buf = np.zeros((4,), np.float32)
    img = np.zeros((30, 30), np.uint8)
    with ds:
        for i in range(5):
            buf[:] = i
            img[:] = i
            ds.x.append(buf)
            ds.big.append(img)
        block = np.ones((3, 4), np.float32)
        ds.x.extend(block)
        block[:] = 7
    assert ds.x.numpy()[:, 0].tolist() == [0, 1, 2, 3, 4, 1, 1, 1]
    assert [int(a[0, 0]) for a in ds.big.numpy(aslist=True)] == [0, 1, 2, 3, 4]
