#include "tinyadapt/ops/ta_fully_connected.h"

#include "tinyadapt/internal/ta_fc_ref.h"

/* The reference loop's arithmetic for the listed output channels, their weights read from
 * `rows`. */
ta_status_t ta_fully_connected_rows_s8(const ta_fc_params_t *p, int32_t batches, int32_t in_depth, int32_t out_depth,
                                       const int8_t *input, int32_t n, const int32_t *channels, const int8_t *rows,
                                       const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                                       int8_t *output)
{
    if (!ta_fc_kernel_args_ok(p, batches, in_depth, out_depth, input, rows, multiplier, shift, output) ||
        channels == NULL || n < 0 || n > out_depth) {
        return TA_ERR_ARG;
    }
    for (int32_t k = 0; k < n; ++k) {
        if (channels[k] < 0 || channels[k] >= out_depth) {
            return TA_ERR_ARG;
        }
    }
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *x = input + (size_t)b * in_depth;
        for (int32_t k = 0; k < n; ++k) {
            const int32_t o = channels[k];
            const int8_t *w = rows + (size_t)k * in_depth;
            uint32_t acc = 0;
            for (int32_t d = 0; d < in_depth; ++d) {
                acc += (uint32_t)((int32_t)w[d] + p->filter_offset) * (uint32_t)((int32_t)x[d] + p->input_offset);
            }
            int32_t v = (int32_t)acc;
            if (bias != NULL) {
                v = ta_nn_add_wrap(v, bias[o]);
            }
            v = ta_nn_add_wrap(ta_nn_requantize(v, multiplier[o], shift[o]), p->output_offset);
            output[(size_t)b * out_depth + o] = (int8_t)ta_nn_clamp(v, p->act_min, p->act_max);
        }
    }
    return TA_OK;
}
