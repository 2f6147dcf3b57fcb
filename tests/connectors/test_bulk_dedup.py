"""append_dedup with the bulk delete and the array dedup (`_rows_superseded` on key codes and
ranks) against an oracle: the one-row-at-a-time rule the sink documents (latest by cursor with
nulls first, then by _airbyte_extracted_at, then by position; null keys kept and never merged;
a CDC-deleted winner removed), on random syncs with int, string, composite and nullable keys,
int, string and absent cursors."""
from __future__ import annotations

import random
from typing import Any

import pytest

import lakeformat
from connectors.destination_deeplake.dedup import orderable as _orderable
from tests.connectors.destination.helpers import catalog, record, state, stream, write

KEYS = {
    "int": ({"id": {"type": ["null", "integer"]}}, [["id"]]),
    "str": ({"id": {"type": ["null", "string"]}}, [["id"]]),
    "composite": ({"id": {"type": ["null", "integer"]}, "k2": {"type": ["null", "string"]}}, [["id"], ["k2"]]),
}
CURSORS = {
    "int": {"type": ["null", "integer"]},
    "str": {"type": ["null", "string"]},
    None: None,
}


def oracle(rows: list[dict[str, Any]], pk: list[list[str]], cursor: str | None) -> list[dict[str, Any]]:
    """The rule, one row at a time (as the sink did before the array version)."""
    best: dict[Any, tuple[Any, int]] = {}
    keyless = []
    for i, r in enumerate(rows):
        k = tuple(r["data"].get(p[0]) for p in pk)
        if None in k:
            keyless.append(i)
            continue
        c = r["data"].get(cursor) if cursor else None
        rank = ((0,) if c is None else (1, _orderable(c)), (1, r["emitted_at"]), i)
        if k not in best or rank >= best[k][0]:
            best[k] = (rank, i)
    keep = {i for _, i in best.values() if rows[i]["data"].get("_ab_cdc_deleted_at") is None} | set(keyless)
    return [r for i, r in enumerate(rows) if i in keep]


def _random_sync(rnd: random.Random, key: str, cursor: str | None, n: int, tag: str) -> list[dict[str, Any]]:
    out = []
    for j in range(n):
        d: dict[str, Any] = {"v": f"{tag}{j}"}
        ident = rnd.randrange(6)
        d["id"] = None if rnd.random() < 0.1 else (ident if key != "str" else f"k{ident}")
        if key == "composite":
            d["k2"] = None if rnd.random() < 0.1 else rnd.choice(["a", "b"])
        if cursor == "int":
            d["u"] = None if rnd.random() < 0.2 else rnd.randrange(4)
        elif cursor == "str":
            d["u"] = None if rnd.random() < 0.2 else rnd.choice(["2024-01", "2024-02", "2023-12"])
        if rnd.random() < 0.1:
            d["_ab_cdc_deleted_at"] = "2024-05-01T00:00:00Z"
        out.append({"data": d, "emitted_at": 1_700_000_000_000 + rnd.randrange(3) * 1000})
    return out


@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize("cursor", ["int", "str", None], ids=["cursor_int", "cursor_str", "no_cursor"])
def test_dedup_matches_oracle(tmp_path, key, cursor):
    props, pk = KEYS[key]
    props = {**props, "v": {"type": "string"}, "_ab_cdc_deleted_at": {"type": ["null", "string"]}}
    if cursor:
        props["u"] = CURSORS[cursor]
    cat = catalog(stream("t", props, mode="append_dedup", pk=pk, cursor=["u"] if cursor else None))
    for seed in range(6):
        rnd = random.Random(seed * 31 + len(key))
        path = tmp_path / f"s{seed}"
        cfg = {"path": str(path)}
        kept: list[dict[str, Any]] = []
        for sync in range(2):
            rows = _random_sync(rnd, key, cursor, rnd.randrange(1, 30), f"s{sync}-")
            # each sync needs one keyed row, or the sink stops it as misconfigured
            rows[0]["data"]["id"] = rows[0]["data"]["id"] if rows[0]["data"]["id"] is not None else (0 if key != "str" else "k0")
            if key == "composite" and rows[0]["data"]["k2"] is None:
                rows[0]["data"]["k2"] = "a"
            write(cfg, cat, [record("t", r["data"], emitted_at=r["emitted_at"]) for r in rows] + [state("t", sync)])
            kept = oracle(kept + rows, pk, "u" if cursor else None)
            ds = lakeformat.load(str(path / "t"), read_only=True)
            got = [v for v in ds["v"].numpy(aslist=True)]
            got = [str(x.reshape(-1)[0]) for x in got]
            assert got == [r["data"]["v"] for r in kept], (seed, sync)
