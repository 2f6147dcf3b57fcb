/* Undoing PNG row filters; see png_filters.c. */
#ifndef LF_PNG_FILTERS_H
#define LF_PNG_FILTERS_H

#include <stddef.h>
#include <stdint.h>

/* 0 when done; a negative value when a row has an unknown filter type. The
 * caller guarantees src holds rows * (row_bytes + 1) bytes and out holds
 * rows * row_bytes. */
int lf_png_unfilter(const uint8_t *src, size_t rows, size_t row_bytes,
                    size_t bpp, uint8_t *out);

#endif
