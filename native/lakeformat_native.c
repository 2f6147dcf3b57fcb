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
#include "lf_args.h"

#include <string.h>

#include "lz4_block.h"
#include "png_filters.h"

#define LF_VERSION "1"

/* The kernels live in chunk_index.c (encoders) and copy_kernels.c (copies);
 * the codec wrappers below; lf_args.c has what they share. */

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

static PyMethodDef native_methods[] = {
    LF_METHOD(lz4_decode),
    LF_METHOD(png_unfilter),
    {NULL, NULL, 0, NULL},
};

/* TQL text kernels (tql_text.c). */
extern LF_INTERNAL PyMethodDef lf_tql_text_methods[];
/* TQL numeric kernels: ragged reductions, vector search, top-k (tql_ragged.c). */
extern LF_INTERNAL PyMethodDef lf_tql_ragged_methods[];

/* lz4 block encoding with long-key match finders (lz4_encode.c). */
extern LF_INTERNAL PyMethodDef lf_lz4_encode_methods[];
/* Text buffers -> NumPy UCS4 strings or str lists (text_decode.c). */
extern LF_INTERNAL PyMethodDef lf_text_decode_methods[];
/* JSON documents -> the value at a key/index path (json_path.c). */
extern LF_INTERNAL PyMethodDef lf_json_path_methods[];

static int
native_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, lf_lz4_encode_methods) < 0)
        return -1;
    if (PyModule_AddFunctions(module, lf_tql_text_methods) < 0)
        return -1;
    if (PyModule_AddFunctions(module, lf_text_decode_methods) < 0)
        return -1;
    if (PyModule_AddFunctions(module, lf_json_path_methods) < 0)
        return -1;
    if (PyModule_AddFunctions(module, lf_tql_ragged_methods) < 0)
        return -1;
    if (PyModule_AddFunctions(module, lf_index_methods) < 0 ||
        PyModule_AddFunctions(module, lf_copy_methods) < 0)
        return -1;
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
