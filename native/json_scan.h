/* JSON tokens for the record scanner: blanks, strings (validated UTF-8, escapes classified),
 * numbers, literals and whole values (with whether their text is canonical). A `Cur` walks
 * one line; every function stops at its end and returns 0 at anything it does not accept. */
#ifndef LF_JSON_SCAN_H
#define LF_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LF_REC_INTERNAL __attribute__((visibility("hidden")))
#else
#define LF_REC_INTERNAL
#endif

typedef unsigned char uchar;

typedef struct {
    const uchar *p, *end;
} Cur;

static inline void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) c->p++;
}

LF_REC_INTERNAL int after_member(Cur *c);
LF_REC_INTERNAL int scan_string(Cur *c, const uchar **s, size_t *n, int *esc);
LF_REC_INTERNAL size_t decode_string(const uchar *src, size_t n, uchar *dst);
LF_REC_INTERNAL int scan_number(Cur *c, const uchar **s, size_t *n, int *is_int, int *int_digits);
LF_REC_INTERNAL int int_value(const uchar *s, size_t n, int64_t *out);
LF_REC_INTERNAL int float_value(const uchar *s, size_t n, int is_int, int int_digits, double *out);
LF_REC_INTERNAL int match_lit(Cur *c, const char *lit, size_t n);
LF_REC_INTERNAL int skip_value(Cur *c, int depth, int *canon);
LF_REC_INTERNAL int contains_null(const uchar *s, size_t n);

#endif /* LF_JSON_SCAN_H */
