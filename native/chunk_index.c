/*
 * Encoders of the Deep Lake 3.x layout: run-length encoding and lookup.
 *   ShapeEncoder rows          [dim_0 .. dim_{k-1}, last_index]   uint32
 *   BytePositionsEncoder rows  [num_bytes, start_byte, last_index] uint32
 *   ChunkIdEncoder             last-index column in uint32 or uint64
 * A row covers the samples (last_index of the previous row, last_index].
 */
#include "lf_args.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* runs_encode                                                              */
/* ------------------------------------------------------------------------ */

static int
rows_equal(const uint32_t *a, const uint32_t *b, Py_ssize_t ncols)
{
    for (Py_ssize_t c = 0; c < ncols; c++)
        if (a[c] != b[c])
            return 0;
    return 1;
}

/*
 * Writes one row per run of equal consecutive rows: the values, then
 * first_index + the index of the run's last row. Writes at most `cap` rows
 * but returns the number of runs, so the wrapper can say how much room an
 * undersized `out` lacked.
 */
static Py_ssize_t
encode_runs(const uint32_t *values, Py_ssize_t n, Py_ssize_t ncols,
            uint32_t first_index, uint32_t *out, Py_ssize_t cap)
{
    Py_ssize_t runs = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint32_t *row = values + i * ncols;
        if (i + 1 < n && rows_equal(row, row + ncols, ncols))
            continue;
        if (runs < cap) {
            uint32_t *dst = out + runs * (ncols + 1);
            memcpy(dst, row, (size_t)ncols * sizeof *row);
            dst[ncols] = first_index + (uint32_t)i;
        }
        runs++;
    }
    return runs;
}

PyDoc_STRVAR(runs_encode_doc,
"runs_encode($module, /, values, ncols, first_index, out)\n--\n\n"
"Run-length encode the rows of a uint32 [n, ncols] matrix into `out`.\n\n"
"Each output row is a run's ncols values followed by first_index + the index\n"
"of the run's last row (Deep Lake ShapeEncoder rows; with ncols=1 the\n"
"num_bytes column of a BytePositionsEncoder). `out` is a writable uint32\n"
"buffer; n * (ncols + 1) items always suffice. Returns the number of rows.");

static PyObject *
native_runs_encode(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"values", "ncols", "first_index", "out", NULL};
    PyObject *values_obj, *out_obj, *result = NULL;
    Py_ssize_t ncols;
    long long first_index;
    arg_buffer values = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnLO:runs_encode", kwlist,
                                     &values_obj, &ncols, &first_index,
                                     &out_obj))
        return NULL;
    if (ncols < 1 || ncols > LF_MAX_NCOLS) {
        PyErr_Format(PyExc_ValueError, "ncols must be in [1, %zd], got %zd",
                     LF_MAX_NCOLS, ncols);
        return NULL;
    }
    if (check_u32_arg(first_index, "first_index") < 0 ||
        acquire(values_obj, "values", -1, LF_U32, 0, &values) < 0 ||
        acquire(out_obj, "out", -1, LF_U32, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &values, "values") < 0)
        goto done;
    if (values.n % ncols != 0) {
        PyErr_Format(PyExc_ValueError,
                     "values has %zd items, not a multiple of ncols=%zd",
                     values.n, ncols);
        goto done;
    }
    Py_ssize_t n = values.n / ncols;
    if (n > 0 && (unsigned long long)first_index + (unsigned long long)(n - 1)
                     > UINT32_MAX) {
        PyErr_Format(PyExc_OverflowError,
                     "last index %lld of %zd rows starting at %lld does not "
                     "fit a uint32 column",
                     first_index + (long long)(n - 1), n, first_index);
        goto done;
    }
    Py_ssize_t cap = out.n / (ncols + 1), runs;
    LF_BEGIN_NOGIL(values.view.len)
    runs = encode_runs((const uint32_t *)values.view.buf, n, ncols,
                       (uint32_t)first_index, (uint32_t *)out.view.buf, cap);
    LF_END_NOGIL
    if (runs > cap) {
        PyErr_Format(PyExc_ValueError,
                     "out has %zd items but the %zd runs need %zd",
                     out.n, runs, runs * (ncols + 1));
        goto done;
    }
    result = PyLong_FromSsize_t(runs);
done:
    release(&values);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* positions_encode                                                         */
/* ------------------------------------------------------------------------ */

static inline int64_t
size_at(const void *sizes, int sizes_are_i64, Py_ssize_t i)
{
    return sizes_are_i64 ? ((const int64_t *)sizes)[i]
                         : (int64_t)((const uint32_t *)sizes)[i];
}

static inline void
put_position_row(uint32_t *out, Py_ssize_t cap, Py_ssize_t row,
                 uint32_t num_bytes, uint32_t start_byte, uint32_t last_index)
{
    if (row < cap) {
        out[3 * row] = num_bytes;
        out[3 * row + 1] = start_byte;
        out[3 * row + 2] = last_index;
    }
}

/*
 * BytePositionsEncoder rows for consecutive samples of the given sizes.
 * Like encode_runs, writes at most `cap` rows and returns the row count;
 * stops at the first invalid size or start byte and reports it in `st`.
 */
static Py_ssize_t
encode_positions(const void *sizes, int sizes_are_i64, Py_ssize_t n,
                 uint32_t first_index, uint64_t start_byte, uint32_t *out,
                 Py_ssize_t cap, kernel_status *st)
{
    Py_ssize_t rows = 0;
    uint64_t offset = start_byte, run_start = start_byte;
    int64_t prev = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t size = size_at(sizes, sizes_are_i64, i);
        if (size < 0 || size > (int64_t)UINT32_MAX) {
            st->code = size < 0 ? ST_NEGATIVE_SIZE : ST_SIZE_TOO_BIG;
            st->at = i;
            st->value = size;
            return rows;
        }
        if (i == 0 || size != prev) {
            /* Sample i opens a new row, whose start byte must fit uint32. */
            if (offset > UINT32_MAX) {
                st->code = ST_START_TOO_BIG;
                st->at = i;
                st->extra = offset;
                return rows;
            }
            if (i > 0)
                put_position_row(out, cap, rows++, (uint32_t)prev,
                                 (uint32_t)run_start,
                                 first_index + (uint32_t)(i - 1));
            run_start = offset;
        }
        /* Saturate: past 2**32 the exact offset no longer matters. */
        offset = offset > UINT64_MAX - (uint64_t)size ? UINT64_MAX
                                                      : offset + (uint64_t)size;
        prev = size;
    }
    if (n > 0)
        put_position_row(out, cap, rows++, (uint32_t)prev, (uint32_t)run_start,
                         first_index + (uint32_t)(n - 1));
    return rows;
}

PyDoc_STRVAR(positions_encode_doc,
"positions_encode($module, /, sizes, first_index, start_byte, out)\n--\n\n"
"BytePositionsEncoder rows [num_bytes, start_byte, last_index] for samples\n"
"of the given byte sizes (uint32 or int64), laid out back to back from\n"
"`start_byte`. Consecutive samples of equal size share a row. `out` is a\n"
"writable uint32 buffer; 3 * len(sizes) items always suffice. Returns the\n"
"number of rows. OverflowError if a row's start byte exceeds 2**32-1.");

static PyObject *
native_positions_encode(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sizes", "first_index", "start_byte", "out",
                             NULL};
    PyObject *sizes_obj, *out_obj, *result = NULL;
    long long first_index, start_byte;
    arg_buffer sizes = {0}, out = {0};
    kernel_status st = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLLO:positions_encode",
                                     kwlist, &sizes_obj, &first_index,
                                     &start_byte, &out_obj))
        return NULL;
    if (check_u32_arg(first_index, "first_index") < 0 ||
        check_u32_arg(start_byte, "start_byte") < 0 ||
        acquire(sizes_obj, "sizes", -1, LF_U32 | LF_I64, 0, &sizes) < 0 ||
        acquire(out_obj, "out", -1, LF_U32, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &sizes, "sizes") < 0)
        goto done;
    Py_ssize_t n = sizes.n;
    if (n > 0 && (unsigned long long)first_index + (unsigned long long)(n - 1)
                     > UINT32_MAX) {
        PyErr_Format(PyExc_OverflowError,
                     "last index %lld of %zd samples starting at %lld does "
                     "not fit a uint32 column",
                     first_index + (long long)(n - 1), n, first_index);
        goto done;
    }
    Py_ssize_t cap = out.n / 3, rows;
    LF_BEGIN_NOGIL(sizes.view.len)
    rows = encode_positions(sizes.view.buf, sizes.kind == LF_I64, n,
                            (uint32_t)first_index, (uint64_t)start_byte,
                            (uint32_t *)out.view.buf, cap, &st);
    LF_END_NOGIL
    switch (st.code) {
    case ST_NEGATIVE_SIZE:
        PyErr_Format(PyExc_ValueError, "sizes[%zd] = %lld is negative", st.at,
                     st.value);
        goto done;
    case ST_SIZE_TOO_BIG:
        PyErr_Format(PyExc_OverflowError,
                     "sizes[%zd] = %lld does not fit a uint32 num_bytes column",
                     st.at, st.value);
        goto done;
    case ST_START_TOO_BIG:
        PyErr_Format(PyExc_OverflowError,
                     "start byte %llu of sample %zd exceeds 2**32-1", st.extra,
                     st.at);
        goto done;
    }
    if (rows > cap) {
        PyErr_Format(PyExc_ValueError,
                     "out has %zd items but the %zd rows need %zd", out.n,
                     rows, 3 * rows);
        goto done;
    }
    result = PyLong_FromSsize_t(rows);
done:
    release(&sizes);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Searching a last-index column                                            */
/* ------------------------------------------------------------------------ */

/*
 * A last-index column: `len` entries of uint32 or uint64, `stride` items
 * apart (1 for a bare column, the row width inside an encoder matrix).
 */
typedef struct {
    const void *base;
    Py_ssize_t stride;
    Py_ssize_t len;
    int wide;
} index_column;

/* The last-index column of a uint32 encoder matrix of m rows, width items each. */
static index_column
encoder_column(const uint32_t *rows, Py_ssize_t m, Py_ssize_t width)
{
    index_column c = {m > 0 ? rows + (width - 1) : rows, width, m, 0};
    return c;
}

static inline uint64_t
column_at(const index_column *c, Py_ssize_t r)
{
    return c->wide ? ((const uint64_t *)c->base)[r * c->stride]
                   : (uint64_t)((const uint32_t *)c->base)[r * c->stride];
}

/* Smallest r in [lo, hi) with column[r] >= q, or hi if there is none. */
static Py_ssize_t
lower_bound(const index_column *c, Py_ssize_t lo, Py_ssize_t hi, uint64_t q)
{
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (column_at(c, mid) < q)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The previous query and its answer, for galloping through sorted queries. */
typedef struct {
    uint64_t q;
    Py_ssize_t row;
    int valid;
} seek_cursor;

/*
 * lower_bound over the whole column. The answer never decreases as q grows,
 * so when q >= the previous query we gallop forward from the previous answer
 * (O(log distance), O(1) for repeated or nearby queries) and bisect the
 * bracket found; otherwise we bisect the whole column. Both give the same
 * row for a sorted column. Callers check 0 <= q <= column[len - 1] first;
 * then the result is < len even for a corrupt, unsorted column.
 */
static Py_ssize_t
column_seek(const index_column *c, seek_cursor *cur, uint64_t q)
{
    Py_ssize_t row;
    if (cur->valid && q >= cur->q) {
        Py_ssize_t lo = cur->row; /* rows before lo hold values < q */
        Py_ssize_t probe = lo, step = 1;
        while (probe < c->len && column_at(c, probe) < q) {
            lo = probe + 1;
            probe = lo + step;
            step *= 2;
        }
        row = lower_bound(c, lo, probe < c->len ? probe : c->len, q);
    } else {
        row = lower_bound(c, 0, c->len, q);
    }
    cur->q = q;
    cur->row = row;
    cur->valid = 1;
    return row;
}

/*
 * Finds the row of index q, or reports ST_OUT_OF_RANGE (q outside
 * [0, last entry]) / ST_NOT_SORTED in `st` and returns -1.
 */
static Py_ssize_t
find_row(const index_column *c, seek_cursor *cur, int64_t q, Py_ssize_t at,
         kernel_status *st)
{
    if (c->len == 0 || q < 0 || (uint64_t)q > column_at(c, c->len - 1)) {
        st->code = ST_OUT_OF_RANGE;
        st->at = at;
        st->value = q;
        return -1;
    }
    Py_ssize_t row = column_seek(c, cur, (uint64_t)q);
    /* Unreachable: the search only steps past rows it saw hold values < q,
     * and q <= the last row. Kept so a broken invariant cannot read past the
     * column. */
    if (row >= c->len) {
        st->code = ST_NOT_SORTED;
        st->at = at;
        st->value = q;
        return -1;
    }
    return row;
}

/* Raises the error a lookup kernel reported; returns -1 if it did. */
static int
raise_lookup_status(const kernel_status *st, const index_column *c,
                    const char *what)
{
    switch (st->code) {
    case ST_OK:
        return 0;
    case ST_OUT_OF_RANGE:
        if (c->len == 0)
            PyErr_Format(PyExc_IndexError,
                         "%s %lld (position %zd) is out of range: the encoder "
                         "is empty",
                         what, st->value, st->at);
        else
            PyErr_Format(PyExc_IndexError,
                         "%s %lld (position %zd) is out of range for an encoder "
                         "covering indices 0..%llu",
                         what, st->value, st->at,
                         (unsigned long long)column_at(c, c->len - 1));
        return -1;
    case ST_NOT_SORTED:
        PyErr_Format(PyExc_ValueError,
                     "encoder last_index column is not sorted (seen while "
                     "looking up %s %lld at position %zd)",
                     what, st->value, st->at);
        return -1;
    case ST_RESULT_OVERFLOW:
        PyErr_Format(PyExc_OverflowError,
                     "byte offset of %s %lld (position %zd) exceeds 2**63-1",
                     what, st->value, st->at);
        return -1;
    default:
        PyErr_SetString(PyExc_SystemError, "unknown kernel status");
        return -1;
    }
}

/* ------------------------------------------------------------------------ */
/* runs_lookup                                                              */
/* ------------------------------------------------------------------------ */

static void
lookup_rows(const index_column *c, const int64_t *queries, Py_ssize_t n,
            int64_t *out, kernel_status *st)
{
    seek_cursor cur = {0};
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t row = find_row(c, &cur, queries[i], i, st);
        if (row < 0)
            return;
        out[i] = row;
    }
}

PyDoc_STRVAR(runs_lookup_doc,
"runs_lookup($module, /, last_index, queries, out)\n--\n\n"
"For each int64 query q write into int64 `out` the smallest row r with\n"
"last_index[r] >= q. `last_index` is a non-decreasing uint32 or uint64\n"
"column. Ascending runs of queries are answered by galloping from the\n"
"previous answer, others by bisection; the rows are identical.\n"
"IndexError if q < 0, q > last_index[-1] or the column is empty.");

static PyObject *
native_runs_lookup(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"last_index", "queries", "out", NULL};
    PyObject *last_obj, *queries_obj, *out_obj, *result = NULL;
    arg_buffer last = {0}, queries = {0}, out = {0};
    kernel_status st = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:runs_lookup", kwlist,
                                     &last_obj, &queries_obj, &out_obj))
        return NULL;
    if (acquire(last_obj, "last_index", -1, LF_U32 | LF_U64, 0, &last) < 0 ||
        acquire(queries_obj, "queries", -1, LF_I64, 0, &queries) < 0 ||
        acquire(out_obj, "out", -1, LF_I64, 1, &out) < 0 ||
        check_same_length(&queries, "queries", &out, "out") < 0 ||
        check_no_overlap(&out, "out", &last, "last_index") < 0 ||
        check_no_overlap(&out, "out", &queries, "queries") < 0)
        goto done;
    index_column col = {last.view.buf, 1, last.n, last.kind == LF_U64};
    LF_BEGIN_NOGIL(2 * queries.view.len)
    lookup_rows(&col, (const int64_t *)queries.view.buf, queries.n,
                (int64_t *)out.view.buf, &st);
    LF_END_NOGIL
    if (raise_lookup_status(&st, &col, "query") < 0)
        goto done;
    result = Py_NewRef(Py_None);
done:
    release(&last);
    release(&queries);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* positions_expand                                                         */
/* ------------------------------------------------------------------------ */

/*
 * Byte range of each sample from [num_bytes, start_byte, last_index] rows:
 * start = start_byte[r] + (i - first index of row r) * num_bytes[r].
 */
static void
expand_positions(const uint32_t *rows, Py_ssize_t m, const int64_t *index,
                 Py_ssize_t n, int64_t *start_out, int64_t *end_out,
                 kernel_status *st)
{
    index_column col = encoder_column(rows, m, 3);
    seek_cursor cur = {0};
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t q = index[i];
        Py_ssize_t r = find_row(&col, &cur, q, i, st);
        if (r < 0)
            return;
        uint64_t first = r == 0 ? 0 : (uint64_t)rows[3 * r - 1] + 1;
        if ((uint64_t)q < first) { /* guard, as in find_row */
            st->code = ST_NOT_SORTED;
            st->at = i;
            st->value = q;
            return;
        }
        /* Both factors are < 2**32, so only the sums can overflow. */
        uint64_t num_bytes = rows[3 * r], start_byte = rows[3 * r + 1];
        uint64_t delta = ((uint64_t)q - first) * num_bytes;
        if (delta > (uint64_t)INT64_MAX - start_byte - num_bytes) {
            st->code = ST_RESULT_OVERFLOW;
            st->at = i;
            st->value = q;
            return;
        }
        start_out[i] = (int64_t)(start_byte + delta);
        end_out[i] = (int64_t)(start_byte + delta + num_bytes);
    }
}

PyDoc_STRVAR(positions_expand_doc,
"positions_expand($module, /, rows, local_index, start_out, end_out)\n--\n\n"
"Byte range [start, end) of each local sample index (int64) from the uint32\n"
"[m, 3] BytePositionsEncoder `rows` (num_bytes, start_byte, last_index),\n"
"written into int64 `start_out` and `end_out` (same length as local_index).\n"
"IndexError if an index is outside 0..last_index[-1].");

static PyObject *
native_positions_expand(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"rows", "local_index", "start_out", "end_out",
                             NULL};
    PyObject *rows_obj, *index_obj, *start_obj, *end_obj, *result = NULL;
    arg_buffer rows = {0}, index = {0}, start = {0}, end = {0};
    kernel_status st = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:positions_expand",
                                     kwlist, &rows_obj, &index_obj,
                                     &start_obj, &end_obj))
        return NULL;
    if (acquire(rows_obj, "rows", -1, LF_U32, 0, &rows) < 0 ||
        acquire(index_obj, "local_index", -1, LF_I64, 0, &index) < 0 ||
        acquire(start_obj, "start_out", -1, LF_I64, 1, &start) < 0 ||
        acquire(end_obj, "end_out", -1, LF_I64, 1, &end) < 0 ||
        check_same_length(&index, "local_index", &start, "start_out") < 0 ||
        check_same_length(&index, "local_index", &end, "end_out") < 0 ||
        check_no_overlap(&start, "start_out", &end, "end_out") < 0 ||
        check_no_overlap(&start, "start_out", &rows, "rows") < 0 ||
        check_no_overlap(&start, "start_out", &index, "local_index") < 0 ||
        check_no_overlap(&end, "end_out", &rows, "rows") < 0 ||
        check_no_overlap(&end, "end_out", &index, "local_index") < 0)
        goto done;
    if (rows.n % 3 != 0) {
        PyErr_Format(PyExc_ValueError,
                     "rows has %zd items; a BytePositionsEncoder has 3 per row",
                     rows.n);
        goto done;
    }
    Py_ssize_t m = rows.n / 3;
    LF_BEGIN_NOGIL(3 * index.view.len)
    expand_positions((const uint32_t *)rows.view.buf, m,
                     (const int64_t *)index.view.buf, index.n,
                     (int64_t *)start.view.buf, (int64_t *)end.view.buf, &st);
    LF_END_NOGIL
    index_column col = encoder_column(rows.view.buf, m, 3);
    if (raise_lookup_status(&st, &col, "local index") < 0)
        goto done;
    result = Py_NewRef(Py_None);
done:
    release(&rows);
    release(&index);
    release(&start);
    release(&end);
    return result;
}

/* ------------------------------------------------------------------------ */
/* positions_run                                                            */
/* ------------------------------------------------------------------------ */

/*
 * Samples [lo, lo + k) of one chunk, which a scan reads as one byte range:
 * out[j] = base + end(lo + j) - start(lo), one pass over the encoder rows that
 * cover the run. Returns 1, or 0 where the samples are not back to back (a
 * row does not start where the previous one ends), -1 on a bad encoder.
 */
static int
run_positions(const uint32_t *rows, Py_ssize_t m, int64_t lo, Py_ssize_t k,
              int64_t base, int64_t *out, int64_t *first_byte,
              int64_t *end_byte)
{
    Py_ssize_t r = 0;
    uint64_t first = 0; /* first sample of row r */
    while (r < m && (int64_t)rows[3 * r + 2] < lo) {
        if (r > 0 && rows[3 * r + 2] < rows[3 * r - 1])
            return -1;
        first = (uint64_t)rows[3 * r + 2] + 1;
        r++;
    }
    if (r >= m || (rows[3 * r] && (uint64_t)(lo - (int64_t)first) > ((uint64_t)1 << 62) / rows[3 * r]))
        return -1;
    int64_t s0 = (int64_t)rows[3 * r + 1] + (int64_t)(lo - (int64_t)first) * rows[3 * r];
    int64_t expect = s0; /* where the next sample must start */
    Py_ssize_t j = 0;
    while (j < k) {
        if (r >= m)
            return -1;
        uint64_t last = rows[3 * r + 2];
        if (last < first)
            return -1;
        int64_t nb = rows[3 * r];
        int64_t at = (int64_t)lo + j; /* the sample written next */
        int64_t upto = (int64_t)last - at + 1; /* samples of this row from `at` */
        if (upto > k - j)
            upto = k - j;
        /* bytes past 2**62 are a corrupt encoder (checked without overflowing) */
        if (nb && (uint64_t)(at - (int64_t)first + upto) > ((uint64_t)1 << 62) / (uint64_t)nb)
            return -1;
        int64_t start = (int64_t)rows[3 * r + 1] + (at - (int64_t)first) * nb;
        if (start != expect)
            return 0;
        int64_t e = start - s0 + base;
        for (int64_t t = 0; t < upto; t++) {
            e += nb;
            out[j + t] = e;
        }
        j += upto;
        expect = start + upto * nb;
        first = last + 1;
        r++;
    }
    *first_byte = s0;
    *end_byte = expect;
    return 1;
}

PyDoc_STRVAR(positions_run_doc,
"positions_run($module, /, rows, lo, base, out)\n--\n\n"
"For the len(out) samples of a chunk from local index `lo` on, from its\n"
"uint32 [m, 3] BytePositionsEncoder `rows`: writes base + end(i) - start(lo)\n"
"of each into int64 `out` and returns (start(lo), end of the last sample),\n"
"or None where the samples are not back to back in the chunk's bytes.\n"
"IndexError where the rows do not cover the samples.");

static PyObject *
native_positions_run(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"rows", "lo", "base", "out", NULL};
    PyObject *rows_obj, *out_obj, *result = NULL;
    long long lo, base;
    arg_buffer rows = {0}, out = {0};
    int64_t s0 = 0, e1 = 0;
    int got;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLLO:positions_run", kwlist,
                                     &rows_obj, &lo, &base, &out_obj))
        return NULL;
    if (lo < 0 || lo > UINT32_MAX || base < 0) {
        PyErr_Format(PyExc_ValueError, "lo (%lld) and base (%lld) must be >= 0 and lo < 2**32", lo, base);
        return NULL;
    }
    if (acquire(rows_obj, "rows", -1, LF_U32, 0, &rows) < 0 ||
        acquire(out_obj, "out", -1, LF_I64, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &rows, "rows") < 0)
        goto done;
    if (rows.n % 3 != 0) {
        PyErr_Format(PyExc_ValueError,
                     "rows has %zd items; a BytePositionsEncoder has 3 per row",
                     rows.n);
        goto done;
    }
    if (out.n == 0) {
        result = Py_BuildValue("(LL)", 0LL, 0LL);
        goto done;
    }
    LF_BEGIN_NOGIL(out.view.len)
    got = run_positions((const uint32_t *)rows.view.buf, rows.n / 3, lo, out.n,
                        base, (int64_t *)out.view.buf, &s0, &e1);
    LF_END_NOGIL
    if (got < 0)
        PyErr_Format(PyExc_IndexError,
                     "samples %lld..%lld are not all in the byte positions",
                     lo, lo + (long long)out.n - 1);
    else if (got == 0)
        result = Py_NewRef(Py_None);
    else
        result = Py_BuildValue("(LL)", (long long)s0, (long long)e1);
done:
    release(&rows);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* shapes_expand                                                            */
/* ------------------------------------------------------------------------ */

/* The ncols shape dims of each local index's row, as int64. */
static void
expand_shapes(const uint32_t *rows, Py_ssize_t m, Py_ssize_t ncols,
              const int64_t *index, Py_ssize_t n, int64_t *out,
              kernel_status *st)
{
    index_column col = encoder_column(rows, m, ncols + 1);
    seek_cursor cur = {0};
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t r = find_row(&col, &cur, index[i], i, st);
        if (r < 0)
            return;
        const uint32_t *dims = rows + r * (ncols + 1);
        for (Py_ssize_t c = 0; c < ncols; c++)
            out[i * ncols + c] = dims[c];
    }
}

PyDoc_STRVAR(shapes_expand_doc,
"shapes_expand($module, /, rows, ncols, local_index, out)\n--\n\n"
"Shape of each local sample index (int64) from the uint32 [m, ncols + 1]\n"
"ShapeEncoder `rows`, written into int64 `out` as an [n, ncols] row-major\n"
"matrix. IndexError if an index is outside 0..last_index[-1].");

static PyObject *
native_shapes_expand(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"rows", "ncols", "local_index", "out", NULL};
    PyObject *rows_obj, *index_obj, *out_obj, *result = NULL;
    Py_ssize_t ncols;
    arg_buffer rows = {0}, index = {0}, out = {0};
    kernel_status st = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnOO:shapes_expand",
                                     kwlist, &rows_obj, &ncols, &index_obj,
                                     &out_obj))
        return NULL;
    if (ncols < 0 || ncols > LF_MAX_NCOLS) {
        PyErr_Format(PyExc_ValueError, "ncols must be in [0, %zd], got %zd",
                     LF_MAX_NCOLS, ncols);
        return NULL;
    }
    if (acquire(rows_obj, "rows", -1, LF_U32, 0, &rows) < 0 ||
        acquire(index_obj, "local_index", -1, LF_I64, 0, &index) < 0 ||
        acquire(out_obj, "out", -1, LF_I64, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &rows, "rows") < 0 ||
        check_no_overlap(&out, "out", &index, "local_index") < 0)
        goto done;
    if (rows.n % (ncols + 1) != 0) {
        PyErr_Format(PyExc_ValueError,
                     "rows has %zd items, not a multiple of ncols + 1 = %zd",
                     rows.n, ncols + 1);
        goto done;
    }
    if ((ncols > 0 && index.n > PY_SSIZE_T_MAX / ncols) ||
        out.n != index.n * ncols) {
        PyErr_Format(PyExc_ValueError,
                     "out has %zd items but %zd indices of %zd dims need %zd",
                     out.n, index.n, ncols, index.n * ncols);
        goto done;
    }
    Py_ssize_t m = rows.n / (ncols + 1);
    LF_BEGIN_NOGIL(index.view.len + out.view.len)
    expand_shapes((const uint32_t *)rows.view.buf, m, ncols,
                  (const int64_t *)index.view.buf, index.n,
                  (int64_t *)out.view.buf, &st);
    LF_END_NOGIL
    index_column col = encoder_column(rows.view.buf, m, ncols + 1);
    if (raise_lookup_status(&st, &col, "local index") < 0)
        goto done;
    result = Py_NewRef(Py_None);
done:
    release(&rows);
    release(&index);
    release(&out);
    return result;
}

LF_INTERNAL PyMethodDef lf_index_methods[] = {
    LF_METHOD(runs_encode),
    LF_METHOD(positions_encode),
    LF_METHOD(runs_lookup),
    LF_METHOD(positions_expand),
    LF_METHOD(positions_run),
    LF_METHOD(shapes_expand),
    {NULL, NULL, 0, NULL},
};
