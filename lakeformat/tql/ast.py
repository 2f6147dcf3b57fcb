"""The TQL syntax tree: frozen dataclasses, one per construct. `pos` is the character offset
of the construct in the query text (for error messages); it takes no part in equality."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Tuple, Union


@dataclass(frozen=True, slots=True)
class Node:
    pass


# --- expressions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A number, string, boolean or NULL."""
    value: Any
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Param(Node):
    """A `?` placeholder; `index` counts from 0 in the order they appear."""
    index: int
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Identifier(Node):
    """A tensor (or a column computed by a sub-query): `name` uses `/` between groups.
    `version` is set for `name@version` (a tensor at another version: tql/versions.py)."""
    name: str
    version: Optional[str] = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ArrayLiteral(Node):
    """`ARRAY[e1, e2, ...]` (nested arrays make matrices)."""
    items: Tuple["Expr", ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "-", "+", "NOT"
    operand: "Expr"
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # + - * / % == != < <= > >= AND OR  (= is stored as ==, <> as !=)
    left: "Expr"
    right: "Expr"
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class InList(Node):
    expr: "Expr"
    items: Tuple["Expr", ...]
    negated: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Between(Node):
    expr: "Expr"
    low: "Expr"
    high: "Expr"
    negated: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Like(Node):
    expr: "Expr"
    pattern: "Expr"
    case_insensitive: bool = False
    negated: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    expr: "Expr"
    negated: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call; `name` is upper-cased."""
    name: str
    args: Tuple["Expr", ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Slice(Node):
    """`start:stop:step` inside brackets; missing parts are None."""
    start: Optional["Expr"] = None
    stop: Optional["Expr"] = None
    step: Optional["Expr"] = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Subscript(Node):
    """`expr[i, a:b, ...]` (NumPy-style, applied within each sample) or `expr['key']` (JSON)."""
    expr: "Expr"
    items: Tuple[Union["Expr", Slice], ...]
    pos: int = field(default=0, compare=False)


Expr = Union[Literal, Param, Identifier, ArrayLiteral, Unary, Binary, InList, Between, Like, IsNull, Call, Subscript]


# --- statements --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Star(Node):
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SelectItem(Node):
    expr: Union[Expr, Star]
    alias: Optional[str] = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class OrderKey(Node):
    expr: Expr
    descending: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Limit(Node):
    count: Expr
    percent: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class DatasetSource(Node):
    """`FROM "<url>"` or `FROM "<url>"@<branch|commit>`."""
    url: str
    version: Optional[str] = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SubquerySource(Node):
    query: "Query"
    alias: Optional[str] = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SampleBy(Node):
    """`SAMPLE BY MAX_WEIGHT|SUM_WEIGHT(cond: weight, ...) [REPLACE TRUE|FALSE]`."""
    mode: str  # "MAX_WEIGHT" or "SUM_WEIGHT"
    weights: Tuple[Tuple[Expr, Expr], ...]
    replace: Optional[bool] = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ExpandBy(Node):
    before: int
    after: int
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Select(Node):
    items: Tuple[SelectItem, ...]
    source: Optional[Union[DatasetSource, SubquerySource]] = None
    where: Optional[Expr] = None
    group_by: Tuple[Expr, ...] = ()
    ungroup_by: Tuple[Expr, ...] = ()
    expand_by: Optional[ExpandBy] = None
    sample_by: Optional[SampleBy] = None
    order_by: Tuple[OrderKey, ...] = ()
    limit: Optional[Limit] = None
    offset: Optional[Expr] = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SetOperation(Node):
    op: str  # "UNION", "INTERSECT", "EXCEPT"
    left: "Query"
    right: "Query"
    pos: int = field(default=0, compare=False)


Query = Union[Select, SetOperation]
