/*
 * json_path: one value per JSON document, found by a path of object keys and
 * array indices, without building Python objects (TQL's meta['a']['b']).
 *
 * Each document is validated whole with the record scanner's tokenizer
 * (json_scan.c), so a document Python's json.loads would reject is never given
 * a value. What this kernel cannot give exactly as json.loads + a Python walk
 * would (objects, arrays, strings with escapes, integers beyond int64, floats
 * strtod flags, NaN/Infinity, an int index into a string, invalid or too deep
 * documents) is marked JP_FALLBACK: the caller parses just those in Python.
 * Duplicate keys: the last one wins, as in json.loads.
 */
#include "text_offsets.h"
#include "json_scan.h"

#include <string.h>

enum { JP_MISSING = 0, JP_FALSE, JP_TRUE, JP_INT, JP_FLOAT, JP_STR, JP_FALLBACK };

#define JP_MAX_DEPTH 64 /* json_scan's skip_value depth bound */
#define JP_KEY_BUF 256  /* escaped keys up to this size are decoded to compare */

typedef struct {
    const uchar *key; /* NULL: an array index */
    size_t key_len;
    int64_t index;
    int index_ok; /* 0: an int beyond int64, which no array holds */
} Step;

typedef struct {
    int kind;
    int64_t num;
    int64_t len;
} Found;

/* The value at c->p as a result (the path's end), past it; 0 when invalid. */
static int leaf(Cur *c, const uchar *base, int depth, Found *r) {
    uchar ch = *c->p;
    int canon = 1;
    if (ch == '{' || ch == '[') {
        r->kind = JP_FALLBACK;
        return skip_value(c, depth, &canon);
    }
    if (ch == '"') {
        const uchar *s;
        size_t n;
        int esc;
        if (!scan_string(c, &s, &n, &esc)) return 0;
        r->kind = esc ? JP_FALLBACK : JP_STR;
        r->num = (int64_t)(s - base);
        r->len = (int64_t)n;
        return 1;
    }
    if (ch == 't') { r->kind = JP_TRUE; return match_lit(c, "true", 4); }
    if (ch == 'f') { r->kind = JP_FALSE; return match_lit(c, "false", 5); }
    if (ch == 'n') { r->kind = JP_MISSING; return match_lit(c, "null", 4); }
    const uchar *s;
    size_t n;
    int is_int, digits;
    if (!scan_number(c, &s, &n, &is_int, &digits)) return 0;
    if (is_int) {
        int64_t v;
        r->kind = int_value(s, n, &v) ? JP_INT : JP_FALLBACK;
        r->num = v;
    } else {
        double d;
        if (float_value(s, n, 0, digits, &d)) {
            r->kind = JP_FLOAT;
            memcpy(&r->num, &d, sizeof d);
        } else {
            r->kind = JP_FALLBACK;
        }
    }
    return 1;
}

static int key_matches(const Step *st, const uchar *s, size_t n, int esc, int *unsure) {
    if (!esc) return n == st->key_len && memcmp(s, st->key, n) == 0;
    if (n > JP_KEY_BUF) {
        *unsure = 1;
        return 0;
    }
    uchar buf[JP_KEY_BUF];
    size_t m = decode_string(s, n, buf);
    return m == st->key_len && memcmp(buf, st->key, m) == 0;
}

static int walk(Cur *c, const uchar *base, const Step *steps, int nsteps, int depth, Found *r);

/* Array elements from c->p (past '['): walks element `want` (-1: none), skips the others;
 * *count gets the number of elements. */
static int array_elems(Cur *c, const uchar *base, const Step *steps, int nsteps, int depth,
                       int64_t want, int64_t *count, Found *r) {
    int canon = 1;
    int64_t k = 0;
    ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        *count = 0;
        return 1;
    }
    for (;; k++) {
        if (c->p >= c->end) return 0;
        if (k == want) {
            if (!walk(c, base, steps, nsteps, depth + 1, r)) return 0;
        } else if (!skip_value(c, depth + 1, &canon)) {
            return 0;
        }
        ws(c);
        if (c->p >= c->end) return 0;
        if (*c->p == ',') {
            c->p++;
            ws(c);
            continue;
        }
        if (*c->p != ']') return 0;
        c->p++;
        *count = k + 1;
        return 1;
    }
}

/* Follows steps[0..nsteps) from the value at c->p (validating all of it) into *r. */
static int walk(Cur *c, const uchar *base, const Step *steps, int nsteps, int depth, Found *r) {
    int canon = 1;
    if (c->p >= c->end) return 0;
    if (nsteps == 0) return leaf(c, base, depth, r);
    uchar ch = *c->p;
    r->kind = JP_MISSING; /* a missing key, an index out of range, a step into a scalar */
    if (ch == '{' && steps[0].key) {
        if (depth >= JP_MAX_DEPTH) return 0;
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return 1;
        }
        for (;;) {
            const uchar *s;
            size_t n;
            int esc, unsure = 0;
            if (c->p >= c->end || *c->p != '"' || !scan_string(c, &s, &n, &esc)) return 0;
            int hit = key_matches(&steps[0], s, n, esc, &unsure);
            ws(c);
            if (c->p >= c->end || *c->p != ':') return 0;
            c->p++;
            ws(c);
            if (hit) { /* a later duplicate replaces it, as in json.loads */
                if (!walk(c, base, steps + 1, nsteps - 1, depth + 1, r)) return 0;
            } else if (!skip_value(c, depth + 1, &canon)) {
                return 0;
            }
            if (unsure) r->kind = JP_FALLBACK;
            int next = after_member(c);
            if (next == 0) return 0;
            if (next == 2) return 1;
        }
    }
    if (ch == '[' && !steps[0].key) {
        if (depth >= JP_MAX_DEPTH) return 0;
        c->p++;
        int64_t idx = steps[0].index, count = 0;
        if (!steps[0].index_ok) return array_elems(c, base, steps + 1, nsteps - 1, depth, -1, &count, r);
        if (idx >= 0) return array_elems(c, base, steps + 1, nsteps - 1, depth, idx, &count, r);
        /* from the end: count the elements, then walk the one wanted */
        Cur again = *c;
        if (!array_elems(c, base, steps + 1, nsteps - 1, depth, -1, &count, r)) return 0;
        if (idx < -count) return 1;
        return array_elems(&again, base, steps + 1, nsteps - 1, depth, count + idx, &count, r);
    }
    if (ch == '"' && !steps[0].key) {
        r->kind = JP_FALLBACK; /* Python indexes the string's characters */
        return 1;
    }
    return skip_value(c, depth, &canon);
}

/* One document: its result kind (and number / string position). */
static void one_doc(const uchar *base, int64_t lo, int64_t hi, const Step *steps, int nsteps, Found *r) {
    r->kind = JP_MISSING;
    r->num = 0;
    r->len = 0;
    if (lo == hi) return; /* an empty sample is null */
    Cur c = {base + lo, base + hi};
    ws(&c);
    if (!walk(&c, base, steps, nsteps, 0, r)) {
        r->kind = JP_FALLBACK;
        return;
    }
    if (r->kind == JP_FALLBACK) return;
    ws(&c);
    if (c.p != c.end) r->kind = JP_FALLBACK;
}

/* ------------------------------------------------------------------------ */

static int
parse_path(PyObject *path, Step **out, Py_ssize_t *count)
{
    Py_ssize_t n = PyTuple_GET_SIZE(path);
    Step *steps = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Step));
    if (!steps) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(path, i);
        if (PyUnicode_Check(item)) {
            Py_ssize_t len;
            const char *s = PyUnicode_AsUTF8AndSize(item, &len);
            if (!s) {
                PyMem_Free(steps);
                return -1;
            }
            steps[i].key = (const uchar *)s;
            steps[i].key_len = (size_t)len;
        } else if (PyLong_Check(item)) {
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
            if (v == -1 && PyErr_Occurred()) {
                PyMem_Free(steps);
                return -1;
            }
            steps[i].index = (int64_t)v;
            steps[i].index_ok = overflow == 0;
        } else {
            PyErr_Format(PyExc_TypeError, "path[%zd] must be a str key or an int index, not %.100s",
                         i, Py_TYPE(item)->tp_name);
            PyMem_Free(steps);
            return -1;
        }
    }
    *out = steps;
    *count = n;
    return 0;
}

static int
acquire_i64_out(PyObject *obj, const char *name, Py_ssize_t rows, arg_buffer *a)
{
    if (acquire(obj, name, -1, LF_I64, 1, a) < 0)
        return -1;
    if (a->n != rows) {
        PyErr_Format(PyExc_ValueError, "%s has %zd items for %zd documents", name, a->n, rows);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(json_path_doc,
"json_path($module, /, offsets, data, path, out_kind, out_num, out_len)\n--\n\n"
"For each of the n JSON documents data[offsets[i]:offsets[i+1]] (offsets:\n"
"int64, n + 1), the value at `path` (a tuple of str keys and int indices,\n"
"negative from the end) as out_kind[i] (int64): 0 missing or null (an empty\n"
"document too), 1 false, 2 true, 3 an integer (out_num: its int64), 4 a float\n"
"(out_num: its float64 bits, as Python's float() gives it), 5 a string\n"
"without escapes (out_num: its first byte in data, out_len: its length in\n"
"bytes), 6 fallback: parse that document in Python (an object or array, an\n"
"escaped string, an integer beyond int64, a float strtod flags, an int index\n"
"into a string, or a document that is not valid JSON). Each document is\n"
"validated whole; duplicate keys: the last wins. Runs without the GIL.");

static PyObject *
native_json_path(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", "path", "out_kind", "out_num", "out_len", NULL};
    PyObject *off_obj, *data_obj, *path_obj, *kind_obj, *num_obj, *len_obj, *result = NULL;
    arg_buffer off = {0}, data = {0}, kind = {0}, num = {0}, len = {0};
    Step *steps = NULL;
    Py_ssize_t nsteps = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO!OOO:json_path", kwlist, &off_obj, &data_obj,
                                     &PyTuple_Type, &path_obj, &kind_obj, &num_obj, &len_obj))
        return NULL;
    if (PyTuple_GET_SIZE(path_obj) > JP_MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError, "path has %zd steps, at most %d", PyTuple_GET_SIZE(path_obj), JP_MAX_DEPTH);
        return NULL;
    }
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0 ||
        acquire_i64_out(kind_obj, "out_kind", off.n - 1, &kind) < 0 ||
        acquire_i64_out(num_obj, "out_num", off.n - 1, &num) < 0 ||
        acquire_i64_out(len_obj, "out_len", off.n - 1, &len) < 0 ||
        check_no_overlap(&kind, "out_kind", &data, "data") < 0 ||
        check_no_overlap(&num, "out_num", &data, "data") < 0 ||
        check_no_overlap(&len, "out_len", &data, "data") < 0 ||
        check_no_overlap(&num, "out_num", &kind, "out_kind") < 0 ||
        check_no_overlap(&len, "out_len", &kind, "out_kind") < 0 ||
        check_no_overlap(&len, "out_len", &num, "out_num") < 0 ||
        parse_path(path_obj, &steps, &nsteps) < 0)
        goto done;
    {
        const int64_t *o = (const int64_t *)off.view.buf;
        const uchar *d = (const uchar *)data.view.buf;
        int64_t *ok = (int64_t *)kind.view.buf, *on = (int64_t *)num.view.buf, *ol = (int64_t *)len.view.buf;
        Py_ssize_t rows = off.n - 1;
        /* path keys point into str objects the path tuple keeps alive */
        LF_BEGIN_NOGIL(data.n + rows * 32)
        for (Py_ssize_t i = 0; i < rows; i++) {
            Found r;
            one_doc(d, o[i], o[i + 1], steps, (int)nsteps, &r);
            ok[i] = r.kind;
            on[i] = r.num;
            ol[i] = r.len;
        }
        LF_END_NOGIL
        Py_INCREF(Py_None);
        result = Py_None;
    }
done:
    PyMem_Free(steps);
    release(&off);
    release(&data);
    release(&kind);
    release(&num);
    release(&len);
    return result;
}

LF_INTERNAL PyMethodDef lf_json_path_methods[] = {
    LF_METHOD(json_path),
    {NULL, NULL, 0, NULL},
};
