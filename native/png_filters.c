/*
 * Undoing PNG's per-row filters (PNG specification, section 9: None, Sub,
 * Up, Average, Paeth) for 8-bit images, written from that description.
 *
 * The input is the inflated image data: `rows` rows of one filter-type byte
 * followed by `row_bytes` filtered bytes; the output is the pixels, `rows` x
 * `row_bytes` bytes back to back. `bpp` is the bytes per complete pixel (the
 * distance to the "left" byte). Pure C, callable without the GIL.
 */
#include "png_filters.h"

#include <stdlib.h>
#include <string.h>

static inline uint8_t
paeth(int a, int b, int c)
{
    int p = a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc)
        return (uint8_t)a;
    return (uint8_t)(pb <= pc ? b : c);
}

int
lf_png_unfilter(const uint8_t *src, size_t rows, size_t row_bytes, size_t bpp,
                uint8_t *out)
{
    const uint8_t *prev = NULL; /* the row above, already unfiltered */
    for (size_t r = 0; r < rows; r++) {
        uint8_t filter = src[0];
        const uint8_t *in = src + 1;
        uint8_t *cur = out + r * row_bytes;
        size_t i;
        switch (filter) {
        case 0:
            memcpy(cur, in, row_bytes);
            break;
        case 1:
            for (i = 0; i < bpp && i < row_bytes; i++)
                cur[i] = in[i];
            for (; i < row_bytes; i++)
                cur[i] = (uint8_t)(in[i] + cur[i - bpp]);
            break;
        case 2:
            if (prev == NULL)
                memcpy(cur, in, row_bytes);
            else
                for (i = 0; i < row_bytes; i++)
                    cur[i] = (uint8_t)(in[i] + prev[i]);
            break;
        case 3:
            for (i = 0; i < row_bytes; i++) {
                int left = i >= bpp ? cur[i - bpp] : 0;
                int up = prev != NULL ? prev[i] : 0;
                cur[i] = (uint8_t)(in[i] + ((left + up) >> 1));
            }
            break;
        case 4:
            for (i = 0; i < row_bytes; i++) {
                int left = i >= bpp ? cur[i - bpp] : 0;
                int up = prev != NULL ? prev[i] : 0;
                int up_left = (i >= bpp && prev != NULL) ? prev[i - bpp] : 0;
                cur[i] = (uint8_t)(in[i] + paeth(left, up, up_left));
            }
            break;
        default:
            return -1 - (int)(r > 0x3fffffff ? 0x3fffffff : r); /* bad filter */
        }
        prev = cur;
        src += row_bytes + 1;
    }
    return 0;
}
