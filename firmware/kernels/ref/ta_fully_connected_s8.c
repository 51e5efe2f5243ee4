#include "tinyadapt/ops/ta_fully_connected.h"

#include "tinyadapt/internal/ta_fc_ref.h"

ta_status_t ta_fully_connected_s8(const ta_fc_params_t *p, int32_t batches, int32_t in_depth,
                                  int32_t out_depth, const int8_t *input, const int8_t *filter,
                                  const int32_t *bias, const int32_t *multiplier,
                                  const int32_t *shift, int8_t *output)
{
    if (!ta_fc_kernel_args_ok(p, batches, in_depth, out_depth, input, filter, multiplier, shift, output)) {
        return TA_ERR_ARG;
    }
    ta_fc_ref_loop(p, batches, in_depth, out_depth, input, filter, bias, multiplier, shift, output);
    return TA_OK;
}
