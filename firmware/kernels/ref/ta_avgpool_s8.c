#include "tinyadapt/ops/ta_avgpool.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint.h"

ta_status_t ta_avgpool_s8(const ta_avgpool_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
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
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return TA_ERR_ARG; /* TFLM fails here too: nothing to average */
                }
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                int8_t *out = output + (((size_t)b * out_dims->h + oy) * out_dims->w + ox) * depth;
                for (int32_t ch = 0; ch < depth; ++ch) {
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        /* Index from the first tap inside the input: ix0 itself may be negative. */
                        const size_t pixel = ((size_t)b * in_dims->h + (iy0 + fy)) * in_dims->w + (ix0 + fx0);
                        const int8_t *row = input + pixel * depth + ch;
                        for (int32_t fx = 0; fx < fx1 - fx0; ++fx) {
                            acc += row[(size_t)fx * depth];
                        }
                    }
                    /* C division truncates, so offsetting by half the count first rounds
                     * half away from zero, exactly as TFLM does. */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    out[ch] = (int8_t)ta_nn_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
    return TA_OK;
}
