"""Writer process for the crash tests: appends deterministic batches with a flush after each,
and records each completed flush in a side file (fsynced) so the test knows what must survive."""
from __future__ import annotations

import os
import sys

import numpy as np

import lakeformat


def batch(start: int, n: int):
    idx = np.arange(start, start + n)
    return {
        "ints": idx.astype(np.int64),
        "vecs": [np.full((int(i % 5),), i, np.float32) for i in idx],
        "txt": [f"row-{i}" * (1 + int(i % 3)) for i in idx],
        "labels": (idx % 3).astype(np.int64),
        "imgs": [np.full((8, 8, 3), i % 256, np.uint8) for i in idx],
    }


def main(path: str, progress: str, batches: int, per_batch: int) -> None:
    ds = lakeformat.load(path) if lakeformat.exists(path) else lakeformat.empty(path)
    with ds:  # a run killed while creating them may have left none, or some
        ds.create_tensor("ints", dtype="int64", max_chunk_size=4000, exist_ok=True)
        ds.create_tensor("vecs", dtype="float32", chunk_compression="lz4", max_chunk_size=3000, exist_ok=True)
        ds.create_tensor("txt", htype="text", max_chunk_size=2000, exist_ok=True)
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c"], exist_ok=True)
        ds.create_tensor("imgs", htype="image", sample_compression="png", max_chunk_size=20000, exist_ok=True)
    done = min(t.num_samples for t in ds.tensors.values())
    for _ in range(batches):
        with ds:
            ds.extend(batch(done, per_batch))
        done += per_batch
        with open(progress, "a") as f:
            f.write(f"{done}\n")
            f.flush()
            os.fsync(f.fileno())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
