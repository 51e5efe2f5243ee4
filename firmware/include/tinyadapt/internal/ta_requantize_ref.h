/*
 * REQUANTIZE's per-element formula (TFLM reference_ops::Requantize), shared by the int8
 * and the uint8 input kernels: TFLM's is one template over the input type, so only the
 * loading of q differs.
 */
#ifndef TA_REQUANTIZE_REF_H
#define TA_REQUANTIZE_REF_H

#include <stdint.h>

#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/ops/ta_requantize.h"

/* q (an int8 or uint8 input value) in the output's quantization, saturated to int8. */
static inline int8_t ta_requantize_one(int32_t q, const ta_requantize_params_t *p)
{
    const int32_t x = q - p->input_zero_point;
    const int32_t y = ta_nn_add_wrap(ta_nn_requantize(x, p->multiplier, p->shift), p->output_zero_point);
    return (int8_t)ta_nn_clamp(y, -128, 127);
}

#endif /* TA_REQUANTIZE_REF_H */
