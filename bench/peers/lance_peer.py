"""Lance (pylance) — run with .venvs/lance.

Fastest idiomatic path: build one pyarrow table, ``lance.write_dataset``;
``ds.to_table()`` for full reads, ``ds.take(indices)`` for the random batch.
Images are ``fixed_size_list<uint8>[49152]`` (raw) or ``binary`` PNG bytes
encoded with Pillow inside the timed write and decoded with Pillow on read.
Compression is set per field with the ``lance-encoding:compression`` field
metadata: lz4 for raw images (the nearest match to Deep Lake 3's lz4 chunks).
"""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa

from _arrow import fixed_list, png_encode, table_to_columns
from _common import Columns, Peer, main

COMPRESSION_KEY = b"lance-encoding:compression"


def _field(name: str, arr: pa.Array, compression: str | None = None) -> tuple[pa.Field, pa.Array]:
    meta = {COMPRESSION_KEY: compression.encode()} if compression else None
    return pa.field(name, arr.type, nullable=False, metadata=meta), arr


def build_table(workload: str, cols: Columns, raw_image_compression: str | None) -> pa.Table:
    if workload == "tabular":
        pairs = [_field("id", pa.array(cols["id"])), _field("value", pa.array(cols["value"])),
                 _field("text", pa.array(cols["text"], type=pa.string())), _field("label", pa.array(cols["label"]))]
    elif workload in ("images_raw", "images_none"):
        pairs = [_field("image", fixed_list(cols["image"]), raw_image_compression if workload == "images_raw" else None),
                 _field("label", pa.array(cols["label"]))]
    elif workload == "images_png":
        pairs = [_field("image", png_encode(cols["image"])), _field("label", pa.array(cols["label"]))]
    else:
        pairs = [_field("embedding", fixed_list(cols["embedding"]))]
    schema = pa.schema([f for f, _ in pairs])
    return pa.Table.from_arrays([a for _, a in pairs], schema=schema)


class Lance(Peer):
    name = "lance"
    raw_image_compression = "lz4"

    def __init__(self) -> None:
        import lance

        self.lance = lance
        self._format = ""

    def version(self) -> str:
        return self.lance.__version__

    def compression(self, workload: str) -> str:
        return {
            "tabular": "none requested (lance default encodings)",
            # lance 14 writes fixed_size_list<uint8> values uncompressed whatever the
            # field metadata says (same bytes with or without it; checked on zeros).
            "images_raw": f"fsl<uint8>; {self.raw_image_compression} requested, not applied",
            "images_none": "fsl<uint8>, none",
            "images_png": "png (Pillow) bytes, binary col",
            "embeddings": "none (fsl<float32>[384])",
        }[workload]

    def write(self, path: str, workload: str, cols: Columns) -> None:
        shutil.rmtree(path, ignore_errors=True)
        tbl = build_table(workload, cols, self.raw_image_compression)
        ds = self.lance.write_dataset(tbl, path, mode="create")
        self._format = ds.data_storage_version

    def open(self, path: str):
        return self.lance.dataset(path)

    def read_all(self, ds, workload: str) -> Columns:
        return table_to_columns(ds.to_table(), workload)

    def read_rows(self, ds, workload: str, idx: np.ndarray) -> Columns:
        return table_to_columns(ds.take(idx), workload)

    def notes(self, workload: str) -> str:
        return f"lance file format {self._format or 'default'}"


if __name__ == "__main__":
    raise SystemExit(main(Lance))
