#include "tinyadapt/ops/ta_backward.h"

void ta_act_mask_f32(const int8_t *y, int32_t n, int32_t act_min, int32_t act_max, float *dy)
{
    /* Outside the clamp the forward output did not move with its input: no gradient. */
    for (int32_t i = 0; i < n; ++i) {
        if (y[i] <= act_min || y[i] >= act_max) {
            dy[i] = 0.0f;
        }
    }
}

void ta_grad_copy_f32(const float *src, int32_t n, int accumulate, float *dst)
{
    if (accumulate) {
        for (int32_t i = 0; i < n; ++i) {
            dst[i] += src[i];
        }
    } else if (dst != src) {
        for (int32_t i = 0; i < n; ++i) {
            dst[i] = src[i];
        }
    }
}
