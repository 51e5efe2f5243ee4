#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_requantize.h"
#include "tinyadapt/ta_op.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
    TA_ENSURE(ta_tensor_elems(in) == ta_tensor_elems(out), TA_ERR_SHAPE);
    const ta_requantize_params_t *p = (const ta_requantize_params_t *)call->params;
    TA_ENSURE(ta_nn_valid_output_offset(p->input_zero_point) && ta_nn_valid_output_offset(p->output_zero_point) &&
                  ta_nn_valid_requant(p->multiplier, p->shift),
              TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_requantize_s8((const ta_requantize_params_t *)call->params, ta_tensor_elems(TA_IN(call, 0)),
                            (const int8_t *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_requantize = {
    .opcode = TA_OP_REQUANTIZE,
    .name = "REQUANTIZE",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_requantize_params_t),
    .prepare = prepare,
    .eval = eval,
    .pointwise = 1,
};
