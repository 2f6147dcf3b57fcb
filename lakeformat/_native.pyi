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

def narrow_ucs4(src: Buffer, width: int, out: Buffer, lengths_out: Buffer) -> tuple[int, int]:
    """Rows of ``width`` uint32 code points to one byte each in ``out`` (row lengths to int64
    ``lengths_out``); return (OR of all code points, bytes written)."""
