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

/* The requantizations of the usual ADD: multipliers in [2^30, 2^31) (QuantizeMultiplier's
 * range: no left shift, k = 1; the larger input's is 2^30 with shift 0), on values within
 * +-2^30 (the inputs shifted by at most 22, and their requantized sum): the high multiply
 * (SMMLAR), then the rounding divide by 2^e, e >= 1, as floor((hm - [hm < 0] + 2^(e-1)) / 2^e)
 * (ta_nn_simd.h): the sign, the half and an arithmetic shift, which cannot overflow there. */
typedef struct {
    int32_t m2, half, right;
    int32_t sign; /* -1 to subtract [hm < 0] (a right shift), 0 for none (shift 0: hm as is) */
} ta_add_rq_t;

static inline int ta_add_rq_make(const ta_nn_requant_t *q, ta_add_rq_t *r)
{
    if (q->k != 1 || q->left != 0) {
        return 0;
    }
    r->m2 = q->m2;
    r->half = q->right > 0 ? (int32_t)(1u << (q->right - 1)) : 0;
    r->right = q->right;
    r->sign = q->right > 0 ? -1 : 0;
    return 1;
}

static inline int32_t ta_add_rq(int32_t x, const ta_add_rq_t *r)
{
    const int32_t hm = ta_nn_smmlar(x, r->m2, x);
    return (hm + ((hm >> 31) & r->sign) + r->half) >> r->right;
}

/* One output, saturated to int8 (the activation bounds, within int8, come after). */
static TA_NN_ALWAYS_INLINE int32_t ta_add_rq_elem(const ta_add_rq_t rq[3], const ta_add_fast_t *f, int32_t x,
                                                  int32_t y, const int sub)
{
    const int32_t ra = ta_add_rq((int32_t)((uint32_t)(x + f->off1) << f->left), &rq[0]);
    const int32_t rb = ta_add_rq((int32_t)((uint32_t)(y + f->off2) << f->left), &rq[1]);
    return ta_nn_ssat8(ta_add_rq(sub ? ra - rb : ra + rb, &rq[2]) + f->out_off);
}

/* Four outputs from four element pairs (same shapes, a row of at least 4). */
static TA_NN_ALWAYS_INLINE void ta_add_rq_four(const ta_add_rq_t rq[3], const ta_add_fast_t *f, const int8_t *x, const int8_t *y,
                                  int8_t *o, int32_t lo4, int32_t hi4, const int sub)
{
    const int32_t v0 = ta_add_rq_elem(rq, f, x[0], y[0], sub), v1 = ta_add_rq_elem(rq, f, x[1], y[1], sub);
    const int32_t v2 = ta_add_rq_elem(rq, f, x[2], y[2], sub), v3 = ta_add_rq_elem(rq, f, x[3], y[3], sub);
    ta_nn_write_s8x4(o, ta_nn_min_s8x4(ta_nn_max_s8x4(ta_nn_pack_s8x4(v0, v1, v2, v3), lo4), hi4));
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
    ta_add_rq_t rq[3];
    const int rq_ok = ta_add_rq_make(&f.q1, &rq[0]) && ta_add_rq_make(&f.q2, &rq[1]) && ta_add_rq_make(&f.qo, &rq[2]);
    const int32_t lo4 = ta_nn_dup8(f.lo), hi4 = ta_nn_dup8(f.hi);
    do {
        const int8_t *x = input1 + it.in1, *y = input2 + it.in2;
        int8_t *o = output + it.out;
        if (it.step1 == 1 && it.step2 == 1) {
            int32_t k = it.row;
            if (rq_ok) {
                for (; k >= 4; k -= 4, x += 4, y += 4, o += 4) {
                    ta_add_rq_four(rq, &f, x, y, o, lo4, hi4, sub);
                }
            }
            for (; k > 0; --k) {
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
