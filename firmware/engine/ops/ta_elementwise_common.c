#include "ta_elementwise_common.h"

#include "tinyadapt/internal/ta_broadcast.h"
#include "tinyadapt/internal/ta_op_check.h"

ta_status_t ta_unary_check_io(const ta_op_call_t *call, ta_dtype_t in_dtype, ta_dtype_t out_dtype)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == in_dtype && out->dtype == out_dtype, TA_ERR_UNSUPPORTED);
    TA_ENSURE(ta_tensor_elems(in) == ta_tensor_elems(out), TA_ERR_SHAPE);
    return TA_OK;
}

ta_status_t ta_binary_check_io(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in1 = TA_IN(call, 0);
    const ta_tensor_rec_t *in2 = TA_IN(call, 1);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in1 != NULL && in2 != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in1->dtype == TA_DTYPE_INT8 && in2->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8,
              TA_ERR_UNSUPPORTED);
    ta_broadcast_t bc;
    TA_ENSURE(ta_broadcast_init(&bc, in1->ndim, in1->dims, in2->ndim, in2->dims, out->ndim, out->dims) == TA_OK,
              TA_ERR_SHAPE);
    return TA_OK;
}

/* A multiplier below one, as QuantizeMultiplierSmallerThanOneExp makes it. */
static int valid_smaller_than_one(int32_t multiplier, int32_t shift)
{
    return multiplier >= 0 && shift >= -31 && shift <= 0;
}

ta_status_t ta_add_sub_prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_binary_check_io(call));
    const ta_add_params_t *p = (const ta_add_params_t *)call->params;
    TA_ENSURE(ta_nn_valid_input_offset(p->input1_offset) && ta_nn_valid_input_offset(p->input2_offset) &&
                  ta_nn_valid_output_offset(p->output_offset) && ta_nn_valid_act_range(p->act_min, p->act_max),
              TA_ERR_CORRUPT);
    /* 255 << 22, rescaled by multipliers below one, keeps the sum or difference of two inside int32. */
    TA_ENSURE(p->left_shift >= 0 && p->left_shift <= 22, TA_ERR_CORRUPT);
    TA_ENSURE(valid_smaller_than_one(p->input1_multiplier, p->input1_shift) &&
                  valid_smaller_than_one(p->input2_multiplier, p->input2_shift) &&
                  valid_smaller_than_one(p->output_multiplier, p->output_shift),
              TA_ERR_CORRUPT);
    return TA_OK;
}

ta_status_t ta_add_sub_eval(const ta_op_call_t *call, ta_add_sub_kernel_t kernel)
{
    const ta_tensor_rec_t *in1 = TA_IN(call, 0);
    const ta_tensor_rec_t *in2 = TA_IN(call, 1);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    return kernel((const ta_add_params_t *)call->params, in1->ndim, in1->dims, (const int8_t *)call->inputs[0].data,
                  in2->ndim, in2->dims, (const int8_t *)call->inputs[1].data, out->ndim, out->dims,
                  (int8_t *)call->outputs[0].data);
}
