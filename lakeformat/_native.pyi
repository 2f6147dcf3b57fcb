"""Type stub of the C extension ``lakeformat._native`` (source: native/lakeformat_native.c).

Arrays are taken through the buffer protocol and must be C-contiguous and in
native byte order; an n-dimensional array is read flat, in C order. Results
are written into output buffers the caller allocated (``np.empty(...)``),
which must not share memory with the inputs. Errors: TypeError for a wrong
item type or a read-only output, ValueError for a wrong layout or length,
IndexError for an index or byte range out of bounds, OverflowError for a
value that does not fit its uint32 column.
"""
from collections.abc import Sequence

from typing_extensions import Buffer

__version__: str

def lz4_encode(src: Buffer, out: Buffer) -> int:
    """One lz4 block (no size prefix) of ``src`` into ``out`` (``len(src) + len(src) // 255 + 16``
    bytes at least), matches found with 5-, 12- and 32-byte keys; returns the block's size."""

def runs_encode(values: Buffer, ncols: int, first_index: int, out: Buffer) -> int:
    """Run-length encode the rows of a uint32 [n, ncols] matrix.

    Writes one uint32 row per run of equal consecutive rows into ``out``: the
    ncols values, then ``first_index`` + the index of the run's last row.
    ``n * (ncols + 1)`` items of ``out`` always suffice. Returns the number of
    rows written.
    """

def positions_encode(sizes: Buffer, first_index: int, start_byte: int, out: Buffer) -> int:
    """BytePositionsEncoder rows ``[num_bytes, start_byte, last_index]`` into uint32 ``out``.

    ``sizes`` (uint32 or int64) are per-sample byte counts laid out back to
    back from ``start_byte``; equal consecutive sizes share a row. ``3 * n``
    items of ``out`` always suffice. Returns the number of rows;
    OverflowError if a row would start past byte 2**32-1.
    """

def runs_lookup(last_index: Buffer, queries: Buffer, out: Buffer) -> None:
    """For each int64 query q, the smallest row r with ``last_index[r] >= q``.

    ``last_index`` is a non-decreasing uint32 or uint64 column; ``out`` is
    int64 with one item per query. IndexError if q < 0, q > last_index[-1]
    or the column is empty.
    """

def positions_expand(rows: Buffer, local_index: Buffer, start_out: Buffer, end_out: Buffer) -> None:
    """Byte range [start, end) of each local sample index (int64).

    ``rows`` is a uint32 [m, 3] BytePositionsEncoder; ``start_out`` and
    ``end_out`` are int64 with one item per index.
    """

def positions_run(rows: Buffer, lo: int, base: int, out: Buffer) -> tuple[int, int] | None:
    """base + end(i) - start(lo) of the len(out) samples of a chunk from `lo` on, into `out`;
    (start(lo), end of the last) or None where they are not back to back."""

def shapes_expand(rows: Buffer, ncols: int, local_index: Buffer, out: Buffer) -> None:
    """Shape of each local sample index (int64) from a uint32 [m, ncols + 1] ShapeEncoder.

    ``out`` is int64 with ``ncols`` items per index ([n, ncols] row-major).
    """

def gather(
    sources: Sequence[Buffer],
    src_id: Buffer,
    src_start: Buffer,
    length: Buffer,
    out: Buffer,
    out_offset: Buffer,
) -> None:
    """Copy ``length[i]`` bytes of ``sources[src_id[i]]`` at ``src_start[i]`` to ``out`` at ``out_offset[i]``.

    ``sources`` is a list or tuple; the four index arrays are int64 of equal
    length. Every range is checked before any byte is copied.
    """

def concat(parts: Sequence[Buffer], out: Buffer) -> int:
    """Copy ``parts`` (a list or tuple) back to back into ``out``; return the byte count."""

def concat_sizes(parts: Sequence[Buffer], sizes_out: Buffer) -> int:
    """Write each part's byte length into int64 ``sizes_out`` (one per part); return the total."""

def scatter_fixed(src: Buffer, item_size: int, out_index: Buffer, out: Buffer) -> None:
    """Copy item i of ``src`` (``item_size`` bytes) into slot ``out_index[i]`` (int64) of ``out``."""

def widen_bytes(src: Buffer, out: Buffer) -> tuple[int, int]:
    """Copy each byte of ``src`` into uint32 ``out``; return (OR of all bytes, number of non-zero bytes)."""

def is_run(items: Buffer) -> bool:
    """Whether the int64 buffer holds consecutive ascending integers (True when empty)."""

def narrow_ucs4(src: Buffer, width: int, out: Buffer, lengths_out: Buffer) -> tuple[int, int]:
    """Rows of ``width`` uint32 code points to one byte each in ``out`` (row lengths to int64
    ``lengths_out``); return (OR of all code points, bytes written)."""

# TQL text kernels (native/tql_text.c): text as Arrow-style buffers, int64 ``offsets`` (n + 1,
# non-decreasing, inside ``data``) and ``data`` (UTF-8 bytes); ``out`` is a bool array of n.
def text_compare(offsets: Buffer, data: Buffer, needle: Buffer, op: int, out: Buffer) -> None:
    """``out[i] = value_i <op> needle`` in code point order; op 0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=."""

def text_compare_pairs(a_offsets: Buffer, a_data: Buffer, b_offsets: Buffer, b_data: Buffer, op: int, out: Buffer) -> None:
    """``out[i] = a_i <op> b_i`` (op as ``text_compare``)."""

def text_in(offsets: Buffer, data: Buffer, set_offsets: Buffer, set_data: Buffer, out: Buffer) -> None:
    """``out[i] = value_i`` is in the set (strictly increasing text buffers; ValueError otherwise)."""

def text_contains(offsets: Buffer, data: Buffer, needle: Buffer, out: Buffer) -> None:
    """``out[i] = needle`` occurs in ``value_i`` (an empty needle occurs everywhere)."""

def text_utf8_check(offsets: Buffer, data: Buffer) -> int:
    """The first value that is not valid UTF-8 on its own, or -1."""

def text_ucs4_width(offsets: Buffer, data: Buffer) -> tuple[int, int, bool]:
    """(most code points of a value, first value that is not UTF-8 or -1, all ASCII)."""

def text_to_ucs4(offsets: Buffer, data: Buffer, width: int, out: Buffer) -> int:
    """Values into a U<width> array viewed as uint32; -1, or the first bad value."""

def text_str_list(offsets: Buffer, data: Buffer, null: Buffer | None = None) -> list[str | None] | int:
    """The values as str (None where null); the first non-UTF-8 value's index instead."""

def text_like(pattern: Buffer, offsets: Buffer, data: Buffer, fold: bool, out: Buffer) -> int:
    """Wildcard match: int32 ``pattern`` tokens (code point, -1 any run, -2 one code point);
    with ``fold``, ASCII/Latin-1 case folding and 2 (unsure) for values above U+00FF; returns
    how many values are unsure."""

# TQL numeric kernels (native/tql_ragged.c): ragged rows as one flat buffer plus int64
# ``offsets`` (n + 1, non-decreasing, inside ``values``).
def segment_reduce(values: Buffer, offsets: Buffer, op: int, out: Buffer, geometry: Buffer | None = None, out_offsets: Buffer | None = None) -> None:
    """Reduce each row (op 0 SUM, 1 PROD, 2 MIN, 3 MAX, 4 ANY, 5 ALL, 6 MEAN, 7 L1, 8 L2,
    9 LINF, 10 COUNT_NONZERO) into ``out`` (converted to its item type); with ``geometry``
    (int64 outer, length, inner per row) along one axis, results from ``out[out_offsets[i]]``."""

def rows_vector(matrix: Buffer, vector: Buffer, op: int, out: Buffer) -> None:
    """One float vector against every row of a flat (n, d) matrix of the same float type:
    op 0 DOT, 1 cosine similarity, 2 L2 distance, into ``out`` (n items)."""

def top_k(keys: Buffer, k: int, descending: bool, out: Buffer, valid: Buffer | None = None) -> int:
    """Positions of the first k rows of int64/uint64/float32/float64 ``keys`` in order (ties
    in row order; ``valid`` bytes of 0 and NaN keys left out) into int64 ``out``; returns how
    many were written."""

def json_balanced(offsets: Buffer, data: Buffer) -> int:
    """The first non-empty JSON document (text buffers) whose brackets, strings or top-level
    commas make it more or less than one value, or -1."""

def json_path(offsets: Buffer, data: Buffer, path: tuple[str | int, ...], out_kind: Buffer,
              out_num: Buffer, out_len: Buffer) -> None:
    """For each JSON document data[offsets[i]:offsets[i+1]] (offsets int64, n + 1) the value at
    `path` (str keys, int indices, negative from the end), each document validated whole,
    duplicate keys last-wins, without the GIL: out_kind[i] (int64) 0 missing/null (an empty
    document too), 1 false, 2 true, 3 int (out_num: the int64), 4 float (out_num: the float64
    bits, what float() gives), 5 a string without escapes (out_num: its first byte, out_len:
    its byte length), 6 fallback: parse that document in Python (object/array, escaped string,
    int beyond int64, float strtod flags, int index into a string, invalid JSON)."""
