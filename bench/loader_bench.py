"""Loader benchmark: images/s and first-batch latency feeding PyTorch, against the peers.

Same data for everyone (``bench/datasets.py``: N uint8[128,128,3] images + int32 labels),
stored raw (lz4 chunks where the format has it) and as jpeg; 2 workers, batch 64, no shuffle
(every peer's default), one run each, every run in a fresh process with a time cap.

    python3 bench/loader_bench.py                 # full size (20,000 images)
    python3 bench/loader_bench.py --scale 0.05    # smoke run
    python3 bench/loader_bench.py --peers lakeformat,memmap --kinds raw

Peers (venvs from ``bench/setup_peers.sh``): ``lakeformat`` (this repo's ``loaders``),
``deeplake3`` (3.9.52 ``ds.pytorch()``), ``deeplake4`` (4.7.4 ``ds.pytorch()`` under a torch
DataLoader), ``lance`` (pylance's ``LanceDataset``, workers sharding batches), ``memmap`` (a
plain torch ``Dataset`` over one NumPy memmap file; raw only) and, for jpeg, ``decode1``: the
single-process Pillow decode rate of the stored jpeg bytes (the jpeg floor's unit). Then
``lakeformat`` again from S3 (moto's server) behind a proxy adding 20 ms per request.

Floors (printed as ratios): raw >= 5x deeplake3 and >= lance; jpeg >= 0.8 x decode1 x 2;
S3 >= 0.7 x local. Writes ``bench/results/loader-<ts>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
BATCH = 64
WORKERS = 2
JPEG_QUALITY = 90
PY = {"lakeformat": sys.executable, "memmap": sys.executable, "decode1": sys.executable,
      "deeplake3": str(ROOT / ".venvs/deeplake3/bin/python"), "deeplake4": str(ROOT / ".venvs/deeplake4/bin/python"),
      "lance": str(ROOT / ".venvs/lance/bin/python")}


# ----------------------------------------------------------------------------------- writers
def _source(scale: float):
    from datasets import scale_dir

    d = scale_dir(scale)
    if not (d / "images.npy").exists():
        subprocess.run([sys.executable, str(ROOT / "bench/datasets.py"), "--scale", str(scale)], check=True)
    return np.load(d / "images.npy", mmap_mode="r"), np.load(d / "image_labels.npy"), d


def write(peer: str, kind: str, path: str, scale: float) -> None:
    imgs, labels, _ = _source(scale)
    shutil.rmtree(path, ignore_errors=True)
    step = 1000
    if peer in ("lakeformat", "deeplake3"):
        if peer == "lakeformat":
            sys.path.insert(0, str(ROOT))
            import lakeformat as lib
        else:
            import deeplake as lib
        ds = lib.empty(path, overwrite=True)
        with ds:
            if kind == "raw":
                ds.create_tensor("images", htype="image", dtype="uint8", chunk_compression="lz4")
            else:
                ds.create_tensor("images", htype="image", sample_compression="jpeg")
            ds.create_tensor("labels", htype="generic", dtype="int32")
            for i in range(0, len(imgs), step):
                ds.images.extend(np.asarray(imgs[i:i + step]))
                ds.labels.extend(labels[i:i + step])
    elif peer == "deeplake4":
        import deeplake

        ds = deeplake.create(path)
        t = deeplake.types
        ds.add_column("images", t.Array(t.UInt8(), shape=[128, 128, 3]) if kind == "raw" else t.Image(dtype="uint8", sample_compression="jpeg"))
        ds.add_column("labels", t.Int32())
        for i in range(0, len(imgs), step):
            ds.append({"images": np.asarray(imgs[i:i + step]), "labels": labels[i:i + step]})
        ds.commit()
    elif peer == "lance":
        import io

        import lance
        import pyarrow as pa
        from PIL import Image

        n = len(imgs)
        if kind == "raw":
            flat = pa.array(np.asarray(imgs).reshape(-1), pa.uint8())
            col = pa.FixedSizeListArray.from_arrays(flat, 128 * 128 * 3)
        else:
            blobs = []
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(np.asarray(imgs[i])).save(buf, format="JPEG", quality=JPEG_QUALITY)
                blobs.append(buf.getvalue())
            col = pa.array(blobs, pa.binary())
        lance.write_dataset(pa.table({"images": col, "labels": pa.array(labels, pa.int32())}), path, mode="create")
    else:
        raise ValueError(peer)


# ----------------------------------------------------------------------------------- loaders
def _jpeg_decode(b: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(b)))


def _lance_to_tensor(batch, *args, kind="raw", **kwargs):
    import torch

    col = batch.column("images")
    if kind == "raw":
        # copied out of Arrow's buffer: torch cannot move foreign memory to shared memory
        x = torch.from_numpy(col.values.to_numpy(zero_copy_only=False).reshape(len(col), 128, 128, 3).copy())
    else:
        x = torch.from_numpy(np.stack([_jpeg_decode(b) for b in col.to_pylist()]))
    return {"images": x, "labels": torch.from_numpy(batch.column("labels").to_numpy().copy())}


def _lance_shards_class():
    import torch

    class LanceShards(torch.utils.data.IterableDataset):
        def __init__(self, path, kind):
            self.path, self.kind = path, kind

        def __iter__(self):
            import functools

            from lance.torch.data import LanceDataset

            info = torch.utils.data.get_worker_info()
            rank, world = (info.id, info.num_workers) if info else (0, 1)
            ds = LanceDataset(self.path, batch_size=BATCH, columns=["images", "labels"], shard_granularity="batch",
                              rank=rank, world_size=world, auto_detect_rank=False,
                              to_tensor_fn=functools.partial(_lance_to_tensor, kind=self.kind))
            yield from ds

    return LanceShards


def _LanceShards(path, kind):
    return _lance_shards_class()(path, kind)


def make_loader(peer: str, kind: str, path: str, scale: float, creds=None):
    import torch

    if peer == "lakeformat":
        sys.path.insert(0, str(ROOT))
        import lakeformat
        from loaders import dataloader

        ds = lakeformat.load(path, read_only=True, creds=creds)
        return dataloader(ds).batch(BATCH).pytorch(num_workers=WORKERS, tensors=["images", "labels"])
    if peer == "deeplake3":
        import deeplake

        ds = deeplake.load(path, read_only=True)
        return ds.pytorch(num_workers=WORKERS, batch_size=BATCH, tensors=["images", "labels"], return_index=False)
    if peer == "deeplake4":
        import deeplake

        ds = deeplake.open_read_only(path)
        return torch.utils.data.DataLoader(ds.pytorch(), batch_size=BATCH, num_workers=WORKERS)
    if peer == "lance":
        # lance's runtime does not survive fork (a dataset opened in the parent segfaults in
        # the workers): each worker opens its own LanceDataset, sharded by batch
        return torch.utils.data.DataLoader(_LanceShards(path, kind), batch_size=None, num_workers=WORKERS)
    if peer == "memmap":
        _, _, d = _source(scale)

        class MemmapImages(torch.utils.data.Dataset):
            def __init__(self):
                self.images = None
                self.labels = np.load(d / "image_labels.npy")

            def __len__(self):
                return len(self.labels)

            def __getitem__(self, i):
                if self.images is None:  # opened in the worker
                    self.images = np.load(d / "images.npy", mmap_mode="r")
                return {"images": torch.from_numpy(np.array(self.images[i])), "labels": int(self.labels[i])}

        return torch.utils.data.DataLoader(MemmapImages(), batch_size=BATCH, num_workers=WORKERS)
    raise ValueError(peer)


def _count(batch) -> int:
    if isinstance(batch, dict):
        x = batch["images"]
    else:
        x = batch[0]
    return len(x)


def run_one(peer: str, kind: str, path: str, scale: float, max_s: float, creds=None) -> dict:
    if peer == "decode1":
        sys.path.insert(0, str(ROOT))
        import lakeformat

        ds = lakeformat.load(path, read_only=True)
        n = len(ds)
        datas, _ = ds.images.engine.read_items_bytes(np.arange(n, dtype=np.int64))
        blobs = [bytes(b) for b in datas]
        t0 = time.perf_counter()
        done = 0
        for b in blobs:
            _jpeg_decode(b)
            done += 1
            if time.perf_counter() - t0 > max_s:
                break
        dt = time.perf_counter() - t0
        return {"images_per_s": done / dt, "first_batch_s": None, "images": done, "seconds": dt}
    import torch  # noqa: F401 - imports are not part of the first-batch latency

    if peer in ("lakeformat",):
        sys.path.insert(0, str(ROOT))
        import lakeformat  # noqa: F401
        import loaders  # noqa: F401
    elif peer in ("deeplake3", "deeplake4"):
        import deeplake  # noqa: F401
    elif peer == "lance":
        import lance.torch.data  # noqa: F401
    t0 = time.perf_counter()
    loader = make_loader(peer, kind, path, scale, creds)
    first = None
    n = 0
    capped = False
    for batch in loader:
        n += _count(batch)
        if first is None:
            first = time.perf_counter() - t0
        if time.perf_counter() - t0 > max_s:
            capped = True
            break
    dt = time.perf_counter() - t0
    return {"images_per_s": n / dt, "first_batch_s": first, "images": n, "seconds": dt, "capped": capped}


# ----------------------------------------------------------------------------------- driver
def _sub(peer: str, args: list, timeout: float) -> dict:
    cmd = [PY[peer], str(Path(__file__).resolve())] + args
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f}s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(lines[-1])


def _s3_copy(local: str, server, bucket: str, prefix: str) -> str:
    import s3fs

    fs = s3fs.S3FileSystem(**server.storage_options)
    fs.put(local.rstrip("/") + "/", f"{bucket}/{prefix}", recursive=True)
    return f"s3://{bucket}/{prefix}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--peers", default="lakeformat,memmap,deeplake3,deeplake4,lance")
    ap.add_argument("--kinds", default="raw,jpeg")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="cap per run; a capped run reports its rate so far")
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--latency", type=float, default=0.020)
    # internal: one run in a peer's venv
    ap.add_argument("--write", nargs=3, metavar=("PEER", "KIND", "PATH"))
    ap.add_argument("--run", nargs=3, metavar=("PEER", "KIND", "PATH"))
    ap.add_argument("--creds")
    a = ap.parse_args()
    if a.write:
        t = time.perf_counter()
        write(*a.write, scale=a.scale)
        print(json.dumps({"write_s": time.perf_counter() - t}))
        return
    if a.run:
        creds = json.loads(a.creds) if a.creds else None
        print(json.dumps(run_one(*a.run, scale=a.scale, max_s=a.max_seconds, creds=creds)))
        return

    _source(a.scale)
    work = ROOT / ".bench_data" / f"loader-{a.scale:g}"
    work.mkdir(parents=True, exist_ok=True)
    peers = a.peers.split(",")
    kinds = a.kinds.split(",")
    results: dict = {"scale": a.scale, "batch": BATCH, "workers": WORKERS, "runs": {}}
    for kind in kinds:
        for peer in peers + (["decode1"] if kind == "jpeg" else []):
            if peer == "memmap" and kind != "raw":
                continue
            store = "lakeformat" if peer == "decode1" else peer
            path = str(work / f"{store}-{kind}")
            if peer not in ("memmap",) and not (Path(path) / ".written").exists():
                w = _sub(store, ["--scale", str(a.scale), "--write", store, kind, path], 1800)
                if "error" in w:
                    print(f"[loader-bench] {kind:5s} {peer:10s} write FAILED: {w['error']}", flush=True)
                    results["runs"][f"{kind}/{peer}"] = w
                    continue
                (Path(path) / ".written").write_text("ok")
            r = _sub(peer, ["--scale", str(a.scale), "--max-seconds", str(a.max_seconds), "--run", peer, kind, path], a.max_seconds + 300)
            results["runs"][f"{kind}/{peer}"] = r
            _print_row(kind, peer, r)
    if not a.no_s3 and "lakeformat" in peers:
        sys.path.insert(0, str(ROOT))
        from tests.support.services import MotoS3

        with MotoS3() as server:
            bucket = server.make_bucket("loader-bench")
            proxy = server.latency_proxy(a.latency)
            for kind in kinds:
                url = _s3_copy(str(work / f"lakeformat-{kind}"), server, bucket, kind)
                creds = server.storage_options_for(proxy.endpoint_url)
                r = _sub("lakeformat", ["--scale", str(a.scale), "--max-seconds", str(a.max_seconds), "--creds", json.dumps(creds),
                                        "--run", "lakeformat", kind, url], a.max_seconds + 300)
                results["runs"][f"{kind}/lakeformat-s3"] = r
                _print_row(kind, f"lakeformat-s3 (+{a.latency * 1000:.0f} ms)", r)
    _print_ratios(results)
    out = ROOT / "bench" / "results" / f"loader-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"[loader-bench] wrote {out.relative_to(ROOT)}")


def _print_row(kind: str, peer: str, r: dict) -> None:
    if "error" in r:
        print(f"[loader-bench] {kind:5s} {peer:24s} FAILED: {r['error']}", flush=True)
        return
    fb = f"{r['first_batch_s']:.3f} s" if r.get("first_batch_s") is not None else "-"
    cap = " (capped)" if r.get("capped") else ""
    print(f"[loader-bench] {kind:5s} {peer:24s} {r['images_per_s']:9.0f} images/s  first batch {fb}  ({r['images']} images in {r['seconds']:.1f} s){cap}", flush=True)


def _rate(results: dict, key: str):
    r = results["runs"].get(key)
    return None if not r or "error" in r else r["images_per_s"]


def _print_ratios(results: dict) -> None:
    print("\n[loader-bench] floors")
    ours = _rate(results, "raw/lakeformat")
    checks = []
    if ours:
        for peer, need in (("deeplake3", 5.0), ("lance", 1.0), ("deeplake4", None), ("memmap", None)):
            p = _rate(results, f"raw/{peer}")
            if p:
                checks.append((f"raw: lakeformat / {peer}", ours / p, need))
    jo = _rate(results, "jpeg/lakeformat")
    d1 = _rate(results, "jpeg/decode1")
    if jo and d1:
        checks.append((f"jpeg: lakeformat / ({WORKERS} x single-process decode)", jo / (WORKERS * d1), 0.8))
    if jo:
        for peer in ("deeplake3", "deeplake4", "lance"):
            p = _rate(results, f"jpeg/{peer}")
            if p:
                checks.append((f"jpeg: lakeformat / {peer}", jo / p, None))
    for kind in ("raw", "jpeg"):
        s3, loc = _rate(results, f"{kind}/lakeformat-s3"), _rate(results, f"{kind}/lakeformat")
        if s3 and loc:
            checks.append((f"{kind}: s3 / local", s3 / loc, 0.7))
    for name, ratio, need in checks:
        verdict = "" if need is None else ("  ok" if ratio >= need else f"  BELOW floor {need:g}")
        print(f"  {name:48s} {ratio:7.2f}{'' if need is None else f' (floor {need:g})'}{verdict}")
    results["ratios"] = {name: ratio for name, ratio, _ in checks}


if __name__ == "__main__":
    main()
