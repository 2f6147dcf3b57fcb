"""Evaluating a row-local expression over many wide rows a block of rows at a time.

`ORDER BY COSINE_SIMILARITY(embedding, ARRAY[...]) DESC LIMIT 10` over a million 384-float
embeddings would read 1.5 GB into one array, then scan it. Evaluated in blocks of a few
megabytes instead, each block's rows are read straight into memory that stays mapped (no page
fault per fresh page), and two blocks run at once: one is read while the other is scanned
(the reads and the kernels release the GIL). The result is the same value, row for row.

Only expressions whose value in a row depends on that row alone are split: no RANDOM()
(its draws follow the frame's length), no registered Python function (it may look at the
whole column), no tensor at another version, no GROUP BY aggregate.
"""
from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from lakeformat.core.index import is_run
from lakeformat.errors import LakeFormatError
from lakeformat.tql import ast as A
from lakeformat.tql.functions import lookup
from lakeformat.tql.reader import reusing_buffers
from lakeformat.tql.values import Value

if TYPE_CHECKING:
    from lakeformat.tql.executor import Frame

BLOCK_BYTES = 8 << 20  # per block, of the tensors the expression reads
MAPPED_BLOCK_BYTES = 64 << 20  # blocks along chunk ends: a whole chunk (16 MB by default) each
MIN_ROW_BYTES = 64  # a row of 16 float32 or more
MIN_TOTAL_BYTES = 64 << 20  # below this, one whole-column evaluation is as fast
MIN_REDUCED_BYTES = 16 << 20  # the same for a top-k, which keeps k rows of each block
WORKERS = max(2, min(8, os.cpu_count() or 1))  # blocks evaluated at once (reads and kernels release the GIL)
MIN_PARALLEL_ROWS = 1 << 20  # a WHERE over fewer rows runs in one piece: threads would cost more than they save
MIN_WHERE_BLOCK_ROWS = 1 << 16
NOT_ROW_LOCAL = frozenset({"RANDOM", "ROW_ADDED", "ROW_REMOVED", "ROW_CHANGED", "COUNT"})


def _children(node: Any) -> Iterator[Any]:
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        for x in (v if isinstance(v, tuple) else (v,)):
            if isinstance(x, A.Node):
                yield x


def tensors_if_row_local(e: Any, columns: Any) -> Optional[List[str]]:
    """The tensors `e` reads when its value in a row depends on that row alone, else None."""
    out: List[str] = []
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, A.Identifier):
            if node.version is not None:
                return None
            if node.name not in columns:
                out.append(node.name)
        elif isinstance(node, A.Call):
            spec = lookup(node.name)
            if spec is None or spec.user or node.name in NOT_ROW_LOCAL:
                return None
        stack.extend(_children(node))
    return out


def block_starts(reader: Any, e: Any, frame: "Frame", reduced: bool = False, renames: Optional[Dict[str, str]] = None) -> List[int]:
    """Where the blocks for evaluating `e` over `frame` start (positions in the frame), or []
    where one evaluation is better: few rows, narrow rows, an expression that is not
    row-local. Over a run of rows, blocks end where the widest tensor's chunks end, so that
    a block lies in one chunk (which a local store maps in place: no copy at all).
    `reduced`: each block's value is cut down at once (a top-k), so narrow rows pay too."""
    row_nbytes = getattr(reader, "row_nbytes", None)
    if row_nbytes is None:
        return []
    renames = renames or {}
    names = tensors_if_row_local(e, frame.columns)
    if not names:
        return []
    try:
        widths = {name: row_nbytes(renames.get(name, name)) for name in set(names)}
    except (LakeFormatError, KeyError, AttributeError):  # not a tensor: the evaluation says what is wrong
        return []
    if any(w is None for w in widths.values()):
        return []
    width = sum(int(w) for w in widths.values() if w is not None)
    n = len(frame.rows)
    per = max(1024, BLOCK_BYTES // max(width, 1))
    if (width < MIN_ROW_BYTES and not reduced) or width * n < (MIN_REDUCED_BYTES if reduced else MIN_TOTAL_BYTES) or n <= per:
        return []  # narrow rows: the value is about as big as what it reads, so blocks only add copies
    cuts = [0]
    chunk_starts = getattr(reader, "chunk_starts", None)
    if chunk_starts is not None and (frame.is_run or is_run(frame.rows)):
        widest = max(widths, key=lambda k: int(widths[k] or 0))
        firsts = chunk_starts(renames.get(widest, widest))
        if firsts is not None:
            r0 = int(frame.rows[0])
            inside = firsts[(firsts > r0) & (firsts < r0 + n)] - r0
            cuts = [0] + [int(x) for x in inside]
            per = max(per, MAPPED_BLOCK_BYTES // max(width, 1))  # a chunk is mapped whole: keep it one block
    starts: List[int] = []
    for a, b in zip(cuts, cuts[1:] + [n]):
        starts.extend(range(a, b, per))
    return starts


def _block(frame: "Frame", a: int, b: int) -> "Frame":
    """Rows [a, b) of `frame`, with its sub-query columns."""
    from lakeformat.tql.executor import Frame

    if not frame.columns:
        return Frame(frame.rows[a:b], is_run=frame.is_run)
    pos = np.arange(a, b, dtype=np.int64)
    return Frame(frame.rows[a:b], {k: v.take(pos) for k, v in frame.columns.items()}, is_run=frame.is_run)


def eval_blocked(evaluate: Callable[[Any, "Frame"], Value], e: Any, frame: "Frame", starts: List[int]) -> Optional[Value]:
    """`evaluate(e, block)` over the blocks of `frame`'s rows that begin at `starts`, two at a
    time, joined: the value `evaluate(e, frame)` would give, or None where a block's value is
    not one array of one shape per row (the caller then evaluates in one piece)."""

    n = len(frame.rows)
    ends = starts[1:] + [n]

    def one(bounds: Tuple[int, int]) -> Value:
        a, b = bounds
        block = _block(frame, a, b)
        with reusing_buffers():  # this worker's reads reuse its arrays (or map chunks): copy the result out
            v = evaluate(e, block)
        if v.kind != "array":
            return v
        return Value("array", np.array(v.data), v.class_names, None if v.null is None else np.array(v.null), v.time)

    with ThreadPoolExecutor(WORKERS) as pool:
        parts = list(pool.map(one, zip(starts, ends)))
    if any(p.kind != "array" for p in parts) or len({(p.data.shape[1:], p.data.dtype) for p in parts}) != 1:
        return None
    if len({p.class_names for p in parts}) != 1 or len({p.time for p in parts}) != 1:
        return None
    data = np.concatenate([p.data for p in parts])
    null = None
    if any(p.null is not None for p in parts):
        null = np.concatenate([p.null if p.null is not None else np.zeros(len(p.data), bool) for p in parts])
    return Value("array", data, parts[0].class_names, null, parts[0].time)


class _NotNumeric(Exception):
    """A block's ORDER BY key is not numbers: the caller sorts in one piece."""


def top_k_blocked(ex: Any, key: Any, frame: "Frame", k: int) -> Optional[np.ndarray]:
    """The first `k` positions of `frame` in the order of the one ORDER BY `key` (NULLs
    last, ties in row order), found block by block: each block's own first k rows are
    candidates (every row of the overall first k is among its block's first k), and a
    stable sort of the candidates in row order picks the k. None where blocks do not apply
    (then the caller evaluates the key over every row at once)."""
    from lakeformat.tql.executor import order_key, sort_permutation, top_k

    starts = block_starts(ex.reader, key.expr, frame, reduced=True, renames=ex.renames)
    if not starts or k <= 0:
        return None
    n = len(frame.rows)
    ends = starts[1:] + [n]

    def one(bounds: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = bounds
        block = _block(frame, a, b)
        with reusing_buffers():
            vals, null = order_key(ex.eval(key.expr, block), b - a)
        if vals.dtype.kind not in "iubf":
            raise _NotNumeric
        best = top_k(vals, null, min(k, b - a), key.descending)
        return best + a, np.array(vals[best]), np.array(null[best])

    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            parts = list(pool.map(one, zip(starts, ends)))
    except _NotNumeric:
        return None
    if len({p[1].dtype for p in parts}) != 1:
        return None
    cand = np.concatenate([p[0] for p in parts])  # already in row order: blocks in order, each block's rows ascending below
    vals = np.concatenate([p[1] for p in parts])
    null = np.concatenate([p[2] for p in parts])
    order = np.argsort(cand, kind="stable")
    cand, vals, null = cand[order], vals[order], null[order]
    chosen: np.ndarray = cand[sort_permutation([(vals, null, key.descending)])[:k]]
    return chosen


def where_blocks(reader: Any, names: List[str], frame: "Frame", renames: Dict[str, str]) -> List[Tuple[int, int]]:
    """Row ranges [a, b) of `frame` for evaluating a WHERE in parallel, or [] where one piece
    is better (few rows). Over a run of rows the cuts fall where chunks of the tensor with
    the most chunks end, so that a block rarely reads (or decompresses) a chunk another
    block reads too."""
    n = len(frame.rows)
    if n < MIN_PARALLEL_ROWS:
        return []
    per = max(MIN_WHERE_BLOCK_ROWS, -(-n // (4 * WORKERS)))  # a few blocks a worker: one slow block cannot idle the rest
    cuts = np.arange(0, n, per, dtype=np.int64)
    chunk_starts = getattr(reader, "chunk_starts", None)
    if chunk_starts is not None and names and (frame.is_run or is_run(frame.rows)):
        firsts = [f for f in (chunk_starts(renames.get(x, x)) for x in set(names)) if f is not None]
        if firsts:
            r0 = int(frame.rows[0])
            most = max(firsts, key=len)
            inside = most[(most > r0) & (most < r0 + n)] - r0
            if len(inside):  # each cut moved to the nearest chunk start at or after it
                at = np.searchsorted(inside, cuts[1:])
                cuts = np.unique(np.concatenate([[0], inside[at[at < len(inside)]]]))
    ends = np.append(cuts[1:], n)
    return [(int(a), int(b)) for a, b in zip(cuts, ends) if b > a]


def mask_blocked(row_mask: Callable[["Frame"], np.ndarray], frame: "Frame", blocks: List[Tuple[int, int]]) -> np.ndarray:
    """`row_mask(frame)`, evaluated over `blocks` of its rows on `WORKERS` threads and joined.
    Only for a WHERE that fails, if it fails, on every row alike (pushdown's test): the
    first block's error is then the one a single evaluation raises."""

    def one(bounds: Tuple[int, int]) -> np.ndarray:
        a, b = bounds
        with reusing_buffers():  # the block's reads land in this worker's arrays: copy the mask out
            return np.array(row_mask(_block(frame, a, b)), dtype=bool)

    with ThreadPoolExecutor(WORKERS) as pool:
        parts = list(pool.map(one, blocks))
    return np.concatenate(parts) if parts else np.zeros(0, bool)
