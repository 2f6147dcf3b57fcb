"""The README's main job (for now): build a small image + label dataset in a local folder and
print its summary."""
from __future__ import annotations

import argparse

import numpy as np

import lakeformat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--path", default="./lake/demo-animals")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ds = lakeformat.empty(args.path, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "bird"])
        yy, xx = np.mgrid[0:64, 0:64]
        for i in range(args.n):
            img = np.stack([(xx * 4 + i) % 256, (yy * 4) % 256, np.full_like(xx, i % 256)], -1).astype(np.uint8)
            img += rng.integers(0, 8, img.shape, dtype=np.uint8)
            ds.append({"images": img, "labels": int(rng.integers(0, 3))})
    ds.commit("demo data")
    ds.summary()
    counts = np.bincount(ds.labels.numpy().reshape(-1), minlength=3)
    print("label counts:", dict(zip(ds.labels.info.class_names, counts.tolist())))


if __name__ == "__main__":
    main()
