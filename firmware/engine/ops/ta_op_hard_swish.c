#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_hard_swish.h"
#include "tinyadapt/ta_op.h"

#include "ta_elementwise_common.h"

static int valid_q15(int32_t m)
{
    return m >= 0 && m <= INT16_MAX;
}

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_unary_check_io(call, TA_DTYPE_INT8, TA_DTYPE_INT8));
    const ta_hard_swish_params_t *p = (const ta_hard_swish_params_t *)call->params;
    TA_ENSURE(ta_nn_valid_input_offset(p->input_offset) && ta_nn_valid_output_offset(p->output_offset) &&
                  valid_q15(p->reluish_multiplier) && valid_q15(p->output_multiplier) &&
                  p->reluish_exponent >= -31 && p->reluish_exponent <= 31 && p->output_exponent >= -31 &&
                  p->output_exponent <= 0,
              TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_hard_swish_s8((const ta_hard_swish_params_t *)call->params, ta_tensor_elems(TA_IN(call, 0)),
                            (const int8_t *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_hard_swish = {
    .opcode = TA_OP_HARD_SWISH,
    .name = "HARD_SWISH",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_hard_swish_params_t),
    .prepare = prepare,
    .eval = eval,
    .pointwise = 1,
};
