/* Errors and buffer arguments shared by the kernels (see lf_args.h). */
#include "lf_args.h"

#include <stdarg.h>
#include <string.h>

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
LF_INTERNAL void
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
LF_INTERNAL int
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

LF_INTERNAL void
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

LF_INTERNAL int
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

LF_INTERNAL int
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
LF_INTERNAL Py_ssize_t
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

LF_INTERNAL void
release_all(arg_buffer *parts, Py_ssize_t count)
{
    if (parts == NULL)
        return;
    for (Py_ssize_t i = 0; i < count; i++)
        release(&parts[i]);
    PyMem_Free(parts);
}

/* first_index / start_byte arguments become uint32 columns. */
LF_INTERNAL int
check_u32_arg(long long value, const char *name)
{
    if (value < 0 || value > (long long)UINT32_MAX) {
        PyErr_Format(PyExc_OverflowError,
                     "%s=%lld does not fit a uint32 column", name, value);
        return -1;
    }
    return 0;
}
