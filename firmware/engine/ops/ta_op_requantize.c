#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_requantize.h"
#include "tinyadapt/ta_op.h"

#include "ta_elementwise_common.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    TA_ENSURE(in != NULL, TA_ERR_CORRUPT);
    /* A uint8 input is a camera frame turned into the model's int8 (TFLite's QUANTIZE uint8 -> int8). */
    const int from_u8 = in->dtype == TA_DTYPE_UINT8;
    TA_TRY(ta_unary_check_io(call, from_u8 ? TA_DTYPE_UINT8 : TA_DTYPE_INT8, TA_DTYPE_INT8));
    const ta_requantize_params_t *p = (const ta_requantize_params_t *)call->params;
    const int in_zp_ok = from_u8 ? (p->input_zero_point >= 0 && p->input_zero_point <= 255)
                                 : ta_nn_valid_output_offset(p->input_zero_point);
    TA_ENSURE(in_zp_ok && ta_nn_valid_output_offset(p->output_zero_point) &&
                  ta_nn_valid_requant(p->multiplier, p->shift),
              TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_requantize_params_t *p = (const ta_requantize_params_t *)call->params;
    const int32_t n = ta_tensor_elems(TA_IN(call, 0));
    if (TA_IN(call, 0)->dtype == TA_DTYPE_UINT8) {
        return ta_requantize_u8_s8(p, n, (const uint8_t *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
    }
    return ta_requantize_s8(p, n, (const int8_t *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
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
