/* LZ4 block decoding into a caller's buffer; see lz4_block.c. */
#ifndef LF_LZ4_BLOCK_H
#define LF_LZ4_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#define LF_LZ4_OK 0      /* the whole block decoded; *written is its size */
#define LF_LZ4_PARTIAL 1 /* dst filled before the block ended (dst_len bytes) */
#define LF_LZ4_CORRUPT -1

/* Decode the LZ4 block src[0:src_len] into dst[0:dst_len], stopping when dst
 * is full. Pure C: callable without the GIL. */
int lf_lz4_decode(const uint8_t *src, size_t src_len, uint8_t *dst,
                  size_t dst_len, size_t *written);

#endif
