/*
 * Text buffers (`offsets`: int64, n + 1 items, non-decreasing, offsets[0]
 * >= 0; `data`: the UTF-8 bytes of every value back to back) turned into
 * what Python readers ask for: NumPy's fixed-width UCS4 strings (a `U`
 * array, written here without the GIL) or a list of str.
 *
 * UTF-8 is checked as strictly as Python's decoder (no overlong forms, no
 * surrogates, nothing past U+10FFFF); a bad value is reported by its index,
 * for the caller to name the sample. Nothing reads or writes outside a
 * buffer, whatever the input.
 */
#include "text_offsets.h"

#include <string.h>

static int
all_ascii(const uint8_t *s, Py_ssize_t n)
{
    uint64_t acc = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= s[i];
    return (acc & 0x8080808080808080ULL) == 0;
}

/*
 * Decode one value: its code points into out[0 .. cap) when out is not
 * NULL. Returns the number of code points, -1 for bytes that are not UTF-8,
 * -2 when out is given and the value has more than cap code points.
 */
static Py_ssize_t
decode_utf8(const uint8_t *s, Py_ssize_t len, uint32_t *out, Py_ssize_t cap)
{
    Py_ssize_t i = 0, k = 0;
    while (i < len) {
        uint32_t c = s[i];
        Py_ssize_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* bounds of the second byte */
        if (c < 0x80) {
            need = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            c &= 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
            c &= 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* past U+10FFFF */
            c &= 0x07;
        } else {
            return -1;
        }
        if (need > len - i - 1)
            return -1;
        for (Py_ssize_t j = 1; j <= need; j++) {
            uint8_t b = s[i + j];
            if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
                return -1;
            c = (c << 6) | (b & 0x3F);
        }
        i += need + 1;
        if (out != NULL) {
            if (k >= cap)
                return -2;
            out[k] = c;
        }
        k++;
    }
    return k;
}

/* ------------------------------------------------------------------------ */
/* text_ucs4_width                                                          */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(text_ucs4_width_doc,
"text_ucs4_width($module, /, offsets, data)\n--\n\n"
"Without the GIL: (width, bad, ascii): the most code points of any value\n"
"(the width of a NumPy `U` array holding them), the first value that is\n"
"not UTF-8 (-1: none) and whether every byte is ASCII.");

static PyObject *
native_text_ucs4_width(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", NULL};
    PyObject *off_obj, *data_obj, *result = NULL;
    arg_buffer off = {0}, data = {0};
    Py_ssize_t width = 0, bad = -1;
    int ascii;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:text_ucs4_width", kwlist,
                                     &off_obj, &data_obj))
        return NULL;
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0)
        goto done;
    {
        const int64_t *o = (const int64_t *)off.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf;
        Py_ssize_t n = off.n - 1;
        LF_BEGIN_NOGIL((Py_ssize_t)(o[n] - o[0]) + 8 * n)
        ascii = all_ascii(d + o[0], (Py_ssize_t)(o[n] - o[0]));
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t w = (Py_ssize_t)(o[i + 1] - o[i]);
            if (!ascii) {
                w = decode_utf8(d + o[i], w, NULL, 0);
                if (w < 0) {
                    bad = i;
                    break;
                }
            }
            if (w > width)
                width = w;
        }
        LF_END_NOGIL
    }
    result = Py_BuildValue("(nnO)", width, bad, ascii ? Py_True : Py_False);
done:
    release(&off);
    release(&data);
    return result;
}

/* ------------------------------------------------------------------------ */
/* text_to_ucs4                                                             */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(text_to_ucs4_doc,
"text_to_ucs4($module, /, offsets, data, width, out)\n--\n\n"
"Without the GIL: value i decoded into out[i * width : (i + 1) * width]\n"
"(a uint32 buffer of n * width items: a NumPy `U<width>` array viewed as\n"
"uint32), zero-padded. Returns -1, or the first value that is not UTF-8\n"
"or holds more than `width` code points (out is then partly written).");

static PyObject *
native_text_to_ucs4(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", "width", "out", NULL};
    PyObject *off_obj, *data_obj, *out_obj, *result = NULL;
    arg_buffer off = {0}, data = {0}, out = {0};
    Py_ssize_t width, bad = -1;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnO:text_to_ucs4", kwlist,
                                     &off_obj, &data_obj, &width, &out_obj))
        return NULL;
    if (width < 0) {
        PyErr_SetString(PyExc_ValueError, "width must be >= 0");
        return NULL;
    }
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0 ||
        acquire(out_obj, "out", -1, LF_U32, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &data, "data") < 0)
        goto done;
    {
        Py_ssize_t n = off.n - 1;
        if (width > 0 && n > PY_SSIZE_T_MAX / width) {
            PyErr_SetString(PyExc_ValueError, "n * width overflows");
            goto done;
        }
        if (out.n != n * width) {
            PyErr_Format(PyExc_ValueError,
                         "out has %zd items for %zd values of width %zd",
                         out.n, n, width);
            goto done;
        }
        const int64_t *o = (const int64_t *)off.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf;
        uint32_t *dst = (uint32_t *)out.view.buf;
        LF_BEGIN_NOGIL(4 * n * width + 8 * n)
        for (Py_ssize_t i = 0; i < n; i++, dst += width) {
            const uint8_t *s = d + o[i];
            Py_ssize_t len = (Py_ssize_t)(o[i + 1] - o[i]), k;
            if (len <= width && all_ascii(s, len)) {
                for (k = 0; k < len; k++) /* vectorized widening */
                    dst[k] = s[k];
            } else {
                k = decode_utf8(s, len, dst, width);
                if (k < 0) {
                    bad = i;
                    break;
                }
            }
            if (k < width)
                memset(dst + k, 0, (size_t)(width - k) * sizeof(uint32_t));
        }
        LF_END_NOGIL
    }
    result = PyLong_FromSsize_t(bad);
done:
    release(&off);
    release(&data);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* text_str_list                                                            */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(text_str_list_doc,
"text_str_list($module, /, offsets, data, null=None)\n--\n\n"
"The values as a list of str (None where the bool buffer `null` is set).\n"
"Returns the index of the first value that is not UTF-8 (an int) instead\n"
"of a list when there is one.");

static PyObject *
native_text_str_list(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", "null", NULL};
    PyObject *off_obj, *data_obj, *null_obj = Py_None, *result = NULL;
    arg_buffer off = {0}, data = {0}, null = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:text_str_list", kwlist,
                                     &off_obj, &data_obj, &null_obj))
        return NULL;
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0)
        goto done;
    Py_ssize_t n = off.n - 1;
    if (null_obj != Py_None) {
        if (acquire(null_obj, "null", -1, LF_BYTES, 0, &null) < 0)
            goto done;
        if (null.n != n) {
            PyErr_Format(PyExc_ValueError, "null has %zd items for %zd values",
                         null.n, n);
            goto done;
        }
    }
    {
        const int64_t *o = (const int64_t *)off.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf;
        const uint8_t *z = null.held ? (const uint8_t *)null.view.buf : NULL;
        int ascii = all_ascii(d + o[0], (Py_ssize_t)(o[n] - o[0]));
        PyObject *list = PyList_New(n);
        if (list == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *v;
            Py_ssize_t len = (Py_ssize_t)(o[i + 1] - o[i]);
            if (z != NULL && z[i]) {
                v = Py_NewRef(Py_None);
            } else if (ascii) {
                v = PyUnicode_New(len, 127);
                if (v != NULL)
                    memcpy(PyUnicode_DATA(v), d + o[i], (size_t)len);
            } else {
                if (decode_utf8(d + o[i], len, NULL, 0) < 0) {
                    Py_DECREF(list);
                    result = PyLong_FromSsize_t(i);
                    goto done;
                }
                v = PyUnicode_DecodeUTF8((const char *)d + o[i], len, "strict");
            }
            if (v == NULL) {
                Py_DECREF(list);
                goto done;
            }
            PyList_SET_ITEM(list, i, v);
        }
        result = list;
    }
done:
    release(&off);
    release(&data);
    release(&null);
    return result;
}

LF_INTERNAL PyMethodDef lf_text_decode_methods[] = {
    {"text_ucs4_width", (PyCFunction)(void (*)(void))native_text_ucs4_width,
     METH_VARARGS | METH_KEYWORDS, text_ucs4_width_doc},
    {"text_to_ucs4", (PyCFunction)(void (*)(void))native_text_to_ucs4,
     METH_VARARGS | METH_KEYWORDS, text_to_ucs4_doc},
    {"text_str_list", (PyCFunction)(void (*)(void))native_text_str_list,
     METH_VARARGS | METH_KEYWORDS, text_str_list_doc},
    {NULL, NULL, 0, NULL},
};
