"""lakeformat — our reimplementation of the Deep Lake 3 format; run with the
project's python (``.venv/bin/python`` if present, else ``python3``).

It drives lakeformat exactly as ``deeplake3_peer.py`` drives deeplake 3.9.52,
through the Deep Lake 3 API names, so the two rows of the table compare the
same calls. What it expects from ``lakeformat`` (the whole interface):

* ``lakeformat.empty(path, overwrite=True)`` -> dataset ``ds``
* ``with ds:`` — batches the writes and flushes on exit
* ``ds.create_tensor(name, htype=..., dtype=..., sample_compression=...,
  chunk_compression=..., class_names=...)`` with htypes ``generic``,
  ``text``, ``class_label``, ``image``, ``embedding``; compressions ``None``,
  ``"lz4"`` (chunk) and ``"png"`` (sample)
* ``ds[name].extend(x)`` with ``x`` a whole NumPy column (int64, float64,
  int32, uint8[N,128,128,3], float32[N,384]) or a list of str (text)
* ``lakeformat.load(path, read_only=True)`` -> the dataset written above
* ``ds[name].numpy()`` -> the whole column as an ndarray (numeric columns may
  be shaped [N] or [N,1]; text as str values, [N] or [N,1])
* ``ds[name][list_of_indices].numpy()`` -> those rows, in that order
* ``lakeformat.__version__`` (optional; "unknown" otherwise)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from _common import Columns, Peer, enable_import_of, main

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASS_NAMES = [f"class_{i}" for i in range(10)]


def _tensors(workload: str) -> list[str]:
    return {"tabular": ["id", "value", "text", "label"], "embeddings": ["embedding"]}.get(workload, ["image", "label"])


class LakeFormat(Peer):
    name = "lakeformat"

    def __init__(self) -> None:
        enable_import_of(REPO_ROOT)  # works from a checkout without `pip install -e .`
        import lakeformat

        self.lf = lakeformat

    def version(self) -> str:
        return str(getattr(self.lf, "__version__", "unknown"))

    def compression(self, workload: str) -> str:
        return {
            "tabular": "none (chunk_compression=None)",
            "images_raw": "chunk_compression=lz4",
            "images_none": "none (raw chunks)",
            "images_png": "sample_compression=png",
            "embeddings": "none (chunk_compression=None)",
        }[workload]

    def write(self, path: str, workload: str, cols: Columns) -> None:
        lf = self.lf
        ds = lf.empty(path, overwrite=True)
        with ds:
            if workload == "tabular":
                ds.create_tensor("id", htype="generic", dtype="int64", chunk_compression=None)
                ds.create_tensor("value", htype="generic", dtype="float64", chunk_compression=None)
                ds.create_tensor("text", htype="text", chunk_compression=None)
                ds.create_tensor("label", htype="class_label", dtype="int32", class_names=CLASS_NAMES)
                ds["id"].extend(cols["id"])
                ds["value"].extend(cols["value"])
                ds["text"].extend(cols["text"])  # a NumPy str array, as the Arrow peers get it
                ds["label"].extend(cols["label"])
            elif workload in ("images_raw", "images_none", "images_png"):
                if workload in ("images_raw", "images_none"):
                    ds.create_tensor("image", htype="image", dtype="uint8", sample_compression=None,
                                     chunk_compression="lz4" if workload == "images_raw" else None)
                else:
                    ds.create_tensor("image", htype="image", dtype="uint8", sample_compression="png")
                ds.create_tensor("label", htype="class_label", dtype="int32", class_names=CLASS_NAMES)
                ds["image"].extend(cols["image"])
                ds["label"].extend(cols["label"])
            else:
                ds.create_tensor("embedding", htype="embedding", dtype="float32", chunk_compression=None)
                ds["embedding"].extend(cols["embedding"])

    def open(self, path: str):
        return self.lf.load(path, read_only=True)

    def read_all(self, ds, workload: str) -> Columns:
        return {t: ds[t].numpy() for t in _tensors(workload)}

    def read_rows(self, ds, workload: str, idx: np.ndarray) -> Columns:
        rows = idx.tolist()
        return {t: ds[t][rows].numpy() for t in _tensors(workload)}


if __name__ == "__main__":
    raise SystemExit(main(LakeFormat))
