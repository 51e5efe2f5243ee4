#include "tinyadapt/ops/ta_concat.h"
#include "tinyadapt/ta_op.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(out != NULL && call->n_inputs >= 1, TA_ERR_CORRUPT);
    TA_ENSURE(out->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
    const ta_concat_params_t *p = (const ta_concat_params_t *)call->params;
    TA_ENSURE(p->axis >= 0 && p->axis < out->ndim, TA_ERR_CORRUPT);
    int64_t axis_total = 0;
    for (int i = 0; i < call->n_inputs; ++i) {
        const ta_tensor_rec_t *in = TA_IN(call, i);
        TA_ENSURE(in != NULL, TA_ERR_CORRUPT);
        TA_ENSURE(in->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
        TA_ENSURE(in->ndim == out->ndim, TA_ERR_SHAPE);
        for (int d = 0; d < out->ndim; ++d) {
            TA_ENSURE(d == p->axis || in->dims[d] == out->dims[d], TA_ERR_SHAPE);
        }
        axis_total += in->dims[p->axis];
    }
    TA_ENSURE(axis_total == out->dims[p->axis], TA_ERR_SHAPE);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_concat_params_t *p = (const ta_concat_params_t *)call->params;
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    int32_t outer = 1, after = 1;
    for (int d = 0; d < p->axis; ++d) {
        outer *= out->dims[d];
    }
    for (int d = p->axis + 1; d < out->ndim; ++d) {
        after *= out->dims[d];
    }
    const int8_t *inputs[TA_MAX_OP_INPUTS];
    int32_t inner[TA_MAX_OP_INPUTS];
    for (int i = 0; i < call->n_inputs; ++i) {
        inputs[i] = (const int8_t *)call->inputs[i].data;
        inner[i] = TA_IN(call, i)->dims[p->axis] * after;
    }
    return ta_concat_s8(call->n_inputs, inputs, inner, outer, (int8_t *)call->outputs[0].data);
}

/* In a patch stage: concatenation along channels of [1, H, W, C_i] maps, so that pixel
 * (y, x) of the output is pixel (y, x) of each input and rows can be joined one at a time. */
static ta_status_t prepare_region(const ta_op_call_t *call)
{
    const ta_concat_params_t *p = (const ta_concat_params_t *)call->params;
    TA_ENSURE(TA_OUT(call, 0)->ndim == 4 && p->axis == 3, TA_ERR_UNSUPPORTED);
    for (int i = 0; i < call->n_inputs; ++i) {
        TA_ENSURE(TA_IN(call, i)->kind != TA_TENSOR_CONST, TA_ERR_UNSUPPORTED);
    }
    return TA_OK;
}

const ta_op_kernel_t ta_op_concat = {
    .opcode = TA_OP_CONCATENATION,
    .name = "CONCATENATION",
    .min_inputs = 1,
    .max_inputs = TA_MAX_OP_INPUTS,
    .n_outputs = 1,
    .params_size = sizeof(ta_concat_params_t),
    .prepare = prepare,
    .eval = eval,
    .pointwise = 1,
    .prepare_region = prepare_region,
};
