/*
 * MAX_POOL_2D, int8 (TFLM reference_integer_ops::MaxPool).
 *
 * The maximum is taken over the raw int8 values inside the input (padding
 * never wins); TFLM requires the input and output to share scale and zero
 * point, so no requantization happens.
 *
 * Blob tensors, in order:
 *   in:  input  int8 [N, H, W, C]
 *   out: output int8 [N, OH, OW, C]
 */
#ifndef TA_MAXPOOL_H
#define TA_MAXPOOL_H

#include <stdint.h>

#include "tinyadapt/ops/ta_pool.h"
#include "tinyadapt/ta_dims.h"
#include "tinyadapt/ta_status.h"

/* The blob struct is shared with AVERAGE_POOL_2D (ta_pool.h); this name keeps the kernel's signature. */
typedef ta_pool_params_t ta_maxpool_params_t;

/**
 * @param[in]  p        window geometry and activation clamp
 * @param[in]  in_dims  input shape (NHWC)
 * @param[in]  input    int8 [in_dims->n, in_dims->h, in_dims->w, in_dims->c]
 * @param[in]  out_dims output shape; n and c must equal the input's
 * @param[out] output   int8 [out_dims->n, out_dims->h, out_dims->w, out_dims->c]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a non-positive size or
 *         stride, or mismatched n/c
 */
ta_status_t ta_maxpool_s8(const ta_maxpool_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                          const ta_dims_t *out_dims, int8_t *output);

#endif /* TA_MAXPOOL_H */
