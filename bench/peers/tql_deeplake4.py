"""Deep Lake 4.7.4's TQL (`ds.query(text)`) — run with .venvs/deeplake4.

prepare: three datasets (tabular: id Int64, value Float64, text Text, label
ClassLabel(Int32) with the class names in its metadata; embeddings: Array(Float32, [384]);
boxes: Array(Float32, dimensions=2)), each with an `id` column, appended in batches of
~64 MB and committed, then opened read-only. A query's result is the `id` column of the
view `ds.query(text)` returns (the rows, in the query's order); for GROUP BY, the size
of each group's list of ids. The query text is the same as ours.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tql_common import N_CLASSES, TQL, Peer, load, main, query_array

BATCH_BYTES = 64 << 20


class DeepLake4(Peer):
    name = "deeplake4"

    def __init__(self) -> None:
        import deeplake

        self.dl = deeplake

    def version(self) -> str:
        return self.dl.__version__

    def notes(self) -> dict:
        return {"result": "the id column of ds.query(text) (its row numbers)",
                "embedding": "Array(Float32, shape=[384]): writing 1M rows as Embedding(384) did not finish in 10 min"}

    def _write(self, path: str, schema: dict, cols: dict) -> Any:
        shutil.rmtree(path, ignore_errors=True)
        ds = self.dl.create(path)
        for name, typ in schema.items():
            ds.add_column(name, typ)
        if "label" in cols:
            ds["label"].metadata["class_names"] = [f"class_{i}" for i in range(N_CLASSES)]
        n = len(cols["id"])
        row_bytes = max(1, sum(int(np.asarray(v[:1]).nbytes) if not isinstance(v, list) else 64 for v in cols.values()))
        step = max(1, BATCH_BYTES // row_bytes)
        for a in range(0, n, step):
            batch = {}
            for k, v in cols.items():
                part = v[a:a + step]
                batch[k] = np.asarray(part).astype("U20").tolist() if k == "text" else (part if isinstance(part, list) else np.asarray(part))
            ds.append(batch)
        ds.commit()
        return self.dl.open_read_only(path)

    def prepare(self, data: Path, work: Path) -> None:
        d = load(data)
        t = self.dl.types
        self.tab = self._write(str(work / "deeplake4-tab"),
                               {"id": t.Int64(), "value": t.Float64(), "text": t.Text(), "label": t.ClassLabel(t.Int32())},
                               {"id": d["tab_id"], "value": d["tab_value"], "text": d["tab_text"], "label": d["tab_label"]})
        # Array, not types.Embedding: writing 1,000,000 Embedding(384) rows did not finish in
        # 10 minutes here (as an Array: 10 s); an Array is scanned flat, as every peer does here
        self.emb = self._write(str(work / "deeplake4-emb"), {"id": t.Int64(), "embedding": t.Array(t.Float32(), shape=[384])},
                               {"id": np.arange(len(d["emb"]), dtype=np.int64), "embedding": d["emb"]})
        flat, off = np.asarray(d["box_flat"]), np.asarray(d["box_offsets"])
        boxes = [flat[off[i]:off[i + 1]] for i in range(len(off) - 1)]
        self.box = self._write(str(work / "deeplake4-box"), {"id": t.Int64(), "boxes": t.Array(t.Float32(), dimensions=2)},
                               {"id": np.arange(len(boxes), dtype=np.int64), "boxes": boxes})
        self.q = query_array(np.asarray(d["query"]))

    def _ids(self, ds: Any, text: str) -> np.ndarray:
        return np.asarray(ds.query(text)["id"][:])

    def scalar_filter(self) -> Any:
        return self._ids(self.tab, TQL["scalar_filter"])

    def text_contains(self) -> Any:
        return self._ids(self.tab, TQL["text_contains"])

    def order_by_limit(self) -> Any:
        return self._ids(self.tab, TQL["order_by_limit"])

    def cosine_top10(self) -> Any:
        return self._ids(self.emb, TQL["cosine_top10"].format(q=self.q))

    def bbox_area(self) -> Any:
        return self._ids(self.box, TQL["bbox_area"])

    def group_by(self) -> Any:
        return [len(ids) for ids in self.tab.query(TQL["group_by"])["id"][:]]


if __name__ == "__main__":
    raise SystemExit(main(DeepLake4))
