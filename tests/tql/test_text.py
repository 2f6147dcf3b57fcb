"""TQL over text columns read as `TextBuffers` (the C text kernels) against Python's str
operations, on random unicode text with nulls, empty strings, NUL and multibyte characters:
comparisons, IN, LIKE / ILIKE with globs and regex metacharacters, CONTAINS, IS NULL, ORDER BY,
text against text, json against text, computed text columns and user functions."""
from __future__ import annotations

import operator
import re
from typing import Any, Callable, List, Optional

import numpy as np
import pytest

import lakeformat
from lakeformat import tql
from lakeformat.core.text_buffers import TextBuffers
from lakeformat.tql.values import Value, text_objects

CHARS = list("abAB kK.%_*?\\[") + ["é", "É", "ß", "Σ", "σ", "😀", "\x00", "ſ", "K"]
PY_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def random_text(rng: np.random.Generator, short: bool = False) -> Optional[str]:
    r = rng.random()
    if r < 0.12:
        return None
    if r < 0.2:
        return ""
    return "".join(rng.choice(CHARS, int(rng.integers(1, 4 if short else 9))))


def quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@pytest.fixture(scope="module", params=[0, 1, 2])
def lake(request, tmp_path_factory):
    rng = np.random.default_rng(request.param)
    n = 300
    s = [random_text(rng, short=True) for _ in range(n)]
    t = [random_text(rng, short=True) for _ in range(n)]
    j = [None if rng.random() < 0.2 else {"name": s[k], "n": int(k)} for k in range(n)]
    ds = lakeformat.empty(str(tmp_path_factory.mktemp(f"text{request.param}") / "ds"))
    with ds:
        ds.create_tensor("s", htype="text", max_chunk_size=1000)
        ds.create_tensor("t", htype="text", chunk_compression="lz4")
        ds.create_tensor("j", htype="json")
        ds.extend({"s": s, "t": t, "j": j})
    return ds, s, t, j, rng


def rows(ds: Any, q: str) -> List[int]:
    return tql.run(ds, q).indices.tolist()


def where(vals: List[Any], fn: Callable[[Any], bool]) -> List[int]:
    return [k for k, v in enumerate(vals) if v is not None and fn(v)]


def test_reader_gives_text_buffers(lake):
    ds, s, *_ = lake
    res = tql.run(ds, "SELECT s AS x, t")
    assert res.columns["x"] == s
    from lakeformat.tql.reader import DatasetColumnReader

    v = DatasetColumnReader(ds)("s", np.arange(len(ds), dtype=np.int64))
    assert v.kind == "text" and isinstance(v.data, TextBuffers)
    assert text_objects(v).tolist() == s


def test_compare_with_constants(lake):
    ds, s, _, _, rng = lake
    for _ in range(12):
        c = random_text(rng, short=True) or "a"
        for op, fn in PY_OPS.items():
            assert rows(ds, f"SELECT * WHERE s {op} {quote(c)}") == where(s, lambda x, fn=fn, c=c: fn(x, c)), (op, c)
            assert rows(ds, f"SELECT * WHERE {quote(c)} {op} s") == where(s, lambda x, fn=fn, c=c: fn(c, x)), (op, c)
    # NULL stays NULL under NOT: neither side of a negation keeps a null row
    c = s[0] or "a"
    assert rows(ds, f"SELECT * WHERE NOT s == {quote(c)}") == where(s, lambda x: x != c)


def test_text_against_text(lake):
    ds, s, t, *_ = lake
    for op, fn in PY_OPS.items():
        want = [k for k in range(len(s)) if s[k] is not None and t[k] is not None and fn(s[k], t[k])]
        assert rows(ds, f"SELECT * WHERE s {op} t") == want


def test_in_and_not_in(lake):
    ds, s, _, _, rng = lake
    present = sorted({x for x in s if x is not None})
    for _ in range(8):
        members = list(rng.choice(present, 3)) + [random_text(rng) or "zz"]
        lit = ", ".join(quote(m) for m in members)
        assert rows(ds, f"SELECT * WHERE s IN ({lit})") == where(s, lambda x, m=members: x in m)
        assert rows(ds, f"SELECT * WHERE s NOT IN ({lit})") == where(s, lambda x, m=members: x not in m)


def like_ref(pattern: str, ci: bool) -> Callable[[str], bool]:
    rx = re.compile("".join(".*" if c in "%*" else "." if c in "_?" else re.escape(c) for c in pattern), re.S | (re.I if ci else 0))
    return lambda x: rx.fullmatch(x) is not None


def test_like_ilike_with_globs_and_metacharacters(lake):
    ds, s, _, _, rng = lake
    patterns = ["%", "_", "", "a%", "%a", "%é%", "_é_", "*", "?", "a*b?", "%.%", "%\\%", "%[%", "K%", "k%", "ß", "%σ%", "ſ%"]
    for _ in range(20):
        patterns.append("".join(rng.choice(CHARS + ["%", "_", "*", "?"] * 2, int(rng.integers(1, 5)))))
    for p in patterns:
        for kw, ci in (("LIKE", False), ("ILIKE", True)):
            assert rows(ds, f"SELECT * WHERE s {kw} {quote(p)}") == where(s, like_ref(p, ci)), (kw, p)
        match = like_ref(p, False)
        assert rows(ds, f"SELECT * WHERE s NOT LIKE {quote(p)}") == where(s, lambda x, f=match: not f(x))


def test_contains(lake):
    ds, s, _, _, rng = lake
    for needle in ["", "a", "é", "😀", "\x00", "ab", "Σσ"] + [random_text(rng) or "x" for _ in range(8)]:
        assert rows(ds, f"SELECT * WHERE CONTAINS(s, {quote(needle)})") == where(s, lambda x, w=needle: w in x), needle


def test_is_null(lake):
    ds, s, *_ = lake
    assert rows(ds, "SELECT * WHERE s IS NULL") == [k for k, v in enumerate(s) if v is None]
    assert rows(ds, "SELECT * WHERE s IS NOT NULL") == [k for k, v in enumerate(s) if v is not None]


def test_order_by_text(lake):
    ds, s, t, *_ = lake
    present = [k for k, v in enumerate(s) if v is not None]
    nulls = [k for k, v in enumerate(s) if v is None]
    asc = sorted(present, key=lambda k: s[k]) + nulls  # stable: ties keep row order
    desc = sorted(present, key=lambda k: s[k], reverse=True) + nulls  # reverse=True keeps ties in row order
    assert rows(ds, "SELECT * ORDER BY s") == asc
    assert rows(ds, "SELECT * ORDER BY s DESC") == desc
    two = sorted(range(len(s)), key=lambda k: (s[k] is None, s[k] or "", t[k] is None, t[k] or ""))
    assert rows(ds, "SELECT * ORDER BY s, t") == two
    assert rows(ds, "SELECT * WHERE s IS NOT NULL ORDER BY s LIMIT 5 OFFSET 2") == asc[2:7]


def test_filter_then_project_keeps_text_aligned(lake):
    ds, s, t, *_ = lake
    res = tql.run(ds, "SELECT s, t AS other WHERE s IS NOT NULL AND t IS NOT NULL ORDER BY t DESC LIMIT 20")
    idx = res.indices.tolist()
    assert res.columns["other"] == [t[k] for k in idx]
    assert [x for x in tql.run(ds, "SELECT s AS x WHERE CONTAINS(s, 'a')").columns["x"]] == [x for x in s if x is not None and "a" in x]


def test_json_against_text_and_user_functions(lake):
    ds, s, _, j, _ = lake
    want = [k for k in range(len(s)) if j[k] is not None and s[k] is not None and j[k]["name"] == s[k]]
    assert rows(ds, "SELECT * WHERE j['name'] == s") == want
    seen: List[Any] = []

    def upper(x: np.ndarray) -> np.ndarray:
        seen.append(x)
        out = np.empty(len(x), dtype=object)
        out[:] = [None if v is None else v.upper() for v in x]
        return out
    tql.register_function("my_upper", upper)
    try:
        res = tql.run(ds, "SELECT * WHERE MY_UPPER(s) == 'AB'")
        assert res.indices.tolist() == where(s, lambda x: x.upper() == "AB")
        assert seen[0].dtype == object and seen[0].tolist() == s  # user functions get str objects
        assert rows(ds, "SELECT * WHERE MY_UPPER(s) LIKE 'A%'") == where(s, lambda x: like_ref("A%", False)(x.upper()))
    finally:
        tql.unregister_function("my_upper")


def test_value_take_and_row_on_buffers():
    v = Value("text", TextBuffers.from_objects(["a", None, "é"]))
    assert v.row(2) == "é" and v.row(1) is None and len(v) == 3
    assert v.take(np.array([2, 2, 0])).to_python() == ["é", "é", "a"]


def test_text_errors(lake):
    ds, *_ = lake
    with pytest.raises(tql.TQLError):
        tql.run(ds, "SELECT * WHERE s > 3")
    with pytest.raises(tql.TQLError):
        tql.run(ds, "SELECT * WHERE s IN (1, 2)")
    with pytest.raises(tql.TQLError):
        tql.run(ds, "SELECT * WHERE CONTAINS(s, 1)")
    with pytest.raises(tql.TQLError):
        tql.run(ds, "SELECT * WHERE s LIKE t")


@pytest.mark.parametrize("seed", range(5))
def test_order_key_of_buffers_is_code_point_order(seed):
    """The fixed-width byte key (no NUL in the text) and the str fallback (NUL in it) both
    sort as Python sorts str, stable, NULL last."""
    from lakeformat.tql.executor import sort_permutation
    from lakeformat.tql.text_ops import order_key

    rng = np.random.default_rng(seed)
    vals = [random_text(rng) for _ in range(200)]
    for texts in ([None if v is None else v.replace("\x00", "") for v in vals], vals):
        keys, null = order_key(Value("text", TextBuffers.from_objects(texts)))
        present = [k for k, v in enumerate(texts) if v is not None]
        nulls = [k for k, v in enumerate(texts) if v is None]
        assert sort_permutation([(keys, null, False)]).tolist() == sorted(present, key=lambda k: texts[k]) + nulls
        assert sort_permutation([(keys, null, True)]).tolist() == sorted(present, key=lambda k: texts[k], reverse=True) + nulls


def test_keys_of_json(lake):
    ds, _, _, j, _ = lake
    res = tql.run(ds, "SELECT KEYS(j) AS k")
    assert res.columns["k"] == [list(x) if isinstance(x, dict) else None for x in j]
    assert rows(ds, "SELECT * WHERE CONTAINS(KEYS(j), 'name')") == [k for k, x in enumerate(j) if isinstance(x, dict)]
    assert rows(ds, "SELECT * WHERE KEYS(j) IS NULL") == [k for k, x in enumerate(j) if x is None]
    with pytest.raises(tql.TQLError):
        tql.run(ds, "SELECT * WHERE CONTAINS(KEYS(s), 'a')")
