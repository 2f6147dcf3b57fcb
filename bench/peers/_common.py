"""The protocol every peer script follows, so each peer only says *how* it stores.

A peer script defines a subclass of :class:`Peer` and calls ``main(ThatClass)``. The
harness (``bench/format_bench.py``) runs it with the peer's own venv python::

    python bench/peers/lance.py --workload images_png --data .bench_data \
        --work /tmp/w --scale 0.05

and reads the last line of stdout, one JSON object (see :func:`main`).

Steps, each in this one process:

1. load the cached input (``bench/datasets.py``) fully into memory — untimed;
2. **write**: ``peer.write(path, workload, cols)`` — timed, includes anything the
   peer's API needs done to our NumPy input (lists of str, PNG encoding with
   Pillow for Arrow peers, building an Arrow table) and the final flush/commit;
3. **random read**: a fresh ``peer.open`` (timed apart as ``open_s``), then
   ``peer.read_rows(handle, idx)`` for the 1,000 seeded indices as one batch —
   every column of those rows as NumPy;
4. **full read**: another fresh open, then ``peer.read_all(handle)`` — every
   column fully as NumPy, images decoded into one uint8[N,128,128,3];
5. verification against the input (untimed); bytes on disk.

Imports only NumPy and the standard library: it runs in every peer venv.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

WORKLOADS = ("tabular", "images_raw", "images_none", "images_png", "embeddings")
IMAGE_SHAPE = (128, 128, 3)

Columns = dict[str, np.ndarray]


class Peer:
    """One storage format. Subclasses fill in the four steps."""

    name = "peer"

    def version(self) -> str:
        raise NotImplementedError

    def compression(self, workload: str) -> str:
        """Human-readable statement of what compression this peer uses."""
        raise NotImplementedError

    def write(self, path: str, workload: str, cols: Columns) -> None:
        raise NotImplementedError

    def open(self, path: str) -> Any:
        raise NotImplementedError

    def read_all(self, handle: Any, workload: str) -> Columns:
        raise NotImplementedError

    def read_rows(self, handle: Any, workload: str, idx: np.ndarray) -> Columns:
        raise NotImplementedError

    def notes(self, workload: str) -> str:
        return ""


def resolve_data_dir(data: str, scale: float) -> Path:
    """``--data`` may be the data root (``.bench_data``) or one scale's folder."""
    d = Path(data)
    if (d / "meta.json").exists():
        return d
    d = d / f"scale-{scale:g}"
    if not (d / "meta.json").exists():
        raise FileNotFoundError(f"no benchmark data in {d}; run bench/datasets.py --scale {scale:g}")
    return d


def load_input(d: Path, workload: str) -> Columns:
    """The workload's columns, fully in memory (a read of the cache is not timed)."""
    if workload == "tabular":
        with np.load(d / "tabular.npz") as z:
            return {k: z[k] for k in ("id", "value", "text", "label")}
    if workload in ("images_raw", "images_none", "images_png"):
        return {"image": np.load(d / "images.npy"), "label": np.load(d / "image_labels.npy")}
    if workload == "embeddings":
        return {"embedding": np.load(d / "embeddings.npy")}
    raise ValueError(workload)


def disk_bytes(path: str) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _normalise(name: str, a: Any) -> np.ndarray:
    if name == "text":
        return np.asarray([s if isinstance(s, str) else s.decode() for s in np.asarray(a, dtype=object).ravel()],
                          dtype=object)
    a = np.asarray(a)
    if name in ("id", "value", "label") and a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    return a


def verify(expected: Columns, got: Columns) -> str | None:
    """None when ``got`` equals ``expected`` column by column, else the first difference."""
    for name, want in expected.items():
        if name not in got:
            return f"column {name!r} missing from the read"
        have = _normalise(name, got[name])
        want_n = _normalise(name, want)
        if have.shape != want_n.shape:
            return f"column {name!r}: shape {have.shape} != {want_n.shape}"
        if not np.array_equal(have, want_n):
            return f"column {name!r}: values differ"
    return None


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(peer: Peer, workload: str, data_dir: Path, work: Path) -> dict[str, Any]:
    meta = json.loads((data_dir / "meta.json").read_text())["workloads"][workload]
    cols = load_input(data_dir, workload)
    idx = np.load(data_dir / f"random_idx-{workload}.npy")
    rows = len(next(iter(cols.values())))
    assert rows == meta["rows"], (rows, meta["rows"])
    work.mkdir(parents=True, exist_ok=True)
    path = str(work / f"{peer.name}-{workload}")

    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    peer.write(path, workload, cols)
    write_s, write_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    gc.collect()

    t0 = time.perf_counter()
    h = peer.open(path)
    open_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    picked = peer.read_rows(h, workload, idx)
    random_s, random_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    del h
    gc.collect()
    problem = verify({k: v[idx] for k, v in cols.items()}, picked)
    del picked
    gc.collect()

    h = peer.open(path)
    t0, c0 = time.perf_counter(), time.process_time()
    full = peer.read_all(h, workload)
    read_s, read_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    del h
    problem = problem or verify(cols, full)
    del full
    gc.collect()

    raw = meta["raw_bytes"]
    n_rand = len(idx)
    raw_rand = raw * n_rand / rows
    mb = 1e6
    return {
        "peer": peer.name,
        "version": peer.version(),
        "python": platform.python_version(),
        "workload": workload,
        "rows": rows,
        "raw_bytes": raw,
        "compression": peer.compression(workload),
        "write_s": write_s,
        "open_s": open_s,
        "read_s": read_s,
        "random_s": random_s,
        "random_rows": n_rand,
        # CPU seconds of this process, all threads: less sensitive than wall
        # time to other load on the machine, and shows how many cores a peer used.
        "write_cpu_s": write_cpu_s,
        "read_cpu_s": read_cpu_s,
        "random_cpu_s": random_cpu_s,
        "bytes_on_disk": disk_bytes(path),
        "write_rows_s": rows / write_s,
        "write_MBps": raw / mb / write_s,
        "read_rows_s": rows / read_s,
        "read_MBps": raw / mb / read_s,
        "random_rows_s": n_rand / random_s,
        "random_MBps": raw_rand / mb / random_s,
        "verified": problem is None,
        "verify_error": problem,
        "peak_rss_MB": round(_rss_peak_mb(), 1),
        "notes": peer.notes(workload),
    }


def main(peer_class: type[Peer], argv: list[str] | None = None) -> int:
    """Parse the shared CLI, build the peer, run the protocol, print one JSON line.

    On failure the JSON line has ``"error"`` (and the traceback goes to stderr)
    and the exit code is 1, so the harness can report it and move on.
    """
    ap = argparse.ArgumentParser(description=f"format benchmark peer: {peer_class.name}")
    ap.add_argument("--workload", required=True, choices=WORKLOADS)
    ap.add_argument("--data", required=True, help="data root (.bench_data) or one scale folder")
    ap.add_argument("--work", required=True, help="scratch folder for the written dataset")
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args(argv)
    try:
        peer = peer_class()  # imports the library: an import failure is reported too
        result = run(peer, args.workload, resolve_data_dir(args.data, args.scale), Path(args.work))
        result["scale"] = args.scale
        print(json.dumps(result), flush=True)
        return 0
    except BaseException as exc:  # noqa: BLE001 - the harness wants every failure as JSON
        traceback.print_exc()
        print(json.dumps({"peer": peer_class.name, "workload": args.workload, "scale": args.scale,
                          "error": f"{type(exc).__name__}: {exc}"[:2000]}), flush=True)
        return 1


def enable_import_of(path: str | os.PathLike) -> None:
    """Put ``path`` first on sys.path (used by the lakeformat peer for the repo root)."""
    p = str(Path(path).resolve())
    if p not in sys.path:
        sys.path.insert(0, p)
