/*
 * Text columns as offsets (int64, n + 1 of them) and the bytes they index:
 * acquiring both and checking the offsets once, before a GIL-free loop trusts
 * them (text_decode.c and tql_text.c).
 */
#ifndef LF_TEXT_OFFSETS_H
#define LF_TEXT_OFFSETS_H

#include "lf_args.h"

/* Offsets sane for `data_len` bytes: -1, else the first bad index. */
static inline Py_ssize_t
bad_offset(const int64_t *off, Py_ssize_t count, Py_ssize_t data_len)
{
    if (off[0] < 0)
        return 0;
    for (Py_ssize_t i = 1; i < count; i++)
        if (off[i] < off[i - 1])
            return i;
    if (off[count - 1] > (int64_t)data_len)
        return count - 1;
    return -1;
}

/* Acquires offsets (int64, >= 1 item) and data and checks them. */
static inline int
acquire_text(PyObject *off_obj, PyObject *data_obj, const char *off_name,
             const char *data_name, arg_buffer *off, arg_buffer *data)
{
    if (acquire(off_obj, off_name, -1, LF_I64, 0, off) < 0 ||
        acquire(data_obj, data_name, -1, LF_BYTES, 0, data) < 0)
        return -1;
    if (off->n < 1) {
        PyErr_Format(PyExc_ValueError, "%s must hold at least one item (n + 1)",
                     off_name);
        return -1;
    }
    Py_ssize_t bad = bad_offset((const int64_t *)off->view.buf, off->n,
                                data->n);
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s[%zd] is out of order or outside the %zd bytes of %s",
                     off_name, bad, data->n, data_name);
        return -1;
    }
    return 0;
}

#endif
