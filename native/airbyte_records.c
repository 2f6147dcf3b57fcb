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
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum {
    K_NULL_ONLY = 0, K_INT, K_FLOAT, K_BOOL, K_TEXT, K_JSON, K_TS_TZ, K_TS_NTZ, K_DATE, K_TIME, K_COUNT
};

enum { R_END = 0, R_LIMIT = 1, R_LINE = 2 };

#define MAX_DEPTH 64
#define MAX_KEYS 64 /* keys per json object checked for duplicates; more: not canonical */

typedef unsigned char uchar;

typedef struct {
    char *name;
    size_t name_len;
    int kind;
    int64_t *vals;  /* one per row (int64 / double bits / bool) */
    uchar *nulls;   /* one per row */
    int64_t *ends;  /* text / json: end of each row's bytes in data */
    uchar *data;
    size_t data_len, data_cap;
    /* per line being parsed */
    int seen;
    size_t pend;
} Field;

typedef struct {
    char *name;
    size_t name_len;
    char *ns;  /* NULL: no namespace */
    size_t ns_len;
    int enabled;
    Py_ssize_t nfields;
    Field *fields;
    size_t rows, cap;
    double *emitted;
    uint64_t nbytes;
    Py_ssize_t hint;
} Stream;

typedef struct {
    PyObject_HEAD
    Stream *streams;
    Py_ssize_t nstreams;
    int busy;
} Scanner;

typedef struct {
    const uchar *p, *end;
} Cur;

/* ------------------------------------------------------------------------------ memory */
static int grow_rows(Stream *s, size_t need) {
    if (need <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < need) cap *= 2;
    double *em = realloc(s->emitted, cap * sizeof(double));
    if (!em) return -1;
    s->emitted = em;
    for (Py_ssize_t i = 0; i < s->nfields; i++) {
        Field *f = &s->fields[i];
        int64_t *v = realloc(f->vals, cap * sizeof(int64_t));
        if (!v) return -1;
        f->vals = v;
        uchar *nl = realloc(f->nulls, cap);
        if (!nl) return -1;
        f->nulls = nl;
        if (f->kind == K_TEXT || f->kind == K_JSON) {
            int64_t *e = realloc(f->ends, cap * sizeof(int64_t));
            if (!e) return -1;
            f->ends = e;
        }
    }
    s->cap = cap;
    return 0;
}

static int grow_data(Field *f, size_t need) {
    if (need <= f->data_cap) return 0;
    size_t cap = f->data_cap ? f->data_cap : 65536;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2) return -1;
        cap *= 2;
    }
    uchar *d = realloc(f->data, cap);
    if (!d) return -1;
    f->data = d;
    f->data_cap = cap;
    return 0;
}

/* Row r of f holds a null; a json field stores the text null. 0, or -1 out of memory. */
static int put_null(Field *f, size_t r) {
    f->nulls[r] = 1;
    f->vals[r] = 0;
    if (f->kind == K_JSON) {
        if (grow_data(f, f->data_len + 4)) return -1;
        memcpy(f->data + f->data_len, "null", 4);
        f->pend = f->data_len + 4;
    }
    return 0;
}

static void free_fields(Stream *s) {
    for (Py_ssize_t i = 0; i < s->nfields; i++) {
        Field *f = &s->fields[i];
        free(f->name);
        free(f->vals);
        free(f->nulls);
        free(f->ends);
        free(f->data);
    }
    free(s->fields);
    s->fields = NULL;
    s->nfields = 0;
    free(s->emitted);
    s->emitted = NULL;
    s->cap = 0;
    s->rows = 0;
    s->nbytes = 0;
}

/* ------------------------------------------------------------------------------ JSON */
static inline void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) c->p++;
}

/* After an object member: 1 past a ',' (and the blanks after it), 2 past the closing '}',
 * 0 at anything else. */
static int after_member(Cur *c) {
    ws(c);
    if (c->p >= c->end) return 0;
    if (*c->p == ',') {
        c->p++;
        ws(c);
        return 1;
    }
    if (*c->p == '}') {
        c->p++;
        return 2;
    }
    return 0;
}

static inline int hexval(uchar ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int hex4(const uchar *p, const uchar *end, unsigned *out) {
    if (end - p < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return 0;
        v = (v << 4) | (unsigned)h;
    }
    *out = v;
    return 1;
}

/* One UTF-8 sequence starting at p (p[0] >= 0x80), strictly valid (no overlongs, no
 * surrogates, <= U+10FFFF): its length, or 0. */
static inline int utf8_seq(const uchar *p, const uchar *end) {
    uchar a = p[0];
    Py_ssize_t left = end - p;
    if (a >= 0xC2 && a <= 0xDF) {
        if (left < 2 || (p[1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (a >= 0xE0 && a <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (a == 0xE0 && p[1] < 0xA0) return 0;
        if (a == 0xED && p[1] > 0x9F) return 0;
        return 3;
    }
    if (a >= 0xF0 && a <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (a == 0xF0 && p[1] < 0x90) return 0;
        if (a == 0xF4 && p[1] > 0x8F) return 0;
        return 4;
    }
    return 0;
}

/* A JSON string at c->p (which is '"'): validates it and gives its raw contents [*s, *s+*n).
 * *esc: 0 no escape, 1 only the escapes a compact serializer writes (\" \\ \b \f \n \r \t),
 * 2 other escapes (\/ or \u). Returns 0 when it is not a valid string. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether any of the 8 bytes in x is a quote, a backslash, a control or a non-ASCII byte. */
static inline uint64_t special8(uint64_t x) {
    uint64_t quote = x ^ (ONES * '"'), bslash = x ^ (ONES * '\\');
    return ((x - ONES * 0x20) & ~x) | ((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash) | x;
}

static int scan_string(Cur *c, const uchar **s, size_t *n, int *esc) {
    const uchar *p = c->p + 1, *end = c->end;
    int e = 0;
    *s = p;
    while (p < end) {
        /* skip plain ASCII runs: straight to the next quote, backslash, control or
         * non-ASCII byte */
#if defined(__SSE2__)
        {
            const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
            while (end - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)p);
                /* signed: bytes >= 0x80 are negative, so "< 0x20" also finds them */
                __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)), _mm_cmplt_epi8(v, space));
                int bits = _mm_movemask_epi8(m);
                if (bits) {
                    p += __builtin_ctz((unsigned)bits);
                    goto special;
                }
                p += 16;
            }
        }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
        while (end - p >= 8) {
            uint64_t x, m;
            memcpy(&x, p, 8);
            m = special8(x) & HIGHS;
            if (m) { /* the lowest flagged byte is a real one (borrows only run upwards) */
                p += __builtin_ctzll(m) >> 3;
                goto special;
            }
            p += 8;
        }
#endif
        if (p >= end) break;
    special:;
        uchar ch = *p;
        if (ch == '"') {
            *n = (size_t)(p - *s);
            *esc = e;
            c->p = p + 1;
            return 1;
        }
        if (ch < 0x20) return 0;
        if (ch == '\\') {
            if (p + 1 >= end) return 0;
            uchar x = p[1];
            if (x == '"' || x == '\\' || x == 'b' || x == 'f' || x == 'n' || x == 'r' || x == 't') {
                if (e < 1) e = 1;
                p += 2;
            } else if (x == '/') {
                e = 2;
                p += 2;
            } else if (x == 'u') {
                unsigned u;
                if (!hex4(p + 2, end, &u)) return 0;
                p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF) return 0;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned lo;
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo)) return 0;
                    if (lo < 0xDC00 || lo > 0xDFFF) return 0;
                    p += 6;
                }
                e = 2;
            } else {
                return 0;
            }
        } else if (ch < 0x80) {
            p++;
        } else {
            int k = utf8_seq(p, end);
            if (!k) return 0;
            p += k;
        }
    }
    return 0;
}

/* The decoded UTF-8 of a validated string's raw contents into dst (which has room for n
 * bytes: decoding never lengthens); the decoded length. */
static size_t decode_string(const uchar *src, size_t n, uchar *dst) {
    const uchar *p = src, *end = src + n;
    uchar *o = dst;
    while (p < end) {
        const uchar *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
        memcpy(o, p, run);
        o += run;
        p += run;
        if (!bs) break;
        uchar x = p[1];
        switch (x) {
            case '"': *o++ = '"'; p += 2; break;
            case '\\': *o++ = '\\'; p += 2; break;
            case '/': *o++ = '/'; p += 2; break;
            case 'b': *o++ = '\b'; p += 2; break;
            case 'f': *o++ = '\f'; p += 2; break;
            case 'n': *o++ = '\n'; p += 2; break;
            case 'r': *o++ = '\r'; p += 2; break;
            case 't': *o++ = '\t'; p += 2; break;
            default: { /* 'u', validated by scan_string */
                unsigned u = 0, lo = 0;
                hex4(p + 2, end, &u);
                p += 6;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    hex4(p + 2, end, &lo);
                    p += 6;
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (u < 0x80) {
                    *o++ = (uchar)u;
                } else if (u < 0x800) {
                    *o++ = (uchar)(0xC0 | (u >> 6));
                    *o++ = (uchar)(0x80 | (u & 0x3F));
                } else if (u < 0x10000) {
                    *o++ = (uchar)(0xE0 | (u >> 12));
                    *o++ = (uchar)(0x80 | ((u >> 6) & 0x3F));
                    *o++ = (uchar)(0x80 | (u & 0x3F));
                } else {
                    *o++ = (uchar)(0xF0 | (u >> 18));
                    *o++ = (uchar)(0x80 | ((u >> 12) & 0x3F));
                    *o++ = (uchar)(0x80 | ((u >> 6) & 0x3F));
                    *o++ = (uchar)(0x80 | (u & 0x3F));
                }
            }
        }
    }
    return (size_t)(o - dst);
}

/* A JSON number at c->p: validates the grammar, gives its text and whether it is an integer
 * (no fraction, no exponent) and how many digits its integer part has. */
static int scan_number(Cur *c, const uchar **s, size_t *n, int *is_int, int *int_digits) {
    const uchar *p = c->p, *end = c->end;
    *s = p;
    if (p < end && *p == '-') p++;
    if (p >= end) return 0;
    const uchar *d0 = p;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return 0;
    }
    *int_digits = (int)((p - d0) > 1000 ? 1000 : (p - d0));
    *is_int = 1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
        *is_int = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && *p >= '0' && *p <= '9') p++;
        *is_int = 0;
    }
    *n = (size_t)(p - *s);
    c->p = p;
    return 1;
}

/* An integer literal (scan_number said is_int) as int64; 0 when it does not fit. */
static int int_value(const uchar *s, size_t n, int64_t *out) {
    int neg = 0;
    if (n && *s == '-') {
        neg = 1;
        s++;
        n--;
    }
    if (n == 0 || n > 19) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (uint64_t)(s[i] - '0'); /* <= 19 digits: no wrap */
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return 0;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)v;
    }
    return 1;
}

/* A number literal as the float64 Python gives it (float(int) for integers): 0 when the
 * form is one left to the Python path. */
static int float_value(const uchar *s, size_t n, int is_int, int int_digits, double *out) {
    if (is_int) {
        int64_t v;
        if (int_digits > 18 || !int_value(s, n, &v)) return 0;
        *out = (double)v;
        return 1;
    }
    char tmp[72];
    if (n >= sizeof(tmp)) return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *stop = NULL;
    errno = 0;
    double d = strtod(tmp, &stop);
    if (stop != tmp + n || errno == ERANGE || !isfinite(d)) return 0;
    *out = d;
    return 1;
}

static int match_lit(Cur *c, const char *lit, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* Validates one JSON value at c->p (any kind). *canon is cleared when its text is not exactly
 * what a compact serializer (orjson) would write for the parsed value: whitespace, floats,
 * non-short escapes, "-0", long integers, duplicate keys (or too many keys to check). */
static int skip_value(Cur *c, int depth, int *canon) {
    if (c->p >= c->end) return 0;
    uchar ch = *c->p;
    if (ch == '"') {
        const uchar *s;
        size_t n;
        int esc;
        if (!scan_string(c, &s, &n, &esc)) return 0;
        if (esc > 1) *canon = 0;
        return 1;
    }
    if (ch == '{' || ch == '[') {
        int obj = ch == '{';
        uchar close = obj ? '}' : ']';
        if (depth >= MAX_DEPTH) return 0;
        const uchar *ks[MAX_KEYS];
        size_t kn[MAX_KEYS];
        int nkeys = 0;
        c->p++;
        const uchar *before = c->p;
        ws(c);
        if (c->p != before) *canon = 0;
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 1;
        }
        for (;;) {
            if (obj) {
                const uchar *s;
                size_t n;
                int esc;
                if (c->p >= c->end || *c->p != '"' || !scan_string(c, &s, &n, &esc)) return 0;
                if (esc > 1) *canon = 0;
                if (*canon) {
                    if (nkeys >= MAX_KEYS) {
                        *canon = 0;
                    } else {
                        for (int k = 0; k < nkeys; k++)
                            if (kn[k] == n && memcmp(ks[k], s, n) == 0) *canon = 0;
                        ks[nkeys] = s;
                        kn[nkeys] = n;
                        nkeys++;
                    }
                }
                before = c->p;
                ws(c);
                if (c->p >= c->end || *c->p != ':') return 0;
                c->p++;
                ws(c);
                if (c->p != before + 1) *canon = 0;
            }
            if (!skip_value(c, depth + 1, canon)) return 0;
            before = c->p;
            ws(c);
            if (c->p != before) *canon = 0;
            if (c->p >= c->end) return 0;
            if (*c->p == ',') {
                c->p++;
                before = c->p;
                ws(c);
                if (c->p != before) *canon = 0;
                continue;
            }
            if (*c->p == close) {
                c->p++;
                return 1;
            }
            return 0;
        }
    }
    if (ch == 't') return match_lit(c, "true", 4);
    if (ch == 'f') return match_lit(c, "false", 5);
    if (ch == 'n') return match_lit(c, "null", 4);
    const uchar *s;
    size_t n;
    int is_int, digits;
    if (!scan_number(c, &s, &n, &is_int, &digits)) return 0;
    if (!is_int || digits > 18 || (n == 2 && s[0] == '-' && s[1] == '0')) *canon = 0;
    return 1;
}

static int contains_null(const uchar *s, size_t n) {
    for (size_t i = 0; i + 4 <= n; i++)
        if (s[i] == 'n' && s[i + 1] == 'u' && s[i + 2] == 'l' && s[i + 3] == 'l') return 1;
    return 0;
}

/* ------------------------------------------------------------------------------ time */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static inline int digits(const uchar *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static int parse_date(const uchar *s, int64_t *days) {
    int y, m, d;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' || !digits(s + 8, 2, &d)) return 0;
    if (y < 1 || m < 1 || m > 12 || d < 1) return 0;
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > dim[m - 1] + (m == 2 && leap)) return 0;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return 1;
}

/* HH:MM:SS[.f{1,6}] at s (n bytes available): microseconds since midnight, bytes used. */
static int parse_clock(const uchar *s, size_t n, int64_t *us, size_t *used) {
    int h, mi, se;
    if (n < 8 || !digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &mi) || s[5] != ':' || !digits(s + 6, 2, &se)) return 0;
    if (h > 23 || mi > 59 || se > 59) return 0;
    size_t i = 8;
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        i++;
        int k = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (++k > 6) return 0;
            frac = frac * 10 + (s[i] - '0');
            i++;
        }
        if (k == 0) return 0;
        for (; k < 6; k++) frac *= 10;
    }
    *us = ((int64_t)h * 3600 + mi * 60 + se) * 1000000 + frac;
    *used = i;
    return 1;
}

static int parse_time_value(int kind, const uchar *s, size_t n, int64_t *out) {
    const int64_t DAY = 86400LL * 1000000;
    if (kind == K_DATE) {
        int64_t days;
        if (n != 10 || !parse_date(s, &days)) return 0;
        *out = days * DAY;
        return 1;
    }
    if (kind == K_TIME) {
        int64_t us;
        size_t used;
        if (!parse_clock(s, n, &us, &used) || used != n) return 0;
        *out = us;
        return 1;
    }
    int64_t days, us;
    size_t used;
    if (n < 19 || !parse_date(s, &days) || (s[10] != 'T' && s[10] != ' ')) return 0;
    if (!parse_clock(s + 11, n - 11, &us, &used)) return 0;
    size_t i = 11 + used;
    int64_t offset = 0;
    if (i < n) {
        if (s[i] == 'Z' && i + 1 == n) {
            offset = 0;
        } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n && s[i + 3] == ':') {
            int oh, om;
            if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59) return 0;
            offset = ((int64_t)oh * 3600 + om * 60) * 1000000;
            if (s[i] == '-') offset = -offset;
        } else {
            return 0;
        }
    }
    /* with time zone: the instant (a value without offset is read as UTC); without: the
     * wall-clock value, whatever offset it carries */
    *out = days * DAY + us - (kind == K_TS_TZ ? offset : 0);
    return 1;
}

/* ------------------------------------------------------------------------------ records */
/* whether the n bytes at s are the string literal lit (a constant size: memcmp inlines) */
#define key_is(s, n, lit) ((n) == sizeof(lit) - 1 && memcmp((s), (lit), sizeof(lit) - 1) == 0)

static Field *find_field(Stream *s, const uchar *key, size_t n) {
    Py_ssize_t nf = s->nfields, h = s->hint;
    for (Py_ssize_t j = 0; j < nf; j++) {
        Py_ssize_t i = h + j < nf ? h + j : h + j - nf;
        Field *f = &s->fields[i];
        if (f->name_len == n && memcmp(f->name, key, n) == 0) {
            s->hint = i + 1 < nf ? i + 1 : 0;
            return f;
        }
    }
    return NULL;
}

/* The data object at c->p into row s->rows of s (uncommitted). 0: not for the fast path;
 * -1: out of memory. */
static int parse_data(Stream *s, Cur *c) {
    size_t r = s->rows;
    for (Py_ssize_t i = 0; i < s->nfields; i++) {
        s->fields[i].seen = 0;
        s->fields[i].pend = s->fields[i].data_len;
    }
    s->hint = 0;
    if (c->p >= c->end || *c->p != '{') return 0;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 1;
    }
    for (;;) {
        const uchar *k;
        size_t kn;
        int esc;
        if (c->p >= c->end || *c->p != '"' || !scan_string(c, &k, &kn, &esc) || esc) return 0;
        Field *f = find_field(s, k, kn);
        if (!f || f->seen) return 0;
        f->seen = 1;
        ws(c);
        if (c->p >= c->end || *c->p != ':') return 0;
        c->p++;
        ws(c);
        if (c->p >= c->end) return 0;
        if (*c->p == 'n') {
            if (!match_lit(c, "null", 4)) return 0;
            if (put_null(f, r)) return -1;
        } else {
            f->nulls[r] = 0;
            switch (f->kind) {
                case K_INT: case K_FLOAT: {
                    const uchar *ns;
                    size_t nn;
                    int is_int, dg;
                    if (!scan_number(c, &ns, &nn, &is_int, &dg)) return 0;
                    if (f->kind == K_INT) {
                        int64_t v;
                        if (!is_int || !int_value(ns, nn, &v)) return 0;
                        f->vals[r] = v;
                    } else {
                        double d;
                        if (!float_value(ns, nn, is_int, dg, &d)) return 0;
                        memcpy(&f->vals[r], &d, sizeof d);
                    }
                    break;
                }
                case K_BOOL:
                    if (match_lit(c, "true", 4)) f->vals[r] = 1;
                    else if (match_lit(c, "false", 5)) f->vals[r] = 0;
                    else return 0;
                    break;
                case K_TEXT: {
                    const uchar *ss;
                    size_t sn;
                    int e;
                    if (*c->p != '"' || !scan_string(c, &ss, &sn, &e)) return 0;
                    if (grow_data(f, f->data_len + sn)) return -1;
                    if (e) {
                        f->pend = f->data_len + decode_string(ss, sn, f->data + f->data_len);
                    } else {
                        memcpy(f->data + f->data_len, ss, sn);
                        f->pend = f->data_len + sn;
                    }
                    break;
                }
                case K_JSON: {
                    const uchar *start = c->p;
                    int canon = 1;
                    if (!skip_value(c, 0, &canon) || !canon) return 0;
                    size_t vn = (size_t)(c->p - start);
                    if (contains_null(start, vn)) return 0;
                    if (grow_data(f, f->data_len + vn)) return -1;
                    memcpy(f->data + f->data_len, start, vn);
                    f->pend = f->data_len + vn;
                    break;
                }
                case K_TS_TZ: case K_TS_NTZ: case K_DATE: case K_TIME: {
                    const uchar *ss;
                    size_t sn;
                    int e;
                    int64_t v;
                    if (*c->p != '"' || !scan_string(c, &ss, &sn, &e) || e) return 0;
                    if (!parse_time_value(f->kind, ss, sn, &v)) return 0;
                    f->vals[r] = v;
                    break;
                }
                default:
                    return 0; /* null_only, or a kind this scanner does not know */
            }
        }
        switch (after_member(c)) {
            case 1: continue;
            case 2: return 1;
            default: return 0;
        }
    }
}

static Stream *find_stream(Scanner *sc, const uchar *name, size_t n, const uchar *ns, size_t nsn) {
    for (Py_ssize_t i = 0; i < sc->nstreams; i++) {
        Stream *s = &sc->streams[i];
        if (s->name_len != n || memcmp(s->name, name, n) != 0) continue;
        if (ns == NULL || nsn == 0) {
            if (s->ns == NULL) return s;
        } else if (s->ns != NULL && s->ns_len == nsn && memcmp(s->ns, ns, nsn) == 0) {
            return s;
        }
    }
    return NULL;
}

static int any_enabled_named(Scanner *sc, const uchar *name, size_t n) {
    for (Py_ssize_t i = 0; i < sc->nstreams; i++) {
        Stream *s = &sc->streams[i];
        if (s->enabled && s->name_len == n && memcmp(s->name, name, n) == 0) return 1;
    }
    return 0;
}

typedef struct {
    const uchar *name, *ns;
    size_t name_n, ns_n;
    int has_name, has_ns, has_data, has_em;
    double em;
    const uchar *data_at; /* where the data object starts */
    Stream *parsed_into;  /* the stream whose row holds the parsed data, if any */
} Rec;

/* The "record" object at c->p. 0: not for the fast path; -1: out of memory. */
static int parse_record(Scanner *sc, Cur *c, Rec *rec) {
    if (c->p >= c->end || *c->p != '{') return 0;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}') return 0; /* no stream, no data */
    for (;;) {
        const uchar *k;
        size_t kn;
        int esc;
        if (c->p >= c->end || *c->p != '"' || !scan_string(c, &k, &kn, &esc) || esc) return 0;
        ws(c);
        if (c->p >= c->end || *c->p != ':') return 0;
        c->p++;
        ws(c);
        if (c->p >= c->end) return 0;
        if (key_is(k, kn, "stream")) {
            if (rec->has_name || *c->p != '"' || !scan_string(c, &rec->name, &rec->name_n, &esc) || esc) return 0;
            rec->has_name = 1;
            if (!any_enabled_named(sc, rec->name, rec->name_n)) return 0; /* early: the Python path's */
        } else if (key_is(k, kn, "namespace")) {
            if (rec->has_ns) return 0;
            rec->has_ns = 1;
            if (*c->p == 'n') {
                if (!match_lit(c, "null", 4)) return 0;
                rec->ns = NULL;
                rec->ns_n = 0;
            } else if (*c->p != '"' || !scan_string(c, &rec->ns, &rec->ns_n, &esc) || esc) {
                return 0;
            }
        } else if (key_is(k, kn, "data")) {
            if (rec->has_data || *c->p != '{') return 0;
            rec->has_data = 1;
            rec->data_at = c->p;
            Stream *s = rec->has_name ? find_stream(sc, rec->name, rec->name_n, rec->ns, rec->ns_n) : NULL;
            if (s && s->enabled) {
                if (grow_rows(s, s->rows + 1)) return -1;
                int ok = parse_data(s, c);
                if (ok <= 0) return ok;
                rec->parsed_into = s;
            } else {
                int canon = 1;
                if (!skip_value(c, 0, &canon)) return 0;
            }
        } else if (key_is(k, kn, "emitted_at")) {
            if (rec->has_em) return 0;
            rec->has_em = 1;
            if (*c->p == 'n') {
                if (!match_lit(c, "null", 4)) return 0;
                rec->em = 0.0;
            } else {
                const uchar *ns;
                size_t nn;
                int is_int, dg;
                if (!scan_number(c, &ns, &nn, &is_int, &dg) || !float_value(ns, nn, is_int, dg, &rec->em)) return 0;
            }
        } else {
            int canon = 1;
            if (!skip_value(c, 0, &canon)) return 0;
        }
        switch (after_member(c)) {
            case 1: continue;
            case 2: return 1;
            default: return 0;
        }
    }
}

/* One line [p, end): 1 when committed as a row, 0 when it is for the Python path, -1 when
 * out of memory. */
static int parse_line(Scanner *sc, const uchar *p, const uchar *end, size_t line_bytes) {
    Cur c = {p, end};
    Rec rec;
    memset(&rec, 0, sizeof rec);
    int has_type = 0, has_record = 0;
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return 0;
    c.p++;
    ws(&c);
    for (;;) {
        const uchar *k;
        size_t kn;
        int esc;
        if (c.p >= c.end || *c.p != '"' || !scan_string(&c, &k, &kn, &esc) || esc) return 0;
        ws(&c);
        if (c.p >= c.end || *c.p != ':') return 0;
        c.p++;
        ws(&c);
        if (c.p >= c.end) return 0;
        if (key_is(k, kn, "type")) {
            const uchar *v;
            size_t vn;
            if (has_type || *c.p != '"' || !scan_string(&c, &v, &vn, &esc) || esc || !key_is(v, vn, "RECORD")) return 0;
            has_type = 1;
        } else if (key_is(k, kn, "record")) {
            if (has_record) return 0;
            has_record = 1;
            int ok = parse_record(sc, &c, &rec);
            if (ok <= 0) return ok;
        } else {
            int canon = 1;
            if (!skip_value(&c, 0, &canon)) return 0;
        }
        ws(&c);
        if (c.p >= c.end) return 0;
        if (*c.p == ',') {
            c.p++;
            ws(&c);
            continue;
        }
        if (*c.p == '}') {
            c.p++;
            break;
        }
        return 0;
    }
    ws(&c);
    if (c.p != c.end || !has_type || !has_record || !rec.has_name || !rec.has_data) return 0;
    Stream *s = find_stream(sc, rec.name, rec.name_n, rec.ns, rec.ns_n);
    if (!s || !s->enabled) return 0;
    if (s != rec.parsed_into) { /* data came before the stream's name (or its namespace) */
        if (grow_rows(s, s->rows + 1)) return -1;
        Cur d = {rec.data_at, end};
        int ok = parse_data(s, &d);
        if (ok <= 0) return ok;
    }
    size_t r = s->rows;
    for (Py_ssize_t i = 0; i < s->nfields; i++) {
        Field *f = &s->fields[i];
        if (!f->seen) {
            if (put_null(f, r)) return -1;
            if (f->kind != K_JSON) f->pend = f->data_len;
        }
        if (f->ends) {
            f->data_len = f->pend;
            f->ends[r] = (int64_t)f->data_len;
        }
    }
    s->emitted[r] = rec.has_em ? rec.em : 0.0;
    s->rows = r + 1;
    s->nbytes += line_bytes;
    return 1;
}

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
