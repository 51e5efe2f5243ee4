/*
 * The reference ADD and SUB of one element pair (TFLM reference_integer_ops::AddFunc and
 * reference_ops' quantized Sub): kernels/ref/ta_add_s8.c and ta_sub_s8.c are these applied
 * over the broadcast walk; kernels/dsp/ falls back to them wherever its fast path does not
 * apply, so the two builds cannot drift apart.
 */
#ifndef TA_ADD_REF_H
#define TA_ADD_REF_H

#include <stdint.h>

#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/ops/ta_add.h"

/* sub = 0: x + y, 1: x - y (a constant at each call). */
static inline int8_t ta_add_sub_one_ref(const ta_add_params_t *p, int8_t x, int8_t y, const int sub)
{
    /* |x + offset| <= 255, so the shifted values keep 8 bits of headroom below 2^31. */
    const int32_t a = (x + p->input1_offset) * (1 << p->left_shift);
    const int32_t b = (y + p->input2_offset) * (1 << p->left_shift);
    const int32_t ra = ta_nn_requantize_smaller_than_one(a, p->input1_multiplier, p->input1_shift);
    const int32_t rb = ta_nn_requantize_smaller_than_one(b, p->input2_multiplier, p->input2_shift);
    const int32_t out =
        ta_nn_requantize_smaller_than_one(sub ? ra - rb : ra + rb, p->output_multiplier, p->output_shift) +
        p->output_offset;
    return (int8_t)ta_nn_clamp(out, p->act_min, p->act_max);
}

#endif /* TA_ADD_REF_H */
