"""The lexer and parser: each construct's AST, error positions, and a fuzz test."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeformat.errors import LakeFormatError
from lakeformat.tql import TQLError, ast as A, parse, parse_expression
from lakeformat.tql.lexer import tokenize
from lakeformat.tql.unparse import to_text

I = A.Identifier  # noqa: E741 - one-letter AST constructors keep the expected trees readable
L = A.Literal


def where(text: str) -> A.Expr:
    q = parse("SELECT * WHERE " + text)
    assert isinstance(q, A.Select)
    return q.where


def test_tokens_keep_case_positions_and_quotes():
    toks = tokenize("select \"my tensor\", 'it''s' from \"./x\"@3f2a-b -- comment\n x")
    assert [(t.kind, t.value, t.pos) for t in toks] == [
        ("KEYWORD", "SELECT", 0), ("QIDENT", "my tensor", 7), ("OP", ",", 18), ("STRING", "it's", 20),
        ("KEYWORD", "FROM", 28), ("QIDENT", "./x", 33), ("OP", "@", 38), ("VERSION", "3f2a-b", 39),
        ("IDENT", "x", 58), ("EOF", "", 59)]
    assert [t.value for t in tokenize("1 2.5 .5 1e3 1.5E-2")[:-1]] == ["1", "2.5", ".5", "1e3", "1.5E-2"]


def test_select_list_aliases_and_star():
    q = parse("SELECT *, images[10:20, :, 0] AS crop, labels")
    assert q.items == (
        A.SelectItem(A.Star()),
        A.SelectItem(A.Subscript(I("images"), (A.Slice(L(10), L(20)), A.Slice(), L(0))), "crop"),
        A.SelectItem(I("labels")))


def test_clauses():
    q = parse("select * from (select * where x > 1) as s where y < 2 order by random(), x desc, y asc limit 10 percent offset 5")
    assert q.source == A.SubquerySource(parse("select * where x > 1"), "s")
    assert q.order_by == (A.OrderKey(A.Call("RANDOM", ())), A.OrderKey(I("x"), True), A.OrderKey(I("y")))
    assert q.limit == A.Limit(L(10), True) and q.offset == L(5)
    q = parse('SELECT * FROM "s3://bucket/ds"@main WHERE x == 1 LIMIT ?')
    assert q.source == A.DatasetSource("s3://bucket/ds", "main") and q.limit == A.Limit(A.Param(0))
    assert parse("SELECT * FROM 'mem://x'@'3f2a01'").source == A.DatasetSource("mem://x", "3f2a01")


def test_group_ungroup_sample_expand_are_parsed():
    q = parse("SELECT * GROUP BY labels, video UNGROUP BY frame EXPAND BY 1 2 SAMPLE BY MAX_WEIGHT(labels == 'cat': 0.5, CONTAINS(t, 'x'): 2) REPLACE FALSE LIMIT 100")
    assert q.group_by == (I("labels"), I("video")) and q.ungroup_by == (I("frame"),)
    assert q.expand_by == A.ExpandBy(1, 2)
    assert q.sample_by == A.SampleBy("MAX_WEIGHT", ((A.Binary("==", I("labels"), L("cat")), L(0.5)), (A.Call("CONTAINS", (I("t"), L("x"))), L(2))), False)
    assert parse("SELECT * SAMPLE BY SUM_WEIGHT(a: 1)").sample_by.mode == "SUM_WEIGHT"


def test_set_operations_are_left_associative():
    q = parse("(SELECT * WHERE a) UNION SELECT * WHERE b EXCEPT (SELECT * WHERE c)")
    assert isinstance(q, A.SetOperation) and q.op == "EXCEPT"
    assert isinstance(q.left, A.SetOperation) and q.left.op == "UNION"
    assert q.right == parse("SELECT * WHERE c")


def test_precedence():
    assert where("a OR b AND NOT c") == A.Binary("OR", I("a"), A.Binary("AND", I("b"), A.Unary("NOT", I("c"))))
    assert where("a + b * c - d % 2 > -3") == A.Binary(">", A.Binary("-", A.Binary("+", I("a"), A.Binary("*", I("b"), I("c"))), A.Binary("%", I("d"), L(2))), L(-3))
    assert where("a = 1") == where("a == 1") and where("a <> 1") == where("a != 1")
    assert where("x BETWEEN 1 AND 2 AND y") == A.Binary("AND", A.Between(I("x"), L(1), L(2)), I("y"))
    assert where("-x[0]") == A.Unary("-", A.Subscript(I("x"), (L(0),)))


def test_predicates():
    assert where("x NOT IN (1, 'a', ?)") == A.InList(I("x"), (L(1), L("a"), A.Param(0)), True)
    assert where("x NOT BETWEEN 1 AND 2") == A.Between(I("x"), L(1), L(2), True)
    assert where("t ILIKE 'a%'") == A.Like(I("t"), L("a%"), True)
    assert where("t NOT LIKE 'a*'") == A.Like(I("t"), L("a*"), False, True)
    assert where("t IS NOT NULL") == A.IsNull(I("t"), True)
    assert where("t IS NULL") == A.IsNull(I("t"))


def test_primaries():
    assert where("TRUE AND NULL IS NULL") == A.Binary("AND", L(True), A.IsNull(L(None)))
    assert where("COSINE_SIMILARITY(emb, ARRAY[1, -2.5, ARRAY[3]])") == A.Call("COSINE_SIMILARITY", (I("emb"), A.ArrayLiteral((L(1), L(-2.5), A.ArrayLiteral((L(3),))))))
    assert where("meta['source']['id'] == 3") == A.Binary("==", A.Subscript(A.Subscript(I("meta"), (L("source"),)), (L("id"),)), L(3))
    assert where("boxes[:, 2]")== A.Subscript(I("boxes"), (A.Slice(), L(2)))
    assert where("x[::-1, 1:, :3, -2]") == A.Subscript(I("x"), (A.Slice(None, None, L(-1)), A.Slice(L(1)), A.Slice(None, L(3)), L(-2)))
    assert where("SHAPE(x)[0]") == A.Subscript(A.Call("SHAPE", (I("x"),)), (L(0),))
    assert where('"my tensor" > 1') == A.Binary(">", I("my tensor"), L(1))
    assert where("grp.sub.x") == I("grp/sub/x")
    assert where('"grp/sub/x"') == I("grp/sub/x")
    assert where("labels@v1 != labels@3f2a") == A.Binary("!=", I("labels", "v1"), I("labels", "3f2a"))
    assert where("? + ?") == A.Binary("+", A.Param(0), A.Param(1))
    assert where("row_number()") == A.Call("ROW_NUMBER", ())


def test_to_text_round_trips():
    for text in ["a + b * c", "NOT (x IN (1, 2))", "t ILIKE 'it''s%'", "x[1:2, ::-1, 0] BETWEEN 1 AND ?", "COSINE_SIMILARITY(e, ARRAY[1, 2]) > 0.5", '"my t" IS NOT NULL', "(a OR b) AND c"]:
        e = parse_expression(text)
        assert parse_expression(to_text(e)) == e


@pytest.mark.parametrize("text,line,col,msg", [
    ("SELECT * WHERE x >> 3", 1, 19, "expected an expression"),
    ("SELECT *\nWHERE x == 'unterminated", 2, 12, "unterminated string"),
    ("SELECT * WHERE (x == 1", 1, 23, "expected ')'"),
    ("SELECT * LIMIT x", 1, 16, "expected a number"),
    ("SELECT * WHERE x[]", 1, 18, "expected an expression"),
    ("SELECT * WHERE x ~ 1", 1, 18, "unexpected character"),
    ("SELECT * WHERE 1abc", 1, 16, "malformed number"),
    ("SELECT * FROM x", 1, 15, "dataset"),
    ("WHERE x", 1, 1, "expected SELECT"),
    ("SELECT * WHERE x\n  AND", 2, 6, "end of query"),
    ("SELECT * WHERE x > 1 garbage", 1, 22, "unexpected 'garbage'"),
    ("SELECT * EXPAND BY 1 x", 1, 22, "EXPAND BY expects an integer"),
    ("SELECT * FROM \"x\"@", 1, 18, "after '@'"),
    ("SELECT * WHERE t IS 3", 1, 21, "expected NULL"),
])
def test_syntax_errors_name_line_column_and_caret(text, line, col, msg):
    with pytest.raises(TQLError) as ei:
        parse(text)
    e = ei.value
    assert (e.line, e.column) == (line, col), str(e)
    assert msg in str(e)
    src_line, caret = str(e).split("\n")[1:3]
    assert src_line.strip() == text.split("\n")[line - 1].strip()
    assert caret.index("^") == col - 1 + 2  # two spaces of indent
    assert isinstance(e, LakeFormatError) and isinstance(e, ValueError)


def test_deep_nesting_is_an_error_not_a_recursion_error():
    with pytest.raises(TQLError, match="nested too deeply"):
        parse("SELECT * WHERE " + "(" * 5000 + "x" + ")" * 5000)
    with pytest.raises(TQLError, match="nested too deeply"):
        parse("SELECT * WHERE " + "NOT " * 5000 + "x")
    with pytest.raises(TQLError, match="nested too deeply"):
        parse("SELECT * WHERE " + "- " * 5000 + "x")


def test_long_lines_show_a_window_around_the_error():
    text = "SELECT * WHERE " + " AND ".join(f"x{k} > {k}" for k in range(200)) + " AND )"
    e = pytest.raises(TQLError, parse, text).value
    src, caret = str(e).split("\n")[1:3]
    assert len(src) < 200 and src[caret.index("^")] == ")"
    assert e.column == len(text)


def test_non_string_query():
    with pytest.raises(TQLError):
        parse(b"SELECT *")  # type: ignore[arg-type]


# --- fuzz ------------------------------------------------------------------------------------------
VALID = [
    "SELECT * WHERE labels == 'cat' AND x > 3 ORDER BY x DESC LIMIT 10",
    "SELECT images[10:20, :, 0] AS crop, boxes[:, 2] * boxes[:, 3] > 400 FROM \"./ds\"@main",
    "(SELECT * WHERE a IN (1, 2)) UNION (SELECT * WHERE b BETWEEN 1 AND 2) EXCEPT SELECT * WHERE t LIKE 'a%'",
    "SELECT * FROM (SELECT * WHERE meta['k'][0] IS NOT NULL) WHERE COSINE_SIMILARITY(e, ARRAY[1, 2.5e-3]) > ? LIMIT 5 PERCENT OFFSET 2",
    "SELECT * GROUP BY a UNGROUP BY b EXPAND BY 1 1 SAMPLE BY MAX_WEIGHT(x: 1, NOT y: 2) REPLACE TRUE LIMIT 3",
]
TOKENS = ["SELECT", "*", "WHERE", "FROM", "ORDER", "BY", "LIMIT", "OFFSET", "PERCENT", "AND", "OR", "NOT", "IN", "BETWEEN", "LIKE", "IS", "NULL", "(", ")", "[", "]", ",", ":", ".", "@", "?", "'s'", "'", '"q"', '"', "x", "y", "1", "-2", "2.5", "1e", "ARRAY", "==", "=", "!=", "<", ">=", "+", "-", "/", "%", "UNION", "EXCEPT", "AS", "SAMPLE", "EXPAND", "GROUP", "DESC", "COSINE_SIMILARITY", ";", "--", "\n", "\t", "é", "\x00", "~", "\\"]


def _parse_or_tqlerror(text: str) -> None:
    try:
        parse(text)
    except TQLError as e:
        assert e.line is None or e.line >= 1
        str(e)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from([" ", ""]))
def test_fuzz_random_token_streams(tokens, sep):
    _parse_or_tqlerror(sep.join(tokens))


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.sampled_from(["delete", "insert", "swap", "dup"]), st.integers(0, 10_000), st.sampled_from(TOKENS)), min_size=1, max_size=6))
def test_fuzz_mutations_of_valid_queries(base, edits):
    for v in VALID:
        parse(v)  # the bases parse
    toks = [t for t in base.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split(" ") if t]
    for op, at, tok in edits:
        k = at % (len(toks) + 1)
        if op == "delete" and toks:
            del toks[min(k, len(toks) - 1)]
        elif op == "insert":
            toks.insert(k, tok)
        elif op == "swap" and len(toks) > 1:
            j = min(k, len(toks) - 2)
            toks[j], toks[j + 1] = toks[j + 1], toks[j]
        elif op == "dup" and toks:
            toks.insert(k, toks[min(k, len(toks) - 1)])
    _parse_or_tqlerror(" ".join(toks))


@settings(max_examples=300, deadline=2000)
@given(st.text(max_size=80))
def test_fuzz_arbitrary_text(text):
    _parse_or_tqlerror(text)
