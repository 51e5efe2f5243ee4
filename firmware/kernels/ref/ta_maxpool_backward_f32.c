#include <stddef.h>

#include "tinyadapt/ops/ta_backward.h"

void ta_maxpool_backward_f32(const ta_pool_params_t *p, const ta_dims_t *in_dims, const int8_t *x,
                             const ta_dims_t *out_dims, const float *dy, int accumulate, float *dx)
{
    const int32_t depth = in_dims->c;
    if (!accumulate) {
        const size_t n = (size_t)in_dims->n * in_dims->h * in_dims->w * depth;
        for (size_t i = 0; i < n; ++i) {
            dx[i] = 0.0f;
        }
    }
    for (int32_t b = 0; b < in_dims->n; ++b) {
        for (int32_t oy = 0; oy < out_dims->h; ++oy) {
            int32_t fy0, fy1;
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            ta_pool_clip_window(iy0, p->filter_h, in_dims->h, &fy0, &fy1);
            for (int32_t ox = 0; ox < out_dims->w; ++ox) {
                int32_t fx0, fx1;
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                ta_pool_clip_window(ix0, p->filter_w, in_dims->w, &fx0, &fx1);
                const float *g = dy + (((size_t)b * out_dims->h + oy) * out_dims->w + ox) * depth;
                for (int32_t ch = 0; ch < depth; ++ch) {
                    int32_t best = -129;
                    size_t at = 0;
                    for (int32_t fy = fy0; fy < fy1; ++fy) {
                        for (int32_t fx = fx0; fx < fx1; ++fx) {
                            const size_t k = (((size_t)b * in_dims->h + iy0 + fy) * in_dims->w + ix0 + fx) * depth + ch;
                            if (x[k] > best) {
                                best = x[k];
                                at = k;
                            }
                        }
                    }
                    if (best > p->act_min && best < p->act_max) {
                        dx[at] += g[ch];
                    }
                }
            }
        }
    }
}
