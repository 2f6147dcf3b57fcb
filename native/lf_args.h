/*
 * What the kernels of lakeformat._native share: releasing the GIL, errors
 * that name the argument at fault, and buffer arguments acquired and checked
 * (item type, C-contiguity, lengths, overlap) before a GIL-free loop runs.
 */
#ifndef LF_ARGS_H
#define LF_ARGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

/* Shared between this extension's files only, not exported from it. */
#if defined(__GNUC__)
#define LF_INTERNAL __attribute__((visibility("hidden")))
#else
#define LF_INTERNAL
#endif

/* Bound on a shape's rank, so that row widths (ncols + 1) never overflow. */
#define LF_MAX_NCOLS ((Py_ssize_t)1 << 20)

/* ------------------------------------------------------------------------ */
/* Releasing the GIL                                                        */
/* ------------------------------------------------------------------------ */

/*
 * Dropping the GIL is cheap, but taking it back can wait for another thread's
 * whole switch interval (5 ms by default). Like NumPy, we therefore release it
 * only when a loop touches enough memory to be worth that risk; tiny calls
 * from a busy loader thread then never stall. `work` is in bytes touched.
 */
#define LF_NOGIL_MIN_WORK ((Py_ssize_t)1 << 16)

#define LF_BEGIN_NOGIL(work)                                                 \
    {                                                                        \
        PyThreadState *lf_saved_ =                                           \
            ((work) >= LF_NOGIL_MIN_WORK) ? PyEval_SaveThread() : NULL;

#define LF_END_NOGIL                                                         \
    if (lf_saved_ != NULL)                                                   \
        PyEval_RestoreThread(lf_saved_);                                     \
    }

/* ------------------------------------------------------------------------ */
/* Buffer arguments                                                         */
/* ------------------------------------------------------------------------ */

/* Item types an argument may accept (a bit mask); LF_BYTES accepts any. */
enum {
    LF_BYTES = 0,
    LF_U32 = 1,
    LF_U64 = 2,
    LF_I64 = 4,
    LF_OTHER = 8
};

typedef struct {
    Py_buffer view;
    int held;      /* view must be released */
    int kind;      /* LF_U32 / LF_U64 / LF_I64 that matched, LF_BYTES */
    Py_ssize_t n;  /* number of items (bytes for LF_BYTES) */
} arg_buffer;

/* ------------------------------------------------------------------------ */
/* Kernel status: how a GIL-free loop reports an error to its wrapper       */
/* ------------------------------------------------------------------------ */

enum {
    ST_OK = 0,
    ST_OUT_OF_RANGE,   /* a query or index outside the encoder */
    ST_NEGATIVE_SIZE,  /* positions_encode: size < 0 */
    ST_SIZE_TOO_BIG,   /* positions_encode: size > 2**32-1 */
    ST_START_TOO_BIG,  /* positions_encode: start byte > 2**32-1 */
    ST_NOT_SORTED,     /* encoder last_index column not increasing */
    ST_RESULT_OVERFLOW /* positions_expand: byte offset > 2**63-1 */
};

typedef struct {
    int code;
    Py_ssize_t at;            /* position of the offending item */
    long long value;          /* its value */
    unsigned long long extra; /* a second value for the message */
} kernel_status;


LF_INTERNAL void raise_from_pending(PyObject *type, const char *fmt, ...);
LF_INTERNAL int acquire(PyObject *obj, const char *name, Py_ssize_t index,
                        int accept, int writable, arg_buffer *a);
LF_INTERNAL void release(arg_buffer *a);
LF_INTERNAL int check_no_overlap(const arg_buffer *out, const char *out_name,
                                 const arg_buffer *in, const char *in_name);
LF_INTERNAL int check_same_length(const arg_buffer *a, const char *a_name,
                                  const arg_buffer *b, const char *b_name);
LF_INTERNAL Py_ssize_t acquire_all(PyObject *seq_obj, const char *name,
                                   int writable, arg_buffer **parts_out);
LF_INTERNAL void release_all(arg_buffer *parts, Py_ssize_t count);
LF_INTERNAL int check_u32_arg(long long value, const char *name);

/* A method table entry for native_<name> with its <name>_doc. */
#define LF_METHOD(name)                                                      \
    {#name, (PyCFunction)(void (*)(void))native_##name,                      \
     METH_VARARGS | METH_KEYWORDS, name##_doc}

/* The kernels' method tables, added to the module when it is executed. */
extern LF_INTERNAL PyMethodDef lf_index_methods[];
extern LF_INTERNAL PyMethodDef lf_copy_methods[];

#endif /* LF_ARGS_H */
