/*
 * LOGISTIC, int8 in and out (TFLM reference_integer_ops::Logistic: the input is
 * rescaled into Q4.27 and passed through gemmlowp's fixed-point logistic).
 *
 * TFLM requires the output zero point to be -128 and computes the output as if
 * its scale were 1/256, whatever scale the model declares.
 *
 * Blob tensors, in order:
 *   in:  input  int8 [...]
 *   out: output int8 [...]  same element count; may share the input's bytes
 */
#ifndef TA_LOGISTIC_H
#define TA_LOGISTIC_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t input_offset;       /* -input zero point */
    int32_t input_range_radius; /* |x - zp| at or beyond this saturates to -128 / 127 */
    int32_t input_multiplier;   /* Q31 multiplier of input_scale * 2^27 (into Q4.27) */
    int32_t input_left_shift;   /* its shift (left if > 0), in [-31, 31] */
} ta_logistic_params_t;

/**
 * @param[in]  p       input quantization and Q4.27 scaling
 * @param[in]  n       number of elements
 * @param[in]  input   int8 [n]
 * @param[out] output  int8 [n] (scale 1/256, zero point -128); may equal input
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, n <= 0, a negative radius or a
 *         shift outside [-31, 31]
 */
ta_status_t ta_logistic_s8(const ta_logistic_params_t *p, int32_t n, const int8_t *input, int8_t *output);

#endif /* TA_LOGISTIC_H */
