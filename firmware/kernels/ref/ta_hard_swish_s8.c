#include "tinyadapt/ops/ta_hard_swish.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint_exp.h"

ta_status_t ta_hard_swish_s8(const ta_hard_swish_params_t *p, int32_t n, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || n <= 0 || p->reluish_exponent < -31 ||
        p->reluish_exponent > 31 || p->output_exponent < -31 || p->output_exponent > 0 ||
        p->reluish_multiplier < 0 || p->reluish_multiplier > INT16_MAX || p->output_multiplier < 0 ||
        p->output_multiplier > INT16_MAX) {
        return TA_ERR_ARG;
    }
    const int16_t reluish_multiplier = (int16_t)p->reluish_multiplier;
    const int16_t output_multiplier = (int16_t)p->output_multiplier;
    const int reluish_exponent = (int)p->reluish_exponent;
    for (int32_t i = 0; i < n; ++i) {
        /* |x - zp| <= 255, so x * 2^7 uses the int16 range without overflowing. */
        const int16_t x_hires = (int16_t)(((int32_t)input[i] + p->input_offset) * 128);
        /* x on the output scale, before the output shift: the result for x >= 3. */
        const int16_t x_preshift_output = ta_fx16_sat_rounding_doubling_high_mul(x_hires, output_multiplier);

        /* relu6(x + 3) / 6 as an int16 value in [0, 1]: first x on a scale where 3.0
         * is 32768, saturating; the left shift is split so that only the last bit of
         * it can saturate after the multiply (TFLM's order, which decides rounding). */
        int16_t reluish = x_hires;
        if (reluish_exponent > 0) {
            reluish = ta_fx16_sat_left_shift(reluish, reluish_exponent - 1);
        }
        reluish = ta_fx16_sat_rounding_doubling_high_mul(reluish, reluish_multiplier);
        if (reluish_exponent > 0) {
            reluish = ta_fx16_sat_left_shift(reluish, 1);
        }
        if (reluish_exponent < 0) {
            reluish = ta_fx16_rounding_divide_by_pot(reluish, -reluish_exponent);
        }
        reluish = (int16_t)(((int32_t)reluish + 32768) >> 1); /* [-1, 1] -> [0, 1] */

        /* Truncating multiply: TFLM uses it to cancel the rounding bias of the one above. */
        const int16_t preshift = ta_fx16_sat_doubling_high_mul(reluish, x_preshift_output);
        const int16_t shifted = ta_fx16_rounding_divide_by_pot(preshift, -(int)p->output_exponent);
        const int32_t q = ta_fx16_wrap((int32_t)shifted + p->output_offset);
        output[i] = (int8_t)ta_nn_clamp(q, INT8_MIN, INT8_MAX);
    }
    return TA_OK;
}
