/*
 * MEAN, int8 (TFLM reference_ops::QuantizedMeanOrSum with compute_sum false).
 *
 * Each output is the int32 sum of its input elements, less input zero point
 * times the element count, requantized by a multiplier that already folds in
 * input_scale / output_scale and 1 / count (TFLM's integer folding, done on
 * the host since the count is static), plus the output zero point. TFLM uses
 * this one formula whether or not input and output quantization are equal.
 *
 * Blob tensors, in order:
 *   in:  input  int8 [d0, ..., d(ndim-1)]
 *   out: output int8, the input's dimensions not in axis_mask, row-major (any
 *        shape with that many elements: keep_dims only changes the shape)
 */
#ifndef TA_MEAN_H
#define TA_MEAN_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

#define TA_MEAN_MAX_DIMS 6

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t ndim;        /* input rank, 0..TA_MEAN_MAX_DIMS */
    int32_t axis_mask;   /* bit i set: dimension i is averaged over */
    int32_t input_zp;    /* input zero point */
    int32_t output_zp;   /* output zero point */
    int32_t multiplier;  /* Q31 multiplier for (input_scale / output_scale) / count */
    int32_t shift;       /* its exponent, left if > 0; in [-31, 31] */
} ta_mean_params_t;

/**
 * @param[in]  p       axes and quantization
 * @param[in]  in_dims input shape, p->ndim entries (may be NULL when ndim is 0)
 * @param[in]  input   int8, row-major in_dims
 * @param[out] output  int8, one element per combination of kept dimensions
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a bad rank or mask, a
 *         non-positive dimension, a shift outside [-31, 31] or an output
 *         zero point outside int8
 */
ta_status_t ta_mean_s8(const ta_mean_params_t *p, const int32_t *in_dims, const int8_t *input, int8_t *output);

#endif /* TA_MEAN_H */
