"""One storage contract, run against every backend: memory, local, S3 (moto), Azure
(azurite) and GCS (gcp-storage-emulator), each a real server started by the fixtures."""
from __future__ import annotations

import uuid

import pytest

from lakeformat.errors import KeyNotFoundInStorageError, StorageError
from lakeformat.storage import LRUCache, StorageProvider, storage_from_url


class StorageContract:
    """Subclasses provide `store` (a fixture giving an empty StorageProvider)."""

    def test_set_get_roundtrip(self, store: StorageProvider):
        store.set("a/b/c.bin", b"hello")
        assert store.get("a/b/c.bin") == b"hello"
        assert store.exists("a/b/c.bin")
        assert "a/b/c.bin" in store

    def test_missing_key_is_typed(self, store: StorageProvider):
        with pytest.raises(KeyNotFoundInStorageError):
            store.get("nope")
        with pytest.raises(KeyError):  # also the builtin a caller would catch
            store.get("nope/deeper")
        assert not store.exists("nope")

    def test_overwrite_is_whole(self, store: StorageProvider):
        store.set("k", b"x" * 1000)
        store.set("k", b"y" * 10)
        assert store.get("k") == b"y" * 10

    def test_byte_ranges(self, store: StorageProvider):
        store.set("r", bytes(range(100)))
        assert store.get_range("r", 10, 20) == bytes(range(10, 20))
        assert store.get_range("r", 95, None) == bytes(range(95, 100))

    def test_get_ranges(self, store: StorageProvider):
        store.set("rr", bytes(range(200)))
        assert store.get_ranges("rr", [0, 50, 190], [10, 51, 200]) == [bytes(range(10)), bytes([50]), bytes(range(190, 200))]
        assert store.get_ranges("rr", [], []) == []

    def test_read_into(self, store: StorageProvider):
        import numpy as np

        store.set("ri", bytes(range(100)))
        out = np.zeros(30, np.uint8)
        store.read_into("ri", 60, out)
        assert out.tobytes() == bytes(range(60, 90))
        with pytest.raises(StorageError):
            store.read_into("ri", 90, np.zeros(30, np.uint8))  # past the end
        with pytest.raises(KeyError):
            store.read_into("nope", 0, out)

    def test_get_many(self, store: StorageProvider):
        # objects ending in each line-break byte: the GCS emulator as shipped drops a trailing
        # b"\r" of multipart uploads (our fixture runs it with a byte-exact parser)
        data = {f"m/{i}": bytes([65 + i]) * (i + 1) for i in range(20)}
        data.update({"m/cr": b"x\r", "m/lf": b"x\n", "m/crlf": b"\r\n", "m/lone-cr": b"\r"})
        store.set_many(data)
        got = store.get_many(list(data))
        assert got == data
        got = store.get_many(["m/1", "m/missing"], missing_ok=True)
        assert got == {"m/1": b"BB", "m/missing": None}
        with pytest.raises(KeyError):
            store.get_many(["m/1", "m/missing"])

    def test_list_and_delete(self, store: StorageProvider):
        store.set_many({"d/x": b"1", "d/y/z": b"2", "e": b"3"})
        assert store.list("d") == ["d/x", "d/y/z"]
        store.delete("d/x")
        store.delete("d/x")  # absent keys are ignored
        assert not store.exists("d/x")
        store.delete_prefix("d")
        assert store.list("d") == []
        assert store.exists("e")
        store.clear()
        assert store.list("") == []

    def test_dataset_roundtrip(self, store: StorageProvider):
        import numpy as np

        import lakeformat

        ds = lakeformat.empty(store, overwrite=True)
        with ds:
            ds.create_tensor("x", dtype="int32", max_chunk_size=1000)
            ds.create_tensor("t", htype="text")
            ds.extend({"x": np.arange(1000, dtype=np.int32), "t": [str(i) for i in range(1000)]})
        back = lakeformat.load(store, read_only=True)
        assert np.array_equal(back.x.numpy()[:, 0], np.arange(1000))
        assert back.t[[3, 999]].text() == ["3", "999"]
        assert back.x.engine.chunk_ids.num_chunks > 1


class TestMemory(StorageContract):
    @pytest.fixture
    def store(self):
        return storage_from_url(f"memory://{uuid.uuid4().hex}")


class TestLocal(StorageContract):
    @pytest.fixture
    def store(self, tmp_path):
        return storage_from_url(str(tmp_path / "store"))


class TestS3(StorageContract):
    @pytest.fixture
    def store(self, s3_url):
        url, opts = s3_url
        return storage_from_url(url, opts)

    def test_is_cached(self, store):
        assert isinstance(store, LRUCache)


class TestAzure(StorageContract):
    @pytest.fixture
    def store(self, az_url):
        url, opts = az_url
        return storage_from_url(url, opts)


class TestGCS(StorageContract):
    @pytest.fixture
    def store(self, gcs_url):
        url, opts = gcs_url
        return storage_from_url(url, opts)


def test_lru_cache_bounds_its_size():
    base = storage_from_url(f"memory://{uuid.uuid4().hex}")
    cache = LRUCache(base, cache_size=1000)
    for i in range(50):
        base.set(f"k{i}", b"x" * 100)
    for i in range(50):
        assert cache.get(f"k{i}") == b"x" * 100
    assert cache._bytes <= 1000
    base.set("k49", b"changed")
    cache.set("k49", b"changed2")  # writes go through and invalidate
    assert cache.get("k49") == b"changed2"


def test_s3_reads_skip_the_response_checksum_unless_asked(s3_server):
    """botocore's per-download CRC is off for reads by default; options can turn it back on."""
    from lakeformat.storage import FsspecStorage

    bucket = s3_server.make_bucket(f"ck-{uuid.uuid4().hex[:8]}")
    opts = dict(s3_server.storage_options)
    plain = FsspecStorage(f"s3://{bucket}/p", opts)
    assert plain.fs.config_kwargs["response_checksum_validation"] == "when_required"
    plain.set("k", b"x" * 100_000)
    assert plain.get("k") == b"x" * 100_000 and plain.get_many(["k"])["k"] == b"x" * 100_000
    kept = FsspecStorage(f"s3://{bucket}/p", {**opts, "config_kwargs": {"response_checksum_validation": "when_supported"}})
    assert kept.fs.config_kwargs["response_checksum_validation"] == "when_supported"
    assert kept.get("k") == b"x" * 100_000
    assert "config_kwargs" not in opts  # the caller's options are left as they were
