"""DuckDB over the same columns as Arrow tables — run with the project's python (DuckDB is
in its venv).

prepare: the cached columns as Arrow tables (`tql_arrow_tables.py`), registered with one
connection (DuckDB scans them in place). Each query is the SQL that means the same as the
TQL one and returns the `id` column (the rows, in order); GROUP BY returns `list(id)` per
label, as TQL's GROUP BY gives each group's rows. DuckDB uses every core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tql_common import AREA, LABEL, NEEDLE, ORDER_LIMIT, TOP_K, VALUE, Peer, load, main


class DuckDB(Peer):
    name = "duckdb"

    def __init__(self) -> None:
        import duckdb

        self.duckdb = duckdb

    def version(self) -> str:
        return self.duckdb.__version__

    def notes(self) -> dict:
        return {"result": "the id column (fetchnumpy); GROUP BY: list(id) per label", "threads": "all cores"}

    def prepare(self, data: Path, work: Path) -> None:
        from tql_arrow_tables import tables

        d = load(data)
        self.tables = tables(d)  # kept alive: DuckDB reads them in place
        self.con = self.duckdb.connect()
        for name, t in self.tables.items():
            self.con.register(name, t)
        q = np.asarray(d["query"])
        self.q = "[" + ", ".join(f"{float(v):.6f}" for v in q) + f"]::FLOAT[{len(q)}]"

    def _ids(self, sql: str) -> np.ndarray:
        return np.asarray(self.con.execute(sql).fetchnumpy()["id"])

    def scalar_filter(self) -> Any:
        return self._ids(f"SELECT id FROM tab WHERE label = {LABEL} AND value > {VALUE}")

    def text_contains(self) -> Any:
        return self._ids(f"SELECT id FROM tab WHERE contains(text, '{NEEDLE}')")

    def order_by_limit(self) -> Any:
        return self._ids(f"SELECT id FROM tab ORDER BY value LIMIT {ORDER_LIMIT}")

    def cosine_top10(self) -> Any:
        return self._ids(f"SELECT id FROM emb ORDER BY array_cosine_similarity(embedding, {self.q}) DESC LIMIT {TOP_K}")

    def bbox_area(self) -> Any:
        return self._ids(f"SELECT id FROM box WHERE list_bool_or(list_transform(boxes, b -> b[3] * b[4] > {AREA:g}))")

    def group_by(self) -> Any:
        import pyarrow.compute as pc

        reader = self.con.execute("SELECT label, list(id) AS ids FROM tab GROUP BY label").arrow()
        t = reader.read_all() if hasattr(reader, "read_all") else reader
        return pc.list_value_length(t["ids"]).to_numpy().tolist()


if __name__ == "__main__":
    raise SystemExit(main(DuckDB))
