"""The dedup decision (connectors/destination_deeplake/dedup.py) on whole columns: the array
rule against a one-row-at-a-time oracle on random columns (composite keys, null key parts,
cursor and extracted_at ties, CDC deletes), JSON keys of every type factorized by value, and
syncs through the destination whose keys and cursors are JSON objects, arrays, booleans,
floats with nulls and nested paths."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import lakeformat
from connectors.destination_deeplake import dedup as D
from tests.connectors.destination.helpers import catalog, record, state, stream, write


def oracle(keys: list[list[Any]], cursor: list[Any], extracted: list[Any], deleted: list[bool]) -> list[int]:
    """Rows removed, one row at a time: per key the max of (cursor with nulls first,
    extracted_at with nulls first, position); keyless rows kept; deleted winners removed."""
    best: dict[Any, tuple[Any, int]] = {}
    keyless = set()
    for i in range(len(cursor)):
        k = tuple(col[i] for col in keys)
        if any(v is None for v in k):
            keyless.add(i)
            continue
        c, e = cursor[i], extracted[i]
        rank = ((0,) if c is None else (1, D.orderable(c)), (0,) if e is None else (1, e), i)
        if k not in best or rank > best[k][0]:
            best[k] = (rank, i)
    keep = {i for _, i in best.values() if not deleted[i]} | keyless
    return [i for i in range(len(cursor)) if i not in keep]


def _ranked(values: list[Any]) -> D.Ranked:
    return D.rank_values(values)


@pytest.mark.parametrize("seed", range(20))
def test_superseded_rows_match_the_oracle(seed):
    rnd = random.Random(seed)
    n = rnd.randrange(0, 120)
    parts = rnd.choice([1, 2, 3])
    pool = [[0, 1, 2], ["a", "b"], [True, False, 1, 0], [{"x": 1}, {"x": 2}, [1, 2]]]
    keys = []
    for _ in range(parts):
        choices = rnd.choice(pool)
        keys.append([None if rnd.random() < 0.1 else rnd.choice(choices) for _ in range(n)])
    cursor = [None if rnd.random() < 0.2 else rnd.choice([1, 2, 2.5, "2024-01", "2024-02"]) for _ in range(n)]
    extracted = [None if rnd.random() < 0.05 else rnd.randrange(3) for _ in range(n)]
    deleted = [rnd.random() < 0.15 for _ in range(n)]
    got = D.superseded_rows([D.KeyColumn.from_values(k) for k in keys], _ranked(cursor), _ranked(extracted),
                            np.asarray(deleted, bool))
    # the oracle keys by D.hashable (JSON equality: objects by value, true apart from 1)
    hashed = [[None if v is None else D.hashable(v) for v in col] for col in keys]
    assert got.tolist() == oracle(hashed, cursor, extracted, deleted)


def test_json_keys_are_equal_by_value_and_typed():
    col = D.KeyColumn.from_values([{"a": 1, "b": 2}, {"b": 2, "a": 1}, [1, 2], [2, 1], True, 1, False, 0, "1", None])
    c = col.codes.tolist()
    assert c[0] == c[1]  # object keys in any order
    assert c[2] != c[3]  # arrays by position
    assert len({c[4], c[5], c[6], c[7], c[8]}) == 5  # true, 1, false, 0 and "1" all differ
    assert col.null.tolist() == [False] * 9 + [True]


def test_ties_on_cursor_and_extracted_at_keep_the_last_row():
    keys = [D.KeyColumn.from_values([7, 7, 7, 8])]
    cursor = _ranked([5, 5, 5, None])
    extracted = _ranked([1, 1, 1, 1])
    assert D.superseded_rows(keys, cursor, extracted, None).tolist() == [0, 1]


def test_keyless_mask_counts_any_null_part():
    keys = [D.KeyColumn.from_values([1, None, 3, 4]), D.KeyColumn.from_values(["a", "b", None, "d"])]
    assert D.keyless_mask(keys, 4).tolist() == [False, True, True, False]


# ---------------------------------------------------------------------------------- syncs
def _values(path, field: str) -> list[Any]:
    ds = lakeformat.load(str(path), read_only=True)
    return [x if not isinstance(x, np.ndarray) else x.reshape(-1)[0].item() for x in ds[field].values()]


@pytest.mark.parametrize("keys", [
    [{"o": 1, "p": [1, 2]}, {"p": [1, 2], "o": 1}, {"o": 2}],
    [[1, "a"], [1, "a"], ["a", 1]],
    [True, True, 1],
    [1.5, 1.5, 2.5],
    ["x", "x", "y"],
], ids=["object", "array", "bool_vs_int", "float", "string"])
def test_sync_dedups_on_json_keys_of_every_type(tmp_path, keys):
    props = {"k": {}, "v": {"type": "string"}}
    cat = catalog(stream("t", props, mode="append_dedup", pk=[["k"]]))
    write({"path": str(tmp_path)}, cat, [record("t", {"k": k, "v": f"v{i}"}) for i, k in enumerate(keys)] + [state("t", 1)])
    # the first two keys are equal, the third differs from both: the second row wins
    assert _values(tmp_path / "t", "v") == ["v1", "v2"]


def test_sync_dedups_on_a_nested_key_path_with_float_cursor_and_nulls(tmp_path):
    props = {"obj": {"type": "object", "properties": {"id": {"type": "integer"}}}, "u": {"type": ["null", "number"]},
             "v": {"type": "string"}}
    cat = catalog(stream("t", props, mode="append_dedup", pk=[["obj", "id"]], cursor=["u"]))
    rows = [({"id": 1}, 2.5, "a"), ({"id": 1}, None, "b"), ({"id": 2}, None, "c"), ({"id": 2}, 0.5, "d"),
            ({"id": 3}, 1.0, "e"), ({}, 9.0, "keyless"), ({"id": 3}, 1.0, "f")]
    out = write({"path": str(tmp_path)}, cat, [record("t", {"obj": o, "u": u, "v": v}) for o, u, v in rows] + [state("t", 1)])
    # per key: the latest cursor (a null cursor is older than any value), ties to the last row
    assert _values(tmp_path / "t", "v") == ["a", "d", "keyless", "f"]
    logs = [m["log"]["message"] for m in out if m["type"] == "LOG"]
    assert any("1 records of this sync have no value for primary key [obj.id]" in m for m in logs)


def test_sync_removes_cdc_deleted_winners_across_syncs(tmp_path):
    props = {"id": {"type": "integer"}, "v": {"type": "string"}, "_ab_cdc_deleted_at": {"type": ["null", "string"]}}
    cat = catalog(stream("t", props, mode="append_dedup", pk=[["id"]]))
    cfg = {"path": str(tmp_path)}
    write(cfg, cat, [record("t", {"id": i, "v": f"a{i}"}) for i in range(5)] + [state("t", 1)])
    write(cfg, cat, [record("t", {"id": 1, "v": "gone", "_ab_cdc_deleted_at": "2024-05-01T00:00:00Z"}),
                     record("t", {"id": 3, "v": "b3"}), record("t", {"id": 5, "v": "b5"})] + [state("t", 2)])
    assert _values(tmp_path / "t", "v") == ["a0", "a2", "a4", "b3", "b5"]
    ds = lakeformat.load(str(tmp_path / "t"), read_only=True)
    assert "3 superseded removed" in ds.log()[0]["message"]  # a1, a3 and the deleted winner
