/* Batched byte copies: gather, concat, scatter, and text widening/narrowing. */
#include "lf_args.h"

#include <string.h>

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
/* is_run                                                                   */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(is_run_doc,
"is_run($module, /, items)\n--\n\n"
"Whether the int64 buffer `items` holds consecutive ascending integers\n"
"(a, a + 1, ...): one pass without the GIL, no temporary. True when empty.");

static PyObject *
native_is_run(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"items", NULL};
    PyObject *items_obj, *result = NULL;
    arg_buffer items = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:is_run", kwlist,
                                     &items_obj))
        return NULL;
    if (acquire(items_obj, "items", -1, LF_I64, 0, &items) < 0)
        goto done;
    const int64_t *v = items.view.buf;
    Py_ssize_t n = items.n;
    int run = 1;
    /* the ends alone can rule it out (no pass); unsigned difference: no overflow */
    if (n > 1 && (v[n - 1] < v[0] ||
                  (uint64_t)v[n - 1] - (uint64_t)v[0] != (uint64_t)(n - 1)))
        run = 0;
    else if (n > 1) {
        /* with the ends n - 1 apart, the run breaks iff some step is not +1:
         * OR the differences of a block together, so the loop vectorises */
        LF_BEGIN_NOGIL(n * (Py_ssize_t)sizeof(int64_t))
        const Py_ssize_t block = 4096;
        for (Py_ssize_t a = 1; a < n && run; a += block) {
            Py_ssize_t b = a + block < n ? a + block : n;
            uint64_t bad = 0;
            for (Py_ssize_t i = a; i < b; i++)
                bad |= ((uint64_t)v[i] - (uint64_t)v[i - 1]) ^ 1u;
            run = bad == 0;
        }
        LF_END_NOGIL
    }
    result = PyBool_FromLong(run);
done:
    release(&items);
    return result;
}

LF_INTERNAL PyMethodDef lf_copy_methods[] = {
    LF_METHOD(is_run),
    LF_METHOD(gather),
    LF_METHOD(concat),
    LF_METHOD(concat_sizes),
    LF_METHOD(scatter_fixed),
    LF_METHOD(widen_bytes),
    LF_METHOD(narrow_ucs4),
    {NULL, NULL, 0, NULL},
};
