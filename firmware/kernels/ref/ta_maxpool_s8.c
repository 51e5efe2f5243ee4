#include "tinyadapt/ops/ta_maxpool.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint.h"

ta_status_t ta_maxpool_s8(const ta_maxpool_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                          const ta_dims_t *out_dims, int8_t *output)
{
    if (p == NULL || in_dims == NULL || out_dims == NULL || input == NULL || output == NULL ||
        !ta_pool_args_ok(p, in_dims, out_dims)) {
        return TA_ERR_ARG;
    }
    const int32_t depth = in_dims->c;
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
                for (int32_t ch = 0; ch < depth; ++ch) {
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
        }
    }
    return TA_OK;
}
