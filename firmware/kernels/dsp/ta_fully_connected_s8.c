/*
 * FULLY_CONNECTED int8 for cores with the DSP extension (Cortex-M4/M7): the same
 * function, arguments, checks and output bits as kernels/ref/ta_fully_connected_s8.c,
 * which stays the specification.
 *
 * Each output is a dot product of the input row with a filter row: two filter rows at a
 * time share every extended input word (SMLAD on sign-extended int8 pairs, the input
 * offset added by SXTAB16 for free), two input rows too when there are several batches.
 * A filter zero point (rare: TFLite int8 weights are symmetric) is taken out of the loop:
 * sum (w + fo)(x + io) = sum w (x + io) + fo * sum (x + io), equal mod 2^32, and int32
 * sums wrap, so the bits are the reference's (tinyadapt/internal/ta_nn_simd.h).
 */
#include "tinyadapt/ops/ta_fully_connected.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fc_ref.h"
#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/internal/ta_nn_simd.h"

typedef struct {
    int32_t output_offset, act_min, act_max;
} fc_out_t;

static inline int8_t fc_finish(int32_t acc, const ta_nn_requant_t *q, const fc_out_t *o)
{
    const int32_t v = ta_nn_add_wrap(ta_nn_requant(acc, q), o->output_offset);
    return (int8_t)ta_nn_clamp(v, o->act_min, o->act_max);
}

/* sum (x + io) over a row, mod 2^32 */
static int32_t fc_row_sum(const int8_t *row, int32_t n, int32_t io)
{
    return ta_nn_mla_wrap(io, n, ta_nn_sum_s8(row, n));
}

static void fc_fast(const ta_fc_params_t *p, int32_t batches, int32_t in_depth, int32_t out_depth,
                    const int8_t *input, const int8_t *filter, const int32_t *bias, const int32_t *multiplier,
                    const int32_t *shift, int8_t *output)
{
    const fc_out_t o = {p->output_offset, p->act_min, p->act_max};
    const int32_t io = p->input_offset, fo = p->filter_offset;
    const size_t n = (size_t)in_depth;
    int32_t b = 0;
    for (; b + 1 < batches; b += 2) {
        const int8_t *xa = input + (size_t)b * n, *xb = xa + n;
        const int32_t fa = fo != 0 ? fc_row_sum(xa, in_depth, io) : 0;
        const int32_t fb = fo != 0 ? fc_row_sum(xb, in_depth, io) : 0;
        int8_t *out_a = output + (size_t)b * (size_t)out_depth, *out_b = out_a + out_depth;
        for (int32_t oc = 0; oc < out_depth; oc += 2) {
            const int32_t oc2 = oc + 1 < out_depth ? oc + 1 : oc; /* an odd last row pairs with itself */
            const int32_t b0 = bias != NULL ? bias[oc] : 0, b1 = bias != NULL ? bias[oc2] : 0;
            int32_t acc[4];
            acc[0] = ta_nn_mla_wrap(fo, fa, b0);
            acc[1] = ta_nn_mla_wrap(fo, fa, b1);
            acc[2] = ta_nn_mla_wrap(fo, fb, b0);
            acc[3] = ta_nn_mla_wrap(fo, fb, b1);
            ta_nn_dot_2x2_s8(xa, xb, filter + (size_t)oc * n, filter + (size_t)oc2 * n, in_depth, io, acc);
            const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
            out_a[oc] = fc_finish(acc[0], &qa, &o);
            out_b[oc] = fc_finish(acc[2], &qa, &o);
            if (oc2 != oc) {
                const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[oc2], shift[oc2]);
                out_a[oc2] = fc_finish(acc[1], &qb, &o);
                out_b[oc2] = fc_finish(acc[3], &qb, &o);
            }
        }
    }
    for (; b < batches; ++b) {
        const int8_t *x = input + (size_t)b * n;
        const int32_t fx = fo != 0 ? fc_row_sum(x, in_depth, io) : 0;
        int8_t *out = output + (size_t)b * (size_t)out_depth;
        int32_t oc = 0;
        for (; oc + 1 < out_depth; oc += 2) {
            int32_t acc[2];
            acc[0] = ta_nn_mla_wrap(fo, fx, bias != NULL ? bias[oc] : 0);
            acc[1] = ta_nn_mla_wrap(fo, fx, bias != NULL ? bias[oc + 1] : 0);
            ta_nn_dot_1x2_s8(x, filter + (size_t)oc * n, filter + (size_t)(oc + 1) * n, in_depth, io, acc);
            const ta_nn_requant_t qa = ta_nn_requant_make(multiplier[oc], shift[oc]);
            const ta_nn_requant_t qb = ta_nn_requant_make(multiplier[oc + 1], shift[oc + 1]);
            out[oc] = fc_finish(acc[0], &qa, &o);
            out[oc + 1] = fc_finish(acc[1], &qb, &o);
        }
        if (oc < out_depth) {
            const int32_t acc = ta_nn_dot_1x1_s8(x, filter + (size_t)oc * n, in_depth, io,
                                                 ta_nn_mla_wrap(fo, fx, bias != NULL ? bias[oc] : 0));
            const ta_nn_requant_t q = ta_nn_requant_make(multiplier[oc], shift[oc]);
            out[oc] = fc_finish(acc, &q, &o);
        }
    }
}

ta_status_t ta_fully_connected_s8(const ta_fc_params_t *p, int32_t batches, int32_t in_depth,
                                  int32_t out_depth, const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, const int32_t *multiplier,
                                  const int32_t *shift, int8_t *output)
{
    if (!ta_fc_kernel_args_ok(p, batches, in_depth, out_depth, input, filter, multiplier, shift, output)) {
        return TA_ERR_ARG;
    }
    /* The fast path's own preconditions, which the reference does not need: every x + io
     * within the int16 lanes of SXTAB16, and requantization parameters it can take (the
     * engine's prepare already guarantees both; a direct caller may not). */
    if (p->input_offset >= -32640 && p->input_offset <= 32640 &&
        ta_nn_requant_fast_ok(multiplier, shift, out_depth)) {
        fc_fast(p, batches, in_depth, out_depth, input, filter, bias, multiplier, shift, output);
    } else {
        ta_fc_ref_loop(p, batches, in_depth, out_depth, input, filter, bias, multiplier, shift, output);
    }
    return TA_OK;
}
