/* The record scanner's state: streams, their fields and columns (C memory grown as rows
 * come), and what its parts share. See airbyte_records.c for what it does. */
#ifndef LF_AIRBYTE_RECORDS_H
#define LF_AIRBYTE_RECORDS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "json_scan.h"

enum {
    K_NULL_ONLY = 0, K_INT, K_FLOAT, K_BOOL, K_TEXT, K_JSON, K_TS_TZ, K_TS_NTZ, K_DATE, K_TIME, K_COUNT
};

enum { R_END = 0, R_LIMIT = 1, R_LINE = 2 };

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

/* memory (record_parse.c) */
LF_REC_INTERNAL int grow_rows(Stream *s, size_t need);
LF_REC_INTERNAL int grow_data(Field *f, size_t need);
LF_REC_INTERNAL int put_null(Field *f, size_t r);
LF_REC_INTERNAL void free_fields(Stream *s);

/* One JSON line [p, end) of `line_bytes` bytes: 1 taken, 0 left to Python, -1 out of memory. */
LF_REC_INTERNAL int parse_line(Scanner *sc, const uchar *p, const uchar *end, size_t line_bytes);

/* A date, time or timestamp text of a field kind as int64 microseconds: 1, or 0 (not taken). */
LF_REC_INTERNAL int parse_time_value(int kind, const uchar *s, size_t n, int64_t *out);

#endif /* LF_AIRBYTE_RECORDS_H */
