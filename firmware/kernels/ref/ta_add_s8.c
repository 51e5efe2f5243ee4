#include "tinyadapt/ops/ta_add.h"

#include <stddef.h>

#include "tinyadapt/internal/ta_broadcast.h"
#include "tinyadapt/internal/ta_add_ref.h"

ta_status_t ta_add_s8(const ta_add_params_t *p, int32_t ndim1, const int32_t *dims1, const int8_t *input1,
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
                ta_add_sub_one_ref(p, input1[it.in1 + (size_t)k * it.step1], input2[it.in2 + (size_t)k * it.step2], 0);
        }
    } while (ta_broadcast_next_row(&it));
    return TA_OK;
}
