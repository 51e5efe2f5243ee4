/*
 * PAD and PADV2, int8 (TFLM reference_ops::Pad).
 *
 * Input values are copied as raw int8 (TFLM does not requantize even when
 * the output's scale or zero point differ); padding takes the value of the
 * output zero point (PAD) or of PADV2's constant value.
 *
 * Blob tensors, in order:
 *   in:  input     int8 [d0, ..., d(ndim-1)]
 *        pad value int8 [1] or TA_NO_TENSOR (absent: use params.pad_value;
 *                  present only when PADV2's value is not a constant)
 *   out: output    int8 [d0 + before[0] + after[0], ...]
 */
#ifndef TA_PAD_H
#define TA_PAD_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

#define TA_PAD_MAX_DIMS 6

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t ndim;                     /* rank of input and output, 0..TA_PAD_MAX_DIMS */
    int32_t pad_value;                /* int8 value written into the padding */
    int32_t before[TA_PAD_MAX_DIMS];  /* elements added before each dimension, >= 0 */
    int32_t after[TA_PAD_MAX_DIMS];   /* elements added after each dimension, >= 0 */
} ta_pad_params_t;

/**
 * @param[in]  ndim      rank, 0..TA_PAD_MAX_DIMS
 * @param[in]  in_dims   input shape, ndim entries (may be NULL when ndim is 0)
 * @param[in]  before    padding before each dimension, ndim entries
 * @param[in]  after     padding after each dimension, ndim entries
 * @param[in]  input     int8, row-major in_dims
 * @param[in]  pad_value value of every padded element
 * @param[out] output    int8, row-major [in_dims[i] + before[i] + after[i]]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a bad rank, a
 *         non-positive dimension or a negative padding
 */
ta_status_t ta_pad_s8(int32_t ndim, const int32_t *in_dims, const int32_t *before, const int32_t *after,
                      const int8_t *input, int8_t pad_value, int8_t *output);

#endif /* TA_PAD_H */
