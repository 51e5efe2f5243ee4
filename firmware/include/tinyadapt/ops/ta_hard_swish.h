/*
 * HARD_SWISH, int8 in and out: x * relu6(x + 3) / 6 (TFLM reference_ops::HardSwish,
 * computed in int16 fixed point on a "hi-res" input scale of input_scale / 128).
 *
 * Blob tensors, in order:
 *   in:  input  int8 [...]
 *   out: output int8 [...]  same element count; may share the input's bytes
 */
#ifndef TA_HARD_SWISH_H
#define TA_HARD_SWISH_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t input_offset;        /* -input zero point */
    int32_t output_offset;       /* +output zero point */
    int32_t reluish_multiplier;  /* Q15 multiplier of (input_scale / 128) / (3 / 32768), in [0, 32767] */
    int32_t reluish_exponent;    /* its shift (left if > 0), in [-31, 31] */
    int32_t output_multiplier;   /* Q15 multiplier of (input_scale / 128) / output_scale, in [0, 32767] */
    int32_t output_exponent;     /* its shift, in [-31, 0] (TFLM rejects a left shift) */
} ta_hard_swish_params_t;

/**
 * @param[in]  p       quantization parameters
 * @param[in]  n       number of elements
 * @param[in]  input   int8 [n]
 * @param[out] output  int8 [n]; may equal input
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, n <= 0 or a parameter out of its range
 */
ta_status_t ta_hard_swish_s8(const ta_hard_swish_params_t *p, int32_t n, const int8_t *input, int8_t *output);

#endif /* TA_HARD_SWISH_H */
