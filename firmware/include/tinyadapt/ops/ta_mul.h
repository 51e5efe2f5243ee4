/*
 * MUL, int8, with broadcasting (TFLM reference_integer_ops::Mul /
 * BroadcastMul6DSlow): the product of the zero-point-corrected inputs is
 * rescaled once by input1_scale * input2_scale / output_scale.
 *
 * Blob tensors, in order:
 *   in:  input1 int8 [up to 6-D]
 *        input2 int8 [up to 6-D]
 *   out: output int8, the broadcast shape of input1 and input2
 */
#ifndef TA_MUL_H
#define TA_MUL_H

#include <stdint.h>

#include "tinyadapt/ta_status.h"

/* Stored in the blob: every field is an int32 so the layout is fixed. The
 * kernel relies on the ranges below (the op's prepare checks them). */
typedef struct {
    int32_t input1_offset;     /* -input1 zero point, -127..128 */
    int32_t input2_offset;     /* -input2 zero point, -127..128 */
    int32_t output_offset;     /* +output zero point, -128..127 */
    int32_t output_multiplier; /* Q31, >= 0 */
    int32_t output_shift;      /* -31..31, left if > 0 */
    int32_t act_min;           /* fused activation clamp, in output quanta: */
    int32_t act_max;           /* -128 <= act_min <= act_max <= 127 */
} ta_mul_params_t;

/**
 * output = input1 * input2, broadcast (NumPy rules, shapes aligned at the
 * innermost dimension). Output element k is written only after every input
 * element it depends on has been read, so the output may share memory with
 * an input of the output's shape (not with a broadcast one).
 * @param[in]  p        quantization and activation parameters
 * @param[in]  ndim1    rank of input1, 0..6
 * @param[in]  dims1    extents of input1 (row-major, innermost last)
 * @param[in]  input1   int8 [dims1]
 * @param[in]  ndim2    rank of input2, 0..6
 * @param[in]  dims2    extents of input2
 * @param[in]  input2   int8 [dims2]
 * @param[in]  ndim_out rank of the output, 0..6
 * @param[in]  dims_out extents of the output: the broadcast of dims1 and dims2
 * @param[out] output   int8 [dims_out]
 * @return TA_OK, or TA_ERR_ARG for a NULL pointer or shapes that do not broadcast to dims_out
 */
ta_status_t ta_mul_s8(const ta_mul_params_t *p, int32_t ndim1, const int32_t *dims1, const int8_t *input1,
                      int32_t ndim2, const int32_t *dims2, const int8_t *input2, int32_t ndim_out,
                      const int32_t *dims_out, int8_t *output);

#endif /* TA_MUL_H */
