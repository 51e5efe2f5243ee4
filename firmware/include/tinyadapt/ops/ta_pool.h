/*
 * The parameter struct of AVERAGE_POOL_2D and MAX_POOL_2D (ta_avgpool.h,
 * ta_maxpool.h), and the checks and window clipping both kernels share.
 */
#ifndef TA_POOL_H
#define TA_POOL_H

#include <stdint.h>

#include "tinyadapt/ta_dims.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t stride_h;
    int32_t stride_w;
    int32_t filter_h;
    int32_t filter_w;
    int32_t pad_h;   /* rows of padding above the input (TFLM puts the odd one below) */
    int32_t pad_w;   /* columns of padding left of the input */
    int32_t act_min; /* fused activation clamp, in output quanta */
    int32_t act_max;
} ta_pool_params_t;

/* The checks both pool kernels make on their scalar arguments: positive
 * sizes and strides, one batch and channel count. Returns 1 when valid. */
static inline int ta_pool_args_ok(const ta_pool_params_t *p, const ta_dims_t *in, const ta_dims_t *out)
{
    return in->n > 0 && in->h > 0 && in->w > 0 && in->c > 0 && out->h > 0 && out->w > 0 && out->n == in->n &&
           out->c == in->c && p->stride_h > 0 && p->stride_w > 0;
}

/* The part [*start, *end) of a window of `size` taps at `origin` that lies in [0, extent). */
static inline void ta_pool_clip_window(int32_t origin, int32_t size, int32_t extent, int32_t *start, int32_t *end)
{
    *start = origin < 0 ? -origin : 0;
    *end = extent - origin < size ? extent - origin : size;
}

#endif /* TA_POOL_H */
