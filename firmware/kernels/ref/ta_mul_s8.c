#include "tinyadapt/ops/ta_mul.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_broadcast.h"
#include "tinyadapt/internal/ta_fixedpoint.h"

static int8_t mul_one(const ta_mul_params_t *p, int8_t x, int8_t y)
{
    /* Each factor is within +-255, so the product fits easily. */
    const int32_t prod = (x + p->input1_offset) * (y + p->input2_offset);
    /* Wrapping add: with a huge left shift the rescaled product can sit at the int32 edge. */
    const int32_t out = ta_nn_add_wrap(ta_nn_requantize(prod, p->output_multiplier, p->output_shift), p->output_offset);
    return (int8_t)ta_nn_clamp(out, p->act_min, p->act_max);
}

ta_status_t ta_mul_s8(const ta_mul_params_t *p, int32_t ndim1, const int32_t *dims1, const int8_t *input1,
                      int32_t ndim2, const int32_t *dims2, const int8_t *input2, int32_t ndim_out,
                      const int32_t *dims_out, int8_t *output)
{
    if (p == NULL || input1 == NULL || input2 == NULL || output == NULL) {
        return TA_ERR_ARG;
    }
    ta_broadcast_iter_t it;
    TA_TRY(ta_broadcast_iter_init(&it, ndim1, dims1, ndim2, dims2, ndim_out, dims_out));
    do {
        for (int32_t k = 0; k < it.row; ++k) {
            output[it.out + (size_t)k] =
                mul_one(p, input1[it.in1 + (size_t)k * it.step1], input2[it.in2 + (size_t)k * it.step2]);
        }
    } while (ta_broadcast_next_row(&it));
    return TA_OK;
}
