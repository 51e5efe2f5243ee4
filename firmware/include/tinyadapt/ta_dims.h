/*
 * A 4-D NHWC shape for kernel arguments, so a kernel needs nothing from the
 * engine's tensor records (and a caller can describe a sub-region).
 */
#ifndef TA_DIMS_H
#define TA_DIMS_H

#include <stdint.h>

typedef struct {
    int32_t n; /* batches (output channels for a CONV_2D filter, 1 for a depthwise filter) */
    int32_t h; /* height */
    int32_t w; /* width */
    int32_t c; /* channels, innermost */
} ta_dims_t;

#endif /* TA_DIMS_H */
