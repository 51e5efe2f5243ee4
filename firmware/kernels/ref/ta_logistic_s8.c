#include "tinyadapt/ops/ta_logistic.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint_exp.h"

enum {
    INPUT_INTEGER_BITS = 4,  /* the input is rescaled into Q4.27: [-16, 16) */
    OUTPUT_INTEGER_BITS = 8  /* Q0 probability -> 8 fractional bits (1/256 output scale) */
};

ta_status_t ta_logistic_s8(const ta_logistic_params_t *p, int32_t n, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || n <= 0 || p->input_range_radius < 0 ||
        p->input_left_shift < -31 || p->input_left_shift > 31) {
        return TA_ERR_ARG;
    }
    for (int32_t i = 0; i < n; ++i) {
        const int32_t x = (int32_t)input[i] + p->input_offset;
        int32_t q;
        if (x <= -p->input_range_radius) {
            q = INT8_MIN;
        } else if (x >= p->input_range_radius) {
            q = INT8_MAX;
        } else {
            const int32_t x_q4 = ta_nn_requantize(x, p->input_multiplier, p->input_left_shift);
            const int32_t y_q0 = ta_fx_logistic(x_q4, INPUT_INTEGER_BITS);
            q = ta_nn_rounding_divide_by_pot(y_q0, 31 - OUTPUT_INTEGER_BITS) + INT8_MIN;
            q = ta_nn_clamp(q, INT8_MIN, INT8_MAX);
        }
        output[i] = (int8_t)q;
    }
    return TA_OK;
}
