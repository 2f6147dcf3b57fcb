"""Deep Lake 4.7.4 — run with .venvs/deeplake4.

Fastest idiomatic path: ``deeplake.create`` + ``add_column`` per column, then
``ds.append({col: batch, ...})`` in batches of ~64 MB raw and one
``ds.commit()``; reads with ``ds[col][:]`` and ``ds[idx_list][col][:]``.

Deep Lake 4 has no chunk compression for numeric arrays (``types.Array``
takes none; ``types.Image`` accepts only sample compression null/jpg/png),
so ``images_raw`` is stored uncompressed here, not lz4.
"""

from __future__ import annotations

import shutil

import numpy as np

from _common import Columns, Peer, main

CLASS_NAMES = [f"class_{i}" for i in range(10)]
BATCH_BYTES = 64 << 20


def _columns(workload: str) -> list[str]:
    return {"tabular": ["id", "value", "text", "label"], "embeddings": ["embedding"]}.get(workload, ["image", "label"])


class DeepLake4(Peer):
    name = "deeplake4"

    def __init__(self) -> None:
        import deeplake

        self.dl = deeplake
        self.types = deeplake.types

    def version(self) -> str:
        return self.dl.__version__

    def compression(self, workload: str) -> str:
        return {
            "tabular": "none (Text chunk_compression=None)",
            "images_raw": "none: Array(uint8) has no lz4 in dl4",
            "images_none": "none",
            "images_png": "types.Image(sample_compression='png')",
            "embeddings": "none (types.Embedding(384))",
        }[workload]

    def _schema(self, workload: str) -> dict:
        t = self.types
        if workload == "tabular":
            return {"id": t.Int64(), "value": t.Float64(), "text": t.Text(chunk_compression=None),
                    "label": t.ClassLabel(t.Int32())}
        if workload in ("images_raw", "images_none"):
            return {"image": t.Array(t.UInt8(), shape=[128, 128, 3]), "label": t.ClassLabel(t.Int32())}
        if workload == "images_png":
            return {"image": t.Image(dtype="uint8", sample_compression="png"), "label": t.ClassLabel(t.Int32())}
        return {"embedding": t.Embedding(384)}

    def write(self, path: str, workload: str, cols: Columns) -> None:
        shutil.rmtree(path, ignore_errors=True)
        ds = self.dl.create(path)
        for name, typ in self._schema(workload).items():
            ds.add_column(name, typ)
        if "label" in cols:
            ds["label"].metadata["class_names"] = CLASS_NAMES
        n = len(next(iter(cols.values())))
        row_bytes = sum(v[:1].nbytes for v in cols.values())
        step = max(1, BATCH_BYTES // row_bytes)
        for start in range(0, n, step):
            batch = {}
            for k, v in cols.items():
                part = v[start:start + step]
                batch[k] = part.tolist() if k == "text" else part
            ds.append(batch)
        ds.commit()

    def open(self, path: str):
        return self.dl.open_read_only(path)

    def read_all(self, ds, workload: str) -> Columns:
        return {c: _np(ds[c][:]) for c in _columns(workload)}

    def read_rows(self, ds, workload: str, idx: np.ndarray) -> Columns:
        view = ds[idx.tolist()]
        return {c: _np(view[c][:]) for c in _columns(workload)}


def _np(x) -> np.ndarray:
    # Text columns come back as a list of str; numeric ones as ndarray already.
    return np.asarray(x, dtype=object) if isinstance(x, list) else np.asarray(x)


if __name__ == "__main__":
    raise SystemExit(main(DeepLake4))
