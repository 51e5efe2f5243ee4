#include "tinyadapt/ops/ta_depthwise_conv2d.h"
#include "tinyadapt/ta_op.h"

#include "ta_conv_common.h"

/* Output planned over the input: a tensor, or a patch tile's region buffer. (PATCH tensors have no
 * data outside the patch executor, so prepare never sees them as in place.) */
static int runs_in_place(const ta_op_call_t *call)
{
    return call->inputs[TA_CONV_INPUT].data != NULL && call->inputs[TA_CONV_INPUT].data == call->outputs[0].data;
}

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_conv_prepare(call, TA_CONV_DEPTHWISE));
    if (runs_in_place(call)) {
        const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
        const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
        const ta_conv_params_t *p = (const ta_conv_params_t *)call->params;
        /* The planner put the output over the input: only the one-plane-at-a-time kernel can do that. */
        const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
        TA_ENSURE(p->depth_multiplier == 1 && in_d.n == 1 && (int64_t)out_d.h * out_d.w <= (int64_t)in_d.h * in_d.w &&
                      call->scratch_size >= ta_depthwise_conv2d_inplace_s8_scratch_size(p, &in_d, &f_d, &out_d),
                  TA_ERR_CORRUPT);
    }
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    if (runs_in_place(call)) {
        const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
        const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
        const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
        return ta_depthwise_conv2d_inplace_s8((const ta_conv_params_t *)call->params, &in_d,
                                              (int8_t *)call->outputs[0].data, &f_d,
                                              (const int8_t *)call->inputs[TA_CONV_FILTER].data,
                                              (const int32_t *)call->inputs[TA_CONV_BIAS].data,
                                              (const int32_t *)call->inputs[TA_CONV_MULT].data,
                                              (const int32_t *)call->inputs[TA_CONV_SHIFT].data, &out_d,
                                              (int8_t *)call->scratch, (int32_t)call->scratch_size);
    }
    return ta_conv_eval(call, ta_depthwise_conv2d_s8);
}

static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out)
{
    return ta_conv_eval_region(call, in, out, eval);
}

const ta_op_kernel_t ta_op_depthwise_conv2d = {
    .opcode = TA_OP_DEPTHWISE_CONV_2D,
    .name = "DEPTHWISE_CONV_2D",
    .min_inputs = 5,
    .max_inputs = 5,
    .n_outputs = 1,
    .params_size = sizeof(ta_conv_params_t),
    .prepare = prepare,
    .eval = eval,
    .eval_region = eval_region,
};
