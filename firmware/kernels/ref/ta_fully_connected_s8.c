#include "tinyadapt/ops/ta_fully_connected.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_fixedpoint.h"

ta_status_t ta_fully_connected_s8(const ta_fc_params_t *p, int32_t batches, int32_t in_depth,
                                  int32_t out_depth, const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, const int32_t *multiplier,
                                  const int32_t *shift, int8_t *output)
{
    if (p == NULL || input == NULL || filter == NULL || multiplier == NULL || shift == NULL ||
        output == NULL || batches <= 0 || in_depth <= 0 || out_depth <= 0) {
        return TA_ERR_ARG;
    }
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *row = input + (size_t)b * in_depth;
        for (int32_t o = 0; o < out_depth; ++o) {
            const int8_t *w = filter + (size_t)o * in_depth;
            int32_t acc = 0;
            for (int32_t d = 0; d < in_depth; ++d) {
                acc += ((int32_t)w[d] + p->filter_offset) * ((int32_t)row[d] + p->input_offset);
            }
            if (bias != NULL) {
                acc = ta_nn_add_wrap(acc, bias[o]);
            }
            acc = ta_nn_add_wrap(ta_nn_requantize(acc, multiplier[o], shift[o]), p->output_offset);
            output[(size_t)b * out_depth + o] = (int8_t)ta_nn_clamp(acc, p->act_min, p->act_max);
        }
    }
    return TA_OK;
}
