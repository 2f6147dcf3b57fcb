/*
 * TQL text kernels over Arrow-style text buffers: `offsets` (int64, n + 1
 * items, non-decreasing, offsets[0] >= 0) and `data` (the UTF-8 bytes of
 * every value back to back). Value i is data[offsets[i] : offsets[i + 1]].
 *
 * The match kernels write one byte per value into `out` (a bool array the
 * caller allocated); text_utf8_check and json_balanced return the first bad
 * value. All run without the GIL. Nulls are the caller's business: a null is
 * stored as an empty value and masked afterwards.
 *
 * Byte order is code point order for UTF-8, so comparisons are memcmp, and
 * a substring of the bytes is a substring of the code points (UTF-8 is
 * self-synchronizing). LIKE decodes UTF-8 so that `_` / `?` is one code
 * point; ILIKE folds ASCII and Latin-1 letters and reports rows holding a
 * code point above U+00FF as "unsure" (2) for the caller to match in Python.
 *
 * Bad input (offsets out of order or past the data, an unsorted IN set,
 * bytes that are not UTF-8 where LIKE decodes) raises ValueError / TypeError;
 * nothing reads or writes outside a buffer.
 */
#include "text_offsets.h"

#include <string.h>

enum { OP_EQ = 0, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
enum { TOK_ANY_RUN = -1, TOK_ANY_ONE = -2 };

static int
acquire_out(PyObject *out_obj, Py_ssize_t rows, arg_buffer *out,
            const arg_buffer *data)
{
    if (acquire(out_obj, "out", -1, LF_BYTES, 1, out) < 0 ||
        check_no_overlap(out, "out", data, "data") < 0)
        return -1;
    if (out->n != rows) {
        PyErr_Format(PyExc_ValueError, "out has %zd bytes for %zd values",
                     out->n, rows);
        return -1;
    }
    return 0;
}

/* memcmp order, then length: Python's str order for UTF-8 bytes. */
static int
cmp_bytes(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    size_t m = na < nb ? na : nb;
    int c = m ? memcmp(a, b, m) : 0;
    if (c != 0)
        return c < 0 ? -1 : 1;
    return na < nb ? -1 : (na > nb ? 1 : 0);
}

static uint8_t
op_result(int op, int c)
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* ------------------------------------------------------------------------ */
/* text_compare: each value against one constant                            */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(text_compare_doc,
"text_compare($module, /, offsets, data, needle, op, out)\n--\n\n"
"out[i] = value i <op> needle, by code point (UTF-8 byte) order; op is\n"
"0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=.");

static PyObject *
native_text_compare(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", "needle", "op", "out", NULL};
    PyObject *off_obj, *data_obj, *needle_obj, *out_obj, *result = NULL;
    int op;
    arg_buffer off = {0}, data = {0}, needle = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOiO:text_compare", kwlist,
                                     &off_obj, &data_obj, &needle_obj, &op,
                                     &out_obj))
        return NULL;
    if (op < OP_EQ || op > OP_GE) {
        PyErr_Format(PyExc_ValueError, "op %d is not 0..5", op);
        return NULL;
    }
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0 ||
        acquire(needle_obj, "needle", -1, LF_BYTES, 0, &needle) < 0 ||
        acquire_out(out_obj, off.n - 1, &out, &data) < 0 ||
        check_no_overlap(&out, "out", &needle, "needle") < 0)
        goto done;
    {
        const int64_t *o = (const int64_t *)off.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf;
        const uint8_t *nd = (const uint8_t *)needle.view.buf;
        size_t nn = (size_t)needle.n;
        uint8_t *r = (uint8_t *)out.view.buf;
        Py_ssize_t rows = off.n - 1;
        LF_BEGIN_NOGIL(data.n + rows * 9)
        if (op == OP_EQ || op == OP_NE) {
            uint8_t eq = op == OP_EQ;
            for (Py_ssize_t i = 0; i < rows; i++) {
                size_t len = (size_t)(o[i + 1] - o[i]);
                uint8_t same = len == nn && (nn == 0 || memcmp(d + o[i], nd, nn) == 0);
                r[i] = same == eq;
            }
        } else {
            for (Py_ssize_t i = 0; i < rows; i++)
                r[i] = op_result(op, cmp_bytes(d + o[i], (size_t)(o[i + 1] - o[i]), nd, nn));
        }
        LF_END_NOGIL
    }
    result = Py_NewRef(Py_None);
done:
    release(&off);
    release(&data);
    release(&needle);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* text_compare_pairs: value i of a against value i of b                    */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(text_compare_pairs_doc,
"text_compare_pairs($module, /, a_offsets, a_data, b_offsets, b_data, op, out)\n--\n\n"
"out[i] = a[i] <op> b[i] (op as text_compare); a and b have one length.");

static PyObject *
native_text_compare_pairs(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"a_offsets", "a_data", "b_offsets", "b_data", "op", "out", NULL};
    PyObject *ao_obj, *ad_obj, *bo_obj, *bd_obj, *out_obj, *result = NULL;
    int op;
    arg_buffer ao = {0}, ad = {0}, bo = {0}, bd = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOiO:text_compare_pairs",
                                     kwlist, &ao_obj, &ad_obj, &bo_obj, &bd_obj,
                                     &op, &out_obj))
        return NULL;
    if (op < OP_EQ || op > OP_GE) {
        PyErr_Format(PyExc_ValueError, "op %d is not 0..5", op);
        return NULL;
    }
    if (acquire_text(ao_obj, ad_obj, "a_offsets", "a_data", &ao, &ad) < 0 ||
        acquire_text(bo_obj, bd_obj, "b_offsets", "b_data", &bo, &bd) < 0 ||
        check_same_length(&ao, "a_offsets", &bo, "b_offsets") < 0 ||
        acquire_out(out_obj, ao.n - 1, &out, &ad) < 0 ||
        check_no_overlap(&out, "out", &bd, "b_data") < 0)
        goto done;
    {
        const int64_t *a = (const int64_t *)ao.view.buf, *b = (const int64_t *)bo.view.buf;
        const uint8_t *x = (const uint8_t *)ad.view.buf, *y = (const uint8_t *)bd.view.buf;
        uint8_t *r = (uint8_t *)out.view.buf;
        Py_ssize_t rows = ao.n - 1;
        LF_BEGIN_NOGIL(ad.n + bd.n + rows * 17)
        for (Py_ssize_t i = 0; i < rows; i++)
            r[i] = op_result(op, cmp_bytes(x + a[i], (size_t)(a[i + 1] - a[i]),
                                           y + b[i], (size_t)(b[i + 1] - b[i])));
        LF_END_NOGIL
    }
    result = Py_NewRef(Py_None);
done:
    release(&ao);
    release(&ad);
    release(&bo);
    release(&bd);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* text_in: membership in a sorted set of constants                         */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(text_in_doc,
"text_in($module, /, offsets, data, set_offsets, set_data, out)\n--\n\n"
"out[i] = value i is one of the set's values; the set (text buffers too)\n"
"must be strictly increasing in byte order (ValueError otherwise).");

static PyObject *
native_text_in(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", "set_offsets", "set_data", "out", NULL};
    PyObject *off_obj, *data_obj, *so_obj, *sd_obj, *out_obj, *result = NULL;
    arg_buffer off = {0}, data = {0}, so = {0}, sd = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO:text_in", kwlist,
                                     &off_obj, &data_obj, &so_obj, &sd_obj,
                                     &out_obj))
        return NULL;
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0 ||
        acquire_text(so_obj, sd_obj, "set_offsets", "set_data", &so, &sd) < 0 ||
        acquire_out(out_obj, off.n - 1, &out, &data) < 0 ||
        check_no_overlap(&out, "out", &sd, "set_data") < 0)
        goto done;
    {
        const int64_t *o = (const int64_t *)off.view.buf, *s = (const int64_t *)so.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf, *sdat = (const uint8_t *)sd.view.buf;
        uint8_t *r = (uint8_t *)out.view.buf;
        Py_ssize_t rows = off.n - 1, m = so.n - 1;
        for (Py_ssize_t k = 1; k < m; k++) {
            if (cmp_bytes(sdat + s[k - 1], (size_t)(s[k] - s[k - 1]),
                          sdat + s[k], (size_t)(s[k + 1] - s[k])) >= 0) {
                PyErr_Format(PyExc_ValueError,
                             "the set's value %zd is not above the one before it "
                             "(the set must be sorted, without repeats)", k);
                goto done;
            }
        }
        LF_BEGIN_NOGIL(data.n + rows * 9)
        for (Py_ssize_t i = 0; i < rows; i++) {
            const uint8_t *v = d + o[i];
            size_t nv = (size_t)(o[i + 1] - o[i]);
            Py_ssize_t lo = 0, hi = m;
            uint8_t hit = 0;
            while (lo < hi) {
                Py_ssize_t mid = lo + (hi - lo) / 2;
                int c = cmp_bytes(v, nv, sdat + s[mid], (size_t)(s[mid + 1] - s[mid]));
                if (c == 0) {
                    hit = 1;
                    break;
                }
                if (c < 0)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            r[i] = hit;
        }
        LF_END_NOGIL
    }
    result = Py_NewRef(Py_None);
done:
    release(&off);
    release(&data);
    release(&so);
    release(&sd);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* text_contains: substring                                                 */
/* ------------------------------------------------------------------------ */

#if defined(__SSE2__)
#include <emmintrin.h>

/*
 * The first occurrence of needle (nn >= 2 bytes) in [p, p + n): 16 candidate
 * positions at a time where both the first and the last byte of the needle
 * match (SSE2, in every x86-64 CPU), each candidate then compared in full.
 * Text made of few letters defeats memmem's skips: this stays fast there.
 */
static const uint8_t *
find_first_last(const uint8_t *p, size_t n, const uint8_t *needle, size_t nn)
{
    if (nn > n)
        return NULL;
    const __m128i first = _mm_set1_epi8((char)needle[0]);
    const __m128i last = _mm_set1_epi8((char)needle[nn - 1]);
    size_t i = 0;
    for (; i + (nn - 1) + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + nn - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        while (mask != 0) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (memcmp(p + i + bit + 1, needle + 1, nn - 2) == 0)
                return p + i + bit;
            mask &= mask - 1;
        }
    }
    for (; i + nn <= n; i++) {
        if (p[i] == needle[0] && memcmp(p + i + 1, needle + 1, nn - 1) == 0)
            return p + i;
    }
    return NULL;
}
#endif

/* The first occurrence of needle (nn >= 1 bytes) in [p, p + np_), or NULL. */
static const uint8_t *
find_bytes(const uint8_t *p, size_t np_, const uint8_t *needle, size_t nn)
{
    if (nn == 1)
        return memchr(p, needle[0], np_);
#if defined(__SSE2__)
    return find_first_last(p, np_, needle, nn);
#elif defined(__GLIBC__)
    return memmem(p, np_, needle, nn); /* glibc's is vectorized for short needles */
#else
    if (nn > np_)
        return NULL;
    const uint8_t *last = p + (np_ - nn);
    while (p <= last) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p + 1, needle + 1, nn - 1) == 0)
            return p;
        p++;
    }
    return NULL;
#endif
}

/*
 * Marks the values that hold needle (nn >= 1): one search over the whole
 * buffer; a hit inside a value marks it and the search goes on at the next
 * value's start, a hit across a boundary goes on one byte further.
 */
static void
contains_all(const int64_t *o, Py_ssize_t rows, const uint8_t *d,
             const uint8_t *needle, size_t nn, uint8_t *r)
{
    memset(r, 0, (size_t)rows);
    Py_ssize_t i = 0;
    int64_t at = o[0], end = o[rows];
    while (i < rows && at < end) {
        const uint8_t *hit = find_bytes(d + at, (size_t)(end - at), needle, nn);
        if (hit == NULL)
            return;
        int64_t q = (int64_t)(hit - d);
        while (i < rows && o[i + 1] <= q)
            i++;
        if (i >= rows)
            return;
        if (q + (int64_t)nn <= o[i + 1]) {
            r[i] = 1;
            at = o[i + 1];
            i++;
        } else {
            at = q + 1;
        }
    }
}

PyDoc_STRVAR(text_contains_doc,
"text_contains($module, /, offsets, data, needle, out)\n--\n\n"
"out[i] = needle (UTF-8 bytes) occurs in value i; an empty needle occurs\n"
"in every value.");

static PyObject *
native_text_contains(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", "needle", "out", NULL};
    PyObject *off_obj, *data_obj, *needle_obj, *out_obj, *result = NULL;
    arg_buffer off = {0}, data = {0}, needle = {0}, out = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:text_contains", kwlist,
                                     &off_obj, &data_obj, &needle_obj, &out_obj))
        return NULL;
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0 ||
        acquire(needle_obj, "needle", -1, LF_BYTES, 0, &needle) < 0 ||
        acquire_out(out_obj, off.n - 1, &out, &data) < 0 ||
        check_no_overlap(&out, "out", &needle, "needle") < 0)
        goto done;
    {
        const int64_t *o = (const int64_t *)off.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf, *nd = (const uint8_t *)needle.view.buf;
        size_t nn = (size_t)needle.n;
        uint8_t *r = (uint8_t *)out.view.buf;
        Py_ssize_t rows = off.n - 1;
        LF_BEGIN_NOGIL(data.n + rows * 9)
        if (nn == 0)
            memset(r, 1, (size_t)rows);
        else
            contains_all(o, rows, d, nd, nn, r);
        LF_END_NOGIL
    }
    result = Py_NewRef(Py_None);
done:
    release(&off);
    release(&data);
    release(&needle);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Decodes the code point at p (< end) strictly (no overlongs, surrogates or
 * values past U+10FFFF, as Python's decoder); returns its length, 0 if the
 * bytes are not UTF-8.
 */
static int
utf8_next(const uint8_t *p, const uint8_t *end, uint32_t *cp)
{
    uint8_t c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2; v = c & 0x1F; min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3; v = c & 0x0F; min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4; v = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (end - p < len)
        return 0;
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* The first value that is not UTF-8 on its own, or -1 (no GIL needed). */
static Py_ssize_t
first_invalid(const int64_t *o, Py_ssize_t rows, const uint8_t *d)
{
    /* all of the values' bytes ASCII (the common case): every value is UTF-8 */
    const uint8_t *p = d + o[0], *end = d + o[rows];
    uint64_t high = 0;
    for (; end - p >= 8; p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        high |= w;
    }
    for (; p < end; p++)
        high |= *p;
    if ((high & UINT64_C(0x8080808080808080)) == 0)
        return -1;
    for (Py_ssize_t i = 0; i < rows; i++) {
        const uint8_t *q = d + o[i], *stop = d + o[i + 1];
        while (q < stop) {
            while (stop - q >= 8) { /* an ASCII run: 8 bytes at a time */
                uint64_t w;
                memcpy(&w, q, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                q += 8;
            }
            if (q >= stop)
                break;
            uint32_t cp;
            int len = utf8_next(q, stop, &cp);
            if (len == 0)
                return i;
            q += len;
        }
    }
    return -1;
}

PyDoc_STRVAR(text_utf8_check_doc,
"text_utf8_check($module, /, offsets, data)\n--\n\n"
"The index of the first value that is not valid UTF-8 on its own (a bad\n"
"byte, or an offset inside a character), or -1 when every value is.");

static PyObject *
native_text_utf8_check(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", NULL};
    PyObject *off_obj, *data_obj, *result = NULL;
    arg_buffer off = {0}, data = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:text_utf8_check", kwlist,
                                     &off_obj, &data_obj))
        return NULL;
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0)
        goto done;
    {
        Py_ssize_t bad;
        LF_BEGIN_NOGIL(data.n + off.n * 8)
        bad = first_invalid((const int64_t *)off.view.buf, off.n - 1,
                            (const uint8_t *)data.view.buf);
        LF_END_NOGIL
        result = PyLong_FromSsize_t(bad);
    }
done:
    release(&off);
    release(&data);
    return result;
}

/* ------------------------------------------------------------------------ */
/* text_like: % / * any run, _ / ? one code point                            */
/* ------------------------------------------------------------------------ */

/*
 * Matching runs on UTF-8 bytes (equal code points are equal byte runs); the
 * pattern is encoded to byte tokens, `_` / `?` steps over one whole
 * character, and a `%` retry moves to the next character start. For ILIKE
 * the bytes are case-folded first: ASCII A-Z, and U+00C0..U+00DE (but
 * U+00D7), which UTF-8 writes as C3 80..C3 9E; a value with a lead byte
 * >= C4 holds a code point above U+00FF and is left to the caller.
 */

/* Length of the UTF-8 character starting with byte c (valid UTF-8). */
static int
char_len(uint8_t c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Folds valid UTF-8 bytes [s, s + m) into out; 1 if a code point > U+00FF. */
static int
fold_bytes(const uint8_t *s, Py_ssize_t m, uint8_t *out)
{
    for (Py_ssize_t k = 0; k < m; k++) {
        uint8_t c = s[k];
        if (c >= 0xC4)
            return 1;
        if (c >= 'A' && c <= 'Z') {
            out[k] = c + 0x20;
        } else if (c == 0xC3 && k + 1 < m) {
            uint8_t n = s[k + 1];
            out[k] = c;
            out[++k] = (n >= 0x80 && n <= 0x9E && n != 0x97) ? n + 0x20 : n;
        } else {
            out[k] = c;
        }
    }
    return 0;
}

/* Wildcard match of UTF-8 bytes s[0..m) against byte tokens t[0..np). */
static int
glob_match(const uint8_t *s, Py_ssize_t m, const int16_t *t, Py_ssize_t np_)
{
    Py_ssize_t i = 0, p = 0, star_p = -1, star_i = 0;
    while (i < m) {
        if (p < np_ && t[p] == TOK_ANY_ONE) {
            i += char_len(s[i]);
            p++;
        } else if (p < np_ && t[p] >= 0 && t[p] == s[i]) {
            i++;
            p++;
        } else if (p < np_ && t[p] == TOK_ANY_RUN) {
            star_p = p++;
            star_i = i;
        } else if (star_p >= 0) {
            p = star_p + 1;
            star_i += char_len(s[star_i]);
            i = star_i;
        } else {
            return 0;
        }
    }
    if (i > m) /* a character cut short: only in bytes that are not UTF-8 */
        return 0;
    while (p < np_ && t[p] == TOK_ANY_RUN)
        p++;
    return p == np_;
}

/* Whether a buffer holds native-order int32 items ("i", "=i", "@i", "<i" here). */
static int
int32_format(const Py_buffer *v)
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
    return v->itemsize == 4 && (strcmp(f, "i") == 0 || strcmp(f, "l") == 0);
}

PyDoc_STRVAR(text_like_doc,
"text_like($module, /, pattern, offsets, data, fold, out)\n--\n\n"
"out[i] = 1 where value i matches `pattern`, an int32 array of tokens: a\n"
"code point (>= 0), -1 for any run of code points, -2 for exactly one.\n"
"With `fold`, ASCII and Latin-1 letters match either case, and a value\n"
"holding a code point above U+00FF gets 2 (unsure: Unicode case folding\n"
"is the caller's). Returns how many values got 2. The pattern's code\n"
"points must be <= U+00FF with `fold`, <= U+10FFFF without (surrogates\n"
"excluded); ValueError on a value that is not UTF-8.");

static PyObject *
native_text_like(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"pattern", "offsets", "data", "fold", "out", NULL};
    PyObject *pat_obj, *off_obj, *data_obj, *out_obj, *result = NULL;
    int do_fold;
    arg_buffer pat = {0}, off = {0}, data = {0}, out = {0};
    int16_t *tokens = NULL;
    uint8_t *scratch = NULL;
    Py_ssize_t ntok = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOpO:text_like", kwlist,
                                     &pat_obj, &off_obj, &data_obj, &do_fold,
                                     &out_obj))
        return NULL;
    if (acquire(pat_obj, "pattern", -1, LF_BYTES, 0, &pat) < 0 ||
        acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0 ||
        acquire_out(out_obj, off.n - 1, &out, &data) < 0)
        goto done;
    if (!int32_format(&pat.view)) {
        PyErr_SetString(PyExc_TypeError, "pattern must be a native-order int32 array");
        goto done;
    }
    {
        /* the pattern as byte tokens: each code point UTF-8 encoded (4 bytes at most) */
        Py_ssize_t ncp = pat.view.len / 4;
        const int32_t *cps = (const int32_t *)pat.view.buf;
        tokens = PyMem_Malloc((size_t)(ncp > 0 ? 4 * ncp : 1) * sizeof *tokens);
        if (tokens == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t k = 0; k < ncp; k++) {
            int32_t c;
            memcpy(&c, cps + k, 4);
            if (c < TOK_ANY_ONE || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) || (do_fold && c > 0xFF)) {
                PyErr_Format(PyExc_ValueError, "pattern token %zd (%d) is not a code point%s, -1 or -2",
                             k, (int)c, do_fold ? " <= U+00FF" : "");
                goto done;
            }
            if (c < 0) {
                tokens[ntok++] = (int16_t)c;
                continue;
            }
            if (do_fold && ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)))
                c += 0x20;
            if (c < 0x80) {
                tokens[ntok++] = (int16_t)c;
            } else if (c < 0x800) {
                tokens[ntok++] = (int16_t)(0xC0 | (c >> 6));
                tokens[ntok++] = (int16_t)(0x80 | (c & 0x3F));
            } else if (c < 0x10000) {
                tokens[ntok++] = (int16_t)(0xE0 | (c >> 12));
                tokens[ntok++] = (int16_t)(0x80 | ((c >> 6) & 0x3F));
                tokens[ntok++] = (int16_t)(0x80 | (c & 0x3F));
            } else {
                tokens[ntok++] = (int16_t)(0xF0 | (c >> 18));
                tokens[ntok++] = (int16_t)(0x80 | ((c >> 12) & 0x3F));
                tokens[ntok++] = (int16_t)(0x80 | ((c >> 6) & 0x3F));
                tokens[ntok++] = (int16_t)(0x80 | (c & 0x3F));
            }
        }
    }
    {
        const int64_t *o = (const int64_t *)off.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf;
        uint8_t *r = (uint8_t *)out.view.buf;
        Py_ssize_t rows = off.n - 1, widest = 0, unsure = 0, bad = -1;
        if (do_fold) {
            for (Py_ssize_t i = 0; i < rows; i++)
                if (o[i + 1] - o[i] > widest)
                    widest = (Py_ssize_t)(o[i + 1] - o[i]);
            scratch = PyMem_Malloc((size_t)(widest > 0 ? widest : 1));
            if (scratch == NULL) {
                PyErr_NoMemory();
                goto done;
            }
        }
        LF_BEGIN_NOGIL(data.n * 2 + rows * 9)
        bad = first_invalid(o, rows, d);
        for (Py_ssize_t i = 0; i < rows && bad < 0; i++) {
            const uint8_t *s = d + o[i];
            Py_ssize_t m = (Py_ssize_t)(o[i + 1] - o[i]);
            if (do_fold) {
                if (fold_bytes(s, m, scratch)) {
                    r[i] = 2;
                    unsure++;
                    continue;
                }
                s = scratch;
            }
            r[i] = (uint8_t)glob_match(s, m, tokens, ntok);
        }
        LF_END_NOGIL
        if (bad >= 0) {
            PyErr_Format(PyExc_ValueError, "value %zd is not UTF-8", bad);
            goto done;
        }
        result = PyLong_FromSsize_t(unsure);
    }
done:
    PyMem_Free(tokens);
    PyMem_Free(scratch);
    release(&pat);
    release(&off);
    release(&data);
    release(&out);
    return result;
}

/* ------------------------------------------------------------------------ */
/* json_balanced: each document one balanced value                           */
/* ------------------------------------------------------------------------ */

PyDoc_STRVAR(json_balanced_doc,
"json_balanced($module, /, offsets, data)\n--\n\n"
"The index of the first non-empty document whose brackets do not balance\n"
"(outside strings: a closing bracket with none open, one left open, a\n"
"comma at the top level, a string left open), or -1. Documents that pass\n"
"can be parsed as one JSON array, '[' + ','.join(docs) + ']', and give one\n"
"element each (or the parse fails).");

static PyObject *
native_json_balanced(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"offsets", "data", NULL};
    PyObject *off_obj, *data_obj, *result = NULL;
    arg_buffer off = {0}, data = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:json_balanced", kwlist,
                                     &off_obj, &data_obj))
        return NULL;
    if (acquire_text(off_obj, data_obj, "offsets", "data", &off, &data) < 0)
        goto done;
    {
        const int64_t *o = (const int64_t *)off.view.buf;
        const uint8_t *d = (const uint8_t *)data.view.buf;
        Py_ssize_t rows = off.n - 1, bad = -1;
        LF_BEGIN_NOGIL(data.n + rows * 8)
        for (Py_ssize_t i = 0; i < rows && bad < 0; i++) {
            int64_t depth = 0;
            int in_str = 0, esc = 0;
            for (int64_t k = o[i]; k < o[i + 1]; k++) {
                uint8_t c = d[k];
                if (in_str) {
                    if (esc)
                        esc = 0;
                    else if (c == '\\')
                        esc = 1;
                    else if (c == '"')
                        in_str = 0;
                    continue;
                }
                if (c == '"') {
                    in_str = 1;
                } else if (c == '[' || c == '{') {
                    depth++;
                } else if (c == ']' || c == '}') {
                    if (--depth < 0)
                        break;
                } else if (c == ',' && depth == 0) {
                    depth = -1;
                    break;
                }
            }
            if (depth != 0 || in_str)
                bad = i;
        }
        LF_END_NOGIL
        result = PyLong_FromSsize_t(bad);
    }
done:
    release(&off);
    release(&data);
    return result;
}

LF_INTERNAL PyMethodDef lf_tql_text_methods[] = {
    LF_METHOD(json_balanced),
    LF_METHOD(text_compare),
    LF_METHOD(text_compare_pairs),
    LF_METHOD(text_in),
    LF_METHOD(text_contains),
    LF_METHOD(text_utf8_check),
    LF_METHOD(text_like),
    {NULL, NULL, 0, NULL},
};
