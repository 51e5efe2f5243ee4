#include "tinyadapt/ops/ta_softmax.h"
#include "tinyadapt/ta_op.h"

static int same_shape(const ta_tensor_rec_t *a, const ta_tensor_rec_t *b)
{
    if (a->ndim != b->ndim) {
        return 0;
    }
    for (int i = 0; i < a->ndim; ++i) {
        if (a->dims[i] != b->dims[i]) {
            return 0;
        }
    }
    return 1;
}

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
    TA_ENSURE(in->ndim >= 1 && same_shape(in, out), TA_ERR_SHAPE);
    /* The kernel writes probabilities in steps of 1/256 from -128: the only int8 output TFLM allows. */
    TA_ENSURE(out->zero_point == -128 && out->scale == 1.0f / 256.0f, TA_ERR_UNSUPPORTED);
    const ta_softmax_params_t *p = (const ta_softmax_params_t *)call->params;
    TA_ENSURE(p->input_multiplier > 0 && p->input_left_shift >= 0 && p->input_left_shift <= 31, TA_ERR_CORRUPT);
    /* diff_min bounds every rescaled difference to Q5.26, so the left shift cannot overflow. */
    TA_ENSURE(p->diff_min == -((31 << 26) >> p->input_left_shift), TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const int32_t depth = ta_tensor_dim_r(in, 0);
    return ta_softmax_s8((const ta_softmax_params_t *)call->params, ta_tensor_elems(in) / depth, depth,
                         (const int8_t *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_softmax = {
    .opcode = TA_OP_SOFTMAX,
    .name = "SOFTMAX",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_softmax_params_t),
    .prepare = prepare,
    .eval = eval,
};
