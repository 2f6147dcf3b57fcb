/*
 * LZ4 block encoding for structured chunks (the block format of
 * https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md, written from
 * that description; any lz4 block decoder reads the output, deeplake 3.x's
 * python-lz4 included).
 *
 * Why our own encoder: lz4's fast mode remembers one position per hash of 4-5
 * bytes. In a column of small integers (labels, flags, codes stored as int32
 * or int64) those bytes are one value and its zero bytes, so it only ever
 * finds the last occurrence of the current value and codes one or two values
 * per match. This greedy encoder keeps two more tables, keyed on 12 and 32
 * bytes (runs of int32 and of int64 values), and takes the longest of the
 * three candidates, with lz4's own backward extension and skipping, so such a
 * column shrinks most of the way lz4's slow high-compression mode takes it, at
 * close to fast-mode speed (1M int64 labels in [0, 10): 2.71 MB by lz4's fast
 * mode, 1.27 MB by this, 0.96 MB by lz4hc at level 12, 500 times slower).
 * The Python side (lakeformat/codecs/bytes_codecs.py) picks it per chunk
 * where a probe shows it pays.
 */
#include "lf_args.h"

#include <stdlib.h>
#include <string.h>

#define MINMATCH 4
#define LASTLITERALS 5 /* the block's last 5 bytes are literals */
#define MFLIMIT 12     /* the last match starts 12 bytes before the end at the latest */
#define MAX_OFFSET 65535
#define HASH_LOG_MAX 16 /* tables of 64K entries: one per position of a 64 KB window */
#define HASH_LOG_MIN 10
#define LONG_KEY 12   /* bytes the long finder hashes: 3 int32 values */
#define LONGER_KEY 32 /* bytes the longer finder hashes: 4 int64 values */
#define SKIP_STRENGTH 6
#define LF_LZ4_MAX_INPUT 0x7E000000u /* lz4's own bound on a block's input */

static inline uint64_t
read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t
read32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t
hash_short(const uint8_t *p, unsigned shift)
{
    /* 5 bytes (the low 40 bits on a little-endian machine; any 5 elsewhere) */
    return (uint32_t)(((read64(p) << 24) * 889523592379ULL) >> shift);
}

static inline uint32_t
hash_long(const uint8_t *p, unsigned shift)
{
    uint64_t h = read64(p) * 0x9E3779B185EBCA87ULL;
    h ^= (uint64_t)read32(p + 8) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 31;
    return (uint32_t)((h * 0x165667B19E3779F9ULL) >> shift);
}

static inline uint32_t
hash_longer(const uint8_t *p, unsigned shift)
{
    uint64_t h = read64(p) * 0x9E3779B185EBCA87ULL;
    h ^= read64(p + 8) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    h ^= read64(p + 16) * 0x165667B19E3779F9ULL;
    h ^= h >> 32;
    h ^= read64(p + 24) * 0x9E3779B185EBCA87ULL;
    h ^= h >> 29;
    return (uint32_t)((h * 0x27D4EB2F165667C5ULL) >> shift);
}

/* Bits of the hash tables for an input of n bytes: small inputs (the Python side's probes
 * of 16 KB) get small tables, which are cheap to clear. */
static unsigned
hash_log(size_t n)
{
    unsigned bits = HASH_LOG_MIN;
    while (bits < HASH_LOG_MAX && ((size_t)1 << (bits + 2)) < n)
        bits++;
    return bits;
}

/* How many bytes from `a` equal those from `b` (b < a), `a` stopping at `limit`. */
static inline size_t
count_equal(const uint8_t *a, const uint8_t *b, const uint8_t *limit)
{
    const uint8_t *start = a;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (a + 8 <= limit) {
        uint64_t d = read64(a) ^ read64(b);
        if (d)
            return (size_t)(a - start) + (size_t)(__builtin_ctzll(d) >> 3);
        a += 8;
        b += 8;
    }
#endif
    while (a < limit && *a == *b) {
        a++;
        b++;
    }
    return (size_t)(a - start);
}

/* The bytes of a length field beyond its 4 bits in the token (len >= 15). */
static inline uint8_t *
write_length(uint8_t *op, size_t len)
{
    len -= 15;
    while (len >= 255) {
        *op++ = 255;
        len -= 255;
    }
    *op++ = (uint8_t)len;
    return op;
}

static uint8_t *
write_sequence(uint8_t *op, const uint8_t *anchor, size_t lit, size_t offset, size_t match_len)
{
    uint8_t *token = op++;
    *token = (uint8_t)((lit >= 15 ? 15 : lit) << 4);
    if (lit >= 15)
        op = write_length(op, lit);
    memcpy(op, anchor, lit);
    op += lit;
    if (match_len == 0) /* the last literals: no offset, no match */
        return op;
    *op++ = (uint8_t)(offset & 0xFF);
    *op++ = (uint8_t)(offset >> 8);
    size_t ml = match_len - MINMATCH;
    *token |= (uint8_t)(ml >= 15 ? 15 : ml);
    if (ml >= 15)
        op = write_length(op, ml);
    return op;
}

/* Bytes an lz4 block of `n` input bytes may take at worst. */
static size_t
encode_bound(size_t n)
{
    return n + n / 255 + 16;
}

/* Encode src[0:n] (n < LF_LZ4_MAX_INPUT) into dst (encode_bound(n) bytes); `tables`
 * holds 2 << hash_log(n) zeroed entries. Returns the block's size. */
static size_t
lz4_encode(const uint8_t *src, size_t n, uint8_t *dst, uint32_t *tables)
{
    const uint8_t *ip = src, *anchor = src, *iend = src + n;
    uint8_t *op = dst;
    unsigned bits = hash_log(n), shift = 64 - bits;
    uint32_t *short_tab = tables, *long_tab = tables + ((size_t)1 << bits), *longer_tab = tables + ((size_t)2 << bits);

    if (n >= MFLIMIT + LONG_KEY) {
        const uint8_t *mflimit = iend - MFLIMIT, *matchlimit = iend - LASTLITERALS;
        unsigned searches = 1u << SKIP_STRENGTH;
        const int longer = n >= MFLIMIT + LONGER_KEY; /* inputs too short skip that finder */
        const uint8_t *keylimit = longer ? iend - LONGER_KEY : src;
        while (ip < mflimit) {
            uint32_t pos = (uint32_t)(ip - src);
            uint32_t hs = hash_short(ip, shift), hl = hash_long(ip, shift);
            uint32_t cs = short_tab[hs], cl = long_tab[hl]; /* position + 1; 0: none */
            short_tab[hs] = pos + 1;
            long_tab[hl] = pos + 1;
            const uint8_t *best = NULL;
            size_t best_len = 0;
            if (longer && ip <= keylimit) {
                uint32_t hx = hash_longer(ip, shift), cx = longer_tab[hx];
                longer_tab[hx] = pos + 1;
                if (cx && pos - (cx - 1) <= MAX_OFFSET) {
                    const uint8_t *m = src + cx - 1;
                    if (read32(m) == read32(ip)) {
                        best = m;
                        best_len = MINMATCH + count_equal(ip + MINMATCH, m + MINMATCH, matchlimit);
                    }
                }
            }
            if (cl && pos - (cl - 1) <= MAX_OFFSET) {
                const uint8_t *m = src + cl - 1;
                if (m != best && read32(m) == read32(ip)) {
                    size_t len = MINMATCH + count_equal(ip + MINMATCH, m + MINMATCH, matchlimit);
                    if (len > best_len) {
                        best = m;
                        best_len = len;
                    }
                }
            }
            if (cs && cs != cl && pos - (cs - 1) <= MAX_OFFSET) {
                const uint8_t *m = src + cs - 1;
                if (read32(m) == read32(ip)) {
                    size_t len = MINMATCH + count_equal(ip + MINMATCH, m + MINMATCH, matchlimit);
                    if (len > best_len) {
                        best = m;
                        best_len = len;
                    }
                }
            }
            if (best == NULL) {
                /* lz4's skipping: the longer nothing matches, the bigger the steps */
                ip += searches++ >> SKIP_STRENGTH;
                continue;
            }
            while (ip > anchor && best > src && ip[-1] == best[-1]) {
                ip--;
                best--;
                best_len++;
            }
            op = write_sequence(op, anchor, (size_t)(ip - anchor), (size_t)(ip - best), best_len);
            ip += best_len;
            anchor = ip;
            searches = 1u << SKIP_STRENGTH;
            if (ip < mflimit) { /* a position inside the match, for the next runs */
                const uint8_t *p = ip - 2;
                short_tab[hash_short(p, shift)] = (uint32_t)(p - src) + 1;
                long_tab[hash_long(p, shift)] = (uint32_t)(p - src) + 1;
            }
        }
    }
    return (size_t)(write_sequence(op, anchor, (size_t)(iend - anchor), 0, 0) - dst);
}

PyDoc_STRVAR(lz4_encode_doc,
"lz4_encode($module, /, src, out)\n--\n\n"
"Encode the bytes of `src` as one LZ4 block (no size prefix) into the\n"
"writable buffer `out`, which must hold len(src) + len(src) // 255 + 16\n"
"bytes; return the block's size. Matches come from three finders (5-, 12-\n"
"and 32-byte keys), so runs of small fixed-width values shrink well. Runs\n"
"without the GIL; ValueError when `out` is too small or `src` over 2 GB.");

static PyObject *
native_lz4_encode(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"src", "out", NULL};
    PyObject *src_obj, *out_obj, *result = NULL;
    arg_buffer src = {0}, out = {0};
    uint32_t *tables = NULL;
    size_t written = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:lz4_encode", kwlist, &src_obj, &out_obj))
        return NULL;
    if (acquire(src_obj, "src", -1, LF_BYTES, 0, &src) < 0 ||
        acquire(out_obj, "out", -1, LF_BYTES, 1, &out) < 0 ||
        check_no_overlap(&out, "out", &src, "src") < 0)
        goto done;
    if ((size_t)src.view.len >= LF_LZ4_MAX_INPUT) {
        PyErr_Format(PyExc_ValueError, "lz4 block input of %zd bytes is over lz4's limit", src.view.len);
        goto done;
    }
    if ((size_t)out.view.len < encode_bound((size_t)src.view.len)) {
        PyErr_Format(PyExc_ValueError, "out holds %zd bytes, not the %zu an lz4 block of %zd bytes may take",
                     out.view.len, encode_bound((size_t)src.view.len), src.view.len);
        goto done;
    }
    tables = (uint32_t *)calloc((size_t)3 << hash_log((size_t)src.view.len), sizeof(uint32_t));
    if (tables == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    LF_BEGIN_NOGIL(src.view.len)
    written = lz4_encode((const uint8_t *)src.view.buf, (size_t)src.view.len, (uint8_t *)out.view.buf, tables);
    LF_END_NOGIL
    result = PyLong_FromSize_t(written);
done:
    free(tables);
    release(&src);
    release(&out);
    return result;
}

LF_INTERNAL PyMethodDef lf_lz4_encode_methods[] = {
    LF_METHOD(lz4_encode),
    {NULL, NULL, 0, NULL},
};
