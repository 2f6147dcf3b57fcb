"""Deep Lake 3.9.52 — the format lakeformat reimplements; run with .venvs/deeplake3.

Fastest idiomatic path: ``with ds:`` around ``create_tensor`` + one ``extend``
of each whole column; ``ds[t].numpy()`` for full reads; ``ds[idx_list]`` then
``.numpy()`` per tensor for the random batch.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("DEEPLAKE_DISABLE_VERSION_CHECK", "true")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

from _common import Columns, Peer, main  # noqa: E402

CLASS_NAMES = [f"class_{i}" for i in range(10)]


def _tensors(workload: str) -> list[str]:
    return {"tabular": ["id", "value", "text", "label"], "embeddings": ["embedding"]}.get(workload, ["image", "label"])


class DeepLake3(Peer):
    name = "deeplake3"

    def __init__(self) -> None:
        import deeplake

        self.dl = deeplake

    def version(self) -> str:
        return self.dl.__version__

    def compression(self, workload: str) -> str:
        return {
            "tabular": "none (chunk_compression=None)",
            "images_raw": "chunk_compression=lz4",
            "images_none": "none (raw chunks)",
            "images_png": "sample_compression=png",
            "embeddings": "none (chunk_compression=None)",
        }[workload]

    def write(self, path: str, workload: str, cols: Columns) -> None:
        dl = self.dl
        ds = dl.empty(path, overwrite=True, verbose=False)
        with ds:
            if workload == "tabular":
                ds.create_tensor("id", htype="generic", dtype="int64")
                ds.create_tensor("value", htype="generic", dtype="float64")
                ds.create_tensor("text", htype="text")
                ds.create_tensor("label", htype="class_label", dtype="int32", class_names=CLASS_NAMES)
                ds["id"].extend(cols["id"])
                ds["value"].extend(cols["value"])
                ds["text"].extend(cols["text"].tolist())
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
                ds.create_tensor("embedding", htype="embedding", dtype="float32")
                ds["embedding"].extend(cols["embedding"])

    def open(self, path: str):
        return self.dl.load(path, read_only=True, verbose=False)

    def read_all(self, ds, workload: str) -> Columns:
        return {t: ds[t].numpy() for t in _tensors(workload)}

    def read_rows(self, ds, workload: str, idx: np.ndarray) -> Columns:
        view = ds[idx.tolist()]
        return {t: view[t].numpy() for t in _tensors(workload)}


if __name__ == "__main__":
    raise SystemExit(main(DeepLake3))
