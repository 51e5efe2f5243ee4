/*
 * AVERAGE_POOL_2D, int8 (TFLM reference_integer_ops::AveragePool).
 *
 * The average is taken over the raw int8 values: TFLM requires the input and
 * output to share scale and zero point, so no requantization happens. Only
 * the part of each window inside the input counts (padding is not averaged
 * in), and the sum is divided by that count rounding half away from zero.
 *
 * Blob tensors, in order:
 *   in:  input  int8 [N, H, W, C]
 *   out: output int8 [N, OH, OW, C]
 */
#ifndef TA_AVGPOOL_H
#define TA_AVGPOOL_H

#include <stdint.h>

#include "tinyadapt/ops/ta_pool.h"
#include "tinyadapt/ta_dims.h"
#include "tinyadapt/ta_status.h"

/* The blob struct is shared with MAX_POOL_2D (ta_pool.h); this name keeps the kernel's signature. */
typedef ta_pool_params_t ta_avgpool_params_t;

/**
 * @param[in]  p        window geometry and activation clamp
 * @param[in]  in_dims  input shape (NHWC)
 * @param[in]  input    int8 [in_dims->n, in_dims->h, in_dims->w, in_dims->c]
 * @param[in]  out_dims output shape; n and c must equal the input's
 * @param[out] output   int8 [out_dims->n, out_dims->h, out_dims->w, out_dims->c]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a non-positive size or
 *         stride, mismatched n/c, or a window that misses the input entirely
 */
ta_status_t ta_avgpool_s8(const ta_avgpool_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                          const ta_dims_t *out_dims, int8_t *output);

#endif /* TA_AVGPOOL_H */
