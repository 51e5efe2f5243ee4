#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_logistic.h"
#include "tinyadapt/ta_op.h"

#include "ta_elementwise_common.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_unary_check_io(call, TA_DTYPE_INT8, TA_DTYPE_INT8));
    /* The kernel's output starts at -128 (TFLM requires that zero point). */
    TA_ENSURE(TA_OUT(call, 0)->zero_point == -128, TA_ERR_UNSUPPORTED);
    const ta_logistic_params_t *p = (const ta_logistic_params_t *)call->params;
    TA_ENSURE(ta_nn_valid_input_offset(p->input_offset) && p->input_range_radius >= 0 &&
                  ta_nn_valid_requant(p->input_multiplier, p->input_left_shift),
              TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_logistic_s8((const ta_logistic_params_t *)call->params, ta_tensor_elems(TA_IN(call, 0)),
                          (const int8_t *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_logistic = {
    .opcode = TA_OP_LOGISTIC,
    .name = "LOGISTIC",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_logistic_params_t),
    .prepare = prepare,
    .eval = eval,
    .pointwise = 1,
};
