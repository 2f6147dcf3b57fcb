"""AST -> TQL text: names for computed columns and the plan that `explain` prints."""
from __future__ import annotations

from typing import Any

from lakeformat.tql import ast as A


def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def _name(n: str) -> str:
    ok = n.replace("/", "").replace("_", "").isalnum() and not n[:1].isdigit() and "/" not in n
    return n if ok else '"' + n.replace('"', '""') + '"'


def to_text(e: Any) -> str:
    """The expression as TQL text (fully parenthesised where precedence could be unclear)."""
    if isinstance(e, A.Literal):
        return _literal(e.value)
    if isinstance(e, A.Param):
        return "?"
    if isinstance(e, A.Identifier):
        return _name(e.name) + (f"@{e.version}" if e.version else "")
    if isinstance(e, A.ArrayLiteral):
        return "ARRAY[" + ", ".join(to_text(i) for i in e.items) + "]"
    if isinstance(e, A.Unary):
        return ("NOT " if e.op == "NOT" else e.op) + _wrap(e.operand)
    if isinstance(e, A.Binary):
        return f"{_wrap(e.left)} {e.op} {_wrap(e.right)}"
    if isinstance(e, A.InList):
        return f"{_wrap(e.expr)} {'NOT ' if e.negated else ''}IN (" + ", ".join(to_text(i) for i in e.items) + ")"
    if isinstance(e, A.Between):
        return f"{_wrap(e.expr)} {'NOT ' if e.negated else ''}BETWEEN {_wrap(e.low)} AND {_wrap(e.high)}"
    if isinstance(e, A.Like):
        return f"{_wrap(e.expr)} {'NOT ' if e.negated else ''}{'ILIKE' if e.case_insensitive else 'LIKE'} {_wrap(e.pattern)}"
    if isinstance(e, A.IsNull):
        return f"{_wrap(e.expr)} IS {'NOT ' if e.negated else ''}NULL"
    if isinstance(e, A.Call):
        if e.name == "COUNT" and not e.args:
            return "COUNT(*)"  # what COUNT(*) parses to
        return e.name + "(" + ", ".join(to_text(a) for a in e.args) + ")"
    if isinstance(e, A.Slice):
        out = (to_text(e.start) if e.start else "") + ":" + (to_text(e.stop) if e.stop else "")
        return out + (":" + to_text(e.step) if e.step else "")
    if isinstance(e, A.Subscript):
        return _wrap(e.expr) + "[" + ", ".join(to_text(i) for i in e.items) + "]"
    if isinstance(e, A.Star):
        return "*"
    return type(e).__name__


def _wrap(e: Any) -> str:
    s = to_text(e)
    simple = (A.Literal, A.Param, A.Identifier, A.ArrayLiteral, A.Call, A.Subscript)
    return s if isinstance(e, simple) else f"({s})"
