"""Deterministic benchmark data, generated once and cached under ``.bench_data/``.

Every peer reads the same cached files, so every format stores byte-identical
input. Needs only NumPy, so it runs under the project's python or any peer
venv. Files for scale ``S`` live in ``.bench_data/scale-S/``:

* ``tabular.npz``     ``id`` int64, ``value`` float64, ``text`` <U24 (15-24
  ASCII chars), ``label`` int32 in [0, 10)  — 1,000,000 rows at scale 1.
* ``images.npy``      uint8[N,128,128,3]: smooth gradients + shapes + noise, so
  PNG compresses the way it does on real pictures (not like pure noise);
  ``image_labels.npy`` int32[N] — 20,000 images at scale 1 (~0.98 GB raw).
* ``embeddings.npy``  float32[N,384] — 200,000 rows at scale 1.
* ``random_idx-<workload>.npy``  the 1,000 row indices (seeded, unsorted,
  distinct) that every peer reads as one batch in the random-read figure.
* ``meta.json``       row counts and raw byte sizes per workload.

Usage::

    python bench/datasets.py                 # full size
    python bench/datasets.py --small         # 1/20 of each, for smoke runs
    python bench/datasets.py --scale 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import string
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_ROOT = ROOT / ".bench_data"
SMALL_SCALE = 0.05

FULL_ROWS = {"tabular": 1_000_000, "images": 20_000, "embeddings": 200_000}
IMAGE_SHAPE = (128, 128, 3)
EMBEDDING_DIM = 384
N_CLASSES = 10
TEXT_MIN, TEXT_MAX = 15, 24
RANDOM_READ_ROWS = 1_000
SEED = 20240601

# Workloads as the peers see them; both image workloads share one source.
WORKLOAD_SOURCE = {
    "tabular": "tabular",
    "images_raw": "images",
    "images_none": "images",
    "images_png": "images",
    "embeddings": "embeddings",
}
WORKLOADS = tuple(WORKLOAD_SOURCE)


def scale_dir(scale: float, data_root: Path = DEFAULT_DATA_ROOT) -> Path:
    """Folder holding the cached files for one scale, e.g. ``.bench_data/scale-0.05``."""
    return Path(data_root) / f"scale-{scale:g}"


def rows_at(source: str, scale: float) -> int:
    return max(RANDOM_READ_ROWS, int(round(FULL_ROWS[source] * scale)))


def _tabular(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ids = np.arange(n, dtype=np.int64) * 7 + 1_000_000_000
    values = rng.standard_normal(n) * 1000.0
    labels = rng.integers(0, N_CLASSES, size=n, dtype=np.int32)
    alphabet = np.frombuffer((string.ascii_letters + string.digits + " _-").encode(), dtype=np.uint8)
    lengths = rng.integers(TEXT_MIN, TEXT_MAX + 1, size=n)
    codes = alphabet[rng.integers(0, len(alphabet), size=(n, TEXT_MAX))]
    codes[np.arange(TEXT_MAX)[None, :] >= lengths[:, None]] = 0  # NUL-pad: 'S' strips it
    text = codes.view(f"S{TEXT_MAX}").ravel().astype(f"U{TEXT_MAX}")
    return {"id": ids, "value": values.astype(np.float64), "text": text, "label": labels}


def _image_batch(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` synthetic pictures: a colour gradient, 3-6 flat shapes, mild noise."""
    h, w, _ = IMAGE_SHAPE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= h
    xx /= w
    out = np.empty((n,) + IMAGE_SHAPE, dtype=np.uint8)
    for i in range(n):
        # Smooth background: per-channel linear gradient plus a low-frequency wave.
        a = rng.uniform(-120, 120, size=(3, 1, 1)).astype(np.float32)
        b = rng.uniform(-120, 120, size=(3, 1, 1)).astype(np.float32)
        c = rng.uniform(40, 215, size=(3, 1, 1)).astype(np.float32)
        f = rng.uniform(1, 4)
        img = c + a * xx + b * yy + 25 * np.sin(f * np.pi * (xx + yy))[None]
        for _ in range(rng.integers(3, 7)):
            colour = rng.uniform(0, 255, size=(3, 1, 1)).astype(np.float32)
            cy, cx = rng.uniform(0, 1, size=2)
            r = rng.uniform(0.05, 0.25)
            if rng.random() < 0.5:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            else:
                mask = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r * rng.uniform(0.5, 2))
            img = np.where(mask[None], colour, img)
        img += rng.normal(0, 4.0, size=img.shape).astype(np.float32)
        out[i] = np.clip(img, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return out


def _write_images(path: Path, n: int, rng: np.random.Generator) -> None:
    # Written in blocks through a memmap so generation never holds 1 GB twice.
    arr = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), mode="w+", dtype=np.uint8,
                                    shape=(n,) + IMAGE_SHAPE)
    block = 500
    for start in range(0, n, block):
        stop = min(n, start + block)
        arr[start:stop] = _image_batch(stop - start, rng)
    arr.flush()
    del arr
    os.replace(path.with_suffix(".tmp.npy"), path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def raw_bytes(source: str, d: Path) -> int:
    """Size of the data as plain arrays: what the MB/s figures divide by."""
    if source == "tabular":
        with np.load(d / "tabular.npz") as z:
            text_bytes = int(np.char.str_len(z["text"]).sum())
            n = len(z["id"])
        return n * (8 + 8 + 4) + text_bytes
    if source == "images":
        n = np.load(d / "images.npy", mmap_mode="r").shape[0]
        return n * int(np.prod(IMAGE_SHAPE)) + n * 4
    n = np.load(d / "embeddings.npy", mmap_mode="r").shape[0]
    return n * EMBEDDING_DIM * 4


def ensure(scale: float = 1.0, data_root: Path = DEFAULT_DATA_ROOT, log=print) -> Path:
    """Generate (if missing) every cached file for ``scale``; return its folder.

    >>> d = ensure(0.05)            # doctest: +SKIP
    >>> sorted(p.name for p in d.iterdir())[:2]  # doctest: +SKIP
    ['embeddings.npy', 'image_labels.npy']
    """
    d = scale_dir(scale, data_root)
    d.mkdir(parents=True, exist_ok=True)
    # One generator per source, seeded independently, so regenerating one file
    # never changes another.
    if not (d / "tabular.npz").exists():
        t0 = time.perf_counter()
        cols = _tabular(rows_at("tabular", scale), np.random.default_rng([SEED, 1]))
        tmp = d / "tabular.tmp.npz"
        np.savez(tmp, **cols)
        os.replace(tmp, d / "tabular.npz")
        log(f"[datasets] tabular: {len(cols['id']):,} rows in {time.perf_counter() - t0:.1f}s")
    if not (d / "images.npy").exists() or not (d / "image_labels.npy").exists():
        t0 = time.perf_counter()
        n = rows_at("images", scale)
        _write_images(d / "images.npy", n, np.random.default_rng([SEED, 2]))
        labels = np.random.default_rng([SEED, 3]).integers(0, N_CLASSES, size=n, dtype=np.int32)
        _save_npy(d / "image_labels.npy", labels)
        log(f"[datasets] images: {n:,} in {time.perf_counter() - t0:.1f}s")
    if not (d / "embeddings.npy").exists():
        t0 = time.perf_counter()
        n = rows_at("embeddings", scale)
        rng = np.random.default_rng([SEED, 4])
        emb = rng.standard_normal((n, EMBEDDING_DIM), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        _save_npy(d / "embeddings.npy", emb)
        del emb
        log(f"[datasets] embeddings: {n:,} in {time.perf_counter() - t0:.1f}s")
    for workload, source in WORKLOAD_SOURCE.items():
        p = d / f"random_idx-{workload}.npy"
        if not p.exists():
            n = rows_at(source, scale)
            rng = np.random.default_rng([SEED, 5])
            _save_npy(p, rng.choice(n, size=RANDOM_READ_ROWS, replace=False).astype(np.int64))
    known = json.loads((d / "meta.json").read_text())["workloads"] if (d / "meta.json").exists() else {}
    if set(known) != set(WORKLOAD_SOURCE):  # (re)written when the list of workloads changes
        meta = {"scale": scale, "seed": SEED, "workloads": {}}
        for workload, source in WORKLOAD_SOURCE.items():
            meta["workloads"][workload] = {
                "source": source,
                "rows": rows_at(source, scale),
                "raw_bytes": raw_bytes(source, d),
                "random_read_rows": RANDOM_READ_ROWS,
            }
        (d / "meta.json").write_text(json.dumps(meta, indent=2))
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full row counts")
    ap.add_argument("--small", action="store_true", help=f"same as --scale {SMALL_SCALE}")
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    args = ap.parse_args(argv)
    scale = SMALL_SCALE if args.small else args.scale
    d = ensure(scale, args.data_root)
    print(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
