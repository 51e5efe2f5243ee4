/*
 * MAX_POOL_2D int8 for cores with the DSP extension: the same function, arguments, checks
 * and output bits as kernels/ref/ta_maxpool_s8.c. Four channels per word: SSUB8 + SEL keep
 * the per-byte maximum of a whole word (ta_nn_max_s8x4), and the activation clamp is the
 * same per byte. The channels past the last multiple of four, and activation bounds
 * outside int8 (where a byte clamp would differ), take the reference pixel loop.
 */
#include "tinyadapt/ops/ta_maxpool.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_maxpool_ref.h"
#include "tinyadapt/internal/ta_nn_simd.h"

ta_status_t ta_maxpool_s8(const ta_maxpool_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                          const ta_dims_t *out_dims, int8_t *output)
{
    if (!ta_maxpool_kernel_args_ok(p, in_dims, input, out_dims, output)) {
        return TA_ERR_ARG;
    }
    const int32_t depth = in_dims->c;
    const int bytes_ok = p->act_min >= INT8_MIN && p->act_max <= INT8_MAX && p->act_min <= p->act_max;
    const int32_t depth4 = bytes_ok ? depth & ~3 : 0;
    const int32_t lo4 = (int32_t)(0x01010101u * (uint8_t)p->act_min);
    const int32_t hi4 = (int32_t)(0x01010101u * (uint8_t)p->act_max);
    for (int32_t b = 0; b < in_dims->n; ++b) {
        for (int32_t oy = 0; oy < out_dims->h; ++oy) {
            int32_t fy0, fy1;
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            ta_pool_clip_window(iy0, p->filter_h, in_dims->h, &fy0, &fy1);
            for (int32_t ox = 0; ox < out_dims->w; ++ox) {
                int32_t fx0, fx1;
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                ta_pool_clip_window(ix0, p->filter_w, in_dims->w, &fx0, &fx1);
                int8_t *out = output + (((size_t)b * out_dims->h + oy) * out_dims->w + ox) * depth;
                /* the window's first tap inside the input (an empty window reads nothing) */
                const int empty = fy0 >= fy1 || fx0 >= fx1;
                const int8_t *first =
                    empty ? input
                          : input + (((size_t)b * in_dims->h + (iy0 + fy0)) * in_dims->w + (ix0 + fx0)) * depth;
                const size_t row = (size_t)in_dims->w * (size_t)depth;
                for (int32_t c = 0; c < depth4; c += 4) {
                    int32_t m = (int32_t)0x80808080u; /* INT8_MIN: an empty window's value */
                    const int8_t *r = first + c;
                    for (int32_t fy = empty ? fy1 : fy0; fy < fy1; ++fy, r += row) {
                        const int8_t *x = r;
                        for (int32_t fx = fx0; fx < fx1; ++fx, x += depth) {
                            m = ta_nn_max_s8x4(m, ta_nn_read_s8x4(x));
                        }
                    }
                    ta_nn_write_s8x4(out + c, ta_nn_min_s8x4(ta_nn_max_s8x4(m, lo4), hi4));
                }
                if (depth4 < depth) {
                    ta_maxpool_ref_pixel(p, in_dims, input, out_dims, b, oy, iy0, fy0, fy1, ox, depth4, depth, output);
                }
            }
        }
    }
    return TA_OK;
}
