#include "tinyadapt/ops/ta_requantize.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint.h"

/*
 * TFLM requantizes a uint8 input with the int8 formula (reference_ops::Requantize is a
 * template over the input type): only the zero point's range differs. With the converter's
 * uint8 input (same scale, zero point + 128) the multiplier is 2^30 with shift 1, which
 * MultiplyByQuantizedMultiplier maps exactly to x, so this is q - 128 then; the general path
 * stays for any other scale pair.
 */
ta_status_t ta_requantize_u8_s8(const ta_requantize_params_t *p, int32_t size, const uint8_t *input, int8_t *output)
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
