"""The planner: a parsed query + the dataset's tensor names -> a plan the executor runs.

It resolves names (tensors, sub-query columns, SELECT aliases in ORDER BY), checks function
names and arities, lists the tensors each step reads, and picks the ordering strategy: a
top-k (`np.argpartition`, no full sort) for one ORDER BY key with a LIMIT, else a stable
multi-key sort. Positions of errors point into the query text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple, Union

from lakeformat.tql import ast as A
from lakeformat.tql.errors import TQLError
from lakeformat.tql.functions import lookup
from lakeformat.tql.unparse import to_text
from lakeformat.tql.versions import VersionContext, check_versioned


@dataclass(frozen=True)
class Output:
    """One SELECT item: a tensor passed through, or a computed column."""
    name: str
    expr: A.Expr
    computed: bool


@dataclass(frozen=True)
class SelectPlan:
    query: A.Select
    source: Optional["Plan"]  # a sub-query's plan; None: the dataset itself
    reads: Tuple[str, ...]  # tensors this step reads, in first-use order
    where: Optional[A.Expr]
    order: Tuple[A.OrderKey, ...]  # aliases already replaced by their expressions
    strategy: str  # "none", "sort", "top-k", "random"
    limit: Optional[A.Limit]
    offset: Optional[A.Expr]
    outputs: Tuple[Output, ...]
    star: bool
    columns: FrozenSet[str] = field(default_factory=frozenset)  # names the source provides besides tensors
    renames: Dict[str, str] = field(default_factory=dict)  # `a.b` -> tensor "a.b" where no tensor a/b exists
    grouping: Optional[Any] = None  # GROUP BY / UNGROUP BY: a tql.grouping.Grouping


@dataclass(frozen=True)
class SetPlan:
    op: str
    left: "Plan"
    right: "Plan"
    pos: int


Plan = Union[SelectPlan, SetPlan]

def walk(e: Any) -> Iterator[Any]:
    """Every node of an expression, parents first."""
    yield e
    if isinstance(e, (A.Unary,)):
        yield from walk(e.operand)
    elif isinstance(e, A.Binary):
        yield from walk(e.left)
        yield from walk(e.right)
    elif isinstance(e, (A.InList,)):
        yield from walk(e.expr)
        for i in e.items:
            yield from walk(i)
    elif isinstance(e, A.Between):
        for x in (e.expr, e.low, e.high):
            yield from walk(x)
    elif isinstance(e, A.Like):
        yield from walk(e.expr)
        yield from walk(e.pattern)
    elif isinstance(e, A.IsNull):
        yield from walk(e.expr)
    elif isinstance(e, (A.Call, A.ArrayLiteral)):
        for x in (e.args if isinstance(e, A.Call) else e.items):
            yield from walk(x)
    elif isinstance(e, A.Subscript):
        yield from walk(e.expr)
        for item in e.items:
            yield from walk(item)
    elif isinstance(e, A.Slice):
        for bound in (e.start, e.stop, e.step):
            if bound is not None:
                yield from walk(bound)


def output_names(plan: Plan) -> Tuple[str, ...]:
    """The computed columns a plan's rows carry (what an outer query may name)."""
    if isinstance(plan, SetPlan):
        return ()
    return tuple(o.name for o in plan.outputs if o.computed)


def plan_query(query: A.Query, text: str, tensors: List[str], versions: Optional[VersionContext] = None) -> Plan:
    """Plan `query` over a dataset whose (visible) tensors are `tensors`; `versions`
    resolves `name@version` (tql/versions.py)."""
    return _Planner(text, tensors, versions).plan(query)


class _Planner:
    def __init__(self, text: str, tensors: List[str], versions: Optional[VersionContext] = None):
        self.text = text
        self.tensors = list(tensors)
        self.versions = versions
        self.renames: Dict[str, str] = {}

    def err(self, message: str, pos: int) -> TQLError:
        return TQLError(message, self.text, pos)

    def plan(self, q: A.Query) -> Plan:
        if isinstance(q, A.SetOperation):
            left, right = self.plan(q.left), self.plan(q.right)
            for side in (left, right):
                if isinstance(side, SelectPlan) and side.grouping is not None:
                    raise self.err(f"{q.op} combines rows, not groups or items: group or ungroup in an outer SELECT ... FROM (...)", q.pos)
                if output_names(side):
                    raise self.err(f"{q.op} combines rows: computed columns are not carried through it; compute them in an outer SELECT ... FROM (...)", q.pos)
            return SetPlan(q.op, left, right, q.pos)
        return self.plan_select(q)

    def check_expr(self, e: A.Expr, columns: FrozenSet[str], reads: List[str]) -> None:
        for node in walk(e):
            if isinstance(node, A.Identifier):
                if node.version is not None:  # a tensor at another version: tql/versions.py
                    try:
                        check_versioned(self.versions, node.name, node.version, columns)
                    except TQLError as e:
                        raise e.at(self.text, node.pos) from None
                    continue
                if node.name in columns:
                    continue
                name = node.name
                if name not in self.tensors and "/" in name and name.replace("/", ".") in self.tensors:
                    self.renames[name] = name.replace("/", ".")  # a tensor named with dots
                    name = self.renames[name]
                if name not in self.tensors:
                    known = ", ".join(sorted(self.tensors + list(columns))) or "none"
                    raise self.err(f"unknown tensor {node.name!r} (tensors: {known})", node.pos)
                if name not in reads:
                    reads.append(name)
            elif isinstance(node, A.Call):
                spec = lookup(node.name)
                if spec is None:
                    if node.name == "COUNT":  # an aggregate over groups (tql/grouping.py)
                        raise self.err("COUNT counts the rows of a group: it needs GROUP BY", node.pos)
                    raise self.err(f"unknown function {node.name}", node.pos)
                n = len(node.args)
                if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
                    want = str(spec.min_args) if spec.min_args == spec.max_args else f"{spec.min_args} to {spec.max_args}" if spec.max_args is not None else f"at least {spec.min_args}"
                    raise self.err(f"{node.name} takes {want} argument{'s' if want != '1' else ''}, got {n}", node.pos)

    def plan_select(self, q: A.Select) -> SelectPlan:
        if q.group_by or q.ungroup_by:  # planned in tql/grouping.py
            from lakeformat.tql.grouping import plan_grouped

            return plan_grouped(self, q)
        source: Optional[Plan] = None
        columns: FrozenSet[str] = frozenset()
        if isinstance(q.source, A.SubquerySource):
            source = self.plan(q.source.query)
            if isinstance(source, SelectPlan) and source.grouping is not None:  # its rows are groups or items
                raise self.err("a sub-query with GROUP BY or UNGROUP BY: query its result instead (tql.run(result.view, ...))", q.source.pos)
            columns = frozenset(output_names(source))
        reads: List[str] = []
        if q.where is not None:
            self.check_expr(q.where, columns, reads)
        if q.expand_by is not None:
            if source is not None:
                raise self.err("EXPAND BY adds the dataset's neighbouring rows: it runs on the dataset, not on a sub-query", q.expand_by.pos)
            if q.expand_by.before < 0 or q.expand_by.after < 0:
                raise self.err("EXPAND BY takes two counts >= 0 (rows before, rows after)", q.expand_by.pos)
        if q.sample_by is not None:
            if q.offset is not None:
                raise self.err("SAMPLE BY draws LIMIT rows; OFFSET does not apply to a sample", q.offset.pos)
            for cond, weight in q.sample_by.weights:
                self.check_expr(cond, columns, reads)
                self.check_expr(weight, columns, reads)
        star = False
        outputs: List[Output] = []
        for item in q.items:
            if isinstance(item.expr, A.Star):
                star = True
                continue
            self.check_expr(item.expr, columns, [])
            plain = isinstance(item.expr, A.Identifier) and item.alias is None and item.expr.name not in columns and item.expr.version is None
            name = item.alias or to_text(item.expr)
            if item.alias is None and isinstance(item.expr, A.Identifier) and item.expr.version is None:
                name = item.expr.name
            if any(o.name == name for o in outputs):
                raise self.err(f"two columns named {name!r}; name one with AS", item.pos)
            outputs.append(Output(name, item.expr, not plain))
        aliases = {o.name: o.expr for o in outputs if o.computed}
        order: List[A.OrderKey] = []
        for key in q.order_by:
            e = key.expr
            if isinstance(e, A.Identifier) and e.name in aliases and e.name not in columns:
                e = aliases[e.name]  # ORDER BY a SELECT alias
            self.check_expr(e, columns, reads)
            order.append(A.OrderKey(e, key.descending, pos=key.pos))
        for o in outputs:
            self.check_expr(o.expr, columns, reads)
        randomized = any(isinstance(k.expr, A.Call) and k.expr.name == "RANDOM" for k in order)
        if not order:
            strategy = "none"
        elif len(order) == 1 and q.limit is not None and not q.limit.percent and not randomized and q.sample_by is None:
            strategy = "top-k"
        else:
            strategy = "random" if randomized and len(order) == 1 else "sort"
        return SelectPlan(q, source, tuple(reads), q.where, tuple(order), strategy, q.limit, q.offset, tuple(outputs), star, columns, dict(self.renames))


def describe(plan: Plan, indent: str = "", notes: Optional[Callable[[SelectPlan], List[str]]] = None) -> str:
    """The plan as text, one step a line (what `explain` returns). `notes(step)` adds lines
    after a SELECT step's filter (pushdown: tql/pushdown.py `explain_notes`)."""
    if isinstance(plan, SetPlan):
        return "\n".join([f"{indent}{plan.op}", describe(plan.left, indent + "  ", notes), describe(plan.right, indent + "  ", notes)])
    lines = [f"{indent}SELECT"]
    ind = indent + "  "
    if plan.source is not None:
        lines.append(f"{ind}from sub-query:")
        lines.append(describe(plan.source, ind + "  ", notes))
    elif plan.query.source is not None and isinstance(plan.query.source, A.DatasetSource):
        s = plan.query.source
        lines.append(f"{ind}from dataset: {s.url}" + (f" @ {s.version}" if s.version else ""))
    lines.append(f"{ind}read tensors: " + (", ".join(plan.reads) if plan.reads else "(none)"))
    if plan.where is not None:
        lines.append(f"{ind}filter: {to_text(plan.where)}")
    if notes is not None:
        lines.extend(ind + line for line in notes(plan))
    q = plan.query
    if q.expand_by is not None:
        lines.append(f"{ind}expand: {q.expand_by.before} rows before, {q.expand_by.after} after each row")
    if plan.grouping is not None:
        lines.append(f"{ind}{plan.grouping.describe()}")
    if q.sample_by is not None:
        ws = ", ".join(f"{to_text(c)}: {to_text(w)}" for c, w in q.sample_by.weights)
        replace = "with" if q.sample_by.replace in (None, True) else "without"
        lines.append(f"{ind}sample: {q.sample_by.mode}({ws}) {replace} replacement, LIMIT rows")
    if plan.order:
        keys = ", ".join(to_text(k.expr) + (" DESC" if k.descending else " ASC") for k in plan.order)
        how = {"top-k": "top-k (argpartition, no full sort)", "sort": "stable sort (lexsort)", "random": "random permutation"}[plan.strategy]
        lines.append(f"{ind}order: {keys} by {how}")
    if plan.limit is not None:
        lines.append(f"{ind}limit: {to_text(plan.limit.count)}{' PERCENT' if plan.limit.percent else ''}")
    if plan.offset is not None:
        lines.append(f"{ind}offset: {to_text(plan.offset)}")
    cols = [f"{o.name} = {to_text(o.expr)}" for o in plan.outputs if o.computed]
    if cols:
        lines.append(f"{ind}computed columns: " + "; ".join(cols))
    picked = [o.name for o in plan.outputs if not o.computed]
    lines.append(f"{ind}tensors in the view: " + ("all" if plan.star else ", ".join(picked) if picked else "(none)"))
    return "\n".join(lines)
