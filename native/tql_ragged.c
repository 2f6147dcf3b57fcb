/*
 * TQL's numeric kernels: per-row reductions over ragged data (one flat buffer
 * plus int64 offsets), one vector against every row of a matrix (DOT, cosine
 * similarity, L2 distance in one pass over the rows), and a top-k that keeps
 * a heap of k candidates instead of sorting every row.
 *
 * Every argument is checked with the GIL held; the loops run without it.
 */
#include "lf_args.h"

#include <math.h>
#include <string.h>

/* Element types, from a buffer's struct format and item size. */
enum { T_I8, T_I16, T_I32, T_I64, T_U8, T_U16, T_U32, T_U64, T_F32, T_F64,
       T_BOOL, T_BAD };

static const Py_ssize_t type_size[] = {1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 1, 0};

static int
elem_type(const Py_buffer *v)
{
    const char *f = v->format != NULL ? v->format : "B";
    if (*f == '@' || *f == '=')
        f++;
#if PY_LITTLE_ENDIAN
    else if (*f == '<')
        f++;
#else
    else if (*f == '>' || *f == '!')
        f++;
#endif
    if (f[0] == '\0' || f[1] != '\0')
        return T_BAD;
    Py_ssize_t s = v->itemsize;
    if (f[0] == '?')
        return s == 1 ? T_BOOL : T_BAD;
    if (f[0] == 'f')
        return s == 4 ? T_F32 : T_BAD;
    if (f[0] == 'd')
        return s == 8 ? T_F64 : T_BAD;
    if (strchr("bhilqn", f[0]) != NULL)
        return s == 1 ? T_I8 : s == 2 ? T_I16 : s == 4 ? T_I32 : s == 8 ? T_I64 : T_BAD;
    if (strchr("BHILQN", f[0]) != NULL)
        return s == 1 ? T_U8 : s == 2 ? T_U16 : s == 4 ? T_U32 : s == 8 ? T_U64 : T_BAD;
    return T_BAD;
}

/* Acquires a typed numeric buffer; `allowed` is a bit mask of element types. */
static int
acquire_typed(PyObject *obj, const char *name, int writable, unsigned allowed,
              arg_buffer *a, int *type)
{
    if (acquire(obj, name, -1, LF_BYTES, writable, a) < 0)
        return -1;
    int t = elem_type(&a->view);
    if (t == T_BAD || !(allowed & (1u << t))) {
        PyErr_Format(PyExc_TypeError,
                     "%s has an unsupported item type (format '%s', itemsize %zd)",
                     name, a->view.format != NULL ? a->view.format : "B",
                     a->view.itemsize);
        release(a);
        return -1;
    }
    *type = t;
    a->n = a->view.len / type_size[t];
    return 0;
}

#define ALL_TYPES ((1u << T_BAD) - 1)

/* ------------------------------------------------------------------------ */
/* Segment reductions                                                       */
/* ------------------------------------------------------------------------ */

enum { OP_SUM, OP_PROD, OP_MIN, OP_MAX, OP_ANY, OP_ALL, OP_MEAN, OP_L1,
       OP_L2, OP_LINF, OP_COUNT, OP_N };

/* A reduction's result: a double, or 64 integer bits (signed or not). */
enum { TAG_D, TAG_I, TAG_U };
typedef struct {
    int tag;
    double d;
    int64_t i;
    uint64_t u;
} acc_t;

/* KIND: 0 signed integer, 1 unsigned integer (and bool), 2 floating point.
 * Integer sums and products wrap as NumPy's int64/uint64 do; ABS of the most
 * negative value wraps in the input type, as np.abs does. */
#define DEFINE_SEGMENT(NAME, T, KIND)                                          \
static void                                                                    \
seg_##NAME(const T *x, Py_ssize_t len, Py_ssize_t st, int op, acc_t *r)        \
{                                                                              \
    Py_ssize_t l;                                                              \
    r->tag = (KIND) == 2 ? TAG_D : (KIND) == 0 ? TAG_I : TAG_U;                \
    switch (op) {                                                              \
    case OP_SUM: case OP_PROD: case OP_L1:                                     \
        if ((KIND) == 2) {                                                     \
            double s = op == OP_PROD ? 1.0 : 0.0;                              \
            for (l = 0; l < len; l++) {                                        \
                double v = (double)x[l * st];                                  \
                if (op == OP_SUM) s += v;                                      \
                else if (op == OP_PROD) s *= v;                                \
                else s += fabs(v);                                             \
            }                                                                  \
            r->d = s;                                                          \
        } else {                                                               \
            uint64_t s = op == OP_PROD ? 1u : 0u;                              \
            for (l = 0; l < len; l++) {                                        \
                T v = x[l * st];                                               \
                if (op == OP_L1 && (KIND) == 0 && v < 0)                       \
                    v = (T)(0u - (uint64_t)(int64_t)v);                        \
                uint64_t w = (KIND) == 0 ? (uint64_t)(int64_t)v : (uint64_t)v; \
                if (op == OP_PROD) s *= w; else s += w;                        \
            }                                                                  \
            r->u = s;                                                          \
            r->i = (int64_t)s;                                                 \
        }                                                                      \
        break;                                                                 \
    case OP_MEAN: case OP_L2: {                                                \
        double s = 0.0;                                                        \
        for (l = 0; l < len; l++) {                                            \
            T v = x[l * st];                                                   \
            if (op == OP_MEAN) s += (double)v;                                 \
            else if ((KIND) == 2) { T q = (T)(v * v); s += (double)q; }        \
            else s += (double)v * (double)v;                                   \
        }                                                                      \
        r->tag = TAG_D;                                                        \
        r->d = op == OP_MEAN ? (len ? s / (double)len : NAN) : sqrt(s);        \
        break;                                                                 \
    }                                                                          \
    case OP_MIN: case OP_MAX: case OP_LINF: {                                  \
        if (len == 0) {                                                        \
            r->d = NAN; r->i = 0; r->u = 0;                                    \
            break;                                                             \
        }                                                                      \
        T m = 0;                                                               \
        int first = 1, nan = 0;                                                \
        for (l = 0; l < len; l++) {                                            \
            T v = x[l * st];                                                   \
            if ((KIND) == 2 && v != v) { nan = 1; break; }                     \
            if (op == OP_LINF) {                                               \
                if ((KIND) == 2) v = (T)fabs((double)v);                       \
                else if ((KIND) == 0 && v < 0)                                 \
                    v = (T)(0u - (uint64_t)(int64_t)v);                        \
            }                                                                  \
            if (first || (op == OP_MIN ? v < m : v > m)) { m = v; first = 0; } \
        }                                                                      \
        r->d = nan ? NAN : (double)m;                                          \
        r->i = (KIND) == 0 ? (int64_t)m : (int64_t)(uint64_t)m;                \
        r->u = (KIND) == 0 ? (uint64_t)(int64_t)m : (uint64_t)m;               \
        break;                                                                 \
    }                                                                          \
    case OP_ANY: case OP_ALL: case OP_COUNT: {                                 \
        int64_t c = 0;                                                         \
        for (l = 0; l < len; l++)                                              \
            c += x[l * st] != 0;                                               \
        r->tag = TAG_I;                                                        \
        r->i = op == OP_COUNT ? c : op == OP_ANY ? c > 0 : c == len;           \
        r->u = (uint64_t)r->i;                                                 \
        break;                                                                 \
    }                                                                          \
    }                                                                          \
}

DEFINE_SEGMENT(i8, int8_t, 0)
DEFINE_SEGMENT(i16, int16_t, 0)
DEFINE_SEGMENT(i32, int32_t, 0)
DEFINE_SEGMENT(i64, int64_t, 0)
DEFINE_SEGMENT(u8, uint8_t, 1)
DEFINE_SEGMENT(u16, uint16_t, 1)
DEFINE_SEGMENT(u32, uint32_t, 1)
DEFINE_SEGMENT(u64, uint64_t, 1)
DEFINE_SEGMENT(f32, float, 2)
DEFINE_SEGMENT(f64, double, 2)

static void
segment(int type, const char *base, Py_ssize_t start, Py_ssize_t len,
        Py_ssize_t st, int op, acc_t *r)
{
    switch (type) {
    case T_I8: seg_i8((const int8_t *)base + start, len, st, op, r); break;
    case T_I16: seg_i16((const int16_t *)base + start, len, st, op, r); break;
    case T_I32: seg_i32((const int32_t *)base + start, len, st, op, r); break;
    case T_I64: seg_i64((const int64_t *)base + start, len, st, op, r); break;
    case T_U8: case T_BOOL:
        seg_u8((const uint8_t *)base + start, len, st, op, r); break;
    case T_U16: seg_u16((const uint16_t *)base + start, len, st, op, r); break;
    case T_U32: seg_u32((const uint32_t *)base + start, len, st, op, r); break;
    case T_U64: seg_u64((const uint64_t *)base + start, len, st, op, r); break;
    case T_F32: seg_f32((const float *)base + start, len, st, op, r); break;
    default: seg_f64((const double *)base + start, len, st, op, r); break;
    }
}

/* A double into an integer type without undefined behaviour (NaN gives 0). */
static int64_t
d_to_i64(double d)
{
    if (!(d == d)) return 0;
    if (d >= 9223372036854775807.0) return INT64_MAX;
    if (d <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)d;
}

static void
store(int type, char *out, Py_ssize_t at, const acc_t *r)
{
    int64_t iv = r->tag == TAG_D ? d_to_i64(r->d) : r->i;
    uint64_t uv = r->tag == TAG_D ? (uint64_t)d_to_i64(r->d) : r->u;
    double dv = r->tag == TAG_D ? r->d : r->tag == TAG_I ? (double)r->i : (double)r->u;
    switch (type) {
    case T_I8: ((int8_t *)out)[at] = (int8_t)iv; break;
    case T_I16: ((int16_t *)out)[at] = (int16_t)iv; break;
    case T_I32: ((int32_t *)out)[at] = (int32_t)iv; break;
    case T_I64: ((int64_t *)out)[at] = iv; break;
    case T_U8: ((uint8_t *)out)[at] = (uint8_t)uv; break;
    case T_U16: ((uint16_t *)out)[at] = (uint16_t)uv; break;
    case T_U32: ((uint32_t *)out)[at] = (uint32_t)uv; break;
    case T_U64: ((uint64_t *)out)[at] = uv; break;
    case T_F32: ((float *)out)[at] = (float)dv; break;
    case T_F64: ((double *)out)[at] = dv; break;
    default: ((uint8_t *)out)[at] = r->tag == TAG_D ? (dv != 0) : (uv != 0); break;
    }
}

static void
reduce_loop(int vtype, const char *values, const int64_t *offsets,
            Py_ssize_t n, const int64_t *geom, const int64_t *out_off,
            int op, int otype, char *out)
{
    acc_t r;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t start = (Py_ssize_t)offsets[i];
        Py_ssize_t size = (Py_ssize_t)(offsets[i + 1] - offsets[i]);
        if (geom == NULL) {
            segment(vtype, values, start, size, 1, op, &r);
            store(otype, out, i, &r);
            continue;
        }
        Py_ssize_t outer = geom[3 * i], len = geom[3 * i + 1],
                   inner = geom[3 * i + 2];
        Py_ssize_t o0 = (Py_ssize_t)out_off[i];
        for (Py_ssize_t o = 0; o < outer; o++)
            for (Py_ssize_t j = 0; j < inner; j++) {
                segment(vtype, values, start + o * len * inner + j, len,
                        inner, op, &r);
                store(otype, out, o0 + o * inner + j, &r);
            }
    }
}

/* Offsets: n + 1 int64, from >= 0, never decreasing, ending within `limit`. */
static int
check_offsets(const int64_t *off, Py_ssize_t count, Py_ssize_t limit,
              const char *name)
{
    if (count < 1) {
        PyErr_Format(PyExc_ValueError, "%s must hold at least one item", name);
        return -1;
    }
    if (off[0] < 0) {
        PyErr_Format(PyExc_ValueError, "%s[0] is negative", name);
        return -1;
    }
    for (Py_ssize_t i = 0; i + 1 < count; i++)
        if (off[i + 1] < off[i]) {
            PyErr_Format(PyExc_ValueError, "%s decreases at %zd", name, i + 1);
            return -1;
        }
    if (off[count - 1] > (int64_t)limit) {
        PyErr_Format(PyExc_IndexError,
                     "%s ends at %lld, past the %zd items there are", name,
                     (long long)off[count - 1], limit);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(segment_reduce_doc,
"segment_reduce($module, /, values, offsets, op, out, geometry=None, out_offsets=None)\n--\n\n"
"Reduce each row `values[offsets[i]:offsets[i+1]]` (any integer, float or\n"
"bool buffer) with `op` (0 SUM, 1 PROD, 2 MIN, 3 MAX, 4 ANY, 5 ALL, 6 MEAN,\n"
"7 L1, 8 L2, 9 LINF, 10 COUNT_NONZERO) into `out[i]`, converted to out's\n"
"item type. With `geometry` (int64, 3 per row: outer, length, inner, whose\n"
"product is the row's size) each row is reduced along one axis, its\n"
"outer * inner results written from `out[out_offsets[i]]`. An empty\n"
"segment gives the identity, or NaN (0 for an integer out) where there is\n"
"none. Sums and products of integers wrap as NumPy's do. Runs without the\n"
"GIL.");

static PyObject *
native_segment_reduce(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"values", "offsets", "op", "out", "geometry",
                             "out_offsets", NULL};
    PyObject *v_obj, *off_obj, *out_obj, *geom_obj = Py_None,
             *oo_obj = Py_None, *result = NULL;
    int op, vtype = T_BAD, otype = T_BAD;
    arg_buffer vals = {0}, offs = {0}, out = {0}, geom = {0}, oo = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOiO|OO:segment_reduce",
                                     kwlist, &v_obj, &off_obj, &op, &out_obj,
                                     &geom_obj, &oo_obj))
        return NULL;
    if (op < 0 || op >= OP_N) {
        PyErr_Format(PyExc_ValueError, "op must be 0..%d, got %d", OP_N - 1, op);
        return NULL;
    }
    if (acquire_typed(v_obj, "values", 0, ALL_TYPES, &vals, &vtype) < 0 ||
        acquire(off_obj, "offsets", -1, LF_I64, 0, &offs) < 0 ||
        acquire_typed(out_obj, "out", 1, ALL_TYPES, &out, &otype) < 0 ||
        check_no_overlap(&out, "out", &vals, "values") < 0 ||
        check_no_overlap(&out, "out", &offs, "offsets") < 0)
        goto done;
    if (check_offsets((const int64_t *)offs.view.buf, offs.n, vals.n,
                      "offsets") < 0)
        goto done;
    Py_ssize_t n = offs.n - 1;
    const int64_t *off = (const int64_t *)offs.view.buf;
    const int64_t *g = NULL, *o = NULL;
    if ((geom_obj == Py_None) != (oo_obj == Py_None)) {
        PyErr_SetString(PyExc_ValueError,
                        "geometry and out_offsets go together");
        goto done;
    }
    if (geom_obj == Py_None) {
        if (out.n < n) {
            PyErr_Format(PyExc_ValueError, "out has %zd items, fewer than the "
                         "%zd rows", out.n, n);
            goto done;
        }
    } else {
        if (acquire(geom_obj, "geometry", -1, LF_I64, 0, &geom) < 0 ||
            acquire(oo_obj, "out_offsets", -1, LF_I64, 0, &oo) < 0 ||
            check_no_overlap(&out, "out", &geom, "geometry") < 0 ||
            check_no_overlap(&out, "out", &oo, "out_offsets") < 0)
            goto done;
        if (geom.n != 3 * n || oo.n != n + 1) {
            PyErr_Format(PyExc_ValueError, "geometry needs 3 items per row and "
                         "out_offsets one more than the rows (%zd rows)", n);
            goto done;
        }
        if (check_offsets((const int64_t *)oo.view.buf, oo.n, out.n,
                          "out_offsets") < 0)
            goto done;
        g = (const int64_t *)geom.view.buf;
        o = (const int64_t *)oo.view.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t a = g[3 * i], b = g[3 * i + 1], c = g[3 * i + 2], ab, abc,
                    ac;
            if (a < 0 || b < 0 || c < 0 ||
                __builtin_mul_overflow(a, b, &ab) ||
                __builtin_mul_overflow(ab, c, &abc) ||
                __builtin_mul_overflow(a, c, &ac) ||
                abc != off[i + 1] - off[i] || ac != o[i + 1] - o[i]) {
                PyErr_Format(PyExc_ValueError,
                             "row %zd: geometry (%lld, %lld, %lld) does not "
                             "match its %lld values and %lld outputs", i,
                             (long long)a, (long long)b, (long long)c,
                             (long long)(off[i + 1] - off[i]),
                             (long long)(o[i + 1] - o[i]));
                goto done;
            }
        }
    }
    LF_BEGIN_NOGIL(vals.view.len + out.view.len)
    reduce_loop(vtype, (const char *)vals.view.buf, off, n, g, o, op, otype,
                (char *)out.view.buf);
    LF_END_NOGIL
    result = Py_NewRef(Py_None);
done:
    release(&vals);
    release(&offs);
    release(&out);
    release(&geom);
    release(&oo);
    return result;
}

/* ------------------------------------------------------------------------ */
/* One vector against every row                                             */
/* ------------------------------------------------------------------------ */

enum { VOP_DOT, VOP_COSINE, VOP_L2, VOP_N };

/* GCC vector types: four 32-byte accumulators per sum, loads that need no
 * alignment; the x86-64-v3 clone (AVX2 and FMA) runs where the CPU has it,
 * SSE pairs elsewhere. The lanes sum independently, so no single sum is
 * reordered by the compiler. Rows stream from memory once: the loop asks for
 * the bytes 4 KiB ahead (past the end of the matrix a prefetch is a no-op),
 * which takes a single thread from about 9 to about 14 GB/s on 384 floats. */
typedef float vf8 __attribute__((vector_size(32), aligned(4)));
typedef double vd4 __attribute__((vector_size(32), aligned(8)));

#define ROWS_AHEAD_BYTES 4096

#define DEFINE_ROWS(NAME, T, VT, W)                                            \
__attribute__((target_clones("arch=x86-64-v3", "default")))                   \
static void                                                                    \
rows_##NAME(const T *m, const T *v, Py_ssize_t n, Py_ssize_t d, int op,       \
            T *out)                                                            \
{                                                                              \
    const Py_ssize_t ahead = ROWS_AHEAD_BYTES / (Py_ssize_t)sizeof(T);         \
    double vn = 0.0;                                                           \
    for (Py_ssize_t k = 0; k < d; k++)                                         \
        vn += (double)v[k] * (double)v[k];                                     \
    vn = sqrt(vn);                                                             \
    for (Py_ssize_t i = 0; i < n; i++) {                                       \
        const T *a = m + i * d;                                                \
        VT p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};                             \
        VT q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};                             \
        T t1s = 0, t2s = 0;                                                    \
        Py_ssize_t k = 0;                                                      \
        for (; k + 4 * W <= d; k += 4 * W) {                                   \
            __builtin_prefetch(a + k + ahead);                                 \
            __builtin_prefetch(a + k + ahead + 2 * W);                         \
            VT x0 = *(const VT *)(a + k), x1 = *(const VT *)(a + k + W);       \
            VT x2 = *(const VT *)(a + k + 2 * W);                              \
            VT x3 = *(const VT *)(a + k + 3 * W);                              \
            VT v0 = *(const VT *)(v + k), v1 = *(const VT *)(v + k + W);       \
            VT v2 = *(const VT *)(v + k + 2 * W);                              \
            VT v3 = *(const VT *)(v + k + 3 * W);                              \
            if (op == VOP_L2) {                                                \
                x0 -= v0; x1 -= v1; x2 -= v2; x3 -= v3;                        \
                p0 += x0 * x0; p1 += x1 * x1; p2 += x2 * x2; p3 += x3 * x3;    \
            } else {                                                           \
                p0 += x0 * v0; p1 += x1 * v1; p2 += x2 * v2; p3 += x3 * v3;    \
                q0 += x0 * x0; q1 += x1 * x1; q2 += x2 * x2; q3 += x3 * x3;    \
            }                                                                  \
        }                                                                      \
        if (op == VOP_L2)                                                      \
            for (; k < d; k++) { T t = a[k] - v[k]; t1s += t * t; }            \
        else                                                                   \
            for (; k < d; k++) { t1s += a[k] * v[k]; t2s += a[k] * a[k]; }     \
        VT s1 = (p0 + p1) + (p2 + p3), s2 = (q0 + q1) + (q2 + q3);             \
        for (int j = 0; j < W; j++) {                                          \
            t1s += s1[j];                                                      \
            t2s += s2[j];                                                      \
        }                                                                      \
        double t1 = (double)t1s, t2 = (double)t2s;                             \
        if (op == VOP_DOT) out[i] = (T)t1;                                     \
        else if (op == VOP_L2) out[i] = (T)sqrt(t1);                           \
        else out[i] = (T)((T)t1 / ((T)sqrt(t2) * (T)vn));                      \
    }                                                                          \
}

DEFINE_ROWS(f32, float, vf8, 8)
DEFINE_ROWS(f64, double, vd4, 4)

PyDoc_STRVAR(rows_vector_doc,
"rows_vector($module, /, matrix, vector, op, out)\n--\n\n"
"One vector against every row of a C-contiguous (n, d) float32 or float64\n"
"matrix, given flat with d = len(vector): op 0 DOT, 1 cosine similarity\n"
"(DOT / (|row| * |vector|)), 2 L2 distance. Writes n results of the\n"
"matrix's type into `out`. One pass over the matrix, without the GIL.");

static PyObject *
native_rows_vector(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"matrix", "vector", "op", "out", NULL};
    PyObject *m_obj, *v_obj, *out_obj, *result = NULL;
    int op, mt, vt, ot;
    arg_buffer m = {0}, v = {0}, out = {0};
    unsigned floats = (1u << T_F32) | (1u << T_F64);

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOiO:rows_vector", kwlist,
                                     &m_obj, &v_obj, &op, &out_obj))
        return NULL;
    if (op < 0 || op >= VOP_N) {
        PyErr_Format(PyExc_ValueError, "op must be 0..%d, got %d", VOP_N - 1, op);
        return NULL;
    }
    if (acquire_typed(m_obj, "matrix", 0, floats, &m, &mt) < 0 ||
        acquire_typed(v_obj, "vector", 0, floats, &v, &vt) < 0 ||
        acquire_typed(out_obj, "out", 1, floats, &out, &ot) < 0 ||
        check_no_overlap(&out, "out", &m, "matrix") < 0 ||
        check_no_overlap(&out, "out", &v, "vector") < 0)
        goto done;
    if (mt != vt || mt != ot) {
        PyErr_SetString(PyExc_TypeError,
                        "matrix, vector and out must share one float type");
        goto done;
    }
    if (v.n < 1 || m.n % v.n != 0) {
        PyErr_Format(PyExc_ValueError, "matrix has %zd items: not rows of %zd",
                     m.n, v.n);
        goto done;
    }
    Py_ssize_t n = m.n / v.n;
    if (out.n != n) {
        PyErr_Format(PyExc_ValueError, "out has %zd items for %zd rows", out.n, n);
        goto done;
    }
    LF_BEGIN_NOGIL(m.view.len)
    if (mt == T_F32)
        rows_f32((const float *)m.view.buf, (const float *)v.view.buf, n, v.n,
                 op, (float *)out.view.buf);
    else
        rows_f64((const double *)m.view.buf, (const double *)v.view.buf, n,
                 v.n, op, (double *)out.view.buf);
    LF_END_NOGIL
    result = Py_NewRef(Py_None);
done:
    release(&m);
    release(&v);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Top-k                                                                    */
/* ------------------------------------------------------------------------ */

/* Whether row a comes before row b: the better key, ties to the lower row. */
#define BEFORE(K, a, b, desc)                                                  \
    ((K)[a] != (K)[b] ? ((desc) ? (K)[a] > (K)[b] : (K)[a] < (K)[b]) : (a) < (b))

/* A heap whose root is the worst row kept; scanning rows in order, a row
 * replaces the root only when it comes strictly before it. */
#define DEFINE_TOPK(NAME, T, ISF)                                              \
static Py_ssize_t                                                              \
topk_##NAME(const T *key, const uint8_t *valid, Py_ssize_t n, Py_ssize_t k,    \
            int desc, int64_t *heap)                                           \
{                                                                              \
    Py_ssize_t size = 0;                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                       \
        if ((valid != NULL && !valid[i]) || (ISF && key[i] != key[i]))         \
            continue;                                                          \
        Py_ssize_t at;                                                         \
        if (size < k) {                                                        \
            at = size++;                                                       \
            while (at > 0) {                                                   \
                Py_ssize_t up = (at - 1) / 2;                                  \
                if (!BEFORE(key, heap[up], i, desc)) break;                    \
                heap[at] = heap[up];                                           \
                at = up;                                                       \
            }                                                                  \
            heap[at] = i;                                                      \
            continue;                                                          \
        }                                                                      \
        if (k == 0 || !BEFORE(key, i, heap[0], desc))                          \
            continue;                                                          \
        at = 0;                                                                \
        for (;;) {                                                             \
            Py_ssize_t c = 2 * at + 1;                                         \
            if (c >= size) break;                                              \
            if (c + 1 < size && BEFORE(key, heap[c], heap[c + 1], desc)) c++;  \
            if (!BEFORE(key, i, heap[c], desc)) break;                         \
            heap[at] = heap[c];                                                \
            at = c;                                                            \
        }                                                                      \
        heap[at] = i;                                                          \
    }                                                                          \
    /* heap sort: pop the worst to the end */                                  \
    for (Py_ssize_t end = size - 1; end > 0; end--) {                          \
        int64_t last = heap[end];                                              \
        heap[end] = heap[0];                                                   \
        Py_ssize_t at = 0;                                                     \
        for (;;) {                                                             \
            Py_ssize_t c = 2 * at + 1;                                         \
            if (c >= end) break;                                               \
            if (c + 1 < end && BEFORE(key, heap[c], heap[c + 1], desc)) c++;   \
            if (!BEFORE(key, last, heap[c], desc)) break;                      \
            heap[at] = heap[c];                                                \
            at = c;                                                            \
        }                                                                      \
        heap[at] = last;                                                       \
    }                                                                          \
    return size;                                                               \
}

DEFINE_TOPK(i64, int64_t, 0)
DEFINE_TOPK(u64, uint64_t, 0)
DEFINE_TOPK(f32, float, 1)
DEFINE_TOPK(f64, double, 1)

PyDoc_STRVAR(top_k_doc,
"top_k($module, /, keys, k, descending, out, valid=None)\n--\n\n"
"The positions of the first k rows of `keys` (int64, uint64, float32 or\n"
"float64) in ascending (or descending) order, ties in row order, written\n"
"in that order to the int64 buffer `out` (at least k items). Rows whose\n"
"`valid` byte is 0, and NaN keys, are left out. Keeps a heap of k rows, so\n"
"it never sorts every row. Returns how many positions it wrote. Runs\n"
"without the GIL.");

static PyObject *
native_top_k(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"keys", "k", "descending", "out", "valid", NULL};
    PyObject *k_obj, *out_obj, *valid_obj = Py_None, *result = NULL;
    Py_ssize_t k, written = 0;
    int desc, kt;
    arg_buffer keys = {0}, out = {0}, valid = {0};
    unsigned allowed = (1u << T_I64) | (1u << T_U64) | (1u << T_F32) |
                       (1u << T_F64);

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnpO|O:top_k", kwlist,
                                     &k_obj, &k, &desc, &out_obj, &valid_obj))
        return NULL;
    if (k < 0) {
        PyErr_Format(PyExc_ValueError, "k must be >= 0, got %zd", k);
        return NULL;
    }
    if (acquire_typed(k_obj, "keys", 0, allowed, &keys, &kt) < 0 ||
        acquire(out_obj, "out", -1, LF_I64, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &keys, "keys") < 0)
        goto done;
    if (valid_obj != Py_None) {
        if (acquire(valid_obj, "valid", -1, LF_BYTES, 0, &valid) < 0 ||
            check_no_overlap(&out, "out", &valid, "valid") < 0)
            goto done;
        if (valid.view.itemsize != 1 || valid.n != keys.n) {
            PyErr_Format(PyExc_ValueError, "valid must hold one byte per key "
                         "(%zd keys, %zd bytes)", keys.n, valid.n);
            goto done;
        }
    }
    if (k > keys.n)
        k = keys.n;
    if (out.n < k) {
        PyErr_Format(PyExc_ValueError, "out has %zd items, fewer than k=%zd",
                     out.n, k);
        goto done;
    }
    const uint8_t *vb = valid.held ? (const uint8_t *)valid.view.buf : NULL;
    int64_t *h = (int64_t *)out.view.buf;
    LF_BEGIN_NOGIL(keys.view.len)
    switch (kt) {
    case T_I64: written = topk_i64((const int64_t *)keys.view.buf, vb, keys.n, k, desc, h); break;
    case T_U64: written = topk_u64((const uint64_t *)keys.view.buf, vb, keys.n, k, desc, h); break;
    case T_F32: written = topk_f32((const float *)keys.view.buf, vb, keys.n, k, desc, h); break;
    default: written = topk_f64((const double *)keys.view.buf, vb, keys.n, k, desc, h); break;
    }
    LF_END_NOGIL
    result = PyLong_FromSsize_t(written);
done:
    release(&keys);
    release(&out);
    release(&valid);
    return result;
}

LF_INTERNAL PyMethodDef lf_tql_ragged_methods[] = {
    LF_METHOD(segment_reduce),
    LF_METHOD(rows_vector),
    LF_METHOD(top_k),
    {NULL, NULL, 0, NULL},
};
