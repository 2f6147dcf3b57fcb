"""What the loader asks an object store for: its workers read chunks and nothing else (the
metadata and checksum side files come from the parent with the plan), and still check the
chunks they decompress against those side files."""
import numpy as np
import pytest

import lakeformat
from lakeformat import constants as C
from lakeformat.version_control.locks import release_branch_lock
from loaders import SampleLoadError, dataloader
from loaders.checksum_tables import chunk_folder
from loaders.torch_loader import _remote_fetch_threads
from tests.support.fault_proxy import FaultProxy

from .conftest import make_images

N = 96


@pytest.fixture
def s3_images(s3_url):
    url, opts = s3_url
    imgs = make_images(N)
    ds = lakeformat.empty(url, creds=opts)
    with ds:
        ds.create_tensor("images", htype="image", dtype="uint8", chunk_compression="lz4", max_chunk_size=8 * 1024)
        ds.create_tensor("labels", htype="class_label")
        ds.images.extend(imgs)
        ds.labels.extend((np.arange(N) % 5).astype(np.uint32))
    release_branch_lock(ds.storage, ds.branch)
    return url, imgs


def _epoch(loader, imgs):
    seen = []
    for b in loader:
        idx = b["index"].numpy()
        assert (b["images"].numpy() == imgs[idx]).all()
        assert (b["labels"].numpy().ravel() == idx % 5).all()
        seen.extend(idx.tolist())
    return seen


@pytest.mark.parametrize("num_workers", [0, 2])
def test_workers_read_only_chunks(s3_images, s3_server, num_workers):
    url, imgs = s3_images
    with FaultProxy(s3_server.port) as proxy:
        ds = lakeformat.load(url, creds=s3_server.storage_options_for(proxy.endpoint_url), read_only=True)
        assert ds.images.engine.chunk_ids.num_chunks > 3
        loader = dataloader(ds).batch(16).shuffle(seed=1).pytorch(num_workers=num_workers, return_index=True)
        proxy.keep_log = True  # from here on: what the epoch itself asks for
        assert sorted(_epoch(loader, imgs)) == list(range(N))
        log = list(proxy.log)
    paths = [p.split("?")[0] for _, _, p, _ in log]
    assert {m for _, m, _, _ in log} == {"GET"}
    assert all("/chunks/" in p for p in paths), [p for p in paths if "/chunks/" not in p]
    wanted = {k for t in (ds.images, ds.labels) for k in map(t.engine.chunk_key_of, t.engine.chunk_ids.names())}
    assert {p.split("/", 2)[2].split("/", 1)[1] for p in paths} == wanted


def test_chunks_are_still_checked_in_workers(s3_images, s3_server):
    url, _ = s3_images
    ds = lakeformat.load(url, creds=s3_server.storage_options, read_only=True)
    eng = ds.images.engine
    victim = eng.chunk_key_of(eng.chunk_ids.names()[1])
    first_bad, last_bad = int(eng.chunk_ids.first_indices()[1]), int(eng.chunk_ids.rows[1, 1])
    bucket, prefix = url[len("s3://"):].split("/", 1)
    client = s3_server.boto3_client()
    raw = bytearray(client.get_object(Bucket=bucket, Key=f"{prefix}/{victim}")["Body"].read())
    raw[len(raw) // 2] ^= 0x40  # one flipped bit inside the lz4 stream
    client.put_object(Bucket=bucket, Key=f"{prefix}/{victim}", Body=bytes(raw))
    ds = lakeformat.load(url, creds=s3_server.storage_options, read_only=True)
    loader = dataloader(ds).batch(8).pytorch(num_workers=2, tensors=["images"])
    with pytest.raises(SampleLoadError, match="does not match its checksum"):
        for _ in loader:
            pass
    loader = dataloader(ds).batch(8).pytorch(num_workers=2, tensors=["images"], ignore_errors=True, return_index=True)
    seen = [int(i) for b in loader for i in b["index"]]
    assert sorted(seen) == [i for i in range(N) if not first_bad <= i <= last_bad]


def test_chunk_folder_reads_keys_as_the_check_does():
    assert chunk_folder("images/chunks/abc") == ("images", C.FIRST_COMMIT_ID)
    assert chunk_folder("group/images/chunks/abc") == ("group/images", C.FIRST_COMMIT_ID)
    assert chunk_folder("versions/c1/images/chunks/abc") == ("images", "c1")
    assert chunk_folder("versions/c1/g/images/chunks/abc") == ("g/images", "c1")
    assert chunk_folder("images/chunks_index/unsharded") is None
    assert chunk_folder("dataset_meta.json") is None


def test_remote_fetch_threads_bound_the_bytes_in_flight():
    ds = lakeformat.empty("memory://fetch-threads")
    with ds:
        ds.create_tensor("big", htype="image", dtype="uint8", chunk_compression="lz4")
        ds.create_tensor("small", dtype="int64", max_chunk_size=4096)
        ds.big.extend(np.zeros((400, 128, 128, 3), np.uint8))
        ds.small.extend(np.arange(400))
    both = dataloader(ds).pytorch().sources
    only_small = dataloader(ds).pytorch(tensors=["small"]).sources
    # 16 MB chunks: a few in flight; 4 KB chunks: the most threads
    assert 2 <= _remote_fetch_threads(both) <= 3
    assert _remote_fetch_threads(only_small) == 8


def test_side_files_of_earlier_commits_are_gathered_and_used(tmp_path):
    import os

    path = str(tmp_path / "ds")
    ds = lakeformat.empty(path)
    with ds:
        ds.create_tensor("x", dtype="int64", chunk_compression="lz4", max_chunk_size=800)
        ds.x.extend(np.arange(300))
    ds.commit("first")
    with ds:
        ds.x.extend(np.arange(300, 600))
    ds = lakeformat.load(path, read_only=True)
    eng = ds.x.engine
    keys_ = [eng.chunk_key_of(n) for n in eng.chunk_ids.names()]
    folders = {chunk_folder(k) for k in keys_}
    assert len(folders) == 2  # chunks of the first commit's folder and of the head's
    loader = dataloader(ds).batch(50).pytorch(num_workers=2, return_index=True)
    assert all(loader.job.checksums.tables.get(f) is not None for f in folders)
    assert sorted(int(i) for b in loader for i in b["index"]) == list(range(600))
    victim = next(k for k in keys_ if chunk_folder(k)[1] == C.FIRST_COMMIT_ID)
    with open(os.path.join(path, victim), "r+b") as f:
        f.seek(30)
        f.write(b"\xff" * 16)
    ds = lakeformat.load(path, read_only=True)
    with pytest.raises(SampleLoadError, match="does not match its checksum"):
        for _ in dataloader(ds).batch(50).pytorch(num_workers=2):
            pass


def test_workers_over_plain_http_skip_loading_ca_certificates():
    """A worker's filesystem over an http endpoint has nothing to verify: it is made with
    verify=False (aiobotocore would load the CA bundle for it, about 45 ms of CPU per worker
    and epoch). https endpoints, and a verify the user set, stay as they are."""
    from lakeformat.integrations.torch.reader import worker_storage
    from lakeformat.storage import FsspecStorage

    def worker_client(endpoint, **extra):
        opts = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": endpoint, **extra}}
        return worker_storage(FsspecStorage("s3://bucket/ds", opts, read_only=True)).fs.client_kwargs

    assert worker_client("http://127.0.0.1:9000")["verify"] is False
    assert worker_client("http://127.0.0.1:9000")["endpoint_url"] == "http://127.0.0.1:9000"
    assert "verify" not in worker_client("https://s3.example.com")
    assert worker_client("http://127.0.0.1:9000", verify="/etc/ca.pem")["verify"] == "/etc/ca.pem"


def test_epochs_over_http_workers_read_equal_values(s3_images, s3_server):
    """Three epochs in a row through forked workers (their filesystems made without TLS
    verification, their shared buffers anonymous mappings, each epoch ending before its
    workers have exited): every sample once per epoch, with its values."""
    url, imgs = s3_images
    ds = lakeformat.load(url, creds=s3_server.storage_options, read_only=True)
    loader = dataloader(ds).batch(16).shuffle(seed=3).pytorch(num_workers=2, return_index=True)
    for _ in range(3):
        assert sorted(_epoch(loader, imgs)) == list(range(N))


def test_remote_batches_come_from_a_few_reused_slabs(s3_images, s3_server, monkeypatch):
    """From an object store a chunk is read into private memory anyway: no shared chunk
    buffers (every fresh page of shared memory is a fault of its own), each batch copied
    into a slab of one batch that the worker reuses once the main process let go of it. An
    epoch that drops each batch touches no more than the premade slabs' memory."""
    from lakeformat.integrations.torch import slabs

    url, imgs = s3_images
    used = []
    unpack = slabs.SlabUnpacker.unpack

    def spy(self, worker, sb):
        for v in sb.body.values():
            if isinstance(v, slabs.SlabRef):
                used.append((worker, v.slab, v.offset))
        assert not sb.slabs, "a worker made a slab beyond the premade ones"
        return unpack(self, worker, sb)

    monkeypatch.setattr(slabs.SlabUnpacker, "unpack", spy)
    ds = lakeformat.load(url, creds=s3_server.storage_options, read_only=True)
    loader = dataloader(ds).batch(4).pytorch(num_workers=2, tensors=["images"])
    assert loader._chunk_buffer_bytes() == 0
    n = sum(len(b["images"]) for b in loader)
    assert n == N
    per_worker = {w: {s for ww, s, _ in used if ww == w} for w in (0, 1)}
    assert all(0 < len(s) <= loader._slabs_per_worker() for s in per_worker.values()), per_worker
    assert all(s < slabs.SlabAllocator.MAX_SLOTS for _, s, _ in used)
    assert {off for *_, off in used} == {0}  # one batch per slab
