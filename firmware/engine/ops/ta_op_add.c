#include "tinyadapt/ops/ta_add.h"
#include "tinyadapt/ta_op.h"

#include "ta_elementwise_common.h"

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_add_sub_eval(call, ta_add_s8);
}

const ta_op_kernel_t ta_op_add = {
    .opcode = TA_OP_ADD,
    .name = "ADD",
    .min_inputs = 2,
    .max_inputs = 2,
    .n_outputs = 1,
    .params_size = sizeof(ta_add_params_t),
    .prepare = ta_add_sub_prepare,
    .eval = eval,
    .pointwise = 1,
};
