#include "tinyadapt/ops/ta_softmax.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint_exp.h"

enum {
    SCALED_DIFF_INTEGER_BITS = 5,  /* x - max is rescaled into Q5.26: differences down to -32 */
    ACCUMULATION_INTEGER_BITS = 12 /* the sum of exps is accumulated in Q12.19 */
};

/* exp(beta * input_scale * diff) in Q0 for diff = x - max >= diff_min. */
static int32_t exp_of_diff(const ta_softmax_params_t *p, int32_t diff)
{
    const int32_t scaled = ta_nn_requantize_greater_than_one(diff, p->input_multiplier, p->input_left_shift);
    return ta_fx_exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS);
}

ta_status_t ta_softmax_s8(const ta_softmax_params_t *p, int32_t rows, int32_t depth, const int8_t *input,
                          int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || rows <= 0 || depth <= 0 || p->input_left_shift < 0 ||
        p->input_left_shift > 31) {
        return TA_ERR_ARG;
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *in = input + (size_t)r * depth;
        int8_t *out = output + (size_t)r * depth;

        int32_t max_in_row = INT8_MIN;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }

        /* Wrapping like TFLM's int32 sum: it only wraps for rows of 4096+ near-maximal values. */
        int32_t sum_of_exps = 0;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= p->diff_min) {
                sum_of_exps = ta_fx_add(sum_of_exps, ta_fx_rescale(exp_of_diff(p, diff), 0,
                                                                   ACCUMULATION_INTEGER_BITS));
            }
        }

        int num_bits_over_unit;
        const int32_t reciprocal =
            ta_fx_get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
        /* exp / sum in Q0 is shifted down to 8 fractional bits (1/256 output scale). */
        const int exponent = num_bits_over_unit + 31 - 8;

        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            int32_t q = INT8_MIN;
            /* exponent > 31 means the sum of exps is >= 512, so every probability is
             * below half an output step: TFLM aborts (TFLITE_CHECK) here, the wide
             * shift of its formula gives 0, which is what we return. */
            if (diff >= p->diff_min && exponent <= 31) {
                const int32_t prob = ta_fx_mul(reciprocal, exp_of_diff(p, diff));
                q = ta_nn_clamp(ta_nn_rounding_divide_by_pot(prob, exponent) + INT8_MIN, INT8_MIN, INT8_MAX);
            }
            out[c] = (int8_t)q;
        }
    }
    return TA_OK;
}
