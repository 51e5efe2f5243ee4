#include "tinyadapt/ops/ta_concat.h"

#include <stddef.h>
#include <string.h>

ta_status_t ta_concat_s8(int32_t n_inputs, const int8_t *const *inputs, const int32_t *inner, int32_t outer,
                         int8_t *output)
{
    if (inputs == NULL || inner == NULL || output == NULL || n_inputs <= 0 || outer <= 0) {
        return TA_ERR_ARG;
    }
    for (int32_t i = 0; i < n_inputs; ++i) {
        if (inputs[i] == NULL || inner[i] <= 0) {
            return TA_ERR_ARG;
        }
    }
    int8_t *out = output;
    for (int32_t o = 0; o < outer; ++o) {
        for (int32_t i = 0; i < n_inputs; ++i) {
            memcpy(out, inputs[i] + (size_t)o * (size_t)inner[i], (size_t)inner[i]);
            out += inner[i];
        }
    }
    return TA_OK;
}
