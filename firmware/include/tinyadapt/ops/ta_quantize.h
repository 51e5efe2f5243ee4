/*
 * QUANTIZE, float32 -> int8 (TFLM reference_ops::AffineQuantize):
 *   q = clamp(round(x / scale) + zero_point, -128, 127)
 * with x / scale a float32 division and round() half away from zero (roundf),
 * exactly as TFLM evaluates it.
 *
 * Values whose quotient does not fit an int32 (|x / scale| >= 2^31, infinities)
 * and NaN are undefined behaviour in TFLM's float-to-int cast; tinyadapt
 * defines them as an Arm FPU conversion would (what TFLM does on a Cortex-M):
 * large magnitudes saturate to 127 / -128 and NaN becomes the zero point.
 * (TFLM built for x86 turns every such value into INT32_MIN + zero_point,
 * wrapping: -128 for zero points >= 0, 127 for negative ones, whatever the
 * sign of the input.)
 *
 * Blob tensors, in order:
 *   in:  input  float32 [any shape]
 *   out: output int8    [same element count]
 */
#ifndef TA_QUANTIZE_H
#define TA_QUANTIZE_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t zero_point; /* output zero point, -128..127 */
    int32_t scale_bits; /* output scale: the IEEE-754 binary32 bit pattern (finite, > 0) */
} ta_quantize_params_t;

/**
 * @param[in]  p      output quantization
 * @param[in]  size   number of elements
 * @param[in]  input  float32 [size]
 * @param[out] output int8 [size]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or non-positive size
 */
ta_status_t ta_quantize_f32_s8(const ta_quantize_params_t *p, int32_t size, const float *input, int8_t *output);

#endif /* TA_QUANTIZE_H */
