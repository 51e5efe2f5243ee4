/*
 * MAX_POOL_2D's argument checks and the reference arithmetic for some channels of one
 * output pixel (TFLM reference_integer_ops::MaxPool), for kernels/dsp/ta_maxpool_s8.c's
 * channels past its four-at-a-time path. kernels/ref/ta_maxpool_s8.c keeps the same loop
 * inline: written through this helper, GCC's code for it took 1.3-1.9 % more instructions
 * (benchmarks/kernels.py's guard caught it).
 */
#ifndef TA_MAXPOOL_REF_H
#define TA_MAXPOOL_REF_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/ops/ta_maxpool.h"

/* ta_maxpool_s8's arguments. */
static inline int ta_maxpool_kernel_args_ok(const ta_maxpool_params_t *p, const ta_dims_t *in_dims,
                                            const int8_t *input, const ta_dims_t *out_dims, const int8_t *output)
{
    return p != NULL && in_dims != NULL && out_dims != NULL && input != NULL && output != NULL &&
           ta_pool_args_ok(p, in_dims, out_dims);
}

/* Channels [c0, c1) of output pixel (b, oy, ox); the window's rows iy0 + [fy0, fy1), clipped
 * once per output row by the caller (ta_pool_clip_window). */
static inline void ta_maxpool_ref_pixel(const ta_maxpool_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                                        const ta_dims_t *out_dims, int32_t b, int32_t oy, int32_t iy0, int32_t fy0,
                                        int32_t fy1, int32_t ox, int32_t c0, int32_t c1, int8_t *output)
{
    const int32_t depth = in_dims->c;
    int32_t fx0, fx1;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    ta_pool_clip_window(ix0, p->filter_w, in_dims->w, &fx0, &fx1);
    int8_t *out = output + (((size_t)b * out_dims->h + oy) * out_dims->w + ox) * depth;
    for (int32_t ch = c0; ch < c1; ++ch) {
        /* An empty window yields INT8_MIN before the clamp, as in TFLM. */
        int32_t max = INT8_MIN;
        for (int32_t fy = fy0; fy < fy1; ++fy) {
            /* Index from the first tap inside the input: ix0 itself may be negative. */
            const size_t pixel = ((size_t)b * in_dims->h + (iy0 + fy)) * in_dims->w + (ix0 + fx0);
            const int8_t *row = input + pixel * depth + ch;
            for (int32_t fx = 0; fx < fx1 - fx0; ++fx) {
                const int32_t v = row[(size_t)fx * depth];
                max = v > max ? v : max;
            }
        }
        out[ch] = (int8_t)ta_nn_clamp(max, p->act_min, p->act_max);
    }
}

#endif /* TA_MAXPOOL_REF_H */
