"""Pushdown: the WHERE step, skipping chunks that per-chunk statistics rule out, and
short-circuiting `LIMIT n` without ORDER BY.

From the WHERE tree, `column op constant` (`== = < <= > >=`), `BETWEEN`, `IN` and
`IS [NOT] NULL` over tensors with chunk statistics (`lakeformat.core.chunk_stats`: min, max,
empty samples), combined with AND and OR, give each chunk a "may match": a row can pass the
filter only if every AND-ed part may match its chunk (any OR-ed part, for OR). Rows in chunks
that cannot match are dropped before WHERE reads anything, so their chunks are never read;
the rest are evaluated as before, so the rows kept are exactly those a full evaluation keeps
(WHERE's semantics are per row: a row passes when some element of its result is true, and
a chunk's min and max bound every element of every sample in it). Comparisons run through
the executor's own operators on the min and max, so class names, ISO time literals and
NumPy's casting apply to them exactly as to the column.

A WHERE with RANDOM() or a function registered from Python is never pushed down (their
values could depend on which rows are evaluated together).

`LIMIT n [OFFSET m]` with no ORDER BY, SAMPLE BY, EXPAND BY or grouping evaluates WHERE
chunk by chunk in row order and stops once `m + n` rows have passed; rows after that are
never read (nor checked, so a row there that would raise an error does not).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

from lakeformat import temporal
from lakeformat.tql import ast as A
from lakeformat.tql import operators as ops
from lakeformat.tql.blocked import mask_blocked, tensors_if_row_local, where_blocks
from lakeformat.tql.errors import TQLError
from lakeformat.tql.functions import lookup
from lakeformat.tql.planner import SelectPlan, walk
from lakeformat.tql.unparse import to_text
from lakeformat.tql.values import Value

if TYPE_CHECKING:
    from lakeformat.tql.executor import Executor, Frame
    from lakeformat.tql.chunk_map import ChunkMap

__all__ = ["run_where", "explain_notes", "PushdownReport"]

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "=": "=="}
_COMPARE = ("==", "=", "<", "<=", ">", ">=")
_MIN_BLOCK = 8192  # rows per step of a LIMIT scan, at least
_MAX_IN = 256  # IN lists longer than this are not pushed down


@dataclass
class PushdownReport:
    """What the WHERE step did (or, for `explain`, would do) for one SELECT."""
    pushed: List[str] = field(default_factory=list)  # filters decided per chunk by statistics
    chunks: Dict[str, Tuple[int, int, int, int]] = field(default_factory=dict)  # tensor -> (total, with statistics, skipped, read)
    rows_before: int = 0
    rows_after: int = 0
    rows_scanned: int = 0  # rows WHERE was evaluated on (fewer than rows_before: skipped, or a LIMIT scan stopped)
    limit_scan: Optional[int] = None  # rows to pass before the scan stops


def _unsafe(where: A.Expr) -> bool:
    """RANDOM() or a function registered from Python: values that may depend on the rows
    evaluated together."""
    for node in walk(where):
        if isinstance(node, A.Call):
            spec = lookup(node.name)
            if node.name in ("RANDOM",) or spec is None or getattr(spec, "user", False):
                return True
    return False


def _row_independent(ex: "Executor", plan: SelectPlan, frame: "Frame", where: A.Expr) -> bool:
    """Whether WHERE fails, if it fails, on every row alike (so evaluating fewer rows cannot
    hide an error): every column it reads has one sample shape, or is text or json."""
    check = getattr(ex.reader, "row_independent", None)
    if check is None:
        return False
    for node in walk(where):
        if isinstance(node, A.Identifier):
            if node.name in frame.columns:
                if frame.columns[node.name].kind == "ragged":
                    return False
            elif getattr(node, "version", None) is not None or not check(plan.renames.get(node.name, node.name)):
                return False
    return True


def _constant(e: A.Expr) -> bool:
    return all(isinstance(n, (A.Literal, A.Param, A.Unary, A.Binary)) and not (isinstance(n, A.Unary) and n.op == "NOT")
               and not (isinstance(n, A.Binary) and n.op not in ("+", "-", "*", "/", "%")) for n in walk(e))


class _Stats:
    """Per-row "may match" of WHERE parts, from the chunk statistics of the tensors they name."""

    def __init__(self, ex: "Executor", plan: SelectPlan, frame: "Frame", report: PushdownReport):
        self.ex = ex
        self.plan = plan
        self.frame = frame
        self.report = report
        self.maps: Dict[str, Optional["ChunkMap"]] = {}

    def chunk_map(self, e: A.Expr) -> Optional[Tuple[str, "ChunkMap"]]:
        if not isinstance(e, A.Identifier) or e.name in self.frame.columns or getattr(e, "version", None) is not None:
            return None
        name = self.plan.renames.get(e.name, e.name)
        if name not in self.maps:
            fn = getattr(self.ex.reader, "chunk_map", None)
            self.maps[name] = fn(name, self.frame.rows) if fn is not None else None
        m = self.maps[name]
        return None if m is None else (name, m)

    def const(self, e: A.Expr, m: "ChunkMap") -> Optional[Value]:
        """A scalar constant as the column compares with it (a time literal as its int64)."""
        if not _constant(e):
            return None
        try:
            v = self.ex.eval(e, self.frame.take(np.zeros(0, np.int64)))
        except TQLError:
            return None  # the full evaluation reports it
        if v.kind != "const" or isinstance(v.data, tuple) or v.data is None:
            return None
        if isinstance(v.data, str):
            if m.time is not None:
                try:
                    return Value("const", np.int64(temporal.iso_to_stored(v.data, *m.time)))
                except ValueError:
                    return None
            return v if m.class_names is not None else None
        return v if np.ndim(v.data) == 0 else None

    def bound(self, op: str, m: "ChunkMap", c: Value) -> Optional[np.ndarray]:
        """Per chunk row: some element may satisfy `element op c`."""
        st = m.stats
        n = len(st)
        try:
            def cmp(o: str, arr: np.ndarray) -> np.ndarray:
                out = ops.compare(o, Value("array", arr.reshape(n, 1), m.class_names, None, m.time), c, n)
                return np.asarray(np.asarray(out.data, bool).reshape(n, -1).any(axis=1), bool)
            if op in (">", ">="):
                may = cmp(op, st.maxs)
            elif op in ("<", "<="):
                may = cmp(op, st.mins)
            else:
                may = cmp("<=", st.mins) & cmp(">=", st.maxs)
        except (TQLError, TypeError, ValueError):
            return None
        return np.asarray(may & st.has_values, bool)

    def rows(self, name: str, m: "ChunkMap", may_chunk: Optional[np.ndarray], text: str) -> Optional[np.ndarray]:
        if may_chunk is None:
            return None
        self.report.pushed.append(text)
        ruled_out = m.stats.known & ~may_chunk
        return m.per_row(~ruled_out) if ruled_out.any() else None  # None: every row may match

    def counts(self, may: Optional[np.ndarray]) -> Dict[str, Tuple[int, int, int, int]]:
        """Per tensor with statistics: chunks in all, with trusted statistics, skipped (holding
        rows of the frame, none of which may match), and holding rows that may match."""
        out = {}
        for name in self.plan.reads:
            m = self.maps.get(name)
            if m is None:
                continue
            holding = m.holding()
            read = holding if may is None else m.holding(may)
            out[name] = (len(m.stats), int(m.stats.known.sum()), holding - read, read)
        return out

    def may(self, e: A.Expr) -> Optional[np.ndarray]:
        """Per row: whether `e` may be true there (None: anywhere, as far as statistics say)."""
        if isinstance(e, A.Binary) and e.op in ("AND", "OR"):
            a, b = self.may(e.left), self.may(e.right)
            if e.op == "AND":
                return b if a is None else a if b is None else a & b
            return None if a is None or b is None else a | b
        if isinstance(e, A.Binary) and e.op in _COMPARE:
            op, col, other = e.op, e.left, e.right
            if self.chunk_map(col) is None:
                op, col, other = _FLIP[e.op], e.right, e.left
            got = self.chunk_map(col)
            if got is None:
                return None
            c = self.const(other, got[1])
            return None if c is None else self.rows(got[0], got[1], self.bound("==" if op == "=" else op, got[1], c), to_text(e))
        if isinstance(e, A.Between) and not e.negated:
            got = self.chunk_map(e.expr)
            if got is None:
                return None
            lo, hi = self.const(e.low, got[1]), self.const(e.high, got[1])
            if lo is None or hi is None:
                return None
            a, b = self.bound(">=", got[1], lo), self.bound("<=", got[1], hi)
            return self.rows(got[0], got[1], None if a is None or b is None else a & b, to_text(e))
        if isinstance(e, A.InList) and not e.negated and 0 < len(e.items) <= _MAX_IN:
            got = self.chunk_map(e.expr)
            if got is None:
                return None
            acc: Optional[np.ndarray] = None
            for item in e.items:
                c = self.const(item, got[1])
                b = None if c is None else self.bound("==", got[1], c)
                if b is None:
                    return None
                acc = b if acc is None else acc | b
            return self.rows(got[0], got[1], acc, to_text(e))
        if isinstance(e, A.IsNull):
            got = self.chunk_map(e.expr)
            if got is None or got[1].nullable:
                return None  # a nullable column keeps its nulls in a validity tensor, not as empty samples
            st = got[1].stats
            return self.rows(got[0], got[1], (st.counts > st.nulls) if e.negated else (st.nulls > 0), to_text(e))
        return None


def _limit_need(ex: "Executor", plan: SelectPlan, n: int) -> Optional[int]:
    """Rows WHERE must pass before a LIMIT without ordering is satisfied; None: no short-circuit."""
    q = plan.query
    if plan.limit is None or plan.limit.percent or plan.order or q.sample_by is not None or q.expand_by is not None:
        return None
    if getattr(plan, "grouping", None) is not None:
        return None
    try:
        start, count = ex.window(plan, n)
    except TQLError:
        return None  # reported where it always is, after WHERE
    return start + count


def _mask(ex: "Executor", where: A.Expr, frame: "Frame") -> np.ndarray:
    try:
        return ops.row_mask(ex.eval(where, frame), len(frame.rows))
    except TQLError as e:
        raise e.at(ex.text, where.pos) from None


def run_where(ex: "Executor", plan: SelectPlan, frame: "Frame", report: Optional[PushdownReport] = None) -> "Frame":
    """`frame` filtered by `plan.where`: chunks ruled out by statistics dropped first, then the
    rest evaluated, all at once or, for a LIMIT without ordering, chunk by chunk until enough
    rows passed."""
    where = plan.where
    assert where is not None
    report = report if report is not None else PushdownReport()
    reports = getattr(ex.reader, "pushdown_reports", None)
    if isinstance(reports, list):
        reports.append(report)
    report.rows_before = len(frame.rows)
    first_map: Optional["ChunkMap"] = None
    independent = not _unsafe(where) and _row_independent(ex, plan, frame, where)
    if getattr(ex.reader, "pushdown", True) and independent:
        st = _Stats(ex, plan, frame, report)
        may = st.may(where)
        report.chunks = st.counts(may)
        first_map = next((m for m in (st.maps.get(name) for name in plan.reads) if m is not None), None)
        need = _limit_need(ex, plan, len(frame.rows))
        if may is not None and not may.all():
            keep = np.flatnonzero(may)
            if first_map is not None and need is not None:
                first_map = first_map.take(keep)
            frame = frame.take(keep)
        if need is not None:
            report.limit_scan = need
            return _scan(ex, where, frame, need, first_map, report)
    out = frame.take(np.flatnonzero(_parallel_mask(ex, plan, where, frame) if independent else _mask(ex, where, frame)))
    report.rows_scanned = len(frame.rows)
    report.rows_after = len(out.rows)
    return out


def _parallel_mask(ex: "Executor", plan: SelectPlan, where: A.Expr, frame: "Frame") -> np.ndarray:
    """WHERE's row mask, blocks of rows evaluated on threads where there are many rows and
    the filter's value in a row depends on that row alone (tql/blocked.py)."""
    names = tensors_if_row_local(where, frame.columns) if ex.backend is None else None
    blocks = where_blocks(ex.reader, names, frame, plan.renames) if names is not None else []
    if len(blocks) < 2:
        return _mask(ex, where, frame)
    return mask_blocked(lambda part: _mask(ex, where, part), frame, blocks)


def _scan(ex: "Executor", where: A.Expr, frame: "Frame", need: int, m: Optional["ChunkMap"], report: PushdownReport) -> "Frame":
    kept: List[np.ndarray] = []
    got = 0
    blocks = m.blocks(_MIN_BLOCK) if m is not None else [(a, min(a + (1 << 16), len(frame.rows))) for a in range(0, max(len(frame.rows), 1), 1 << 16)]
    for a, b in blocks:
        part = frame.take(np.arange(a, b, dtype=np.int64))
        hit = a + np.flatnonzero(_mask(ex, where, part))
        report.rows_scanned = b
        kept.append(hit)
        got += len(hit)
        if got >= need:
            break
    positions = np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)
    report.rows_after = len(positions)
    return frame.take(positions)


def explain_notes(ds: Any, text: str) -> Any:
    """For `explain`: a function giving, per SELECT step over the dataset itself, the lines
    that say what pushdown would do there (filters decided by statistics, chunks per tensor:
    total, with statistics, skipped; the LIMIT short-circuit). Reads statistics, no chunk."""
    from lakeformat.tql.executor import Executor, Frame
    from lakeformat.tql.reader import DatasetColumnReader

    def notes(plan: SelectPlan) -> List[str]:
        where = plan.where
        if ds is None:
            return []
        limit_ok = plan.limit is not None and not plan.limit.percent and not plan.order and plan.query.sample_by is None \
            and plan.query.expand_by is None and getattr(plan, "grouping", None) is None
        if where is None:
            return ["limit: no WHERE, the first rows are taken as they are"] if limit_ok else []
        if _unsafe(where):
            return ["pushdown: none (RANDOM() or a registered function in WHERE)"]
        make = getattr(ds, "column_reader", None)  # a grouped view's own reader (tql/grouped_view.py)
        reader = make() if make is not None else DatasetColumnReader(ds)
        ex = Executor(reader, len(ds), text, [], np.random.default_rng(0))
        frame = Frame(np.arange(len(ds), dtype=np.int64))
        if plan.source is not None:
            return ["pushdown: chunk statistics applied to the sub-query's rows when it runs"]
        if getattr(reader, "row_independent", None) is None or getattr(reader, "chunk_map", None) is None:
            return ["pushdown: none (rows not read from a dataset's chunks)"]
        if not _row_independent(ex, plan, frame, where):
            return ["pushdown: none (WHERE reads a tensor whose samples differ in shape, or one of another version)"]
        report = PushdownReport()
        st = _Stats(ex, plan, frame, report)
        counts = st.counts(st.may(where))
        lines = ["pushed down: " + ("; ".join(report.pushed) if report.pushed else "(none)")]
        for name in plan.reads:
            if name not in counts:
                lines.append(f"chunks of {name}: no statistics, read where rows remain")
                continue
            total, known, skipped, read = counts[name]
            lines.append(f"chunks of {name}: {total} total, {known} with statistics, {skipped} skipped by statistics, {read} to read")
        if limit_ok:
            lines.append("limit: short-circuit: WHERE runs chunk by chunk in row order, stopping once LIMIT + OFFSET rows pass")
        return lines

    return notes
