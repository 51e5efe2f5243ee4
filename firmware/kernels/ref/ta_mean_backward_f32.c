#include <stddef.h>

#include "tinyadapt/ops/ta_backward.h"

void ta_mean_backward_f32(int32_t ndim, const int32_t *in_dims, int32_t axis_mask, const float *dy, int accumulate,
                          float *dx)
{
    int32_t count = 1;
    size_t total = 1;
    for (int32_t i = 0; i < ndim; ++i) {
        total *= (size_t)in_dims[i];
        if (axis_mask & (1 << i)) {
            count *= in_dims[i];
        }
    }
    const float inv = 1.0f / (float)count;
    /* The reduced axes one contiguous run [lo, hi) (a spatial mean over H, W of NHWC): dx is
     * dy repeated over the run, block by block, without a multi-index per element. */
    int32_t lo = -1, hi = -1;
    for (int32_t i = 0; i < ndim; ++i) {
        if (axis_mask & (1 << i)) {
            lo = lo < 0 ? i : lo;
            hi = i + 1;
        }
    }
    int contiguous = lo >= 0;
    for (int32_t i = lo; contiguous && i < hi; ++i) {
        contiguous = (axis_mask & (1 << i)) != 0;
    }
    if (contiguous) {
        size_t outer = 1, mid = 1, inner = 1;
        for (int32_t i = 0; i < ndim; ++i) {
            *(i < lo ? &outer : i < hi ? &mid : &inner) *= (size_t)in_dims[i];
        }
        for (size_t a = 0; a < outer; ++a) {
            const float *g = dy + a * inner;
            for (size_t r = 0; r < mid; ++r, dx += inner) {
                for (size_t j = 0; j < inner; ++j) {
                    const float v = g[j] * inv;
                    dx[j] = accumulate ? dx[j] + v : v;
                }
            }
        }
        return;
    }
    /* Walk the input in order with a multi-index; the output index counts only the kept
     * dimensions (its order is the same with or without keep_dims). */
    int32_t idx[8] = {0};
    for (size_t k = 0; k < total; ++k) {
        size_t o = 0;
        for (int32_t i = 0; i < ndim; ++i) {
            if (!(axis_mask & (1 << i))) {
                o = o * (size_t)in_dims[i] + (size_t)idx[i];
            }
        }
        const float g = dy[o] * inv;
        dx[k] = accumulate ? dx[k] + g : g;
        for (int32_t i = ndim - 1; i >= 0; --i) {
            if (++idx[i] < in_dims[i]) {
                break;
            }
            idx[i] = 0;
        }
    }
}
