"""Pure NumPy oracles for the kernels of ``lakeformat._native``.

Each function has the signature of its C twin, writes into the same output
buffers and raises the same data-dependent errors (IndexError, OverflowError,
ValueError), so differential tests can compare outcomes exactly. Checking the
*types* of arguments (itemsize, contiguity, writability) is the C side's job
and is tested directly, not here. The oracles favour obviousness over speed:
they are vectorised where NumPy makes that natural and use Python integers
where int64 arithmetic could overflow.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

U32_MAX = 2**32 - 1
I64_MAX = 2**63 - 1


def _flat(array) -> np.ndarray:
    """A 1-D view of a C-contiguous NumPy array (the C side's flat reading)."""
    return np.asarray(array).reshape(-1)


def _bytes_of(buffer) -> np.ndarray:
    """A flat uint8 view of any C-contiguous buffer, writable if it is."""
    view = memoryview(buffer)
    if view.nbytes == 0:  # memoryview cannot cast a shape with a zero in it
        return np.empty(0, dtype=np.uint8)
    return np.frombuffer(view.cast("B"), dtype=np.uint8)


def _writable_bytes_of(buffer) -> np.ndarray:
    view = _bytes_of(buffer)
    assert view.flags.writeable
    return view


def _check_u32(value: int, name: str) -> None:
    if not 0 <= value <= U32_MAX:
        raise OverflowError(f"{name}={value} does not fit a uint32 column")


def _check_last_index(first_index: int, n: int) -> None:
    if n > 0 and first_index + n - 1 > U32_MAX:
        raise OverflowError("last index does not fit a uint32 column")


def _run_ends(matrix: np.ndarray) -> np.ndarray:
    """Index of the last row of each run of equal consecutive rows."""
    if len(matrix) == 0:
        return np.empty(0, dtype=np.int64)
    changes = np.any(matrix[1:] != matrix[:-1], axis=1)
    return np.flatnonzero(np.append(changes, True))


def _write_rows(rows: np.ndarray, out) -> int:
    flat_out = _flat(out)
    if rows.size > flat_out.size:
        raise ValueError("out is too small")
    flat_out[: rows.size] = rows.reshape(-1)
    return len(rows)


def runs_encode(values, ncols: int, first_index: int, out) -> int:
    if ncols < 1:
        raise ValueError("ncols must be >= 1")
    _check_u32(first_index, "first_index")
    flat = _flat(values)
    if flat.size % ncols:
        raise ValueError("values is not a whole number of rows")
    matrix = flat.reshape(-1, ncols)
    _check_last_index(first_index, len(matrix))
    ends = _run_ends(matrix)
    rows = np.empty((len(ends), ncols + 1), dtype=np.uint32)
    rows[:, :ncols] = matrix[ends]
    rows[:, ncols] = first_index + ends
    return _write_rows(rows, out)


def positions_encode(sizes, first_index: int, start_byte: int, out) -> int:
    _check_u32(first_index, "first_index")
    _check_u32(start_byte, "start_byte")
    sizes = _flat(sizes).astype(np.int64)
    n = len(sizes)
    _check_last_index(first_index, n)
    if (sizes < 0).any():
        raise ValueError("negative size")
    if (sizes > U32_MAX).any():
        raise OverflowError("size does not fit uint32")
    if n == 0:
        return 0
    ends = _run_ends(sizes[:, None])
    firsts = np.concatenate(([0], ends[:-1] + 1))
    # Python ints: a long run of big samples may pass 2**63 bytes.
    offsets = start_byte + np.concatenate(([0], np.cumsum(sizes.astype(object))))
    starts = offsets[firsts]
    if any(s > U32_MAX for s in starts):
        raise OverflowError("start byte exceeds 2**32-1")
    rows = np.empty((len(ends), 3), dtype=np.uint32)
    rows[:, 0] = sizes[ends]
    rows[:, 1] = starts.astype(np.uint64)
    rows[:, 2] = first_index + ends
    return _write_rows(rows, out)


def _lower_bound_rows(last_index: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Rows for in-range queries, IndexError for the first query outside."""
    last_index = last_index.astype(np.uint64)
    hi = min(int(last_index[-1]), I64_MAX) if last_index.size else -1
    bad = np.flatnonzero((queries < 0) | (queries > hi))
    if bad.size:
        raise IndexError(f"query {queries[bad[0]]} is out of range")
    return np.searchsorted(last_index, queries.astype(np.uint64), side="left")


def runs_lookup(last_index, queries, out) -> None:
    queries = _flat(queries)
    flat_out = _flat(out)
    if flat_out.size != queries.size:
        raise ValueError("out must have one item per query")
    flat_out[:] = _lower_bound_rows(_flat(last_index), queries)


def positions_expand(rows, local_index, start_out, end_out) -> None:
    rows = _flat(rows)
    if rows.size % 3:
        raise ValueError("rows is not a whole number of [num_bytes, start_byte, last_index]")
    rows = rows.reshape(-1, 3).astype(object)
    index = _flat(local_index)
    starts, ends = _flat(start_out), _flat(end_out)
    if starts.size != index.size or ends.size != index.size:
        raise ValueError("outputs must have one item per index")
    r = _lower_bound_rows(rows[:, 2].astype(np.uint64), index)
    if index.size == 0:
        return
    firsts = np.where(r == 0, 0, rows[r - 1, 2] + 1)
    start = rows[r, 1] + (index.astype(object) - firsts) * rows[r, 0]
    end = start + rows[r, 0]
    if any(e > I64_MAX for e in end):
        raise OverflowError("byte offset exceeds 2**63-1")
    starts[:] = start.astype(np.int64)
    ends[:] = end.astype(np.int64)


def shapes_expand(rows, ncols: int, local_index, out) -> None:
    if ncols < 0:
        raise ValueError("ncols must be >= 0")
    rows = _flat(rows)
    if rows.size % (ncols + 1):
        raise ValueError("rows is not a whole number of [dims..., last_index]")
    rows = rows.reshape(-1, ncols + 1)
    index = _flat(local_index)
    flat_out = _flat(out)
    if flat_out.size != index.size * ncols:
        raise ValueError("out must have ncols items per index")
    r = _lower_bound_rows(rows[:, ncols], index)
    flat_out[:] = rows[r, :ncols].reshape(-1)


def gather(sources: Sequence, src_id, src_start, length, out, out_offset) -> None:
    ids, starts, lengths, offsets = (_flat(a) for a in (src_id, src_start, length, out_offset))
    if not ids.size == starts.size == lengths.size == offsets.size:
        raise ValueError("index arrays must have equal lengths")
    views = [_bytes_of(s) for s in sources]
    target = _writable_bytes_of(out)
    ranges = list(zip(ids.tolist(), starts.tolist(), lengths.tolist(), offsets.tolist()))
    for i, (sid, s, n, o) in enumerate(ranges):
        ok = (
            0 <= sid < len(views)
            and s >= 0 and n >= 0 and o >= 0
            and s + n <= views[sid].size
            and o + n <= target.size
        )
        if not ok:
            raise IndexError(f"gather range {i} is out of bounds")
    for sid, s, n, o in ranges:
        target[o : o + n] = views[sid][s : s + n]


def concat(parts: Sequence, out) -> int:
    data = b"".join(memoryview(p).tobytes() for p in parts)
    target = _writable_bytes_of(out)
    if len(data) > target.size:
        raise ValueError("out is too small")
    target[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    return len(data)


def concat_sizes(parts: Sequence, sizes_out) -> int:
    sizes = np.array([memoryview(p).nbytes for p in parts], dtype=np.int64)
    flat_out = _flat(sizes_out)
    if flat_out.size != sizes.size:
        raise ValueError("sizes_out must have one item per part")
    flat_out[:] = sizes
    return int(sizes.sum())


def scatter_fixed(src, item_size: int, out_index, out) -> None:
    if item_size < 1:
        raise ValueError("item_size must be >= 1")
    index = _flat(out_index)
    items = _bytes_of(src)
    target = _writable_bytes_of(out)
    n, nslots = index.size, target.size // item_size
    if n * item_size > items.size:
        raise ValueError("src is too short")
    bad = np.flatnonzero((index < 0) | (index >= nslots))
    if bad.size:
        raise IndexError(f"out_index[{bad[0]}] is out of range")
    # Sequential semantics: for a repeated slot the last item wins.
    last_of_slot = n - 1 - np.unique(index[::-1], return_index=True)[1]
    slots = target[: nslots * item_size].reshape(nslots, item_size)
    slots[index[last_of_slot]] = items[: n * item_size].reshape(n, item_size)[last_of_slot]
