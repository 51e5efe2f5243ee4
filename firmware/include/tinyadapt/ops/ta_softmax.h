/*
 * SOFTMAX, int8 in and out, over the innermost axis (TFLM reference_ops::Softmax
 * with the gemmlowp fixed-point exp; Prepare-time constants come from
 * PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits).
 *
 * The output quantization is fixed by TFLM: scale 1/256, zero point -128.
 *
 * Blob tensors, in order:
 *   in:  input  int8 [..., D]   (rows = elements / D)
 *   out: output int8 [..., D]   same shape
 */
#ifndef TA_SOFTMAX_H
#define TA_SOFTMAX_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. */
typedef struct {
    int32_t input_multiplier; /* Q31 multiplier of beta * input_scale * 2^26, in [2^30, 2^31) */
    int32_t input_left_shift; /* its left shift, in [1, 31] */
    int32_t diff_min;         /* -((31 << 26) >> input_left_shift): lower differences give exp = 0 */
} ta_softmax_params_t;

/**
 * @param[in]  p       scaling of (x - row max) into Q5.26
 * @param[in]  rows    number of rows (product of all but the innermost dimension)
 * @param[in]  depth   D, elements per row
 * @param[in]  input   int8 [rows, D]
 * @param[out] output  int8 [rows, D] (scale 1/256, zero point -128). The kernel reads
 *                     every input element of a row before writing it, so output may
 *                     equal input; the converter does not plan it that way
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer, a non-positive size or a
 *         left shift outside [0, 31]
 */
ta_status_t ta_softmax_s8(const ta_softmax_params_t *p, int32_t rows, int32_t depth, const int8_t *input,
                          int8_t *output);

#endif /* TA_SOFTMAX_H */
