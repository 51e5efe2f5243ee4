#include "tinyadapt/ops/ta_requantize.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_requantize_ref.h"

ta_status_t ta_requantize_s8(const ta_requantize_params_t *p, int32_t size, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || size <= 0) {
        return TA_ERR_ARG;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = ta_requantize_one((int32_t)input[i], p);
    }
    return TA_OK;
}
