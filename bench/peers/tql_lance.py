"""pylance's `to_table(filter=..., nearest=..., order_by=...)` — run with .venvs/lance.

prepare: the cached columns as Arrow tables (`tql_arrow_tables.py`) written with
`lance.write_dataset`, then opened. Queries return the `id` column (the rows, in order).
Lance's filter has no predicate over list elements and lance has no GROUP BY: those two
read the columns with `to_table(columns=...)` and finish in NumPy (what a lance user
writes); `notes` says so. The cosine top-10 is a flat `nearest` search (no index), as ours
and the other peers run it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict

import numpy as np

from tql_common import AREA, LABEL, NEEDLE, ORDER_LIMIT, TOP_K, VALUE, Peer, load, main


class Lance(Peer):
    name = "lance"

    def __init__(self) -> None:
        import lance

        self.lance = lance

    def version(self) -> str:
        return self.lance.__version__

    def notes(self) -> Dict[str, str]:
        return {"bbox_area": "to_table(columns=['boxes']) + NumPy (lance's filter has no list predicate)",
                "group_by": "to_table(columns=['label']) + NumPy stable argsort (lance has no GROUP BY)",
                "text_contains": "filter LIKE '%abc%'"}

    def prepare(self, data: Path, work: Path) -> None:
        from tql_arrow_tables import tables

        d = load(data)
        self.ds = {}
        for name, t in tables(d).items():
            path = str(work / f"lance-{name}")
            shutil.rmtree(path, ignore_errors=True)
            self.lance.write_dataset(t, path)
            self.ds[name] = self.lance.dataset(path)
        self.q = np.asarray(d["query"], np.float32)

    def _ids(self, name: str, **kw: Any) -> np.ndarray:
        return self.ds[name].to_table(columns=["id"], **kw)["id"].to_numpy()

    def scalar_filter(self) -> Any:
        return self._ids("tab", filter=f"label = {LABEL} AND value > {VALUE}")

    def text_contains(self) -> Any:
        return self._ids("tab", filter=f"text LIKE '%{NEEDLE}%'")

    def order_by_limit(self) -> Any:
        from lance.dataset import ColumnOrdering

        # the sort column is projected too: lance 14 fails to plan order_by + limit without it
        t = self.ds["tab"].to_table(columns=["id", "value"], order_by=[ColumnOrdering("value")], limit=ORDER_LIMIT)
        return t["id"].to_numpy()

    def cosine_top10(self) -> Any:
        return self._ids("emb", nearest={"column": "embedding", "q": self.q, "k": TOP_K, "metric": "cosine", "use_index": False})

    def bbox_area(self) -> Any:
        col = self.ds["box"].to_table(columns=["boxes"])["boxes"].combine_chunks()
        offsets = col.offsets.to_numpy()
        flat = col.values.values.to_numpy(zero_copy_only=False).reshape(-1, 4)
        hit = (flat[:, 2] * flat[:, 3] > AREA).astype(np.int64)
        counts = np.add.reduceat(np.append(hit, 0), offsets[:-1]) * (np.diff(offsets) > 0)
        return np.flatnonzero(counts)

    def group_by(self) -> Any:
        label = self.ds["tab"].to_table(columns=["label"])["label"].to_numpy()
        order = np.argsort(label, kind="stable")
        bounds = np.flatnonzero(np.diff(label[order])) + 1
        return [len(g) for g in np.split(order, bounds)]


if __name__ == "__main__":
    raise SystemExit(main(Lance))
