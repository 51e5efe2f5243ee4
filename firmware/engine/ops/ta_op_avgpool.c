#include "tinyadapt/ops/ta_avgpool.h"
#include "tinyadapt/ta_op.h"

#include "ta_pool_common.h"

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_pool_eval(call, ta_avgpool_s8);
}

static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out)
{
    return ta_pool_eval_region(call, in, out, eval);
}

const ta_op_kernel_t ta_op_avgpool = {
    .opcode = TA_OP_AVERAGE_POOL_2D,
    .name = "AVERAGE_POOL_2D",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_avgpool_params_t),
    .prepare = ta_pool_prepare,
    .eval = eval,
    .eval_region = eval_region,
};
