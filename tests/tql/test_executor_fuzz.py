"""Random well-formed queries over every kind of tensor: each returns a result or raises a
TQLError naming a position, never another exception."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeformat import tql
from lakeformat.tql.functions import builtin_names
from tests.tql.tql_data import build, make_data

TENSORS = ["i", "f", "s", "lab", "ml", "boxes", "emb", "img", "r", "j", "grp.v", '"grp/v"']
LITERALS = ["0", "1", "-2", "2.5", "'cat'", "'dog'", "'%a%'", "TRUE", "FALSE", "NULL", "ARRAY[1, 2, 3, 4]", "ARRAY[0.5, -1]", "ARRAY[ARRAY[1, 2], ARRAY[3, 4]]", "ARRAY[]"]
INDEXES = ["[0]", "[-1]", "[1:3]", "[:, 2]", "[::2]", "[0, 0]", "['id']", "['source']['name']", "[5]", "[:, :, 0]"]
FUNCS = builtin_names()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = make_data(5, n=12)
    return build(str(tmp_path_factory.mktemp("tqlfuzz") / "ds"), d)


def _exprs():
    leaf = st.sampled_from(TENSORS + LITERALS)

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "AND", "OR"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda e: f"(NOT {e})"),
            inner.map(lambda e: f"(- {e})"),
            st.tuples(inner, st.sampled_from(INDEXES)).map(lambda t: f"{t[0]}{t[1]}"),
            st.tuples(st.sampled_from(FUNCS), st.lists(inner, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
            st.tuples(inner, st.sampled_from(["IN (1, 2)", "IN ('cat', 'fish')", "NOT IN (0)", "BETWEEN 0 AND 10", "LIKE 'c%'", "ILIKE '*A*'", "IS NULL", "IS NOT NULL"])).map(lambda t: f"({t[0]} {t[1]})"),
        )
    return st.recursive(leaf, extend, max_leaves=6)


EXPR = _exprs()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(where=EXPR, order=st.one_of(st.none(), EXPR), desc=st.booleans(), limit=st.one_of(st.none(), st.integers(0, 15)), item=EXPR,
       extra=st.sampled_from(["", " EXPAND BY 1 0", " EXPAND BY 0 2", " SAMPLE BY MAX_WEIGHT({w}: 2, i > 0: 1)", " SAMPLE BY SUM_WEIGHT({w}: {w}) REPLACE FALSE"]), w=EXPR)
def test_random_queries_give_results_or_tqlerrors(small, where, order, desc, limit, item, extra, w):
    text = f"SELECT *, {item} AS c WHERE {where}" + extra.format(w=w)
    if order is not None:
        text += f" ORDER BY {order}{' DESC' if desc else ''}"
    if limit is not None:
        text += f" LIMIT {limit}"
    try:
        res = tql.run(small, text, seed=0)
    except tql.TQLError as e:
        assert e.line == 1 and e.column is not None and 1 <= e.column <= len(text) + 1, (text, str(e))
        return
    if "SAMPLE" not in text or "REPLACE FALSE" in text:  # a sample with replacement repeats rows
        assert len(res.indices) == len(set(res.indices.tolist())) <= len(small)
    assert len(res.columns["c"]) == len(res.indices)
