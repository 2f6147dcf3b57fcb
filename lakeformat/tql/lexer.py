"""The TQL lexer: query text -> tokens, each with its character offset."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

from lakeformat.tql.errors import TQLError

KEYWORDS = frozenset(
    """SELECT FROM WHERE ORDER BY ASC DESC LIMIT PERCENT OFFSET UNION INTERSECT EXCEPT GROUP
    UNGROUP SAMPLE EXPAND AS AND OR NOT IN BETWEEN LIKE ILIKE IS NULL TRUE FALSE ARRAY REPLACE""".split()
)

# longest first, so that "<=" wins over "<"
OPERATORS = ("==", "!=", "<>", "<=", ">=", "+", "-", "*", "/", "%", "=", "<", ">", "(", ")", "[", "]", ",", ":", ".", ";", "?")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # KEYWORD IDENT QIDENT STRING NUMBER OP VERSION EOF
    value: str
    pos: int


def _is_ident_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def tokenize(text: str) -> List[Token]:
    """Split `text` into tokens. Keywords are upper-cased; identifiers keep their case.

    `'...'` is a string (`''` inside is a quote), `"..."` a quoted identifier (or, after FROM,
    a dataset URL), `@` is followed by a VERSION token (a branch name or commit id, or a
    quoted one). `--` starts a comment to the end of the line.
    """
    if not isinstance(text, str):
        raise TQLError(f"a query is a str, not {type(text).__name__}")
    out: List[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c in "'\"":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    what = "string" if c == "'" else "quoted identifier"
                    raise TQLError(f"unterminated {what}", text, i)
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:  # doubled quote: a literal quote
                        buf.append(c)
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            out.append(Token("STRING" if c == "'" else "QIDENT", "".join(buf), i))
            i = j + 1
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j < n and text[j] == "." and (j + 1 >= n or not _is_ident_start(text[j + 1])):
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            if j < n and text[j] in "eE":
                k = j + 1
                if k < n and text[k] in "+-":
                    k += 1
                if k < n and text[k].isdigit():
                    j = k
                    while j < n and text[j].isdigit():
                        j += 1
            if j < n and _is_ident_start(text[j]):
                raise TQLError(f"malformed number {text[i:j + 1]!r}", text, i)
            out.append(Token("NUMBER", text[i:j], i))
            i = j
            continue
        if _is_ident_start(c):
            j = i
            while j < n and _is_ident_char(text[j]):
                j += 1
            word = text[i:j]
            up = word.upper()
            out.append(Token("KEYWORD", up, i) if up in KEYWORDS else Token("IDENT", word, i))
            i = j
            continue
        if c == "@":
            # a version: a branch name or commit id (may start with digits, hold - . /), or quoted
            j = i + 1
            if j < n and text[j] in "'\"":
                out.append(Token("OP", "@", i))
                i = j
                continue
            while j < n and (text[j].isalnum() or text[j] in "_-./"):
                j += 1
            if j == i + 1:
                raise TQLError("expected a branch or commit after '@'", text, i)
            out.append(Token("OP", "@", i))
            out.append(Token("VERSION", text[i + 1:j], i + 1))
            i = j
            continue
        for op in OPERATORS:
            if text.startswith(op, i):
                out.append(Token("OP", op, i))
                i += len(op)
                break
        else:
            raise TQLError(f"unexpected character {c!r}", text, i)
    out.append(Token("EOF", "", n))
    return out
