#include "tinyadapt/ops/ta_requantize.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint.h"

ta_status_t ta_requantize_s8(const ta_requantize_params_t *p, int32_t size, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || size <= 0) {
        return TA_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = (int32_t)input[i] - p->input_zero_point;
        const int32_t y = ta_nn_add_wrap(ta_nn_requantize(x, p->multiplier, p->shift), p->output_zero_point);
        output[i] = (int8_t)ta_nn_clamp(y, -128, 127);
    }
    return TA_OK;
}
