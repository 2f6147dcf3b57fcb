"""Parquet via pyarrow — run with .venvs/lance (it carries pyarrow).

Fastest idiomatic path: ``pyarrow.parquet.write_table`` of one table;
``pq.read_table`` for full reads. Parquet has no row-level random access, so
the random batch reads only the row groups holding the wanted rows
(``ParquetFile.read_row_groups``) and ``take``s from them.

Raw images are ``fixed_size_binary(49152)`` (Parquet FIXED_LEN_BYTE_ARRAY):
a ``fixed_size_list<uint8>`` would be written as a repeated field with one
repetition level per byte. Row groups: ~64 MB of raw data each.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from _arrow import fixed_binary, fixed_list, png_encode, table_to_columns
from _common import Columns, Peer, main

ROW_GROUP_BYTES = 64 << 20
COMPRESSION = {"tabular": "none", "images_raw": "lz4", "images_none": "none", "images_png": "none", "embeddings": "none"}


def build_table(workload: str, cols: Columns) -> pa.Table:
    if workload == "tabular":
        return pa.table({"id": cols["id"], "value": cols["value"],
                         "text": pa.array(cols["text"], type=pa.string()), "label": cols["label"]})
    if workload in ("images_raw", "images_none"):
        return pa.table({"image": fixed_binary(cols["image"]), "label": cols["label"]})
    if workload == "images_png":
        return pa.table({"image": png_encode(cols["image"]), "label": cols["label"]})
    return pa.table({"embedding": fixed_list(cols["embedding"])})


class Parquet(Peer):
    name = "parquet"

    def version(self) -> str:
        return f"pyarrow {pa.__version__}"

    def compression(self, workload: str) -> str:
        c = COMPRESSION[workload]
        extra = {"images_raw": " (LZ4_RAW), fixed_size_binary",
                 "images_png": ", png (Pillow) bytes"}.get(workload, "")
        return f"{c}{extra}"

    def write(self, path: str, workload: str, cols: Columns) -> None:
        tbl = build_table(workload, cols)
        row_bytes = max(1, sum(v[:1].nbytes for v in cols.values()))
        os.makedirs(path, exist_ok=True)
        pq.write_table(tbl, os.path.join(path, "data.parquet"), compression=COMPRESSION[workload],
                       row_group_size=max(1024, ROW_GROUP_BYTES // row_bytes))

    def open(self, path: str):
        # A Parquet "open" is reading the footer; read_table does its own.
        return os.path.join(path, "data.parquet")

    def read_all(self, file: str, workload: str) -> Columns:
        return table_to_columns(pq.read_table(file, use_threads=True), workload)

    def read_rows(self, file: str, workload: str, idx: np.ndarray) -> Columns:
        pf = pq.ParquetFile(file)
        md = pf.metadata
        starts = np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])
        group_of = np.searchsorted(starts, idx, side="right") - 1
        groups = np.unique(group_of)
        tbl = pf.read_row_groups(groups.tolist(), use_threads=True)
        # Row numbers inside the concatenation of the groups that were read.
        base = np.zeros(md.num_row_groups, dtype=np.int64)
        base[groups] = np.cumsum([0] + [starts[g + 1] - starts[g] for g in groups[:-1]])
        local = base[group_of] + (idx - starts[group_of])
        return table_to_columns(tbl.take(pa.array(local)), workload)

    def notes(self, workload: str) -> str:
        return "random read decodes every row group that holds a wanted row"


if __name__ == "__main__":
    raise SystemExit(main(Parquet))
