/* RECORD lines into a stream's columns (see airbyte_records.c), and the columns' memory. */
#include "airbyte_records.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------ memory */
LF_REC_INTERNAL int grow_rows(Stream *s, size_t need) {
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

LF_REC_INTERNAL int grow_data(Field *f, size_t need) {
    /* data is never NULL after this, even for 0 bytes: memcpy to NULL is undefined */
    if (need <= f->data_cap && f->data) return 0;
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
LF_REC_INTERNAL int put_null(Field *f, size_t r) {
    f->nulls[r] = 1;
    f->vals[r] = 0;
    if (f->kind == K_JSON) {
        if (grow_data(f, f->data_len + 4)) return -1;
        memcpy(f->data + f->data_len, "null", 4);
        f->pend = f->data_len + 4;
    }
    return 0;
}

LF_REC_INTERNAL void free_fields(Stream *s) {
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
LF_REC_INTERNAL int parse_line(Scanner *sc, const uchar *p, const uchar *end, size_t line_bytes) {
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
