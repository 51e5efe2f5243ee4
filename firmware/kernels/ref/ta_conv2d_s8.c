#include "tinyadapt/ops/ta_conv2d.h"

#include "tinyadapt/internal/ta_conv_ref.h"

ta_status_t ta_conv2d_s8(const ta_conv_params_t *p, const ta_dims_t *in_dims, const int8_t *input,
                         const ta_dims_t *filter_dims, const int8_t *filter, const int32_t *bias,
                         const int32_t *multiplier, const int32_t *shift, const ta_dims_t *out_dims,
                         int8_t *output, void *scratch, int32_t scratch_size)
{
    /* The reference loop works in registers: the scratch is the fast kernel's. */
    if (!ta_conv2d_kernel_args_ok(p, in_dims, input, filter_dims, filter, multiplier, shift, out_dims, output)) {
        return TA_ERR_ARG;
    }
    ta_conv2d_ref_loop(p, in_dims, input, filter_dims, filter, bias, multiplier, shift, out_dims, output);
    return TA_OK;
}
