/*
 * DEQUANTIZE, int8 -> float32 (TFLM reference_ops::Dequantize):
 *   x = scale * (q - zero_point)
 *
 * TFLM evaluates this in double and casts to float. A float32 multiply gives
 * the identical result: |q - zero_point| <= 255 fits 8 bits and the float32
 * scale has a 24-bit significand, so the double product is exact (<= 32
 * significant bits, far inside double's range), and casting an exact
 * value to float rounds it once, to nearest - the same single rounding an
 * IEEE float32 multiply performs, subnormal and overflow results included.
 * (This assumes the FPU does not flush subnormals to zero, the Cortex-M
 * FPSCR default; tests/test_ops_elementwise.py checks the identity for
 * scales over the whole float32 range.)
 *
 * Blob tensors, in order:
 *   in:  input  int8    [any shape]
 *   out: output float32 [same element count]
 */
#ifndef TA_DEQUANTIZE_H
#define TA_DEQUANTIZE_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t zero_point; /* input zero point, -128..127 */
    int32_t scale_bits; /* input scale: the IEEE-754 binary32 bit pattern (finite) */
} ta_dequantize_params_t;

/**
 * @param[in]  p      input quantization
 * @param[in]  size   number of elements
 * @param[in]  input  int8 [size]
 * @param[out] output float32 [size]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or non-positive size
 */
ta_status_t ta_dequantize_s8_f32(const ta_dequantize_params_t *p, int32_t size, const int8_t *input,
                                 float *output);

#endif /* TA_DEQUANTIZE_H */
