#include <stddef.h>

#include "tinyadapt/ops/ta_backward.h"

void ta_pad_backward_f32(int32_t ndim, const int32_t *in_dims, const int32_t *before, const int32_t *after,
                         const float *dy, int accumulate, float *dx)
{
    size_t total = 1;
    for (int32_t i = 0; i < ndim; ++i) {
        total *= (size_t)in_dims[i];
    }
    int32_t idx[8] = {0};
    for (size_t k = 0; k < total; ++k) {
        size_t o = 0;
        for (int32_t i = 0; i < ndim; ++i) {
            o = o * (size_t)(before[i] + in_dims[i] + after[i]) + (size_t)(idx[i] + before[i]);
        }
        dx[k] = accumulate ? dx[k] + dy[o] : dy[o];
        for (int32_t i = ndim - 1; i >= 0; --i) {
            if (++idx[i] < in_dims[i]) {
                break;
            }
            idx[i] = 0;
        }
    }
}
