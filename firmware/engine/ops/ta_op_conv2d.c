#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ta_op.h"

#include "ta_conv_common.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    return ta_conv_prepare(call, TA_CONV_REGULAR);
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_conv_eval(call, ta_conv2d_s8);
}

static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out)
{
    return ta_conv_eval_region(call, in, out, eval);
}

const ta_op_kernel_t ta_op_conv2d = {
    .opcode = TA_OP_CONV_2D,
    .name = "CONV_2D",
    .min_inputs = 5,
    .max_inputs = 5,
    .n_outputs = 1,
    .params_size = sizeof(ta_conv_params_t),
    .prepare = prepare,
    .eval = eval,
    .eval_region = eval_region,
};
