"""lakeformat's TQL (`lakeformat.tql.run`) — run with the project's python.

prepare: writes three datasets (tabular: id, value, text, label as a class_label;
embeddings: float32[384]; boxes: bbox (k, 4) float32) with the default chunk settings,
1,000,000 rows per `extend`, then opens them read-only. Each query is `tql.run(ds, text)`;
its result is `res.indices` (the rows, in the query's order), `res.groups` for GROUP BY.
The query text is the issue's, as deeplake 4 runs it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tql_common import N_CLASSES, TQL, Peer, main, query_array

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCH = 1_000_000


class LakeFormat(Peer):
    name = "lakeformat"

    def __init__(self) -> None:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        import lakeformat
        from lakeformat import tql

        self.lf, self.tql = lakeformat, tql

    def version(self) -> str:
        return str(getattr(self.lf, "__version__", "checkout"))

    def notes(self) -> dict:
        return {"result": "QueryResult.indices (the rows; no column read), .groups for GROUP BY"}

    def prepare(self, data: Path, work: Path) -> None:
        from tql_common import load

        d = load(data)
        lf = self.lf
        paths = {k: str(work / f"lakeformat-{k}") for k in ("tab", "emb", "box")}
        for p in paths.values():
            shutil.rmtree(p, ignore_errors=True)
        ds = lf.empty(paths["tab"], overwrite=True)
        with ds:
            ds.create_tensor("id", dtype="int64")
            ds.create_tensor("value", dtype="float64")
            ds.create_tensor("text", htype="text")
            ds.create_tensor("label", htype="class_label", class_names=[f"class_{i}" for i in range(N_CLASSES)])
            n = len(d["tab_id"])
            for a in range(0, n, BATCH):
                b = min(n, a + BATCH)
                ds.extend({"id": np.asarray(d["tab_id"][a:b]), "value": np.asarray(d["tab_value"][a:b]),
                           "text": np.asarray(d["tab_text"][a:b]).astype("U20").tolist(),
                           "label": np.asarray(d["tab_label"][a:b]).astype(np.uint32)})
        ds = lf.empty(paths["emb"], overwrite=True)
        with ds:
            ds.create_tensor("embedding", htype="embedding", dtype="float32")
            emb = d["emb"]
            for a in range(0, len(emb), BATCH // 4):
                ds.embedding.extend(np.asarray(emb[a:a + BATCH // 4]))
        ds = lf.empty(paths["box"], overwrite=True)
        with ds:
            ds.create_tensor("boxes", htype="bbox", dtype="float32")
            flat, off = np.asarray(d["box_flat"]), np.asarray(d["box_offsets"])
            ds.boxes.extend([flat[off[i]:off[i + 1]] for i in range(len(off) - 1)])
        self.q = query_array(np.asarray(d["query"]))
        self.tab, self.emb, self.box = (lf.load(paths[k], read_only=True) for k in ("tab", "emb", "box"))

    def _rows(self, ds: Any, text: str) -> np.ndarray:
        return self.tql.run(ds, text).indices

    def scalar_filter(self) -> Any:
        return self._rows(self.tab, TQL["scalar_filter"])

    def text_contains(self) -> Any:
        return self._rows(self.tab, TQL["text_contains"])

    def order_by_limit(self) -> Any:
        return self._rows(self.tab, TQL["order_by_limit"])

    def cosine_top10(self) -> Any:
        return self._rows(self.emb, TQL["cosine_top10"].format(q=self.q))

    def bbox_area(self) -> Any:
        return self._rows(self.box, TQL["bbox_area"])

    def group_by(self) -> Any:
        res = self.tql.run(self.tab, TQL["group_by"])
        groups = getattr(res, "groups", None)
        if groups is None:
            raise RuntimeError("GROUP BY gave no groups (QueryResult.groups is None)")
        return [len(g) for g in groups]


if __name__ == "__main__":
    raise SystemExit(main(LakeFormat))
