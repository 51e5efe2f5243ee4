#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_mul.h"
#include "tinyadapt/ta_op.h"

#include "ta_elementwise_common.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_binary_check_io(call));
    const ta_mul_params_t *p = (const ta_mul_params_t *)call->params;
    TA_ENSURE(ta_nn_valid_input_offset(p->input1_offset) && ta_nn_valid_input_offset(p->input2_offset) &&
                  ta_nn_valid_output_offset(p->output_offset) && ta_nn_valid_act_range(p->act_min, p->act_max) &&
                  ta_nn_valid_requant(p->output_multiplier, p->output_shift),
              TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in1 = TA_IN(call, 0);
    const ta_tensor_rec_t *in2 = TA_IN(call, 1);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    return ta_mul_s8((const ta_mul_params_t *)call->params, in1->ndim, in1->dims,
                     (const int8_t *)call->inputs[0].data, in2->ndim, in2->dims,
                     (const int8_t *)call->inputs[1].data, out->ndim, out->dims, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_mul = {
    .opcode = TA_OP_MUL,
    .name = "MUL",
    .min_inputs = 2,
    .max_inputs = 2,
    .n_outputs = 1,
    .params_size = sizeof(ta_mul_params_t),
    .prepare = prepare,
    .eval = eval,
    .pointwise = 1,
};
