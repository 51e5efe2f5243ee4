/* The convolutions' kernel scratch sizes (layouts: tinyadapt/internal/ta_conv_scratch.h),
 * for the ops' prepare step and, through the host library, for checking the host planner. */
#include "tinyadapt/internal/ta_conv_scratch.h"
#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ops/ta_depthwise_conv2d.h"

uint32_t ta_conv2d_s8_scratch_size(const ta_conv_params_t *p, const ta_dims_t *in_dims, const ta_dims_t *filter_dims,
                                   const ta_dims_t *out_dims)
{
    return (uint32_t)ta_conv_scratch_layout(p, in_dims, filter_dims, out_dims).total;
}

uint32_t ta_depthwise_conv2d_s8_scratch_size(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                             const ta_dims_t *filter_dims, const ta_dims_t *out_dims)
{
    return (uint32_t)ta_dw_scratch_layout(p, in_dims, filter_dims, out_dims).total;
}

uint32_t ta_depthwise_conv2d_inplace_s8_scratch_size(const ta_conv_params_t *p, const ta_dims_t *in_dims,
                                                     const ta_dims_t *filter_dims, const ta_dims_t *out_dims)
{
    const int64_t total = ta_dwi_scratch_layout(p, in_dims, filter_dims, out_dims).total;
    return total > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}
