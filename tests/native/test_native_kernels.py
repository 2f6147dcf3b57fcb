"""Differential and error tests of the C kernels in ``lakeformat._native``.

Every kernel is compared with its NumPy oracle in ``numpy_reference`` on
random inputs (sizes 0 and 1 included, repeated rows, uint32 and uint64
columns, sorted and unsorted queries): both must return the same value and
write the same bytes, or both raise the same exception type. The explicit
tests then check that bad arguments raise a typed error instead of crashing,
that every buffer is released on every path, and that the copy loop runs
without the GIL.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lakeformat import _native

from . import numpy_reference

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I64_MAX = 2**63 - 1

FUZZ = settings(max_examples=200, deadline=None)
DATA_ERRORS = (IndexError, OverflowError, ValueError)


def outcome(name: str, args: tuple):
    """Result of kernel `name` from C and from NumPy, each on its own copy of `args`."""
    results = []
    for impl in (_native, numpy_reference):
        call_args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
        try:
            results.append((("ok", getattr(impl, name)(*call_args)), call_args))
        except DATA_ERRORS as error:
            results.append((("raised", type(error)), call_args))
    return results


def assert_same(name: str, args: tuple) -> tuple:
    """C and NumPy agree on the result and on every array argument afterwards."""
    (native, native_args), (reference, reference_args) = outcome(name, args)
    assert native == reference, f"{name}: C gave {native}, NumPy gave {reference}"
    event(f"{name}: {native[0] if native[0] == 'ok' else native[1].__name__}")
    if native[0] == "ok":
        for mine, theirs in zip(native_args, reference_args):
            if isinstance(mine, np.ndarray):
                np.testing.assert_array_equal(mine, theirs)
    return native


def sentinel(n: int, dtype) -> np.ndarray:
    """An output buffer pre-filled so untouched items are visible."""
    return np.full(n, 0xA5, dtype=dtype)


# ---------------------------------------------------------------- strategies


@st.composite
def uint_values(draw, n: int, bits: int = 32) -> np.ndarray:
    """n unsigned values, usually from a tiny alphabet so that runs repeat."""
    top = 2**bits - 1
    alphabet = draw(st.sampled_from([[0], [0, 1], [0, 1, 2], None]))
    element = st.sampled_from(alphabet) if alphabet else st.integers(0, top)
    return np.array(draw(st.lists(element, min_size=n, max_size=n)), dtype=f"uint{bits}")


sizes_n = st.one_of(st.integers(0, 2), st.integers(0, 60))
u32_arg = st.one_of(st.integers(0, 3), st.integers(0, U32_MAX), st.just(U32_MAX))


@st.composite
def last_index_columns(draw, dtype=None) -> np.ndarray:
    """A non-decreasing last-index column, with repeats (tiled samples)."""
    dtype = dtype or draw(st.sampled_from([np.uint32, np.uint64]))
    top = U32_MAX if dtype == np.uint32 else U64_MAX
    m = draw(sizes_n)
    hi = draw(st.sampled_from([5, 100, top]))
    values = draw(st.lists(st.integers(0, hi), min_size=m, max_size=m))
    return np.array(sorted(values), dtype=dtype)


@st.composite
def queries_for(draw, hi: int, n=None, ordered=None) -> np.ndarray:
    """int64 queries mostly in [0, hi], sometimes just outside, sorted or not."""
    n = draw(sizes_n) if n is None else n
    hi = min(hi, I64_MAX)
    in_range = st.integers(0, hi) if hi >= 0 else st.just(0)
    edge = st.sampled_from([v for v in (0, hi, hi - 1) if v >= 0] or [0])
    outside = st.sampled_from([-1, hi + 1, -(2**63)] if hi < I64_MAX else [-1, -(2**63)])
    element = st.one_of(in_range, in_range, edge, outside) if draw(st.booleans()) else st.one_of(in_range, edge)
    values = draw(st.lists(element, min_size=n, max_size=n))
    if ordered if ordered is not None else draw(st.booleans()):
        values.sort()
    return np.array(values, dtype=np.int64)


@st.composite
def strictly_increasing(draw, m: int, hi: int = 200) -> np.ndarray:
    values = draw(st.lists(st.integers(0, hi), min_size=m, max_size=m, unique=True))
    return np.array(sorted(values), dtype=np.uint32)


# ---------------------------------------------------------------- runs_encode


@FUZZ
@given(data=st.data(), n=sizes_n, ncols=st.integers(1, 4), first_index=u32_arg)
def test_runs_encode_matches_numpy(data, n, ncols, first_index):
    values = data.draw(uint_values(n * ncols)).reshape(n, ncols)
    room = data.draw(st.sampled_from([n * (ncols + 1), data.draw(st.integers(0, n * (ncols + 1)))]))
    assert_same("runs_encode", (values, ncols, first_index, sentinel(room, np.uint32)))


def test_runs_encode_builds_shape_encoder_rows():
    shapes = np.array([[3, 4], [3, 4], [5, 4], [3, 4]], dtype=np.uint32)
    out = np.empty(4 * 3, dtype=np.uint32)
    rows = _native.runs_encode(shapes, 2, 10, out)
    assert rows == 3
    assert out[:9].reshape(3, 3).tolist() == [[3, 4, 11], [5, 4, 12], [3, 4, 13]]


def test_runs_encode_accepts_a_tight_output():
    values = np.array([7, 7, 7, 8], dtype=np.uint32)
    out = np.empty(4, dtype=np.uint32)
    assert _native.runs_encode(values, 1, 0, out) == 2
    assert out.tolist() == [7, 2, 8, 3]
    with pytest.raises(ValueError, match="need 4"):
        _native.runs_encode(values, 1, 0, np.empty(3, dtype=np.uint32))


# ---------------------------------------------------------------- positions_encode


@FUZZ
@given(data=st.data(), n=sizes_n, first_index=u32_arg, start_byte=u32_arg,
       dtype=st.sampled_from([np.uint32, np.int64]))
def test_positions_encode_matches_numpy(data, n, first_index, start_byte, dtype):
    sizes = data.draw(uint_values(n)).astype(dtype)
    room = data.draw(st.sampled_from([3 * n, data.draw(st.integers(0, 3 * n))]))
    assert_same("positions_encode", (sizes, first_index, start_byte, sentinel(room, np.uint32)))


def test_positions_encode_rows():
    sizes = np.array([4, 4, 4, 9, 4], dtype=np.int64)
    out = np.empty(15, dtype=np.uint32)
    assert _native.positions_encode(sizes, 0, 100, out) == 3
    assert out[:9].reshape(3, 3).tolist() == [[4, 100, 2], [9, 112, 3], [4, 121, 4]]


def test_positions_encode_start_byte_overflow():
    out = np.empty(6, dtype=np.uint32)
    # The second row would start at 2**32: not representable.
    with pytest.raises(OverflowError, match="start byte 4294967296"):
        _native.positions_encode(np.array([2**31, 2**31, 1], np.uint32), 0, 0, out)
    # A run may end past 2**32 as long as no row starts there.
    assert _native.positions_encode(np.array([2**31, 2**31], np.uint32), 0, 0, out) == 1


def test_positions_encode_bad_sizes():
    out = np.empty(6, dtype=np.uint32)
    with pytest.raises(ValueError, match=r"sizes\[1\] = -3"):
        _native.positions_encode(np.array([1, -3], np.int64), 0, 0, out)
    with pytest.raises(OverflowError, match="num_bytes"):
        _native.positions_encode(np.array([2**32], np.int64), 0, 0, out)
    with pytest.raises(OverflowError, match="last index"):
        _native.positions_encode(np.array([1, 2], np.int64), U32_MAX, 0, out)
    with pytest.raises(OverflowError, match="start_byte"):
        _native.positions_encode(np.array([1], np.int64), 0, -1, out)


# ---------------------------------------------------------------- runs_lookup


@FUZZ
@given(data=st.data(), last_index=last_index_columns())
def test_runs_lookup_matches_numpy(data, last_index):
    hi = int(last_index[-1]) if last_index.size else -1
    queries = data.draw(queries_for(hi))
    assert_same("runs_lookup", (last_index, queries, sentinel(queries.size, np.int64)))


@FUZZ
@given(data=st.data(), last_index=last_index_columns())
def test_runs_lookup_sorted_and_shuffled_queries_agree(data, last_index):
    """The galloping walk (sorted) and bisection (shuffled) give the same rows."""
    if last_index.size == 0:
        return
    hi = min(int(last_index[-1]), I64_MAX)
    queries = np.array(sorted(data.draw(st.lists(st.integers(0, hi), max_size=60))), dtype=np.int64)
    order = np.random.default_rng(data.draw(st.integers(0, 2**32))).permutation(queries.size)
    walked, bisected = np.empty_like(queries), np.empty_like(queries)
    _native.runs_lookup(last_index, queries, walked)
    _native.runs_lookup(last_index, queries[order], bisected)
    np.testing.assert_array_equal(walked[order], bisected)
    np.testing.assert_array_equal(walked, np.searchsorted(last_index, queries.astype(last_index.dtype)))


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_runs_lookup_large_mixed_order(dtype):
    """Long gallops, sorted blocks with resets between them, and the no-GIL path."""
    rng = np.random.default_rng(0)
    last_index = np.sort(rng.integers(0, 10**6, 20_000)).astype(dtype)
    blocks = [np.sort(rng.integers(0, int(last_index[-1]) + 1, k)) for k in (1, 10, 50_000, 3)]
    queries = np.concatenate(blocks + [rng.integers(0, int(last_index[-1]) + 1, 10_000)])
    out = np.empty_like(queries)
    _native.runs_lookup(last_index, queries, out)
    np.testing.assert_array_equal(out, np.searchsorted(last_index, queries.astype(dtype)))


def test_runs_lookup_tiled_samples_repeat_last_index():
    last_index = np.array([0, 3, 3, 3, 5], dtype=np.uint32)  # rows 1..3: one tiled sample
    out = np.empty(6, dtype=np.int64)
    _native.runs_lookup(last_index, np.arange(6, dtype=np.int64), out)
    assert out.tolist() == [0, 1, 1, 1, 4, 4]


def test_runs_lookup_out_of_range_names_the_query():
    last_index = np.array([2, 5], dtype=np.uint64)
    out = np.empty(1, dtype=np.int64)
    with pytest.raises(IndexError, match="query 6 "):
        _native.runs_lookup(last_index, np.array([6], np.int64), out)
    with pytest.raises(IndexError, match="query -1 "):
        _native.runs_lookup(last_index, np.array([-1], np.int64), out)
    with pytest.raises(IndexError, match="empty"):
        _native.runs_lookup(np.empty(0, np.uint32), np.array([0], np.int64), out)


def test_runs_lookup_unsorted_column_never_crashes():
    last_index = np.array([9, 1, 7, 0, 8], dtype=np.uint32)
    queries = np.arange(9, dtype=np.int64)
    for q in (queries, queries[::-1].copy()):
        out = np.empty_like(q)
        try:
            _native.runs_lookup(last_index, q, out)
        except ValueError:
            continue
        assert ((out >= 0) & (out < last_index.size)).all()


# ---------------------------------------------------------------- positions_expand


@FUZZ
@given(data=st.data(), n=sizes_n, start_byte=st.integers(0, 1000))
def test_positions_expand_matches_numpy_and_sizes(data, n, start_byte):
    sizes = data.draw(uint_values(n)).astype(np.int64) % 100_000
    rows = np.empty(3 * n, dtype=np.uint32)
    m = numpy_reference.positions_encode(sizes, 0, start_byte, rows)
    rows = rows[: 3 * m]
    index = data.draw(queries_for(n - 1))
    assert_same("positions_expand", (rows, index, sentinel(index.size, np.int64), sentinel(index.size, np.int64)))
    # Against the truth: samples laid out back to back from start_byte.
    valid = index[(index >= 0) & (index < n)]
    starts, ends = np.empty_like(valid), np.empty_like(valid)
    _native.positions_expand(rows, valid, starts, ends)
    offsets = start_byte + np.concatenate(([0], np.cumsum(sizes)))
    np.testing.assert_array_equal(starts, offsets[valid])
    np.testing.assert_array_equal(ends, offsets[valid + 1])


def test_positions_expand_extremes():
    # A row covering samples up to index 2**32-1 with 2**32-1 bytes each.
    rows = np.array([U32_MAX, U32_MAX, U32_MAX], dtype=np.uint32)
    start, end = np.empty(1, np.int64), np.empty(1, np.int64)
    _native.positions_expand(rows, np.array([2**30], np.int64), start, end)
    assert (int(start[0]), int(end[0])) == ((2**30 + 1) * U32_MAX, (2**30 + 2) * U32_MAX)
    with pytest.raises(OverflowError, match="2\\*\\*63-1"):
        _native.positions_expand(rows, np.array([U32_MAX], np.int64), start, end)
    with pytest.raises(IndexError, match="local index 4294967296"):
        _native.positions_expand(rows, np.array([U32_MAX + 1], np.int64), start, end)


@FUZZ
@given(data=st.data(), n=st.integers(1, 60), start_byte=st.integers(0, 1000), base=st.integers(0, 10**6))
def test_positions_run_equals_positions_expand(data, n, start_byte, base):
    """The ends of a run of samples from the encoder rows in one pass, as positions_expand
    gives them; None exactly where some sample does not start where the one before ends."""
    sizes = np.array(data.draw(st.lists(st.sampled_from([0, 0, 1, 3, 20, 20, 20, 999]), min_size=n, max_size=n)), np.int64)
    rows = np.empty(3 * n, dtype=np.uint32)
    m = numpy_reference.positions_encode(sizes, 0, start_byte, rows)
    rows = rows[: 3 * m].reshape(m, 3).copy()
    if data.draw(st.booleans()) and m > 1:  # a gap: one row's bytes moved
        rows[data.draw(st.integers(1, m - 1)), 1] += data.draw(st.integers(1, 5))
    lo = data.draw(st.integers(0, n - 1))
    k = data.draw(st.integers(0, n - lo))
    out = np.full(k, -7, np.int64)
    got = _native.positions_run(rows, lo, base, out)
    if k == 0:
        assert got == (0, 0)
        return
    local = np.arange(lo, lo + k, dtype=np.int64)
    s, e = np.empty(k, np.int64), np.empty(k, np.int64)
    _native.positions_expand(rows, local, s, e)
    if not np.array_equal(s[1:], e[:-1]):
        assert got is None
        return
    assert got == (int(s[0]), int(e[-1]))
    np.testing.assert_array_equal(out, base + e - s[0])


def test_positions_run_outside_the_rows():
    rows = np.array([[3, 0, 4], [2, 15, 9]], np.uint32)
    with pytest.raises(IndexError, match="samples 8..11"):
        _native.positions_run(rows, 8, 0, np.empty(4, np.int64))
    with pytest.raises(IndexError):
        _native.positions_run(rows, 10, 0, np.empty(1, np.int64))
    with pytest.raises(ValueError, match=">= 0"):
        _native.positions_run(rows, -1, 0, np.empty(1, np.int64))
    huge = np.array([[U32_MAX, U32_MAX, U32_MAX]], np.uint32)  # past 2**62 bytes: a corrupt encoder, not an overflow
    with pytest.raises(IndexError):
        _native.positions_run(huge, U32_MAX - 1, 0, np.empty(1, np.int64))
    assert _native.positions_run(huge, 2, 0, np.empty(2, np.int64)) == (3 * U32_MAX, 5 * U32_MAX)


@FUZZ
@given(data=st.data(), m=st.integers(1, 8))
def test_expand_with_corrupt_rows_never_crashes(data, m):
    """An unsorted last_index column gives some rows or a ValueError, never a crash."""
    rows = np.array(data.draw(st.lists(st.integers(0, U32_MAX), min_size=3 * m, max_size=3 * m)), np.uint32)
    hi = int(rows[-1])
    index = data.draw(queries_for(hi, n=data.draw(st.integers(1, 10))))
    index = index[(index >= 0) & (index <= hi)]
    start, end = np.empty_like(index), np.empty_like(index)
    shapes = np.empty((index.size, 2), np.int64)
    for call in (lambda: _native.positions_expand(rows, index, start, end),
                 lambda: _native.shapes_expand(rows, 2, index, shapes)):
        try:
            call()
        except (ValueError, OverflowError):
            pass


# ---------------------------------------------------------------- shapes_expand


@FUZZ
@given(data=st.data(), m=sizes_n, ncols=st.integers(0, 4))
def test_shapes_expand_matches_numpy(data, m, ncols):
    last = data.draw(strictly_increasing(m))
    dims = data.draw(uint_values(m * ncols)).reshape(m, ncols)
    rows = np.concatenate([dims, last[:, None]], axis=1)
    hi = int(last[-1]) if m else -1
    index = data.draw(queries_for(hi))
    assert_same("shapes_expand", (rows, ncols, index, sentinel(index.size * ncols, np.int64)))


@FUZZ
@given(data=st.data(), n=sizes_n, ncols=st.integers(1, 4))
def test_shapes_round_trip_through_runs_encode(data, n, ncols):
    shapes = data.draw(uint_values(n * ncols)).reshape(n, ncols)
    rows = np.empty(n * (ncols + 1), dtype=np.uint32)
    m = _native.runs_encode(shapes, ncols, 0, rows)
    out = np.empty((n, ncols), dtype=np.int64)
    _native.shapes_expand(rows[: m * (ncols + 1)], ncols, np.arange(n, dtype=np.int64), out)
    np.testing.assert_array_equal(out, shapes)


# ---------------------------------------------------------------- gather


def as_source(data, raw: bytes):
    """The same bytes as one of the buffer types a chunk may arrive in."""
    kind = data.draw(st.sampled_from(["bytes", "bytearray", "memoryview", "uint8", "float32"]))
    if kind == "bytes":
        return raw
    if kind == "bytearray":
        return bytearray(raw)
    if kind == "memoryview":
        return memoryview(raw)
    if kind == "float32" and len(raw) % 8 == 0:
        return np.frombuffer(raw, dtype=np.float32).reshape(2, -1).copy()
    return np.frombuffer(raw, dtype=np.uint8).copy()


BAD_RANGE_FIELDS = {
    0: [-1, 4, 2**62],  # src_id
    1: [-1, 41, 2**62],  # src_start
    2: [-1, 41, 2**62],  # length
    3: [-1, 65, 2**62],  # out_offset
}


@FUZZ
@given(data=st.data(), nsources=st.integers(0, 4), n=st.integers(0, 20), out_size=st.integers(0, 64))
def test_gather_matches_numpy(data, nsources, n, out_size):
    raw = [data.draw(st.binary(max_size=40)) for _ in range(nsources)]
    sources = [as_source(data, r) for r in raw]
    ranges = []
    for _ in range(n):
        sid = data.draw(st.integers(0, nsources - 1)) if nsources else 0
        size = len(raw[sid]) if nsources else 0
        start = data.draw(st.integers(0, size))
        length = data.draw(st.integers(0, min(size - start, out_size)))
        offset = data.draw(st.integers(0, out_size - length))
        ranges.append([sid, start, length, offset])
    if ranges and data.draw(st.integers(0, 2)) == 0:  # spoil one field of one range
        field = data.draw(st.integers(0, 3))
        ranges[data.draw(st.integers(0, n - 1))][field] = data.draw(st.sampled_from(BAD_RANGE_FIELDS[field]))
    columns = np.array(ranges, dtype=np.int64).reshape(n, 4).T.copy()
    src_id, src_start, length, out_offset = columns
    out = sentinel(out_size, np.uint8)
    native = assert_same("gather", (sources, src_id, src_start, length, out, out_offset))
    if native[0] == "raised":  # every range is checked before any byte moves
        before = out.copy()
        with pytest.raises(IndexError):
            _native.gather(sources, src_id, src_start, length, out, out_offset)
        np.testing.assert_array_equal(out, before)


def test_gather_into_a_typed_array():
    chunks = [np.arange(6, dtype=np.float32).tobytes(), np.arange(10, 14, dtype=np.float32).tobytes()]
    out = np.zeros((3, 2), dtype=np.float32)
    _native.gather(
        chunks,
        np.array([1, 0, 0], np.int64),
        np.array([8, 0, 16], np.int64),
        np.array([8, 8, 8], np.int64),
        out,
        np.array([0, 8, 16], np.int64),
    )
    assert out.tolist() == [[12, 13], [0, 1], [4, 5]]


def test_gather_errors_name_the_range():
    z = np.zeros(1, np.int64)
    out = bytearray(4)
    with pytest.raises(IndexError, match="range 0: src_id 1"):
        _native.gather([b"abcd"], z + 1, z, z + 1, out, z)
    with pytest.raises(IndexError, match="range 0: bytes \\[2, 2 \\+ 3\\)"):
        _native.gather([b"abcd"], z, z + 2, z + 3, out, z)
    with pytest.raises(IndexError, match="range 0: out bytes"):
        _native.gather([b"abcd"], z, z, z + 4, out, z + 1)
    with pytest.raises(ValueError, match="must match"):
        _native.gather([b"abcd"], z, z, np.zeros(2, np.int64), out, z)
    with pytest.raises(TypeError, match="list or tuple"):
        _native.gather(b"abcd", z, z, z, out, z)
    with pytest.raises(TypeError, match=r"sources\[1\]"):
        _native.gather([b"abcd", 5], z, z, z, out, z)


def test_gather_releases_the_gil_for_big_copies():
    """Two threads copy 64 MiB each at once; both finish with the right bytes."""
    size = 64 << 20
    source = np.arange(size // 8, dtype=np.uint64).view(np.uint8)
    outs = [np.empty(size, dtype=np.uint8) for _ in range(2)]
    # Many ranges, so each call spends a while in its loop.
    pieces = 64
    step = size // pieces
    starts = np.arange(pieces, dtype=np.int64) * step
    barrier = threading.Barrier(2)
    failures = []

    def copy(out):
        try:
            barrier.wait(timeout=30)
            for _ in range(3):
                _native.gather([source], np.zeros(pieces, np.int64), starts,
                               np.full(pieces, step, np.int64), out, starts)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=copy, args=(out,)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not failures
    for out in outs:
        assert np.array_equal(out, source)


# ---------------------------------------------------------------- concat, concat_sizes


@FUZZ
@given(data=st.data(), parts_raw=st.lists(st.binary(max_size=24), max_size=6), slack=st.integers(-5, 5))
def test_concat_matches_numpy(data, parts_raw, slack):
    parts = [as_source(data, raw) for raw in parts_raw]
    total = sum(map(len, parts_raw))
    out = sentinel(max(0, total + slack), np.uint8)
    assert_same("concat", (parts, out))
    assert_same("concat_sizes", (parts, sentinel(len(parts), np.int64)))


def test_concat_serializes_pieces():
    out = bytearray(16)
    assert _native.concat((b"head", memoryview(b"er"), np.array([1, 2], np.uint16)), out) == 10
    assert bytes(out[:10]) == b"header\x01\x00\x02\x00"
    with pytest.raises(ValueError, match="out has 3 bytes but the 1 parts need 4"):
        _native.concat([b"abcd"], bytearray(3))
    sizes = np.empty(3, np.int64)
    assert _native.concat_sizes([b"ab", b"", np.zeros(3, np.float64)], sizes) == 26
    assert sizes.tolist() == [2, 0, 24]
    with pytest.raises(ValueError, match="2 parts"):
        _native.concat_sizes([b"ab", b""], sizes)


def test_concat_big_parts_without_gil():
    parts = [np.full(1 << 20, i, np.uint8) for i in range(4)]
    out = np.empty(4 << 20, np.uint8)
    assert _native.concat(parts, out) == 4 << 20
    assert np.array_equal(out, np.concatenate(parts))


# ---------------------------------------------------------------- scatter_fixed


@FUZZ
@given(data=st.data(), item_size=st.integers(1, 12), n=st.integers(0, 20), nslots=st.integers(0, 10))
def test_scatter_fixed_matches_numpy(data, item_size, n, nslots):
    src = np.frombuffer(data.draw(st.binary(min_size=n * item_size, max_size=n * item_size + 5)), np.uint8)
    index = np.array(data.draw(st.lists(st.integers(-1, nslots) if data.draw(st.booleans())
                                         else st.integers(0, max(0, nslots - 1)),
                                         min_size=n, max_size=n)), dtype=np.int64)
    if data.draw(st.booleans()):
        n_short = data.draw(st.integers(0, n * item_size))
        src = src[:n_short]
    out = sentinel(nslots * item_size + data.draw(st.integers(0, item_size - 1)), np.uint8)
    assert_same("scatter_fixed", (src.copy(), item_size, index, out))


def test_scatter_fixed_places_items():
    src = np.array([[1, 1], [2, 2], [3, 3]], np.int32)
    out = np.zeros((4, 2), np.int32)
    _native.scatter_fixed(src, 8, np.array([3, 0, 3], np.int64), out)
    assert out.tolist() == [[2, 2], [0, 0], [0, 0], [3, 3]]
    with pytest.raises(IndexError, match=r"out_index\[0\] = 4"):
        _native.scatter_fixed(src, 8, np.array([4], np.int64), out)
    with pytest.raises(ValueError, match="item_size"):
        _native.scatter_fixed(src, 0, np.array([0], np.int64), out)
    with pytest.raises(ValueError, match="fewer than 4 items"):
        _native.scatter_fixed(src, 8, np.zeros(4, np.int64), out)


# ---------------------------------------------------------------- argument checking

U32 = np.array([1, 2, 3, 4], dtype=np.uint32)
I64 = np.array([0, 1], dtype=np.int64)


def _runs_encode_values(values):
    return lambda: _native.runs_encode(values, 1, 0, np.empty(16, np.uint32))


def _runs_encode_out(out):
    return lambda: _native.runs_encode(U32, 1, 0, out)


def _lookup_queries(queries):
    return lambda: _native.runs_lookup(U32, queries, np.empty(len(queries), np.int64))


BAD_ARGUMENTS = {
    # wrong item type or byte order: TypeError
    "float32 values": (_runs_encode_values(np.ones(4, np.float32)), TypeError),
    "int32 values": (_runs_encode_values(np.ones(4, np.int32)), TypeError),
    "uint64 values": (_runs_encode_values(np.ones(4, np.uint64)), TypeError),
    "big-endian values": (_runs_encode_values(np.ones(4, ">u4")), TypeError),
    "bytes as values": (_runs_encode_values(b"\0" * 16), TypeError),
    "list as values": (_runs_encode_values([1, 2]), TypeError),
    "int32 queries": (_lookup_queries(np.ones(2, np.int32)), TypeError),
    "uint64 queries": (_lookup_queries(np.ones(2, np.uint64)), TypeError),
    "float64 last_index": (lambda: _native.runs_lookup(np.ones(2), I64, np.empty(2, np.int64)), TypeError),
    "uint64 sizes": (
        lambda: _native.positions_encode(np.ones(2, np.uint64), 0, 0, np.empty(6, np.uint32)), TypeError),
    # read-only outputs: TypeError
    "bytes as out": (lambda: _native.concat([b"a"], b"xx"), TypeError),
    "read-only array as out": (_runs_encode_out(np.frombuffer(b"\0" * 64, np.uint32)), TypeError),
    # layout: ValueError
    "strided values": (_runs_encode_values(np.arange(8, dtype=np.uint32)[::2]), ValueError),
    "fortran values": (lambda: _native.runs_encode(np.asfortranarray(np.ones((3, 2), np.uint32)), 2, 0,
                                                   np.empty(9, np.uint32)), ValueError),
    "strided memoryview source": (lambda: _native.concat([memoryview(b"abcd")[::2]], bytearray(4)), ValueError),
    "strided out": (_runs_encode_out(np.empty(32, np.uint32)[::2]), ValueError),
    "values not whole rows": (lambda: _native.runs_encode(U32, 3, 0, np.empty(16, np.uint32)), ValueError),
    "ncols zero": (lambda: _native.runs_encode(U32, 0, 0, np.empty(16, np.uint32)), ValueError),
    "ncols huge": (lambda: _native.shapes_expand(np.empty(0, np.uint32), 2**40, I64, np.empty(0, np.int64)),
                   ValueError),
    "negative ncols": (lambda: _native.shapes_expand(U32, -1, I64, np.empty(2, np.int64)), ValueError),
    "short out": (_runs_encode_out(np.empty(3, np.uint32)), ValueError),
    "lookup out too long": (lambda: _native.runs_lookup(U32, I64, np.empty(3, np.int64)), ValueError),
    "shapes out wrong size": (lambda: _native.shapes_expand(U32, 1, I64, np.empty(3, np.int64)), ValueError),
    "positions rows not triples": (lambda: _native.positions_expand(U32, I64, np.empty(2, np.int64),
                                                                    np.empty(2, np.int64)), ValueError),
    "start_out aliases end_out": (lambda: (lambda buf: _native.positions_expand(
        np.array([1, 0, 5], np.uint32), I64, buf, buf))(np.empty(2, np.int64)), ValueError),
    # integers that do not fit the uint32 columns: OverflowError
    "negative first_index": (lambda: _native.runs_encode(U32, 1, -1, np.empty(8, np.uint32)), OverflowError),
    "first_index past uint32": (lambda: _native.runs_encode(U32, 1, 2**32, np.empty(8, np.uint32)), OverflowError),
    "last index past uint32": (lambda: _native.runs_encode(U32, 1, U32_MAX - 2, np.empty(8, np.uint32)),
                               OverflowError),
    "first_index past int64": (lambda: _native.runs_encode(U32, 1, 2**70, np.empty(8, np.uint32)), OverflowError),
    "float ncols": (lambda: _native.runs_encode(U32, 1.0, 0, np.empty(8, np.uint32)), TypeError),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS), ids=list(BAD_ARGUMENTS))
def test_bad_arguments_raise_typed_errors(case):
    call, error = BAD_ARGUMENTS[case]
    with pytest.raises(error):
        call()


def test_buffers_are_released_on_every_path():
    """A bytearray cannot be resized while exported: each call must let go of it."""
    out = bytearray(16)
    z = np.zeros(1, np.int64)
    calls = [
        lambda: _native.concat([b"abc"], out),
        lambda: _native.concat([b"a" * 99], out),  # too small
        lambda: _native.concat([out, 7], bytearray(8)),  # bad second part
        lambda: _native.gather([b"abcd"], z, z, z + 4, out, z),
        lambda: _native.gather([b"abcd"], z, z, z + 5, out, z),  # out of range
        lambda: _native.gather([out], z, z, z + 4, bytearray(4), z),
        lambda: _native.gather([out], z, z, z, bytearray(4), np.zeros(1, np.int32)),  # bad type late
        lambda: _native.scatter_fixed(out, 4, z, bytearray(4)),
        lambda: _native.scatter_fixed(out, 4, z + 9, bytearray(4)),
        lambda: _native.concat_sizes([out, 3], np.empty(2, np.int64)),
    ]
    for call in calls:
        try:
            call()
        except (TypeError, ValueError, IndexError):
            pass
        out.extend(b"x")  # BufferError if still exported
        del out[-1:]


def test_outputs_must_not_alias_inputs():
    values = np.arange(16, dtype=np.uint32)
    with pytest.raises(ValueError, match="share memory"):
        _native.runs_encode(values[:8], 1, 0, values[4:])
    queries = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="share memory"):
        _native.runs_lookup(np.array([3], np.uint32), queries, queries)


def test_keywords_and_version():
    assert _native.__version__ == "1"
    out = np.empty(2, np.uint32)
    assert _native.runs_encode(values=np.array([5], np.uint32), ncols=1, first_index=3, out=out) == 1
    assert out.tolist() == [5, 3]
    assert "last_index" in _native.runs_lookup.__doc__
