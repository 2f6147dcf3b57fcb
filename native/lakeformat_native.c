/*
 * lakeformat._native: the hot loops of the Deep Lake 3.x storage layout.
 *
 * Every kernel takes its arrays through the buffer protocol and writes into
 * buffers the caller allocated (np.empty(...)), so the build needs no NumPy
 * headers. Each function first acquires and checks all of its buffers with
 * the GIL held (item type, C-contiguity, lengths, overlap), then runs its
 * loop over plain C memory with the GIL released (see LF_BEGIN_NOGIL), then
 * raises any error the loop reported. Bad input raises TypeError /
 * ValueError / IndexError / OverflowError; nothing here may read or write
 * outside a buffer, whatever the input.
 *
 * Encoders of the Deep Lake 3.x layout handled here:
 *   ShapeEncoder rows          [dim_0 .. dim_{k-1}, last_index]   uint32
 *   BytePositionsEncoder rows  [num_bytes, start_byte, last_index] uint32
 *   ChunkIdEncoder             last-index column in uint32 or uint64
 * A row covers the samples (last_index of the previous row, last_index].
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "lz4_block.h"
#include "png_filters.h"

#define LF_VERSION "1"

/* Bound on a shape's rank, so that row widths (ncols + 1) never overflow. */
#define LF_MAX_NCOLS ((Py_ssize_t)1 << 20)

/* ------------------------------------------------------------------------ */
/* Releasing the GIL                                                        */
/* ------------------------------------------------------------------------ */

/*
 * Dropping the GIL is cheap, but taking it back can wait for another thread's
 * whole switch interval (5 ms by default). Like NumPy, we therefore release it
 * only when a loop touches enough memory to be worth that risk; tiny calls
 * from a busy loader thread then never stall. `work` is in bytes touched.
 */
#define LF_NOGIL_MIN_WORK ((Py_ssize_t)1 << 16)

#define LF_BEGIN_NOGIL(work)                                                 \
    {                                                                        \
        PyThreadState *lf_saved_ =                                           \
            ((work) >= LF_NOGIL_MIN_WORK) ? PyEval_SaveThread() : NULL;

#define LF_END_NOGIL                                                         \
    if (lf_saved_ != NULL)                                                   \
        PyEval_RestoreThread(lf_saved_);                                     \
    }

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Takes the pending exception as one normalized object (NULL if none). */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Makes `exc` (a reference we own) the pending exception again. */
static void
restore_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc,
                  PyException_GetTraceback(exc));
#endif
}

/*
 * Replaces the pending exception by a new one of `type` whose __cause__ is
 * the old one, so the caller sees which argument was wrong and why.
 */
static void
raise_from_pending(PyObject *type, const char *fmt, ...)
{
    PyObject *cause = take_exception();
    va_list va;
    va_start(va, fmt);
    PyErr_FormatV(type, fmt, va);
    va_end(va);
    if (cause == NULL)
        return;
    PyObject *exc = take_exception();
    if (exc == NULL) {
        Py_DECREF(cause);
        return;
    }
    PyException_SetContext(exc, Py_NewRef(cause));
    PyException_SetCause(exc, cause); /* steals cause */
    restore_exception(exc);
}

/* ------------------------------------------------------------------------ */
/* Buffer arguments                                                         */
/* ------------------------------------------------------------------------ */

/* Item types an argument may accept (a bit mask); LF_BYTES accepts any. */
enum {
    LF_BYTES = 0,
    LF_U32 = 1,
    LF_U64 = 2,
    LF_I64 = 4,
    LF_OTHER = 8
};

typedef struct {
    Py_buffer view;
    int held;      /* view must be released */
    int kind;      /* LF_U32 / LF_U64 / LF_I64 that matched, LF_BYTES */
    Py_ssize_t n;  /* number of items (bytes for LF_BYTES) */
} arg_buffer;

static const char *
kind_names(int accept)
{
    switch (accept) {
    case LF_U32: return "uint32";
    case LF_U64: return "uint64";
    case LF_I64: return "int64";
    case LF_U32 | LF_U64: return "uint32 or uint64";
    case LF_U32 | LF_I64: return "uint32 or int64";
    default: return "bytes-like";
    }
}

/*
 * Classifies a buffer's struct format: a single native-order integer code
 * whose signedness and itemsize make it uint32, uint64 or int64. The size
 * comes from itemsize, so "I", "<L" and NumPy's "L" for uint64 all work.
 */
static int
format_kind(const Py_buffer *view)
{
    const char *f = view->format != NULL ? view->format : "B";
    char order = '@';
    if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!')
        order = *f++;
#if PY_LITTLE_ENDIAN
    if (order == '>' || order == '!')
        return LF_OTHER;
#else
    if (order == '<')
        return LF_OTHER;
#endif
    if (f[0] == '\0' || f[1] != '\0')
        return LF_OTHER;
    int is_unsigned = strchr("BHILQN", f[0]) != NULL;
    int is_signed = strchr("bhilqn", f[0]) != NULL;
    if (is_unsigned && view->itemsize == 4)
        return LF_U32;
    if (is_unsigned && view->itemsize == 8)
        return LF_U64;
    if (is_signed && view->itemsize == 8)
        return LF_I64;
    return LF_OTHER;
}

/*
 * Acquires `obj` as a C-contiguous buffer of one of the `accept` item types
 * (writable if asked). `name` (with `index` >= 0 appended as "[index]")
 * names the argument in error messages. Returns 0, or -1 with an exception.
 */
static int
acquire(PyObject *obj, const char *name, Py_ssize_t index, int accept,
        int writable, arg_buffer *a)
{
    char label[96];
    if (index >= 0)
        PyOS_snprintf(label, sizeof label, "%s[%zd]", name, index);
    else
        PyOS_snprintf(label, sizeof label, "%s", name);

    memset(a, 0, sizeof *a);
    if (PyObject_GetBuffer(obj, &a->view,
                           writable ? PyBUF_RECORDS : PyBUF_RECORDS_RO) < 0) {
        raise_from_pending(PyExc_TypeError,
                           "%s must be a %s%s buffer, not %.200s", label,
                           writable ? "writable " : "", kind_names(accept),
                           Py_TYPE(obj)->tp_name);
        return -1;
    }
    a->held = 1;
    if (!PyBuffer_IsContiguous(&a->view, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous", label);
        goto fail;
    }
    if (accept == LF_BYTES) {
        a->kind = LF_BYTES;
        a->n = a->view.len;
        return 0;
    }
    a->kind = format_kind(&a->view);
    if (!(a->kind & accept)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a native-order %s array, got format '%s' "
                     "with itemsize %zd",
                     label, kind_names(accept),
                     a->view.format != NULL ? a->view.format : "B",
                     a->view.itemsize);
        goto fail;
    }
    a->n = a->view.len / a->view.itemsize;
    return 0;
fail:
    PyBuffer_Release(&a->view);
    a->held = 0;
    return -1;
}

static void
release(arg_buffer *a)
{
    if (a->held) {
        PyBuffer_Release(&a->view);
        a->held = 0;
    }
}

/* Whether two buffers share any byte (an output must not alias an input). */
static int
overlaps(const arg_buffer *a, const arg_buffer *b)
{
    uintptr_t a0 = (uintptr_t)a->view.buf, b0 = (uintptr_t)b->view.buf;
    if (a->view.len == 0 || b->view.len == 0)
        return 0;
    return a0 < b0 + (uintptr_t)b->view.len && b0 < a0 + (uintptr_t)a->view.len;
}

static int
check_no_overlap(const arg_buffer *out, const char *out_name,
                 const arg_buffer *in, const char *in_name)
{
    if (overlaps(out, in)) {
        PyErr_Format(PyExc_ValueError, "%s must not share memory with %s",
                     out_name, in_name);
        return -1;
    }
    return 0;
}

static int
check_same_length(const arg_buffer *a, const char *a_name,
                  const arg_buffer *b, const char *b_name)
{
    if (a->n != b->n) {
        PyErr_Format(PyExc_ValueError,
                     "%s has %zd items but %s has %zd; they must match",
                     b_name, b->n, a_name, a->n);
        return -1;
    }
    return 0;
}

/* Acquires a list or tuple of byte buffers; returns the count or -1. */
static Py_ssize_t
acquire_all(PyObject *seq_obj, const char *name, int writable,
            arg_buffer **parts_out)
{
    *parts_out = NULL;
    if (!PyList_Check(seq_obj) && !PyTuple_Check(seq_obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a list or tuple of buffers, not %.200s",
                     name, Py_TYPE(seq_obj)->tp_name);
        return -1;
    }
    /* A tuple snapshot: acquiring a buffer may run code that edits a list. */
    PyObject *seq = PySequence_Tuple(seq_obj);
    if (seq == NULL)
        return -1;
    Py_ssize_t count = PyTuple_GET_SIZE(seq);
    arg_buffer *parts = PyMem_Calloc(count > 0 ? (size_t)count : 1,
                                     sizeof *parts);
    if (parts == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (acquire(PyTuple_GET_ITEM(seq, i), name, i, LF_BYTES, writable,
                    &parts[i]) < 0) {
            while (i-- > 0)
                release(&parts[i]);
            PyMem_Free(parts);
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq); /* each view keeps its own exporter alive */
    *parts_out = parts;
    return count;
}

static void
release_all(arg_buffer *parts, Py_ssize_t count)
{
    if (parts == NULL)
        return;
    for (Py_ssize_t i = 0; i < count; i++)
        release(&parts[i]);
    PyMem_Free(parts);
}

/* first_index / start_byte arguments become uint32 columns. */
static int
check_u32_arg(long long value, const char *name)
{
    if (value < 0 || value > (long long)UINT32_MAX) {
        PyErr_Format(PyExc_OverflowError,
                     "%s=%lld does not fit a uint32 column", name, value);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Kernel status: how a GIL-free loop reports an error to its wrapper       */
/* ------------------------------------------------------------------------ */

enum {
    ST_OK = 0,
    ST_OUT_OF_RANGE,   /* a query or index outside the encoder */
    ST_NEGATIVE_SIZE,  /* positions_encode: size < 0 */
    ST_SIZE_TOO_BIG,   /* positions_encode: size > 2**32-1 */
    ST_START_TOO_BIG,  /* positions_encode: start byte > 2**32-1 */
    ST_NOT_SORTED,     /* encoder last_index column not increasing */
    ST_RESULT_OVERFLOW /* positions_expand: byte offset > 2**63-1 */
};

typedef struct {
    int code;
    Py_ssize_t at;            /* position of the offending item */
    long long value;          /* its value */
    unsigned long long extra; /* a second value for the message */
} kernel_status;

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

/* ------------------------------------------------------------------------ */
/* gather                                                                   */
/* ------------------------------------------------------------------------ */

enum {
    GATHER_OK = 0,
    GATHER_BAD_SOURCE,   /* src_id outside sources */
    GATHER_NEGATIVE,     /* a negative start, length or offset */
    GATHER_PAST_SOURCE,  /* src_start + length > source size */
    GATHER_PAST_OUT      /* out_offset + length > out size */
};

/* Whether range i lies inside its source and inside out; pure C. */
static int
gather_range_check(const arg_buffer *src, Py_ssize_t nsrc, int64_t id,
                   int64_t start, int64_t length, int64_t offset,
                   Py_ssize_t out_len)
{
    if (id < 0 || id >= nsrc)
        return GATHER_BAD_SOURCE;
    if (start < 0 || length < 0 || offset < 0)
        return GATHER_NEGATIVE;
    if (start > src[id].view.len || length > src[id].view.len - start)
        return GATHER_PAST_SOURCE;
    if (offset > out_len || length > out_len - offset)
        return GATHER_PAST_OUT;
    return GATHER_OK;
}

static void
raise_gather_error(int why, Py_ssize_t i, const arg_buffer *src,
                   Py_ssize_t nsrc, int64_t id, int64_t start, int64_t length,
                   int64_t offset, Py_ssize_t out_len)
{
    switch (why) {
    case GATHER_BAD_SOURCE:
        PyErr_Format(PyExc_IndexError,
                     "gather range %zd: src_id %lld is out of range for %zd "
                     "sources",
                     i, (long long)id, nsrc);
        break;
    case GATHER_NEGATIVE:
        PyErr_Format(PyExc_IndexError,
                     "gather range %zd: negative src_start, length or "
                     "out_offset (%lld, %lld, %lld)",
                     i, (long long)start, (long long)length, (long long)offset);
        break;
    case GATHER_PAST_SOURCE:
        PyErr_Format(PyExc_IndexError,
                     "gather range %zd: bytes [%lld, %lld + %lld) are outside "
                     "source %lld of %zd bytes",
                     i, (long long)start, (long long)start, (long long)length,
                     (long long)id, src[id].view.len);
        break;
    default:
        PyErr_Format(PyExc_IndexError,
                     "gather range %zd: out bytes [%lld, %lld + %lld) are "
                     "outside out of %zd bytes",
                     i, (long long)offset, (long long)offset,
                     (long long)length, out_len);
        break;
    }
}

/*
 * Copies every range. Each range is checked again as it is read, so a caller
 * that edits the index arrays from another thread meanwhile cannot make us
 * copy out of bounds; returns the first range that failed, or -1.
 */
static Py_ssize_t
gather_copy(const arg_buffer *src, Py_ssize_t nsrc, const int64_t *ids,
            const int64_t *starts, const int64_t *lengths,
            const int64_t *offsets, Py_ssize_t n, char *out, Py_ssize_t out_len)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t id = ids[i], start = starts[i], length = lengths[i],
                offset = offsets[i];
        if (gather_range_check(src, nsrc, id, start, length, offset, out_len))
            return i;
        if (length > 0) /* memmove: a source may be `out` itself */
            memmove(out + offset, (const char *)src[id].view.buf + start,
                    (size_t)length);
    }
    return -1;
}

PyDoc_STRVAR(gather_doc,
"gather($module, /, sources, src_id, src_start, length, out, out_offset)\n"
"--\n\n"
"Copy length[i] bytes from sources[src_id[i]] at byte src_start[i] into the\n"
"writable buffer `out` at byte out_offset[i], for every i (in order).\n"
"`sources` is a list or tuple of buffers; the four index arrays are int64 of\n"
"equal length. Every range is checked before anything is copied\n"
"(IndexError naming the range); the copy runs without the GIL.");

static PyObject *
native_gather(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sources", "src_id", "src_start", "length",
                             "out", "out_offset", NULL};
    PyObject *sources_obj, *id_obj, *start_obj, *length_obj, *out_obj,
        *offset_obj, *result = NULL;
    arg_buffer *src = NULL;
    arg_buffer ids = {0}, starts = {0}, lengths = {0}, offsets = {0},
               out = {0};
    Py_ssize_t nsrc = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO:gather", kwlist,
                                     &sources_obj, &id_obj, &start_obj,
                                     &length_obj, &out_obj, &offset_obj))
        return NULL;
    if ((nsrc = acquire_all(sources_obj, "sources", 0, &src)) < 0 ||
        acquire(id_obj, "src_id", -1, LF_I64, 0, &ids) < 0 ||
        acquire(start_obj, "src_start", -1, LF_I64, 0, &starts) < 0 ||
        acquire(length_obj, "length", -1, LF_I64, 0, &lengths) < 0 ||
        acquire(out_obj, "out", -1, LF_BYTES, 1, &out) < 0 ||
        acquire(offset_obj, "out_offset", -1, LF_I64, 0, &offsets) < 0 ||
        check_same_length(&ids, "src_id", &starts, "src_start") < 0 ||
        check_same_length(&ids, "src_id", &lengths, "length") < 0 ||
        check_same_length(&ids, "src_id", &offsets, "out_offset") < 0)
        goto done;

    const int64_t *id_v = ids.view.buf, *start_v = starts.view.buf,
                  *length_v = lengths.view.buf, *offset_v = offsets.view.buf;
    Py_ssize_t n = ids.n, total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int why = gather_range_check(src, nsrc, id_v[i], start_v[i],
                                     length_v[i], offset_v[i], out.view.len);
        if (why != GATHER_OK) {
            raise_gather_error(why, i, src, nsrc, id_v[i], start_v[i],
                               length_v[i], offset_v[i], out.view.len);
            goto done;
        }
        /* Saturating: only compared with the GIL threshold. */
        total = length_v[i] > PY_SSIZE_T_MAX - total ? PY_SSIZE_T_MAX
                                                    : total + length_v[i];
    }

    Py_ssize_t failed;
    LF_BEGIN_NOGIL(total > PY_SSIZE_T_MAX - 32 * n ? PY_SSIZE_T_MAX
                                                   : total + 32 * n)
    failed = gather_copy(src, nsrc, id_v, start_v, length_v, offset_v, n,
                         (char *)out.view.buf, out.view.len);
    LF_END_NOGIL
    if (failed >= 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "gather range %zd changed while copying (another thread "
                     "is writing the index arrays)",
                     failed);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    release_all(src, nsrc);
    release(&ids);
    release(&starts);
    release(&lengths);
    release(&out);
    release(&offsets);
    return result;
}

/* ------------------------------------------------------------------------ */
/* concat, concat_sizes                                                     */
/* ------------------------------------------------------------------------ */

static void
concat_copy(const arg_buffer *parts, Py_ssize_t count, char *out)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        if (parts[i].view.len > 0)
            memmove(out, parts[i].view.buf, (size_t)parts[i].view.len);
        out += parts[i].view.len;
    }
}

PyDoc_STRVAR(concat_doc,
"concat($module, /, parts, out)\n--\n\n"
"Copy the buffers in `parts` (a list or tuple) back to back into the\n"
"writable buffer `out`, without the GIL; return the number of bytes\n"
"written. ValueError if `out` is too small.");

static PyObject *
native_concat(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"parts", "out", NULL};
    PyObject *parts_obj, *out_obj, *result = NULL;
    arg_buffer *parts = NULL, out = {0};
    Py_ssize_t count = -1, total = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:concat", kwlist,
                                     &parts_obj, &out_obj))
        return NULL;
    if ((count = acquire_all(parts_obj, "parts", 0, &parts)) < 0 ||
        acquire(out_obj, "out", -1, LF_BYTES, 1, &out) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (parts[i].view.len > PY_SSIZE_T_MAX - total) {
            PyErr_SetString(PyExc_OverflowError, "parts total too many bytes");
            goto done;
        }
        total += parts[i].view.len;
    }
    if (total > out.view.len) {
        PyErr_Format(PyExc_ValueError,
                     "out has %zd bytes but the %zd parts need %zd",
                     out.view.len, count, total);
        goto done;
    }
    LF_BEGIN_NOGIL(total)
    concat_copy(parts, count, (char *)out.view.buf);
    LF_END_NOGIL
    result = PyLong_FromSsize_t(total);
done:
    release_all(parts, count);
    release(&out);
    return result;
}

PyDoc_STRVAR(concat_sizes_doc,
"concat_sizes($module, /, parts, sizes_out)\n--\n\n"
"Write the byte length of each buffer in `parts` (a list or tuple) into the\n"
"int64 buffer `sizes_out` (one item per part); return their sum.");

static PyObject *
native_concat_sizes(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"parts", "sizes_out", NULL};
    PyObject *parts_obj, *sizes_obj, *result = NULL;
    arg_buffer sizes = {0};
    PyObject *seq = NULL;
    Py_ssize_t total = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:concat_sizes", kwlist,
                                     &parts_obj, &sizes_obj))
        return NULL;
    if (!PyList_Check(parts_obj) && !PyTuple_Check(parts_obj)) {
        PyErr_Format(PyExc_TypeError,
                     "parts must be a list or tuple of buffers, not %.200s",
                     Py_TYPE(parts_obj)->tp_name);
        return NULL;
    }
    if ((seq = PySequence_Tuple(parts_obj)) == NULL ||
        acquire(sizes_obj, "sizes_out", -1, LF_I64, 1, &sizes) < 0)
        goto done;
    Py_ssize_t count = PyTuple_GET_SIZE(seq);
    if (sizes.n != count) {
        PyErr_Format(PyExc_ValueError,
                     "sizes_out has %zd items but there are %zd parts",
                     sizes.n, count);
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        arg_buffer part;
        if (acquire(PyTuple_GET_ITEM(seq, i), "parts", i, LF_BYTES, 0,
                    &part) < 0)
            goto done;
        Py_ssize_t len = part.view.len;
        release(&part);
        if (len > PY_SSIZE_T_MAX - total) {
            PyErr_SetString(PyExc_OverflowError, "parts total too many bytes");
            goto done;
        }
        ((int64_t *)sizes.view.buf)[i] = len;
        total += len;
    }
    result = PyLong_FromSsize_t(total);
done:
    Py_XDECREF(seq);
    release(&sizes);
    return result;
}

/* ------------------------------------------------------------------------ */
/* scatter_fixed                                                            */
/* ------------------------------------------------------------------------ */

/* Like gather_copy: re-checks every slot as it reads it; -1 if all copied. */
static Py_ssize_t
scatter_copy(const char *src, Py_ssize_t item_size, const int64_t *slots,
             Py_ssize_t n, char *out, Py_ssize_t nslots)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t slot = slots[i];
        if (slot < 0 || slot >= nslots)
            return i;
        memmove(out + slot * item_size, src + i * item_size,
                (size_t)item_size);
    }
    return -1;
}

PyDoc_STRVAR(scatter_fixed_doc,
"scatter_fixed($module, /, src, item_size, out_index, out)\n--\n\n"
"Copy item i of `src` (item_size bytes at byte i * item_size) into slot\n"
"out_index[i] of the writable buffer `out` (slots of item_size bytes), for\n"
"every i in order. out_index is int64; IndexError for a slot outside out.");

static PyObject *
native_scatter_fixed(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"src", "item_size", "out_index", "out", NULL};
    PyObject *src_obj, *index_obj, *out_obj, *result = NULL;
    Py_ssize_t item_size;
    arg_buffer src = {0}, index = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnOO:scatter_fixed",
                                     kwlist, &src_obj, &item_size, &index_obj,
                                     &out_obj))
        return NULL;
    if (item_size < 1) {
        PyErr_Format(PyExc_ValueError, "item_size must be >= 1, got %zd",
                     item_size);
        return NULL;
    }
    if (acquire(src_obj, "src", -1, LF_BYTES, 0, &src) < 0 ||
        acquire(index_obj, "out_index", -1, LF_I64, 0, &index) < 0 ||
        acquire(out_obj, "out", -1, LF_BYTES, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &index, "out_index") < 0)
        goto done;
    Py_ssize_t n = index.n, nslots = out.view.len / item_size;
    if (n > src.view.len / item_size) {
        PyErr_Format(PyExc_ValueError,
                     "src has %zd bytes, fewer than %zd items of %zd bytes",
                     src.view.len, n, item_size);
        goto done;
    }
    const int64_t *slots = index.view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= nslots) {
            PyErr_Format(PyExc_IndexError,
                         "out_index[%zd] = %lld is out of range for %zd slots "
                         "of %zd bytes",
                         i, (long long)slots[i], nslots, item_size);
            goto done;
        }
    }
    Py_ssize_t failed;
    LF_BEGIN_NOGIL(n * item_size)
    failed = scatter_copy((const char *)src.view.buf, item_size, slots, n,
                          (char *)out.view.buf, nslots);
    LF_END_NOGIL
    if (failed >= 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "out_index[%zd] changed while copying (another thread "
                     "is writing it)",
                     failed);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    release(&src);
    release(&index);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* widen_bytes                                                              */
/* ------------------------------------------------------------------------ */

/* Fixed-width byte strings -> NumPy's UCS4 strings, one code unit per byte:
 * exact for ASCII. The caller checks the returned maximum byte (< 128) and
 * count of non-zero bytes (NULs would be lost in a fixed-width array). */
static void
widen_loop(const uint8_t *src, uint32_t *out, Py_ssize_t n, uint8_t *max_out,
           Py_ssize_t *nonzero_out)
{
    uint8_t mx = 0;
    Py_ssize_t nz = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t v = src[i];
        out[i] = v;
        mx |= v; /* the high bit is all that is asked of the maximum */
        nz += v != 0;
    }
    *max_out = mx;
    *nonzero_out = nz;
}

PyDoc_STRVAR(widen_bytes_doc,
"widen_bytes($module, /, src, out)\n--\n\n"
"Copy each byte of `src` into the uint32 buffer `out` (as many items as\n"
"src has bytes), without the GIL: fixed-width ASCII strings to NumPy's\n"
"UCS4 strings. Return (bitwise OR of all bytes, number of non-zero bytes).");

static PyObject *
native_widen_bytes(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"src", "out", NULL};
    PyObject *src_obj, *out_obj, *result = NULL;
    arg_buffer src = {0}, out = {0};
    uint8_t mx = 0;
    Py_ssize_t nz = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:widen_bytes", kwlist,
                                     &src_obj, &out_obj))
        return NULL;
    if (acquire(src_obj, "src", -1, LF_BYTES, 0, &src) < 0 ||
        acquire(out_obj, "out", -1, LF_U32, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &src, "src") < 0)
        goto done;
    if (out.n != src.view.len) {
        PyErr_Format(PyExc_ValueError,
                     "out has %zd items but src has %zd bytes", out.n,
                     src.view.len);
        goto done;
    }
    LF_BEGIN_NOGIL(5 * src.view.len)
    widen_loop((const uint8_t *)src.view.buf, (uint32_t *)out.view.buf,
               src.view.len, &mx, &nz);
    LF_END_NOGIL
    result = Py_BuildValue("(in)", (int)mx, nz);
done:
    release(&src);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* narrow_ucs4                                                              */
/* ------------------------------------------------------------------------ */

/* NumPy's fixed-width UCS4 strings -> their bytes back to back, one byte per
 * code point (exact for ASCII; the caller checks the returned maximum). A
 * row's length ends at its last non-NUL code point, as NumPy reads it. */
static Py_ssize_t
narrow_loop(const uint32_t *src, Py_ssize_t rows, Py_ssize_t width,
            uint8_t *out, int64_t *lengths, uint32_t *max_out)
{
    uint32_t mx = 0;
    Py_ssize_t pos = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint32_t *row = src + r * width;
        Py_ssize_t len = width;
        while (len > 0 && row[len - 1] == 0)
            len--;
        /* the whole row, padding too (a fixed trip count vectorises; the
         * padding bytes land where the next row then writes, or past the
         * last row's end inside `out`) */
        uint8_t *dst = out + pos;
        for (Py_ssize_t k = 0; k < width; k++) {
            mx |= row[k];
            dst[k] = (uint8_t)row[k];
        }
        lengths[r] = len;
        pos += len;
    }
    *max_out = mx;
    return pos;
}

PyDoc_STRVAR(narrow_ucs4_doc,
"narrow_ucs4($module, /, src, width, out, lengths_out)\n--\n\n"
"Rows of `width` uint32 code points in `src` (a NumPy 'U' array's data) to\n"
"one byte per code point, back to back in the writable buffer `out` (at\n"
"least as many bytes as src has items); each row's length goes to the int64\n"
"buffer `lengths_out`. Runs without the GIL. Return (bitwise OR of all code\n"
"points, bytes written): the bytes are the text's UTF-8 when the OR < 128.");

static PyObject *
native_narrow_ucs4(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"src", "width", "out", "lengths_out", NULL};
    PyObject *src_obj, *out_obj, *len_obj, *result = NULL;
    Py_ssize_t width, written = 0;
    uint32_t mx = 0;
    arg_buffer src = {0}, out = {0}, lengths = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnOO:narrow_ucs4", kwlist,
                                     &src_obj, &width, &out_obj, &len_obj))
        return NULL;
    if (width < 1) {
        PyErr_Format(PyExc_ValueError, "width must be >= 1, got %zd", width);
        return NULL;
    }
    if (acquire(src_obj, "src", -1, LF_U32, 0, &src) < 0 ||
        acquire(out_obj, "out", -1, LF_BYTES, 1, &out) < 0 ||
        acquire(len_obj, "lengths_out", -1, LF_I64, 1, &lengths) < 0 ||
        check_no_overlap(&out, "out", &src, "src") < 0 ||
        check_no_overlap(&lengths, "lengths_out", &src, "src") < 0 ||
        check_no_overlap(&lengths, "lengths_out", &out, "out") < 0)
        goto done;
    if (src.n % width != 0 || lengths.n != src.n / width) {
        PyErr_Format(PyExc_ValueError,
                     "src has %zd code points: not %zd rows of width %zd",
                     src.n, lengths.n, width);
        goto done;
    }
    if (out.view.len < src.n) {
        PyErr_Format(PyExc_ValueError, "out has %zd bytes, fewer than %zd",
                     out.view.len, src.n);
        goto done;
    }
    LF_BEGIN_NOGIL(5 * src.n)
    written = narrow_loop((const uint32_t *)src.view.buf, lengths.n, width,
                          (uint8_t *)out.view.buf, (int64_t *)lengths.view.buf,
                          &mx);
    LF_END_NOGIL
    result = Py_BuildValue("(kn)", (unsigned long)mx, written);
done:
    release(&src);
    release(&out);
    release(&lengths);
    return result;
}

/* ------------------------------------------------------------------------ */
/* png_unfilter                                                             */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(png_unfilter_doc,
"png_unfilter($module, /, src, rows, row_bytes, bpp, out)\n--\n\n"
"Undo the PNG row filters of 8-bit image data: `src` holds `rows` rows of a\n"
"filter byte and `row_bytes` filtered bytes; the pixels go to the writable\n"
"buffer `out` (rows * row_bytes bytes). `bpp` is bytes per pixel. Runs\n"
"without the GIL; ValueError on an unknown filter type.");

static PyObject *
native_png_unfilter(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"src", "rows", "row_bytes", "bpp", "out", NULL};
    PyObject *src_obj, *out_obj, *result = NULL;
    Py_ssize_t rows, row_bytes, bpp;
    int rc;
    arg_buffer src = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnnnO:png_unfilter",
                                     kwlist, &src_obj, &rows, &row_bytes, &bpp,
                                     &out_obj))
        return NULL;
    if (rows < 0 || row_bytes < 0 || bpp < 1 || bpp > 8) {
        PyErr_Format(PyExc_ValueError,
                     "bad png geometry: rows %zd, row_bytes %zd, bpp %zd",
                     rows, row_bytes, bpp);
        return NULL;
    }
    if (acquire(src_obj, "src", -1, LF_BYTES, 0, &src) < 0 ||
        acquire(out_obj, "out", -1, LF_BYTES, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &src, "src") < 0)
        goto done;
    if (row_bytes > 0 && rows > (PY_SSIZE_T_MAX / (row_bytes + 1))) {
        PyErr_SetString(PyExc_OverflowError, "png too large");
        goto done;
    }
    if (src.view.len != rows * (row_bytes + 1) ||
        out.view.len != rows * row_bytes) {
        PyErr_Format(PyExc_ValueError,
                     "png data of %zd bytes (out %zd) does not hold %zd rows "
                     "of %zd bytes",
                     src.view.len, out.view.len, rows, row_bytes);
        goto done;
    }
    LF_BEGIN_NOGIL(out.view.len)
    rc = lf_png_unfilter((const uint8_t *)src.view.buf, (size_t)rows,
                         (size_t)row_bytes, (size_t)bpp,
                         (uint8_t *)out.view.buf);
    LF_END_NOGIL
    if (rc != 0) {
        PyErr_Format(PyExc_ValueError, "png row %d has an unknown filter type",
                     -1 - rc);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    release(&src);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* lz4_decode                                                               */



/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(lz4_decode_doc,
"lz4_decode($module, /, src, out, partial=False)\n--\n\n"
"Decode the LZ4 block `src` (no size prefix) into the writable buffer\n"
"`out`, without the GIL; return the number of bytes written. Unless\n"
"`partial`, the block must decode to exactly len(out) bytes; with it,\n"
"decoding stops once `out` is full. ValueError on corrupt input.");

static PyObject *
native_lz4_decode(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"src", "out", "partial", NULL};
    PyObject *src_obj, *out_obj, *result = NULL;
    int partial = 0, rc;
    size_t written = 0;
    arg_buffer src = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|p:lz4_decode", kwlist,
                                     &src_obj, &out_obj, &partial))
        return NULL;
    if (acquire(src_obj, "src", -1, LF_BYTES, 0, &src) < 0 ||
        acquire(out_obj, "out", -1, LF_BYTES, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &src, "src") < 0)
        goto done;
    LF_BEGIN_NOGIL(out.view.len)
    rc = lf_lz4_decode((const uint8_t *)src.view.buf, (size_t)src.view.len,
                       (uint8_t *)out.view.buf, (size_t)out.view.len,
                       &written);
    LF_END_NOGIL
    if (rc == LF_LZ4_CORRUPT) {
        PyErr_SetString(PyExc_ValueError, "corrupt lz4 block");
        goto done;
    }
    if (!partial && (rc == LF_LZ4_PARTIAL || written != (size_t)out.view.len)) {
        PyErr_Format(PyExc_ValueError,
                     "lz4 block decodes to %s bytes than the %zd expected",
                     rc == LF_LZ4_PARTIAL ? "more" : "fewer", out.view.len);
        goto done;
    }
    result = PyLong_FromSize_t(written);
done:
    release(&src);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Module                                                                   */

/* ------------------------------------------------------------------------ */

#define LF_METHOD(name)                                                      \
    {#name, (PyCFunction)(void (*)(void))native_##name,                      \
     METH_VARARGS | METH_KEYWORDS, name##_doc}

static PyMethodDef native_methods[] = {
    LF_METHOD(runs_encode),
    LF_METHOD(positions_encode),
    LF_METHOD(runs_lookup),
    LF_METHOD(positions_expand),
    LF_METHOD(shapes_expand),
    LF_METHOD(gather),
    LF_METHOD(concat),
    LF_METHOD(concat_sizes),
    LF_METHOD(scatter_fixed),
    LF_METHOD(lz4_decode),
    LF_METHOD(widen_bytes),
    LF_METHOD(narrow_ucs4),
    LF_METHOD(png_unfilter),
    {NULL, NULL, 0, NULL},
};

static int
native_exec(PyObject *module)
{
    return PyModule_AddStringConstant(module, "__version__", LF_VERSION);
}

static PyModuleDef_Slot native_slots[] = {
    {Py_mod_exec, native_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(native_doc,
"C kernels of lakeformat: run-length encoding and lookup of Deep Lake\n"
"encoders, and batched byte copies. Arrays go in through the buffer\n"
"protocol; results go into buffers the caller allocated.");

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lakeformat._native",
    .m_doc = native_doc,
    .m_size = 0,
    .m_methods = native_methods,
    .m_slots = native_slots,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
