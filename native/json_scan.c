/* JSON tokens for the record scanner (see json_scan.h). */
#include "json_scan.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 64
#define MAX_KEYS 64 /* keys per json object checked for duplicates; more: not canonical */

/* ------------------------------------------------------------------------------ JSON */

/* After an object member: 1 past a ',' (and the blanks after it), 2 past the closing '}',
 * 0 at anything else. */
LF_REC_INTERNAL int after_member(Cur *c) {
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
    ptrdiff_t left = end - p;
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

LF_REC_INTERNAL int scan_string(Cur *c, const uchar **s, size_t *n, int *esc) {
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
LF_REC_INTERNAL size_t decode_string(const uchar *src, size_t n, uchar *dst) {
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
LF_REC_INTERNAL int scan_number(Cur *c, const uchar **s, size_t *n, int *is_int, int *int_digits) {
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
LF_REC_INTERNAL int int_value(const uchar *s, size_t n, int64_t *out) {
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
LF_REC_INTERNAL int float_value(const uchar *s, size_t n, int is_int, int int_digits, double *out) {
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

LF_REC_INTERNAL int match_lit(Cur *c, const char *lit, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* Validates one JSON value at c->p (any kind). *canon is cleared when its text is not exactly
 * what a compact serializer (orjson) would write for the parsed value: whitespace, floats,
 * non-short escapes, "-0", long integers, duplicate keys (or too many keys to check). */
LF_REC_INTERNAL int skip_value(Cur *c, int depth, int *canon) {
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

LF_REC_INTERNAL int contains_null(const uchar *s, size_t n) {
    for (size_t i = 0; i + 4 <= n; i++)
        if (s[i] == 'n' && s[i + 1] == 'u' && s[i + 2] == 'l' && s[i + 3] == 'l') return 1;
    return 0;
}
