#include "tinyadapt/ops/ta_mean.h"

#include "tinyadapt/internal/ta_mean_ref.h"

ta_status_t ta_mean_s8(const ta_mean_params_t *p, const int32_t *in_dims, const int8_t *input, int8_t *output)
{
    if (!ta_mean_kernel_args_ok(p, in_dims, input, output)) {
        return TA_ERR_ARG;
    }
    return ta_mean_ref_loop(p, in_dims, input, output);
}
