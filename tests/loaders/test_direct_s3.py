"""The loader's direct S3 reads (presigned GETs through http.client, bodies into reused
buffers): the same bytes as s3fs, the same typed errors, retries through injected faults,
and a fall back to s3fs for answers they do not handle."""
import os

import numpy as np
import pytest

import lakeformat
from lakeformat.errors import KeyNotFoundInStorageError, TransientStorageError
from lakeformat.integrations.torch import direct_s3
from lakeformat.integrations.torch.direct_s3 import DirectS3Reads, direct_reads, metadata_reads, unsupported_reason
from lakeformat.integrations.torch.reader import worker_storage
from lakeformat.storage import LRUCache, PrefixedStorage
from lakeformat.storage.fsspec_store import FsspecStorage
from lakeformat.version_control.locks import release_branch_lock
from loaders import dataloader
from tests.support.fault_proxy import FaultProxy, FaultSchedule

from .conftest import make_images


def _bucket_store(s3_server, name, endpoint=None, **opts):
    bucket = s3_server.make_bucket(name)
    o = dict(s3_server.storage_options_for(endpoint) if endpoint else s3_server.storage_options)
    o.update(opts)
    return bucket, FsspecStorage(f"s3://{bucket}/root", {**o, "skip_instance_cache": True})


def _objects(store, rng):
    """A few objects: empty, small (bytes back) and chunk-sized (a reused buffer back)."""
    objs = {"meta.json": b'{"a": 1}', "empty": b"",
            "t/chunks/big": rng.integers(0, 256, (3 << 20) + 17, dtype=np.uint8).tobytes(),
            "t/chunks/small": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()}
    store.set_many(objs)
    return objs


def test_reads_equal_s3fs_reads(s3_server):
    rng = np.random.default_rng(0)
    _, store = _bucket_store(s3_server, "direct-equal")
    objs = _objects(store, rng)
    d = direct_reads(store)
    assert isinstance(d, DirectS3Reads)
    for k, v in objs.items():
        assert bytes(d.get(k)) == v
    got = d.get_many(list(objs) + ["nope"], missing_ok=True)
    assert got["nope"] is None and {k: bytes(v) for k, v in got.items() if k != "nope"} == objs
    big = objs["t/chunks/big"]
    assert isinstance(d.get("t/chunks/big"), np.ndarray)  # a pooled buffer, read like bytes
    for _ in range(30):
        a = int(rng.integers(0, len(big)))
        b = None if rng.random() < 0.2 else int(rng.integers(a + 1, len(big) + 10))
        want = store.get_range("t/chunks/big", a, b)
        assert bytes(d.get_range("t/chunks/big", a, b)) == bytes(want), (a, b)
    assert d.get_range("t/chunks/big", 10, 10) == b"" and d.get_range("t/chunks/big", 10, 5) == b""
    assert d.get_range("t/chunks/big", len(big) + 5, None) == b""  # past the end: nothing there
    assert d.fallback is None


def test_missing_keys_are_typed_and_nothing_else_is_retried(s3_server):
    _, store = _bucket_store(s3_server, "direct-missing")
    d = direct_reads(store)
    with pytest.raises(KeyNotFoundInStorageError):
        d.get("absent/key")
    with pytest.raises(KeyNotFoundInStorageError):
        d.get_many(["absent/one", "absent/two"])
    assert d.get_many(["absent/one"], missing_ok=True) == {"absent/one": None}


def test_faults_are_retried_and_reads_stay_exact(s3_server):
    """500, 503, SlowDown, resets, timeouts and truncated bodies on every third GET: each
    read retries until it has the whole object, byte for byte."""
    rng = np.random.default_rng(1)
    bucket, plain = _bucket_store(s3_server, "direct-faults")
    objs = _objects(plain, rng)
    schedule = FaultSchedule(seed=5, rate=0.35, kinds=("500", "503", "slowdown", "reset", "timeout", "truncate"), methods=("GET",))
    with FaultProxy(s3_server.port, schedule, hang_s=3.0) as proxy:
        opts = dict(s3_server.storage_options_for(proxy.endpoint_url))
        opts["config_kwargs"] = {**(opts.get("config_kwargs") or {}), "read_timeout": 1, "connect_timeout": 1}
        store = FsspecStorage(f"s3://{bucket}/root", {**opts, "skip_instance_cache": True},
                              retry={"attempts": 12, "base_delay_s": 0.0})
        d = direct_reads(store)
        for _ in range(3):
            got = d.get_many(list(objs))
            assert {k: bytes(v) for k, v in got.items()} == objs
            assert bytes(d.get_range("t/chunks/big", 1000, 2_000_000)) == objs["t/chunks/big"][1000:2_000_000]
        kinds = {kind for *_, kind in proxy.injected}
    assert {"truncate", "reset", "slowdown"} <= kinds, kinds
    assert d.fallback is None


def test_a_fault_that_outlasts_the_retries_is_a_transient_error(s3_server):
    bucket, plain = _bucket_store(s3_server, "direct-outlast")
    plain.set("t/chunks/c", b"x" * 100)
    with FaultProxy(s3_server.port, FaultSchedule(rate=1.0, kinds=("503",))) as proxy:
        store = FsspecStorage(f"s3://{bucket}/root", {**s3_server.storage_options_for(proxy.endpoint_url), "skip_instance_cache": True},
                              retry={"attempts": 3, "base_delay_s": 0.0})
        with pytest.raises(TransientStorageError, match="t/chunks/c"):
            direct_reads(store).get("t/chunks/c")
        assert len(proxy.injected) == 3


def test_an_unexpected_answer_falls_back_to_s3fs(s3_server, monkeypatch):
    _, store = _bucket_store(s3_server, "direct-fallback")
    store.set("k", b"value")
    d = direct_reads(store)
    calls = []

    def redirected(key, start, end, signed_again=False):
        calls.append(key)
        return d._status(key, 301, b"<Error><Code>PermanentRedirect</Code></Error>", start, end, signed_again)

    monkeypatch.setattr(d, "_once", redirected)
    assert d.get("k") == b"value"
    assert "301" in d.fallback and calls == ["k"]
    assert d.get_many(["k"]) == {"k": b"value"} and calls == ["k"]  # s3fs from here on


def test_setups_a_presigned_url_cannot_serve_read_through_s3fs(s3_server, monkeypatch):
    _, store = _bucket_store(s3_server, "direct-setups")
    assert unsupported_reason(store) is None
    monkeypatch.setenv("LAKEFORMAT_S3_DIRECT_READS", "0")
    assert direct_reads(store) is store
    monkeypatch.delenv("LAKEFORMAT_S3_DIRECT_READS")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert "proxy" in unsupported_reason(store)
    monkeypatch.delenv("HTTPS_PROXY")
    _, sse = _bucket_store(s3_server, "direct-sse", s3_additional_kwargs={"ServerSideEncryption": "AES256"})
    assert unsupported_reason(sse) == "s3_additional_kwargs"
    assert metadata_reads(LRUCache(sse, 1 << 20)) is None


def test_the_metadata_reader_keeps_the_prefix_and_skips_the_cache(s3_server):
    _, store = _bucket_store(s3_server, "direct-meta")
    store.set("ds/a", b"1")
    stack = LRUCache(PrefixedStorage(store, "ds"), 1 << 20)
    r = metadata_reads(stack)
    assert isinstance(r, PrefixedStorage) and isinstance(r.base, DirectS3Reads)
    assert r.get("a") == b"1"
    assert metadata_reads(stack).base is r.base  # one reader per store: its connections stay open


@pytest.fixture
def s3_dataset(s3_url):
    url, opts = s3_url
    imgs = make_images(400)
    ds = lakeformat.empty(url, creds=opts)
    with ds:
        ds.create_tensor("images", htype="image", dtype="uint8", chunk_compression="lz4", max_chunk_size=1 << 20)
        ds.create_tensor("raw", htype="image", dtype="uint8", max_chunk_size=1 << 20)
        ds.create_tensor("labels", htype="class_label", class_names=[f"c{i}" for i in range(7)])
        big = np.repeat(np.repeat(imgs, 8, axis=1), 8, axis=2)  # 128x128: chunks past the 1 MB buffer floor
        ds.images.extend(big)
        ds.raw.extend(big)
        ds.labels.extend((np.arange(400) % 7).astype(np.uint32))
    release_branch_lock(ds.storage, ds.branch)
    return url, opts, big


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_epochs_read_direct_through_faults(s3_dataset, s3_server, num_workers):
    """The loader's workers and its metadata read sign their GETs (presigned URLs) and read
    every sample exactly, while one request in five fails."""
    url, _, big = s3_dataset
    schedule = FaultSchedule(seed=2, rate=0.2, kinds=("500", "slowdown", "reset", "truncate"), methods=("GET",))
    with FaultProxy(s3_server.port, schedule) as proxy:
        opts = dict(s3_server.storage_options_for(proxy.endpoint_url))
        opts["retry"] = {"attempts": 10, "base_delay_s": 0.0}
        ds = lakeformat.load(url, creds=opts, read_only=True)
        proxy.keep_log = True
        loader = dataloader(ds).batch(24).shuffle(seed=3).pytorch(num_workers=num_workers, return_index=True)
        seen = []
        for b in loader:
            idx = b["index"].numpy()
            assert (b["images"].numpy() == big[idx]).all() and (b["raw"].numpy() == big[idx]).all()
            assert (b["labels"].numpy().ravel() == idx % 7).all()
            seen.extend(idx.tolist())
        log = list(proxy.log)
        injected = list(proxy.injected)
    assert sorted(seen) == list(range(400))
    assert injected, "the schedule injected no fault"
    gets = [p for _, m, p, _ in log if m == "GET"]
    assert gets and all("X-Amz-Signature=" in p for p in gets), [p for p in gets if "X-Amz-Signature=" not in p][:3]


def test_worker_storage_reads_direct_unless_switched_off(s3_dataset, monkeypatch):
    url, opts, _ = s3_dataset
    ds = lakeformat.load(url, creds=opts, read_only=True)
    assert isinstance(worker_storage(ds.storage), DirectS3Reads)
    monkeypatch.setenv(direct_s3.ENV_SWITCH, "off")
    w = worker_storage(ds.storage)
    assert isinstance(w, FsspecStorage) and not isinstance(w, DirectS3Reads)
    assert os.environ[direct_s3.ENV_SWITCH] == "off"


def test_a_kept_connection_the_server_closed_costs_no_attempt(s3_server):
    """A connection kept open between reads may have been closed by the server: the request
    goes again at once on a new connection, without spending one of the retry attempts (here
    there is no retry at all)."""
    bucket, plain = _bucket_store(s3_server, "direct-stale")
    plain.set("k", b"v" * 1000)
    with FaultProxy(s3_server.port, FaultSchedule(at={2: "reset"})) as proxy:
        store = FsspecStorage(f"s3://{bucket}/root", {**s3_server.storage_options_for(proxy.endpoint_url), "skip_instance_cache": True},
                              retry={"attempts": 1})
        d = direct_reads(store)
        assert d.get("k") == b"v" * 1000  # request 1: its connection is kept
        assert d.get("k") == b"v" * 1000  # request 2 on it is reset; request 3 on a new one
        assert [kind for *_, kind in proxy.injected] == ["reset"] and proxy.requests == 3


def test_the_url_signer_signs_as_the_client_does(s3_server, monkeypatch):
    """Workers presign with the main process's `UrlSigner` (no S3 client of their own): at
    the same instant it gives the very URL s3fs's client presigns, special keys included."""
    import datetime

    import botocore.auth

    _, store = _bucket_store(s3_server, "direct-signer")
    d = direct_reads(store)
    signer = d.url_signer()
    assert signer is not None and store.fs.storage_options["secret"] not in repr(signer)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.datetime(2026, 12, 7, 10, 0, 0))
    client = d._signing_fs()
    for key in ("t/chunks/0a1b", "a b/c+d=e&f~g", "ü/ключ"):
        assert signer.url(key) == client.url(d._p(key), expires=3600)
    store.set("t/chunks/0a1b", b"chunk bytes")
    w = direct_reads(store, signer)
    assert w.get("t/chunks/0a1b") == b"chunk bytes" and w.signer is signer


def test_a_refused_signature_signs_again_with_a_client(s3_server, monkeypatch):
    """A signer whose credentials the store refuses (expired, rotated): the read is signed
    again by a client, and so is every later one."""
    from lakeformat.integrations.torch.direct_s3 import UrlSigner

    _, store = _bucket_store(s3_server, "direct-refused")
    store.set("k", b"v")
    good = direct_reads(store).url_signer()
    stale = UrlSigner(good.base, good.region, good.access_key, good.secret_key, good.token)
    w = direct_reads(store, stale)
    refused = []
    real_once = w._once

    def once(key, start, end, signed_again=False):
        if not signed_again and w.signer is not None:  # the store refuses this signature
            refused.append(key)
            return w._status(key, 403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", start, end, signed_again)
        return real_once(key, start, end, signed_again)

    monkeypatch.setattr(w, "_once", once)
    assert w.get("k") == b"v" and refused == ["k"] and w.signer is None
    assert w.get("k") == b"v" and refused == ["k"]
