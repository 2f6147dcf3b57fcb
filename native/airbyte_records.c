/* connectors.destination_deeplake._records: Airbyte RECORD lines -> per-field columns.
 *
 * A `Scanner` knows some streams (name, namespace) and, for each, its fields and their kinds.
 * `scan(block, pos, max_records, max_bytes)` walks the JSON lines of `block` from `pos` and,
 * for each line that is a RECORD message of an enabled stream whose every data value fits its
 * field exactly, appends the values to that stream's columns (C memory, grown as needed). It
 * stops at the first line it does not fully understand (any other message type, an unknown
 * stream or field, a value of another type, an escape or a number form it does not handle,
 * malformed JSON ...) and returns its position: the caller's exact Python path handles that
 * line, so nothing here ever decides an error or a conversion the Python path would decide
 * differently. `take(stream)` hands the accumulated columns over as bytes and empties them.
 *
 * Values, per kind (the kinds of connectors/destination_deeplake/schema.py):
 *   int          JSON integer in int64                     -> int64
 *   float        JSON number (integer of <= 18 digits, or  -> float64
 *                a finite fraction/exponent form)
 *   bool         true / false                              -> int64 0/1
 *   text         JSON string                               -> UTF-8 bytes
 *   json         any JSON value whose text is exactly what the serializer would store (compact,
 *                no floats, no "null" inside, canonical escapes, no duplicate keys) -> its text
 *   timestamp_*  YYYY-MM-DD(T| )HH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM]  -> int64 microseconds
 *   date         YYYY-MM-DD                                -> int64 microseconds
 *   time         HH:MM:SS[.f{1,6}]                         -> int64 microseconds
 *   null_only    only null (or missing) takes the fast path
 * A null or missing value sets the row's null flag (json: the text "null").
 *
 * The GIL is released while scanning: the loop touches no Python object.
 */
#include "airbyte_records.h"

#include <stdlib.h>
#include <string.h>

/* Parts: json_scan.c (JSON tokens), iso_time.c (time values), record_parse.c (lines into
 * columns); this file is the Python type and module. */

/* ------------------------------------------------------------------------------ Python */
static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist)) return -1;
    return 0;
}

static void Scanner_dealloc(Scanner *self) {
    for (Py_ssize_t i = 0; i < self->nstreams; i++) {
        free_fields(&self->streams[i]);
        free(self->streams[i].name);
        free(self->streams[i].ns);
    }
    free(self->streams);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_idle(Scanner *self) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is in use by another thread");
        return -1;
    }
    return 0;
}

static Stream *get_stream(Scanner *self, Py_ssize_t idx) {
    if (idx < 0 || idx >= self->nstreams) {
        PyErr_SetString(PyExc_IndexError, "no such stream");
        return NULL;
    }
    return &self->streams[idx];
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static PyObject *Scanner_add_stream(Scanner *self, PyObject *args) {
    const char *name, *ns = NULL;
    Py_ssize_t name_n, ns_n = 0;
    if (!PyArg_ParseTuple(args, "y#z#:add_stream", &name, &name_n, &ns, &ns_n)) return NULL;
    if (check_idle(self)) return NULL;
    Stream *streams = realloc(self->streams, (size_t)(self->nstreams + 1) * sizeof(Stream));
    if (!streams) return PyErr_NoMemory();
    self->streams = streams;
    Stream *s = &streams[self->nstreams];
    memset(s, 0, sizeof *s);
    s->name = dup_bytes(name, (size_t)name_n);
    s->name_len = (size_t)name_n;
    if (ns != NULL && ns_n > 0) {
        s->ns = dup_bytes(ns, (size_t)ns_n);
        s->ns_len = (size_t)ns_n;
        if (!s->ns) {
            free(s->name);
            return PyErr_NoMemory();
        }
    }
    if (!s->name) {
        free(s->ns);
        return PyErr_NoMemory();
    }
    s->enabled = 0;
    return PyLong_FromSsize_t(self->nstreams++);
}

static PyObject *Scanner_set_fields(Scanner *self, PyObject *args) {
    Py_ssize_t idx;
    PyObject *fields;
    if (!PyArg_ParseTuple(args, "nO:set_fields", &idx, &fields)) return NULL;
    if (check_idle(self)) return NULL;
    Stream *s = get_stream(self, idx);
    if (!s) return NULL;
    if (s->rows) {
        PyErr_SetString(PyExc_ValueError, "set_fields on a stream with rows not taken");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(fields, "fields is a sequence of (name: bytes, kind: int)");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Field *fs = calloc((size_t)(n ? n : 1), sizeof(Field));
    if (!fs) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *fname;
        Py_ssize_t fn;
        int kind;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "y#i", &fname, &fn, &kind)) goto fail;
        if (kind < 0 || kind >= K_COUNT) {
            PyErr_Format(PyExc_ValueError, "unknown field kind %d", kind);
            goto fail;
        }
        for (Py_ssize_t j = 0; j < i; j++) {
            if (fs[j].name_len == (size_t)fn && memcmp(fs[j].name, fname, (size_t)fn) == 0) {
                PyErr_SetString(PyExc_ValueError, "duplicate field name");
                goto fail;
            }
        }
        fs[i].name = dup_bytes(fname, (size_t)fn);
        if (!fs[i].name) {
            PyErr_NoMemory();
            goto fail;
        }
        fs[i].name_len = (size_t)fn;
        fs[i].kind = kind;
    }
    Py_DECREF(seq);
    free_fields(s);
    s->fields = fs;
    s->nfields = n;
    Py_RETURN_NONE;
fail:
    for (Py_ssize_t i = 0; i < n; i++) free(fs[i].name);
    free(fs);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *Scanner_enable(Scanner *self, PyObject *args) {
    Py_ssize_t idx;
    int on;
    if (!PyArg_ParseTuple(args, "np:enable", &idx, &on)) return NULL;
    if (check_idle(self)) return NULL;
    Stream *s = get_stream(self, idx);
    if (!s) return NULL;
    s->enabled = on;
    Py_RETURN_NONE;
}

static PyObject *Scanner_rows(Scanner *self, PyObject *arg) {
    Py_ssize_t idx = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (idx == -1 && PyErr_Occurred()) return NULL;
    Stream *s = get_stream(self, idx);
    if (!s) return NULL;
    return PyLong_FromSize_t(s->rows);
}

/* A new bytes object of n bytes at p (p may be NULL when n is 0); NULL with an exception set
 * on failure (Py_BuildValue's "N" then fails too). */
static PyObject *bytes_of(const void *p, size_t n) {
    return PyBytes_FromStringAndSize(n ? (const char *)p : "", (Py_ssize_t)n);
}

/* take(idx) -> (rows, nbytes, emitted: bytes, [(vals: bytes, nulls: bytes, ends: bytes|None,
 * data: bytes|None) per field]); the stream's columns are emptied. */
static PyObject *Scanner_take(Scanner *self, PyObject *arg) {
    Py_ssize_t idx = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (idx == -1 && PyErr_Occurred()) return NULL;
    if (check_idle(self)) return NULL;
    Stream *s = get_stream(self, idx);
    if (!s) return NULL;
    size_t n = s->rows;
    PyObject *cols = PyList_New(s->nfields);
    if (!cols) return NULL;
    for (Py_ssize_t i = 0; i < s->nfields; i++) {
        Field *f = &s->fields[i];
        PyObject *item;
        if (f->kind == K_TEXT || f->kind == K_JSON) {
            item = Py_BuildValue("(ONNN)", Py_None, bytes_of(f->nulls, n), bytes_of(f->ends, n * sizeof(int64_t)),
                                 bytes_of(f->data, f->data_len));
        } else {
            item = Py_BuildValue("(NNOO)", bytes_of(f->vals, n * sizeof(int64_t)), bytes_of(f->nulls, n), Py_None, Py_None);
        }
        if (!item) {
            Py_DECREF(cols);
            return NULL;
        }
        PyList_SET_ITEM(cols, i, item);
    }
    PyObject *out = Py_BuildValue("(nKNN)", (Py_ssize_t)n, (unsigned long long)s->nbytes,
                                  bytes_of(s->emitted, n * sizeof(double)), cols);
    if (!out) return NULL;
    s->rows = 0;
    s->nbytes = 0;
    for (Py_ssize_t i = 0; i < s->nfields; i++) {
        Field *f = &s->fields[i];
        f->data_len = 0;
        if (f->data_cap > (64u << 20)) { /* an unusually large batch: give the memory back */
            free(f->data);
            f->data = NULL;
            f->data_cap = 0;
        }
    }
    return out;
}

/* scan(block, pos, max_records, max_bytes) -> (pos, lines, nbytes, reason) */
static PyObject *Scanner_scan(Scanner *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t pos, max_records, max_bytes;
    if (!PyArg_ParseTuple(args, "y*nnn:scan", &buf, &pos, &max_records, &max_bytes)) return NULL;
    if (check_idle(self)) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (pos < 0 || pos > buf.len) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "pos outside the block");
        return NULL;
    }
    const uchar *base = buf.buf;
    size_t len = (size_t)buf.len, at = (size_t)pos;
    Py_ssize_t lines = 0;
    uint64_t nbytes = 0;
    int reason = R_END, nomem = 0;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    while (at < len) {
        if (lines >= max_records || (Py_ssize_t)nbytes >= max_bytes) {
            reason = R_LIMIT;
            break;
        }
        const uchar *lp = base + at;
        const uchar *nl = memchr(lp, '\n', len - at);
        const uchar *le = nl ? nl : base + len;
        size_t consumed = (size_t)(le - lp) + (nl ? 1 : 0);
        int ok = parse_line(self, lp, le, consumed);
        if (ok <= 0) {
            nomem = ok < 0;
            reason = R_LINE;
            break;
        }
        lines++;
        nbytes += consumed;
        at += consumed;
    }
    if (reason == R_END && at >= len && (lines >= max_records || (Py_ssize_t)nbytes >= max_bytes)) reason = R_LIMIT;
    Py_END_ALLOW_THREADS
    self->busy = 0;
    PyBuffer_Release(&buf);
    if (nomem) return PyErr_NoMemory();
    return Py_BuildValue("(nnKi)", (Py_ssize_t)at, lines, (unsigned long long)nbytes, reason);
}

static PyMethodDef Scanner_methods[] = {
    {"add_stream", (PyCFunction)Scanner_add_stream, METH_VARARGS, "add_stream(name: bytes, namespace: bytes | None) -> index (disabled until set_fields/enable)"},
    {"set_fields", (PyCFunction)Scanner_set_fields, METH_VARARGS, "set_fields(index, [(name: bytes, kind: int)]): a stream's fields (its columns must be empty)"},
    {"enable", (PyCFunction)Scanner_enable, METH_VARARGS, "enable(index, on: bool): whether the stream's records take the fast path"},
    {"rows", (PyCFunction)Scanner_rows, METH_O, "rows(index) -> rows held for the stream"},
    {"take", (PyCFunction)Scanner_take, METH_O, "take(index) -> (rows, nbytes, emitted, columns); empties the stream's columns"},
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS, "scan(block, pos, max_records, max_bytes) -> (pos, lines, nbytes, reason)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "connectors.destination_deeplake._records.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Airbyte RECORD lines of known streams -> per-field columns (see the module docstring).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

/* parse_time(kind, text: bytes) -> int | None: the time parser alone, for tests. */
static PyObject *py_parse_time(PyObject *mod, PyObject *args) {
    int kind;
    const char *s;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "iy#:parse_time", &kind, &s, &n)) return NULL;
    if (kind != K_TS_TZ && kind != K_TS_NTZ && kind != K_DATE && kind != K_TIME) {
        PyErr_SetString(PyExc_ValueError, "not a time kind");
        return NULL;
    }
    int64_t v;
    if (!parse_time_value(kind, (const uchar *)s, (size_t)n, &v)) Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

static PyMethodDef module_methods[] = {
    {"parse_time", py_parse_time, METH_VARARGS, "parse_time(kind, text: bytes) -> microseconds, or None when left to Python"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_records", "Airbyte RECORD lines -> per-field columns.", -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__records(void) {
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    static const struct { const char *name; int v; } consts[] = {
        {"NULL_ONLY", K_NULL_ONLY}, {"INT", K_INT}, {"FLOAT", K_FLOAT}, {"BOOL", K_BOOL}, {"TEXT", K_TEXT},
        {"JSON", K_JSON}, {"TIMESTAMP_TZ", K_TS_TZ}, {"TIMESTAMP_NTZ", K_TS_NTZ}, {"DATE", K_DATE},
        {"TIME", K_TIME}, {"REASON_END", R_END}, {"REASON_LIMIT", R_LIMIT}, {"REASON_LINE", R_LINE},
    };
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
        if (PyModule_AddIntConstant(m, consts[i].name, consts[i].v) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
