"""TQL, the tensor query language: `run(ds, "SELECT ... WHERE ... ORDER BY ... LIMIT ...")`.

>>> from lakeformat import tql                                        # doctest: +SKIP
>>> res = tql.run(ds, "SELECT * WHERE labels == 'cat' ORDER BY score DESC LIMIT 10")  # doctest: +SKIP
>>> res.view            # a dataset view over the matching rows, in the query's order  # doctest: +SKIP

The grammar and every function: docs/tql.md. Modules: `lexer` and `parser` (text -> `ast`),
`planner` (names, arities, strategy), `executor` (whole-column evaluation), `operators` and
`functions` (what expressions compute), `reader` (the seam to storage), `errors`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lakeformat.core.view import with_selection
from lakeformat.tql import ast
from lakeformat.tql.errors import TQLError
from lakeformat.tql.executor import Executor
from lakeformat.tql.functions import register_function, unregister_function
from lakeformat.tql.grouped_view import GroupedView, ItemView, base_reader, is_derived, result_view
from lakeformat.tql.lexer import tokenize
from lakeformat.tql.parser import parse, parse_expression
from lakeformat.tql.planner import Plan, describe, plan_query
from lakeformat.tql.pushdown import explain_notes
from lakeformat.tql.reader import ColumnReader, DatasetColumnReader
from lakeformat.tql.versions import VersionContext, active

__all__ = ["run", "explain", "parse", "parse_expression", "register_function", "unregister_function", "QueryResult", "TQLError", "ColumnReader", "DatasetColumnReader", "GroupedView", "ItemView", "ast"]


@dataclass
class QueryResult:
    """The result of a query.

    - `view`: the dataset view over the selected rows, in the query's order (`ds[indices]`).
    - `indices`: those rows, as positions in the dataset (or view) queried.
    - `columns`: computed SELECT items by name (alias, or the expression's text): an ndarray
      of shape (rows, ...) where every row has the same shape, else a list with one entry per
      row (text, json, ragged arrays).
    - `tensors`: the tensors the SELECT list names (`None` for `SELECT *`: all of them).
    - `query`, `commit_id`: the query text, and the commit the rows were read at (None for
      a dataset with no commit).
    - `groups` (GROUP BY): per result row, its group's rows (positions in the dataset queried);
      then `indices` holds each group's first row and `view` is a `GroupedView`.
    - `items` (UNGROUP BY): per result row, which item of row `indices[k]`'s sequences it is;
      then `view` is an `ItemView` (or, ungrouping a `GroupedView`, the dataset's rows again).
    """
    view: Any
    indices: np.ndarray
    columns: Dict[str, Any] = field(default_factory=dict)
    tensors: Optional[Tuple[str, ...]] = None
    query: str = ""
    commit_id: Optional[str] = None
    groups: Optional[List[np.ndarray]] = None  # GROUP BY: per result row, its group's rows
    items: Optional[np.ndarray] = None  # UNGROUP BY: per result row, the item of row `indices[k]`

    def __len__(self) -> int:
        return len(self.indices)


def _dataset_sources(q: ast.Query) -> List[ast.DatasetSource]:
    if isinstance(q, ast.SetOperation):
        return _dataset_sources(q.left) + _dataset_sources(q.right)
    if isinstance(q.source, ast.DatasetSource):
        return [q.source]
    if isinstance(q.source, ast.SubquerySource):
        return _dataset_sources(q.source.query)
    return []


def _resolve_dataset(ds: Any, q: ast.Query, text: str) -> Any:
    """The dataset a query runs on: `ds`, or (when `ds` is None) the one its FROM names.
    With `ds` given, FROM "<url>" is refused: a query string never opens other storage."""
    sources = _dataset_sources(q)
    if ds is not None:
        if sources:
            raise TQLError('FROM "<url>" opens a dataset: run it with run(None, query), not on an open dataset', text, sources[0].pos)
        return ds
    if not sources:
        raise TQLError("no dataset to query: pass one, or name it with FROM \"<url>\"", text, 0)
    first = sources[0]
    for s in sources[1:]:
        if (s.url, s.version) != (first.url, first.version):
            raise TQLError("a query reads one dataset: every FROM \"<url>\" must name the same one", text, s.pos)
    from lakeformat.api import load  # imported here: lakeformat.api imports the whole core
    from lakeformat.errors import LakeFormatError

    try:
        return load(first.url, read_only=True, version=first.version)
    except TQLError:
        raise
    except LakeFormatError as e:
        raise TQLError(f"cannot open {first.url!r}" + (f" at {first.version!r}" if first.version else "") + f": {e}", text, first.pos) from e


def _tensor_names(ds: Any) -> List[str]:
    return list(ds.tensors)


def _count_params(text: str) -> int:
    """How many `?` the query holds (the parser numbers them in this order)."""
    return sum(1 for t in tokenize(text) if t.kind == "OP" and t.value == "?")


def _commit_of(ds: Any) -> Optional[str]:
    return getattr(ds, "commit_id", None)  # None: no commit yet, or a reader-backed stand-in


def _prepare(ds: Any, text: str) -> Tuple[Any, Plan, ast.Query]:
    q = parse(text)
    ds = _resolve_dataset(ds, q, text)
    return ds, plan_query(q, text, _tensor_names(ds), VersionContext.of(ds)), q


def run(ds: Any, text: str, params: Optional[Sequence[Any]] = None, seed: Optional[int] = None, reader: Optional[ColumnReader] = None, backend: str = "numpy") -> QueryResult:
    """Run a TQL query on `ds` (a dataset or a view); `None` opens the dataset that the
    query's FROM "<url>"[@version] names, read-only.

    `params` bind the `?` placeholders in order. `seed` makes RANDOM() and SAMPLE BY
    replayable. `reader` replaces the column reader (the seam for chunk-aware readers).
    `backend="torch"` runs the numeric work on PyTorch tensors (a GPU where present).

    >>> res = run(ds, "SELECT * WHERE x > ? ORDER BY x DESC LIMIT 3", params=[5])  # doctest: +SKIP
    >>> res.view.x.numpy()                                                          # doctest: +SKIP
    """
    ds, plan, _ = _prepare(ds, text)
    params = list(params or [])
    wanted = _count_params(text)
    if len(params) != wanted:
        raise TQLError(f"the query has {wanted} parameter{'s' if wanted != 1 else ''} (?) but {len(params)} value{'s' if len(params) != 1 else ''} were given")
    rng = np.random.default_rng(seed)
    length = len(ds)
    versions = VersionContext.of(ds)  # x@version and ROW_ADDED(...): tql/versions.py
    ex = Executor(reader or base_reader(ds), length, text, params, rng, versions=versions, backend=backend)
    with active(versions):
        sel = ex.run(plan)
    rows = sel.rows.astype(np.int64)
    if sel.groups is not None or sel.items is not None or is_derived(ds):  # tql/grouped_view.py
        view = result_view(ds, rows, sel.groups, sel.items, sel.tensors, text)
        return QueryResult(view, rows, {k: v.to_python() for k, v in sel.columns.items()}, sel.tensors, text, _commit_of(ds), sel.groups, sel.items)
    # the result's handle carries its query, so that `.view` records what made it
    # the view keeps every tensor (res.tensors names those the SELECT list picks)
    return QueryResult(with_selection(ds[rows], None, text), rows, {k: v.to_python() for k, v in sel.columns.items()}, sel.tensors, text, _commit_of(ds))


def explain(ds: Any, text: str) -> str:
    """The plan of a query, as text: the tensors each step reads, the filter, the order and
    how it is computed (top-k or sort), limit and offset, the computed columns.

    >>> print(explain(ds, "SELECT * WHERE labels == 'cat' LIMIT 5"))  # doctest: +SKIP
    """
    ds, plan, _ = _prepare(ds, text)
    return describe(plan, notes=explain_notes(ds, text))  # pushdown and LIMIT lines: tql/pushdown.py
