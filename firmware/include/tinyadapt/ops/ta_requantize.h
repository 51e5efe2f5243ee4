/*
 * REQUANTIZE, int8 or uint8 -> int8 with a new scale / zero point: TFLite's
 * QUANTIZE op with an int8 or uint8 input (TFLM reference_ops::Requantize, the
 * same arithmetic for both input types):
 *   q_out = clamp(MultiplyByQuantizedMultiplier(q_in - input_zp, multiplier, shift)
 *                 + output_zp, -128, 127)
 * where multiplier / shift encode input_scale / output_scale (computed in
 * double on the host, like TFLM's Prepare).
 *
 * Blob tensors, in order:
 *   in:  input  int8 or uint8 [any shape] (uint8: a camera frame, input_zero_point 0..255)
 *   out: output int8 [same element count]
 */
#ifndef TA_REQUANTIZE_H
#define TA_REQUANTIZE_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t input_zero_point;  /* -128..127 (int8 input), 0..255 (uint8 input) */
    int32_t output_zero_point; /* -128..127 */
    int32_t multiplier;        /* Q31, >= 0 */
    int32_t shift;             /* -31..31, left if > 0 */
} ta_requantize_params_t;

/**
 * Element k of the output is written after element k of the input is read,
 * so input and output may be the same buffer.
 * @param[in]  p      quantization parameters
 * @param[in]  size   number of elements
 * @param[in]  input  int8 [size]
 * @param[out] output int8 [size]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or non-positive size
 */
ta_status_t ta_requantize_s8(const ta_requantize_params_t *p, int32_t size, const int8_t *input, int8_t *output);

/**
 * The same from uint8 (kernels/ref/ta_requantize_u8_s8.c); input and output may alias too.
 * @param[in]  p      quantization parameters (input_zero_point 0..255)
 * @param[in]  size   number of elements
 * @param[in]  input  uint8 [size]
 * @param[out] output int8 [size]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or non-positive size
 */
ta_status_t ta_requantize_u8_s8(const ta_requantize_params_t *p, int32_t size, const uint8_t *input, int8_t *output);

#endif /* TA_REQUANTIZE_H */
