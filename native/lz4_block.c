/*
 * LZ4 block decoding into a caller's buffer (the block format of
 * https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md, written from
 * that description).
 *
 * Why our own decoder: python-lz4 returns a new bytes object per call, so a
 * read of compressed chunks paid for one allocation, one page-faulting pass
 * and one extra copy per chunk before the bytes reached the caller's array.
 * Decoding straight into the output array removes both, and stopping at a
 * given output length lets a random read decode only the head of a chunk.
 *
 * Every read of `src` and every write of `dst` is bounds-checked: corrupt or
 * hostile input yields LF_LZ4_CORRUPT, never a read or write outside them.
 */
#include "lz4_block.h"

#include <string.h>

/* A length field: 4 bits in the token, then bytes of 255 while they last. */
static int
read_length(const uint8_t **ip, const uint8_t *iend, size_t *len)
{
    if (*len != 15)
        return 0;
    for (;;) {
        if (*ip >= iend)
            return -1;
        uint8_t b = *(*ip)++;
        if (*len > SIZE_MAX - 255)
            return -1;
        *len += b;
        if (b != 255)
            return 0;
    }
}

/* Copy a match of `len` bytes from `offset` bytes back; source and target
 * may overlap (offset < len repeats the last `offset` bytes). */
static void
copy_match(uint8_t *op, size_t offset, size_t len)
{
    const uint8_t *match = op - offset;
    if (offset >= len) {
        memcpy(op, match, len);
        return;
    }
    if (offset == 1) {
        memset(op, *match, len);
        return;
    }
    /* the bytes [match, op) repeat with period `offset`: copy them in pieces
     * that never overlap, each twice as long as the last */
    size_t period = offset;
    while (len > 0) {
        size_t n = period < len ? period : len;
        memcpy(op, match, n);
        op += n;
        len -= n;
        period += n;
    }
}

int
lf_lz4_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len,
              size_t *written)
{
    const uint8_t *ip = src, *iend = src + src_len;
    uint8_t *op = dst, *oend = dst + dst_len;
    *written = 0;
    if (src_len == 0)
        return dst_len == 0 ? LF_LZ4_OK : LF_LZ4_CORRUPT;
    while (ip < iend) {
        uint8_t token = *ip++;
        size_t lit = token >> 4;
        if (read_length(&ip, iend, &lit) < 0 || lit > (size_t)(iend - ip))
            return LF_LZ4_CORRUPT;
        if (lit > (size_t)(oend - op)) {
            /* the output ends inside these literals: a partial decode */
            size_t room = (size_t)(oend - op);
            memcpy(op, ip, room);
            *written = dst_len;
            return LF_LZ4_PARTIAL;
        }
        if (lit <= 16 && iend - ip >= 16 && oend - op >= 16)
            memcpy(op, ip, 16); /* one fixed-size copy; the surplus is overwritten later */
        else
            memcpy(op, ip, lit);
        op += lit;
        ip += lit;
        if (ip == iend)
            break; /* the last sequence has literals only */
        if (iend - ip < 2)
            return LF_LZ4_CORRUPT;
        size_t offset = (size_t)ip[0] | ((size_t)ip[1] << 8);
        ip += 2;
        if (offset == 0 || offset > (size_t)(op - dst))
            return LF_LZ4_CORRUPT;
        size_t mlen = token & 15;
        if (read_length(&ip, iend, &mlen) < 0 || mlen > SIZE_MAX - 4)
            return LF_LZ4_CORRUPT;
        mlen += 4;
        if (mlen > (size_t)(oend - op)) {
            copy_match(op, offset, (size_t)(oend - op));
            *written = dst_len;
            return LF_LZ4_PARTIAL;
        }
        uint8_t *mend = op + mlen;
        if (offset >= 8 && oend - mend >= 8) {
            /* 8 bytes at a time: each source word was written before it is read */
            const uint8_t *m = op - offset;
            do {
                memcpy(op, m, 8);
                op += 8;
                m += 8;
            } while (op < mend);
        } else if (mlen <= 32) {
            for (size_t i = 0; i < mlen; i++)
                op[i] = op[i - offset];
        } else {
            copy_match(op, offset, mlen);
        }
        op = mend;
    }
    *written = (size_t)(op - dst);
    return LF_LZ4_OK;
}
