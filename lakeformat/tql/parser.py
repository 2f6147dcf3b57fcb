"""A recursive-descent parser: TQL text -> `lakeformat.tql.ast` values.

Precedence, loosest first: set operations (UNION, INTERSECT, EXCEPT, left to right); OR; AND;
NOT; comparisons (`== = != <> < <= > >=`, IN, BETWEEN, LIKE, ILIKE, IS NULL; one per level,
not chained); `+ -`; `* / %`; unary `- +`; postfix `[...]`; primaries.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

from lakeformat.tql import ast as A
from lakeformat.tql.errors import TQLError
from lakeformat.tql.lexer import Token, tokenize

_COMPARE = {"==": "==", "=": "==", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_MAX_DEPTH = 64  # nesting deeper than this is an error, not a RecursionError


def parse(text: str) -> A.Query:
    """Parse one TQL query.

    >>> parse("SELECT * WHERE labels == 'cat' LIMIT 10")  # doctest: +SKIP
    Select(items=(SelectItem(expr=Star()),), where=Binary(op='==', ...), limit=Limit(...))
    """
    try:
        return _Parser(text).parse_query_text()
    except RecursionError:  # the depth limit keeps clear of it; a deep caller's stack may not
        raise TQLError("query nested too deeply", text if isinstance(text, str) else None, 0) from None


def parse_expression(text: str) -> A.Expr:
    """Parse one expression (what follows WHERE)."""
    p = _Parser(text)
    e = p.expr()
    p.expect_eof()
    return e


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks: List[Token] = tokenize(text)
        self.i = 0
        self.params = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, message: str, tok: Optional[Token] = None) -> TQLError:
        t = tok or self.tok
        return TQLError(message, self.text, t.pos)

    def _describe(self, t: Token) -> str:
        if t.kind == "EOF":
            return "end of query"
        if t.kind == "STRING":
            return f"string '{t.value}'"
        return repr(t.value)

    def at_kw(self, *words: str) -> bool:
        return self.tok.kind == "KEYWORD" and self.tok.value in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "OP" and self.tok.value in ops

    def take(self) -> Token:
        t = self.tok
        if t.kind != "EOF":
            self.i += 1
        return t

    def accept_kw(self, *words: str) -> Optional[Token]:
        return self.take() if self.at_kw(*words) else None

    def accept_op(self, *ops: str) -> Optional[Token]:
        return self.take() if self.at_op(*ops) else None

    def expect_kw(self, word: str) -> Token:
        if not self.at_kw(word):
            raise self.error(f"expected {word}, found {self._describe(self.tok)}")
        return self.take()

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            raise self.error(f"expected '{op}', found {self._describe(self.tok)}")
        return self.take()

    def expect_eof(self) -> None:
        self.accept_op(";")
        if self.tok.kind != "EOF":
            raise self.error(f"unexpected {self._describe(self.tok)}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("query nested too deeply")

    # -- queries -----------------------------------------------------------------------------------
    def parse_query_text(self) -> A.Query:
        q = self.query()
        self.expect_eof()
        return q

    def query(self) -> A.Query:
        self.enter()
        left = self.query_term()
        while self.at_kw("UNION", "INTERSECT", "EXCEPT"):
            op = self.take()
            right = self.query_term()
            left = A.SetOperation(op.value, left, right, pos=op.pos)
        self.depth -= 1
        return left

    def query_term(self) -> A.Query:
        if self.at_op("("):
            self.take()
            q = self.query()
            self.expect_op(")")
            return q
        if not self.at_kw("SELECT"):
            raise self.error(f"expected SELECT, found {self._describe(self.tok)}")
        return self.select()

    def select(self) -> A.Select:
        start = self.expect_kw("SELECT")
        items = [self.select_item()]
        while self.accept_op(","):
            items.append(self.select_item())
        source = self.source() if self.accept_kw("FROM") else None
        where = self.expr() if self.accept_kw("WHERE") else None
        group_by: Tuple[A.Expr, ...] = ()
        ungroup_by: Tuple[A.Expr, ...] = ()
        expand_by = sample_by = None
        order_by: Tuple[A.OrderKey, ...] = ()
        if self.accept_kw("GROUP"):
            self.expect_kw("BY")
            group_by = self.expr_list()
        if self.accept_kw("UNGROUP"):
            self.expect_kw("BY")
            ungroup_by = self.expr_list()
        if self.at_kw("EXPAND"):
            t = self.take()
            self.expect_kw("BY")
            expand_by = A.ExpandBy(self.int_token("EXPAND BY"), self.int_token("EXPAND BY"), pos=t.pos)
        if self.at_kw("SAMPLE"):
            sample_by = self.sample_by()
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            keys = [self.order_key()]
            while self.accept_op(","):
                keys.append(self.order_key())
            order_by = tuple(keys)
        limit = offset = None
        if self.at_kw("LIMIT"):
            t = self.take()
            count = self.limit_value()
            limit = A.Limit(count, bool(self.accept_kw("PERCENT")), pos=t.pos)
        if self.accept_kw("OFFSET"):
            offset = self.limit_value()
        return A.Select(tuple(items), source, where, group_by, ungroup_by, expand_by, sample_by, order_by, limit, offset, pos=start.pos)

    def select_item(self) -> A.SelectItem:
        t = self.tok
        if self.accept_op("*"):
            return A.SelectItem(A.Star(pos=t.pos), None, pos=t.pos)
        e = self.expr()
        alias = None
        if self.accept_kw("AS"):
            alias = self.name_token("an alias after AS")
        return A.SelectItem(e, alias, pos=t.pos)

    def name_token(self, what: str) -> str:
        t = self.tok
        if t.kind in ("IDENT", "QIDENT"):
            self.take()
            return t.value
        raise self.error(f"expected {what}, found {self._describe(t)}")

    def source(self) -> Union[A.DatasetSource, A.SubquerySource]:
        t = self.tok
        if t.kind in ("QIDENT", "STRING"):
            self.take()
            version = self.version() if self.accept_op("@") else None
            return A.DatasetSource(t.value, version, pos=t.pos)
        if self.accept_op("("):
            q = self.query()
            self.expect_op(")")
            alias = self.name_token("an alias after AS") if self.accept_kw("AS") else None
            return A.SubquerySource(q, alias, pos=t.pos)
        raise self.error(f'expected a dataset "<url>" or a (sub-query) after FROM, found {self._describe(t)}')

    def version(self) -> str:
        t = self.tok
        if t.kind in ("VERSION", "STRING", "QIDENT"):
            self.take()
            return t.value
        raise self.error(f"expected a branch or commit after '@', found {self._describe(t)}")

    def int_token(self, what: str) -> int:
        t = self.tok
        neg = False
        if self.accept_op("-"):
            neg, t = True, self.tok
        if t.kind != "NUMBER" or not t.value.isdigit():
            raise self.error(f"{what} expects an integer, found {self._describe(t)}", t)
        self.take()
        return -int(t.value) if neg else int(t.value)

    def limit_value(self) -> A.Expr:
        t = self.tok
        if t.kind == "NUMBER":
            self.take()
            return A.Literal(_number(t.value), pos=t.pos)
        if self.at_op("?"):
            return self.primary()
        raise self.error(f"expected a number or ?, found {self._describe(t)}")

    def sample_by(self) -> A.SampleBy:
        t = self.expect_kw("SAMPLE")
        self.expect_kw("BY")
        mode = "MAX_WEIGHT"
        if self.tok.kind == "IDENT" and self.tok.value.upper() in ("MAX_WEIGHT", "SUM_WEIGHT"):
            mode = self.take().value.upper()
        self.expect_op("(")
        weights = []
        while True:
            cond = self.expr()
            self.expect_op(":")
            weights.append((cond, self.expr()))
            if not self.accept_op(","):
                break
        self.expect_op(")")
        replace = None
        if self.accept_kw("REPLACE"):
            b = self.tok
            if not self.at_kw("TRUE", "FALSE"):
                raise self.error(f"REPLACE expects TRUE or FALSE, found {self._describe(b)}")
            replace = self.take().value == "TRUE"
        return A.SampleBy(mode, tuple(weights), replace, pos=t.pos)

    def order_key(self) -> A.OrderKey:
        t = self.tok
        e = self.expr()
        desc = False
        if self.at_kw("ASC", "DESC"):
            desc = self.take().value == "DESC"
        return A.OrderKey(e, desc, pos=t.pos)

    def expr_list(self) -> Tuple[A.Expr, ...]:
        out = [self.expr()]
        while self.accept_op(","):
            out.append(self.expr())
        return tuple(out)

    # -- expressions -------------------------------------------------------------------------------
    def expr(self) -> A.Expr:
        self.enter()
        e = self.or_expr()
        self.depth -= 1
        return e

    def or_expr(self) -> A.Expr:
        left = self.and_expr()
        while self.at_kw("OR"):
            t = self.take()
            left = A.Binary("OR", left, self.and_expr(), pos=t.pos)
        return left

    def and_expr(self) -> A.Expr:
        left = self.not_expr()
        while self.at_kw("AND"):
            t = self.take()
            left = A.Binary("AND", left, self.not_expr(), pos=t.pos)
        return left

    def not_expr(self) -> A.Expr:
        if self.at_kw("NOT"):
            t = self.take()
            self.enter()
            e = A.Unary("NOT", self.not_expr(), pos=t.pos)
            self.depth -= 1
            return e
        return self.comparison()

    def comparison(self) -> A.Expr:
        left = self.additive()
        t = self.tok
        if t.kind == "OP" and t.value in _COMPARE:
            self.take()
            return A.Binary(_COMPARE[t.value], left, self.additive(), pos=t.pos)
        negated = False
        if self.at_kw("NOT") and self.toks[self.i + 1].kind == "KEYWORD" and self.toks[self.i + 1].value in ("IN", "BETWEEN", "LIKE", "ILIKE"):
            self.take()
            negated = True
            t = self.tok
        if self.accept_kw("IN"):
            self.expect_op("(")
            items = [self.expr()]
            while self.accept_op(","):
                items.append(self.expr())
            self.expect_op(")")
            return A.InList(left, tuple(items), negated, pos=t.pos)
        if self.accept_kw("BETWEEN"):
            low = self.additive()
            self.expect_kw("AND")
            return A.Between(left, low, self.additive(), negated, pos=t.pos)
        if self.at_kw("LIKE", "ILIKE"):
            ci = self.take().value == "ILIKE"
            return A.Like(left, self.additive(), ci, negated, pos=t.pos)
        if self.accept_kw("IS"):
            neg = bool(self.accept_kw("NOT"))
            self.expect_kw("NULL")
            return A.IsNull(left, neg, pos=t.pos)
        return left

    def additive(self) -> A.Expr:
        left = self.multiplicative()
        while self.at_op("+", "-"):
            t = self.take()
            left = A.Binary(t.value, left, self.multiplicative(), pos=t.pos)
        return left

    def multiplicative(self) -> A.Expr:
        left = self.unary()
        while self.at_op("*", "/", "%"):
            t = self.take()
            left = A.Binary(t.value, left, self.unary(), pos=t.pos)
        return left

    def unary(self) -> A.Expr:
        if self.at_op("-", "+"):
            t = self.take()
            self.enter()
            operand = self.unary()
            self.depth -= 1
            if t.value == "-" and isinstance(operand, A.Literal) and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
                return A.Literal(-operand.value, pos=t.pos)  # -3 is a literal, so it can be a slice bound
            return A.Unary(t.value, operand, pos=t.pos)
        return self.postfix()

    def postfix(self) -> A.Expr:
        e = self.primary()
        while self.at_op("["):
            t = self.take()
            items = [self.subscript_item()]
            while self.accept_op(","):
                items.append(self.subscript_item())
            self.expect_op("]")
            e = A.Subscript(e, tuple(items), pos=t.pos)
        return e

    def subscript_item(self) -> Union[A.Expr, A.Slice]:
        t = self.tok
        start = None if self.at_op(":") else self.expr()
        if not self.accept_op(":"):
            if start is None:
                raise self.error("expected an index")
            return start
        stop = None if self.at_op(":", ",", "]") else self.expr()
        step = None
        if self.accept_op(":"):
            step = None if self.at_op(",", "]") else self.expr()
        return A.Slice(start, stop, step, pos=t.pos)

    def primary(self) -> A.Expr:
        t = self.tok
        if t.kind == "NUMBER":
            self.take()
            return A.Literal(_number(t.value), pos=t.pos)
        if t.kind == "STRING":
            self.take()
            return A.Literal(t.value, pos=t.pos)
        if self.at_kw("TRUE", "FALSE"):
            self.take()
            return A.Literal(t.value == "TRUE", pos=t.pos)
        if self.at_kw("NULL"):
            self.take()
            return A.Literal(None, pos=t.pos)
        if self.at_op("?"):
            self.take()
            self.params += 1
            return A.Param(self.params - 1, pos=t.pos)
        if self.at_kw("ARRAY"):
            self.take()
            self.expect_op("[")
            items: List[A.Expr] = []
            if not self.at_op("]"):
                items.append(self.expr())
                while self.accept_op(","):
                    items.append(self.expr())
            self.expect_op("]")
            return A.ArrayLiteral(tuple(items), pos=t.pos)
        if self.at_op("("):
            self.take()
            e = self.expr()
            self.expect_op(")")
            return e
        if t.kind == "IDENT" and self.toks[self.i + 1].kind == "OP" and self.toks[self.i + 1].value == "(":
            self.take()
            self.take()
            args: List[A.Expr] = []
            if t.value.upper() == "COUNT" and self.at_op("*"):
                self.take()  # COUNT(*): the group's rows, as COUNT() (tql/grouping.py)
            elif not self.at_op(")"):
                args.append(self.expr())
                while self.accept_op(","):
                    args.append(self.expr())
            self.expect_op(")")
            return A.Call(t.value.upper(), tuple(args), pos=t.pos)
        if t.kind in ("IDENT", "QIDENT"):
            self.take()
            parts = [t.value]
            # a.b.c names tensor b/c... in group a (Deep Lake's dotted group path)
            while self.at_op(".") and self.toks[self.i + 1].kind in ("IDENT", "QIDENT"):
                self.take()
                parts.append(self.take().value)
            version = self.version() if self.accept_op("@") else None
            return A.Identifier("/".join(parts), version, pos=t.pos)
        raise self.error(f"expected an expression, found {self._describe(t)}")


def _number(s: str) -> Union[int, float]:
    if s.isdigit():
        return int(s)
    return float(s)
