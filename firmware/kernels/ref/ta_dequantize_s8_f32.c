#include "tinyadapt/ops/ta_dequantize.h"

#include <stddef.h>
#include <string.h>

ta_status_t ta_dequantize_s8_f32(const ta_dequantize_params_t *p, int32_t size, const int8_t *input,
                                 float *output)
{
    if (p == NULL || input == NULL || output == NULL || size <= 0) {
        return TA_ERR_ARG;
    }
    float scale;
    memcpy(&scale, &p->scale_bits, sizeof(scale));
    for (int32_t i = 0; i < size; ++i) {
        /* One float32 rounding, the same as TFLM's exact double product cast to float (see the header). */
        output[i] = scale * (float)((int32_t)input[i] - p->zero_point);
    }
    return TA_OK;
}
