"""The loader from S3 with added latency, against what the same rig can serve.

moto's server holds a dataset of N uint8[128,128,3] images (lz4 chunks) and their labels, and
a proxy in its own process (tests/support/fault_proxy.py) adds ``--s3-latency-ms`` (20) to
every request. Both measurements go through that proxy, in the same run, alternating:

- ceiling: ``fs.cat`` with s3fs of every chunk the loader reads (images and labels: the same
  bytes), at concurrency 8, 16, 32 and 64 (the best counts), as images/s: the most the
  emulator, the proxy and the network stack deliver, with no decompression, decoding or
  collation. Listing the chunks is not timed;
- loader: ``dataloader(ds).batch(64).pytorch(num_workers=2)`` over the whole dataset, timed
  from an opened dataset (opening it, the loader's counterpart of the listing, is reported
  apart) to the last batch: building the loader (its metadata reads), starting the workers,
  fetching, decompressing and collating every image, the first batch's wait included. A
  second figure leaves the building out (a loader made before the timer, as a training
  script makes it once): the counted ratio keeps it in.

One untimed run of each comes first (connections, imports, moto's first reads); then
``--repeat`` runs of each, alternating, the best of each counting. The ratio loader / ceiling
shows the loader hiding the latency (its floor: 0.8). Each line also gives the CPU seconds per
1000 images of the client (this process and its loader workers), moto and the proxy: where
cores are shared (a loaded 2-core machine), a client that decompresses and collates takes CPU
from the emulator, and the ratio then measures that, not latency hiding: read the two
together. Small datasets weigh the fixed costs (opening, worker start, the first chunk's
wait) more: 12,000 images show the steady state better than 2,000.

    .venv/bin/python bench/s3_loader_bench.py                    # 2,000 images, 20 ms
    .venv/bin/python bench/s3_loader_bench.py --images 12000 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FLOOR = 0.8


def _images(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    base = ((xx + yy) % 256).astype(np.uint8)
    out = np.empty((n, 128, 128, 3), np.uint8)
    for i in range(n):
        out[i] = (base[..., None] + np.uint8(i % 251) + rng.integers(0, 16, (128, 128, 3), dtype=np.uint8))
    return out


def _write(url: str, opts: dict, n: int) -> None:
    import lakeformat
    from lakeformat.version_control.locks import release_branch_lock

    ds = lakeformat.empty(url, creds=opts, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", dtype="uint8", chunk_compression="lz4")
        ds.create_tensor("labels", htype="class_label")
    step = 500
    for a in range(0, n, step):
        with ds:
            ds.images.extend(_images(min(step, n - a)))
            ds.labels.extend((np.arange(a, min(a + step, n)) % 10).astype(np.uint32))
    release_branch_lock(ds.storage, ds.branch)


def _start_proxy(target_port: int, latency_s: float) -> "tuple[subprocess.Popen, int]":
    p = subprocess.Popen([sys.executable, "-m", "tests.support.fault_proxy", "--target-port", str(target_port),
                          "--latency-s", str(latency_s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return p, int(p.stdout.readline())


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and its children that it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class _Cpu:
    """CPU seconds spent by this process (workers included, once joined), moto and the proxy
    during a block: on a machine whose cores are shared, a client that spends more CPU leaves
    less to the emulator, and the ratio shows it."""

    def __init__(self, pids: dict):
        self.pids = pids

    def __enter__(self) -> "_Cpu":
        import resource

        self.t0 = {k: _proc_cpu_s(p) for k, p in self.pids.items()}
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.c0 = time.process_time() + ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc) -> None:
        import resource

        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = {"client": time.process_time() + ru.ru_utime + ru.ru_stime - self.c0}
        self.cpu.update({k: _proc_cpu_s(p) - self.t0[k] for k, p in self.pids.items()})


def chunk_paths(opts: dict, bucket_prefix: str) -> list:
    """Every chunk of the dataset (images and labels: what the loader reads)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **opts)
    return [p for p in fs.find(bucket_prefix) if "/chunks/" in p]


def ceiling(opts: dict, paths: list, n: int, concurrencies: tuple = (8, 16, 32, 64)) -> dict:
    """images/s of fetching every chunk in `paths`, best concurrency."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **opts)
    best = None
    per = {}
    for conc in concurrencies:
        t = time.perf_counter()
        got = fs.cat(paths, batch_size=conc)
        dt = time.perf_counter() - t
        per[conc] = n / dt
        size = sum(len(v) for v in got.values())
        if best is None or n / dt > best["images_per_s"]:
            best = {"images_per_s": n / dt, "concurrency": conc, "chunks": len(paths), "bytes": size, "seconds": dt}
    best["by_concurrency"] = per
    return best


def loader_rate(url: str, opts: dict) -> dict:
    """images/s of one epoch of the loader, from an opened dataset to the last batch."""
    import lakeformat
    from loaders import dataloader

    t = time.perf_counter()
    ds = lakeformat.load(url, creds=opts, read_only=True)
    t_open = time.perf_counter() - t
    t = time.perf_counter()
    n = 0
    first = None
    loader = dataloader(ds).batch(64).pytorch(num_workers=2)
    t_build = time.perf_counter() - t
    for b in loader:
        n += len(b["images"])
        if first is None:
            first = time.perf_counter() - t
    dt = time.perf_counter() - t
    import multiprocessing

    for p in multiprocessing.active_children():  # the epoch ends before its workers exit: their CPU counts once joined
        p.join()
    return {"images_per_s": n / dt, "images": n, "seconds": dt, "first_batch_s": first, "open_s": t_open, "build_s": t_build,
            "iteration_images_per_s": n / (dt - t_build)}


def _per_k(cpu: dict, images: int) -> str:
    return ", ".join(f"{k} {v * 1000 / images:.2f}" for k, v in cpu.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--s3-latency-ms", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each measurement, alternating; the best counts")
    a = ap.parse_args()
    from tests.support.services import MotoS3

    load_start = os.getloadavg()
    with MotoS3() as server:
        bucket = server.make_bucket("s3-loader-bench")
        url = f"s3://{bucket}/images"
        t = time.perf_counter()
        _write(url, server.storage_options, a.images)
        print(f"[s3-loader-bench] wrote {a.images} images in {time.perf_counter() - t:.1f} s", flush=True)
        proc, port = _start_proxy(server.port, a.s3_latency_ms / 1000)
        try:
            opts = server.storage_options_for(f"http://127.0.0.1:{port}")
            ceilings, loads = [], []
            pids = {"moto": server.process.pid, "proxy": proc.pid}
            paths = chunk_paths(opts, f"{bucket}/images")
            ceiling(opts, paths, a.images, (16,))  # warm-up, not counted
            loader_rate(url, opts)
            for _ in range(a.repeat):
                with _Cpu(pids) as cpu:
                    ceilings.append(ceiling(opts, paths, a.images))
                ceilings[-1]["cpu_s"] = cpu.cpu
                print(f"[s3-loader-bench] ceiling: {ceilings[-1]['images_per_s']:8.0f} images/s "
                      f"(fs.cat of {ceilings[-1]['chunks']} chunks, best at concurrency {ceilings[-1]['concurrency']}; "
                      + ", ".join(f"{c}: {r:.0f}" for c, r in ceilings[-1]["by_concurrency"].items()) + ")"
                      + f"  cpu s per 1000 images: {_per_k(cpu.cpu, 4 * a.images)}", flush=True)
                with _Cpu(pids) as cpu:
                    loads.append(loader_rate(url, opts))
                loads[-1]["cpu_s"] = cpu.cpu
                print(f"[s3-loader-bench] loader:  {loads[-1]['images_per_s']:8.0f} images/s "
                      f"({loads[-1]['images']} images in {loads[-1]['seconds']:.2f} s, of which building the loader "
                      f"{loads[-1]['build_s']:.2f} s; first batch {loads[-1]['first_batch_s']:.2f} s; "
                      f"open {loads[-1]['open_s']:.2f} s, not counted)"
                      f"  cpu s per 1000 images: {_per_k(cpu.cpu, a.images)}", flush=True)
        finally:
            proc.stdin.close()
            proc.wait(10)
    c = max(x["images_per_s"] for x in ceilings)
    l_ = max(x["images_per_s"] for x in loads)
    ratio = l_ / c
    # each loader run against the ceiling measured just before it (the same machine load)
    pairs = [x["images_per_s"] / y["images_per_s"] for x, y in zip(loads, ceilings)]
    verdict = "ok" if ratio >= FLOOR else f"BELOW floor {FLOOR}"
    it_ratio = max(x["iteration_images_per_s"] for x in loads) / c
    print("[s3-loader-bench] per run: " + ", ".join(f"{r:.2f}" for r in pairs) + f" (median {float(np.median(pairs)):.2f})")
    print(f"[s3-loader-bench] loader / ceiling at +{a.s3_latency_ms:g} ms, best of each: {ratio:.2f} (floor {FLOOR}) {verdict}; "
          f"load average {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores")
    print(f"[s3-loader-bench] the same, iteration only (a loader built before the timer: its metadata reads left out): {it_ratio:.2f}")
    out = ROOT / "bench" / "results" / f"s3-loader-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"images": a.images, "latency_ms": a.s3_latency_ms, "ceiling": ceilings, "loader": loads,
                               "ratio": ratio, "ratio_per_run": pairs, "iteration_ratio": it_ratio, "load_start": load_start, "load": os.getloadavg()}, indent=2))
    print(f"[s3-loader-bench] wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
