/*
 * The reference MEAN (TFLM reference_ops::Mean / QuantizedMeanOrSum for int8): the argument
 * checks and the loop that defines its bits. kernels/ref/ta_mean_s8.c is exactly these;
 * kernels/dsp/ checks the same way and falls back to the loop wherever its fast path does
 * not apply.
 */
#ifndef TA_MEAN_REF_H
#define TA_MEAN_REF_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/ops/ta_mean.h"

enum { TA_MEAN_D = TA_MEAN_MAX_DIMS };

/* Advance a row-major multi-index over `n` extents; 0 once it wraps to all zeros. */
static inline int ta_mean_next_index(int32_t *idx, const int32_t *extent, int n)
{
    for (int i = n - 1; i >= 0; --i) {
        if (++idx[i] < extent[i]) {
            return 1;
        }
        idx[i] = 0;
    }
    return 0;
}

/* ta_mean_s8's arguments (the dimensions' extents are checked by the loop). */
static inline int ta_mean_kernel_args_ok(const ta_mean_params_t *p, const int32_t *in_dims, const int8_t *input,
                                         const int8_t *output)
{
    return !(p == NULL || input == NULL || output == NULL || p->ndim < 0 || p->ndim > TA_MEAN_D ||
             (p->ndim > 0 && in_dims == NULL) || (p->axis_mask & ~((1 << p->ndim) - 1)) != 0 ||
             p->shift < -31 || p->shift > 31 || p->output_zp < -128 || p->output_zp > 127);
}

/*
 * One output at a time: for each combination of kept indices, walk every
 * combination of reduced indices. This needs no scratch buffer; the sum is
 * the same as TFLM's single pass because int32 addition commutes (TFLM wraps
 * on overflow, and so does the 64-bit sum truncated to 32 bits below).
 * Arguments checked by ta_mean_kernel_args_ok; TA_ERR_ARG for a non-positive extent.
 */
static inline ta_status_t ta_mean_ref_loop(const ta_mean_params_t *p, const int32_t *in_dims, const int8_t *input,
                                           int8_t *output)
{
    size_t strides[TA_MEAN_D];
    size_t stride = 1;
    for (int i = p->ndim - 1; i >= 0; --i) {
        if (in_dims[i] <= 0) {
            return TA_ERR_ARG;
        }
        strides[i] = stride;
        stride *= (size_t)in_dims[i];
    }
    /* Split the dimensions, outermost first, into kept (output) and reduced ones. */
    int32_t kept_ext[TA_MEAN_D], red_ext[TA_MEAN_D];
    size_t kept_stride[TA_MEAN_D], red_stride[TA_MEAN_D];
    int n_kept = 0, n_red = 0;
    int64_t count = 1;
    for (int i = 0; i < p->ndim; ++i) {
        if (p->axis_mask & (1 << i)) {
            red_ext[n_red] = in_dims[i];
            red_stride[n_red++] = strides[i];
            count *= in_dims[i];
        } else {
            kept_ext[n_kept] = in_dims[i];
            kept_stride[n_kept++] = strides[i];
        }
    }
    const int64_t zp_total = (int64_t)p->input_zp * count;
    int32_t kept_idx[TA_MEAN_D] = {0};
    int8_t *out = output;
    do {
        size_t base = 0;
        for (int i = 0; i < n_kept; ++i) {
            base += (size_t)kept_idx[i] * kept_stride[i];
        }
        int64_t sum = 0;
        int32_t red_idx[TA_MEAN_D] = {0};
        do {
            size_t off = base;
            for (int i = 0; i < n_red; ++i) {
                off += (size_t)red_idx[i] * red_stride[i];
            }
            sum += input[off];
        } while (ta_mean_next_index(red_idx, red_ext, n_red));
        /* TFLM keeps the sum in int32 and casts (sum - zp * count) back to int32. */
        const int32_t shifted = (int32_t)(uint32_t)(uint64_t)(sum - zp_total);
        const int32_t v = ta_nn_requantize(shifted, p->multiplier, p->shift) + p->output_zp;
        *out++ = (int8_t)ta_nn_clamp(v, -128, 127);
    } while (ta_mean_next_index(kept_idx, kept_ext, n_kept));
    return TA_OK;
}

#endif /* TA_MEAN_REF_H */
