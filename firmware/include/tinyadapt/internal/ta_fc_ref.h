/*
 * The reference FULLY_CONNECTED: the kernel's argument checks and the plain loop that defines
 * its bits. kernels/ref/ is exactly this; kernels/dsp/ checks the same way and falls back to
 * this loop wherever its fast path does not apply.
 */
#ifndef TA_FC_REF_H
#define TA_FC_REF_H

#include <stddef.h>
#include <stdint.h>

#include "tinyadapt/internal/ta_fixedpoint.h"
#include "tinyadapt/ops/ta_fully_connected.h"

static inline int ta_fc_kernel_args_ok(const ta_fc_params_t *p, int32_t batches, int32_t in_depth, int32_t out_depth,
                                       const int8_t *input, const int8_t *filter, const int32_t *multiplier,
                                       const int32_t *shift, const int8_t *output)
{
    return p != NULL && input != NULL && filter != NULL && multiplier != NULL && shift != NULL && output != NULL &&
           batches > 0 && in_depth > 0 && out_depth > 0;
}

/* Arguments checked by ta_fc_kernel_args_ok. The sum wraps mod 2^32 (written out in uint32,
 * so a direct caller with a huge depth gets TFLM's bits, not undefined behaviour). */
static inline void ta_fc_ref_loop(const ta_fc_params_t *p, int32_t batches, int32_t in_depth, int32_t out_depth,
                                  const int8_t *input, const int8_t *filter, const int32_t *bias,
                                  const int32_t *multiplier, const int32_t *shift, int8_t *output)
{
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *row = input + (size_t)b * in_depth;
        for (int32_t o = 0; o < out_depth; ++o) {
            const int8_t *w = filter + (size_t)o * in_depth;
            uint32_t acc = 0;
            for (int32_t d = 0; d < in_depth; ++d) {
                acc += (uint32_t)((int32_t)w[d] + p->filter_offset) * (uint32_t)((int32_t)row[d] + p->input_offset);
            }
            int32_t v = (int32_t)acc;
            if (bias != NULL) {
                v = ta_nn_add_wrap(v, bias[o]);
            }
            v = ta_nn_add_wrap(ta_nn_requantize(v, multiplier[o], shift[o]), p->output_offset);
            output[(size_t)b * out_depth + o] = (int8_t)ta_nn_clamp(v, p->act_min, p->act_max);
        }
    }
}

#endif /* TA_FC_REF_H */
