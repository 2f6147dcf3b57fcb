"""TQL json paths (`props['source']['id']`) read through the native path kernel give exactly
what the parsed read gives: every query here runs twice, once as it runs (raw documents, the
path followed natively) and once with the raw read switched off (the whole column parsed,
then walked in Python), on seeded random documents: nested objects and arrays, unicode,
big integers, floats, strings, nulls, empty samples, lists where objects are expected."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.tql import text_reader
from lakeformat.tql.text_reader import LazyJson

QUERIES = [
    "SELECT * WHERE props['source']['id'] == 3",
    "SELECT * WHERE props['source']['id'] != 3",
    "SELECT * WHERE props['source']['id'] >= 50",
    "SELECT * WHERE props['source']['name'] == 'n7'",
    "SELECT * WHERE props['source']['name'] LIKE 'n1%'",
    "SELECT * WHERE props['source']['name'] > 'n5'",
    "SELECT * WHERE props['source']['id'] IS NULL",
    "SELECT * WHERE props['source']['id'] IN (1, 2, 3.5)",
    "SELECT * WHERE props['source']['name'] NOT IN ('n7', 'n8')",
    "SELECT * WHERE props['tags'][0] IN ('x', 'ü') OR props['flag'] IN (1)",
    "SELECT * WHERE props['score'] < 0.25",
    "SELECT * WHERE props['flag'] == 1",
    "SELECT * WHERE props['tags'][0] == 'x'",
    "SELECT * WHERE props['tags'][-1] == 'ü'",
    "SELECT * WHERE props[0] == 1",
    "SELECT * WHERE CONTAINS(props['tags'], 'y')",
    "SELECT * WHERE CONTAINS(KEYS(props['source']), 'name')",
    "SELECT * WHERE props['big'] > 9223372036854775807",
    "SELECT * WHERE props['source']['id'] == props['score']",
    "SELECT props['source']['id'] AS i, props['source'] AS s, props['tags'][1] AS t, props['score'] AS f",
    "SELECT * ORDER BY props['source']['id'] LIMIT 20",
    "SELECT * WHERE props['score'] > 0.5 ORDER BY props['score'] LIMIT 20",
    "SELECT * WHERE props['source']['id'] == 3 ORDER BY props['score'] DESC",
]


def _doc(rng: np.random.Generator, k: int) -> Any:
    r = rng.random()
    if r < 0.05:
        return None
    if r < 0.08:
        return [1, {"source": {"id": 3}}]
    if r < 0.1:
        return "text"
    doc: Dict[str, Any] = {"source": {"id": int(rng.integers(0, 100)), "name": f"n{k % 23}"}, "score": float(rng.random())}
    if rng.random() < 0.2:
        doc["source"]["id"] = [None, 3.0, "3", True, 2**70, -0.0, {"x": 1}][int(rng.integers(0, 7))]
    if rng.random() < 0.3:
        doc["tags"] = [["x", "y", "ü", "a\"b\\", "é\n"][int(i)] for i in rng.integers(0, 5, int(rng.integers(0, 4)))]
    if rng.random() < 0.2:
        doc["flag"] = bool(rng.random() < 0.5)
    if rng.random() < 0.1:
        doc["big"] = int(rng.integers(0, 3)) * 2**64 - 1
    if rng.random() < 0.1:
        del doc["source"]["name"]
    return doc


@pytest.fixture(scope="module", params=[0, 1, 2])
def lake(request: Any, tmp_path_factory: Any) -> Tuple[Any, List[Any]]:
    rng = np.random.default_rng(request.param)
    docs = [_doc(rng, k) for k in range(400)]
    ds = lakeformat.empty(str(tmp_path_factory.mktemp(f"jp{request.param}") / "ds"))
    with ds:
        ds.create_tensor("props", htype="json", max_chunk_size=4000)
        ds.extend({"props": docs})
    return ds, docs


def _result(ds: Any, q: str) -> Tuple[List[int], Dict[str, str]]:
    """The rows and computed columns, or the error (the same error on both paths)."""
    try:
        res = tql.run(ds, q)
    except tql.TQLError as err:
        return [], {"error": str(err)}
    return res.indices.tolist(), {k: repr(list(v)) for k, v in res.columns.items()}


@pytest.mark.parametrize("query", QUERIES)
def test_native_paths_equal_the_parsed_read(lake: Tuple[Any, List[Any]], query: str, monkeypatch: Any) -> None:
    ds, _ = lake
    native = _result(ds, query)
    native_view = _result(ds[::2], query)
    monkeypatch.setattr(text_reader, "read_json_raw", lambda view: None)
    assert native == _result(ds, query)
    assert native_view == _result(ds[::2], query)


def test_the_column_is_read_raw_and_walked_on_demand(lake: Tuple[Any, List[Any]]) -> None:
    ds, docs = lake
    v = text_reader.read_text_like(ds.props, ds.props, len(docs))
    assert isinstance(v, LazyJson) and len(v) == len(docs)
    ids = v.step("source").step("id")
    want = [d["source"].get("id") if isinstance(d, dict) and isinstance(d.get("source"), dict) else None for d in docs]
    assert repr(ids.data.tolist()) == repr(want)
    assert v.data.tolist() == docs  # the whole documents, parsed
    assert v.take(np.array([3, 1])).data.tolist() == [docs[3], docs[1]]


def test_benchmark_query_finds_the_rows(tmp_path: Any) -> None:
    docs = [{"source": {"id": k % 100, "name": "..."}, "score": 0.5} for k in range(1000)]
    ds = lakeformat.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("props", htype="json")
        ds.extend({"props": docs})
    assert tql.run(ds, "SELECT * WHERE props['source']['id'] == 3").indices.tolist() == list(range(3, 1000, 100))
