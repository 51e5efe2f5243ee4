/*
 * ADD and SUB for cores with the DSP extension (kernels/dsp/ta_add_s8.c, ta_sub_s8.c): the
 * reference's arithmetic (ta_add_ref.h) with the three requantizations split into what
 * depends on the parameters (worked out once per call, ta_nn_requant_make) and the few
 * instructions per element (ta_nn_requant: SMMULR-based, exactly gemmlowp's
 * SaturatingRoundingDoublingHighMul + RoundingDivideByPOT), instead of a 64-bit multiply,
 * a division and the rounding per requantization per element.
 * The fast path needs what makes ta_nn_requant exact (no multiplier INT32_MIN) and the
 * shifts the reference's smaller-than-one requantization takes ([-31, 0]); anything else
 * runs the reference element.
 */
#ifndef TA_ADD_SIMD_H
#define TA_ADD_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/internal/ta_add_ref.h"
#include "tinyadapt/internal/ta_broadcast.h"
#include "tinyadapt/internal/ta_nn_simd.h"

typedef struct {
    ta_nn_requant_t q1, q2, qo;
    int32_t off1, off2, left, out_off, lo, hi;
} ta_add_fast_t;

static inline int ta_add_fast_make(const ta_add_params_t *p, ta_add_fast_t *f)
{
    const int32_t m[3] = {p->input1_multiplier, p->input2_multiplier, p->output_multiplier};
    const int32_t s[3] = {p->input1_shift, p->input2_shift, p->output_shift};
    for (int i = 0; i < 3; ++i) {
        if (m[i] == INT32_MIN || s[i] < -31 || s[i] > 0) {
            return 0;
        }
    }
    if (p->left_shift < 0 || p->left_shift > 22) {
        return 0;
    }
    f->q1 = ta_nn_requant_make(m[0], s[0]);
    f->q2 = ta_nn_requant_make(m[1], s[1]);
    f->qo = ta_nn_requant_make(m[2], s[2]);
    f->off1 = p->input1_offset;
    f->off2 = p->input2_offset;
    f->left = p->left_shift;
    f->out_off = p->output_offset;
    f->lo = p->act_min;
    f->hi = p->act_max;
    return 1;
}

static inline int8_t ta_add_fast_one(const ta_add_fast_t *f, int32_t x, int32_t y, const int sub)
{
    /* as the reference: (x + offset) * 2^left with |x + offset| <= 255 and left <= 22 */
    const int32_t ra = ta_nn_requant((int32_t)((uint32_t)(x + f->off1) << f->left), &f->q1);
    const int32_t rb = ta_nn_requant((int32_t)((uint32_t)(y + f->off2) << f->left), &f->q2);
    const int32_t v = ta_nn_requant(sub ? ra - rb : ra + rb, &f->qo) + f->out_off;
    return (int8_t)ta_nn_clamp(v, f->lo, f->hi);
}

/* The whole ADD (sub = 0) or SUB (sub = 1), a constant at each call. Rows whose inputs
 * both advance one element at a time (same shapes: the residual ADDs of MobileNets) walk
 * plain pointers. */
static TA_NN_ALWAYS_INLINE ta_status_t ta_add_sub_run(const ta_add_params_t *p, int32_t ndim1, const int32_t *dims1,
                                                      const int8_t *input1, int32_t ndim2, const int32_t *dims2,
                                                      const int8_t *input2, int32_t ndim_out,
                                                      const int32_t *dims_out, int8_t *output, const int sub)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TA_ERR_ARG;
    }
    ta_broadcast_iter_t it;
    TA_TRY(ta_broadcast_iter_init(&it, ndim1, dims1, ndim2, dims2, ndim_out, dims_out));
    ta_add_fast_t f;
    if (!ta_add_fast_make(p, &f)) {
        do {
            for (int32_t k = 0; k < it.row; ++k) {
                output[it.out + (size_t)k] = ta_add_sub_one_ref(p, input1[it.in1 + (size_t)k * it.step1],
                                                                input2[it.in2 + (size_t)k * it.step2], sub);
            }
        } while (ta_broadcast_next_row(&it));
        return TA_OK;
    }
    do {
        const int8_t *x = input1 + it.in1, *y = input2 + it.in2;
        int8_t *o = output + it.out;
        if (it.step1 == 1 && it.step2 == 1) {
            for (int32_t k = it.row; k > 0; --k) {
                *o++ = ta_add_fast_one(&f, *x++, *y++, sub);
            }
        } else {
            for (int32_t k = it.row; k > 0; --k, x += it.step1, y += it.step2) {
                *o++ = ta_add_fast_one(&f, *x, *y, sub);
            }
        }
    } while (ta_broadcast_next_row(&it));
    return TA_OK;
}

#endif /* TA_ADD_SIMD_H */
