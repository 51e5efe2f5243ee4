#include "tinyadapt/ops/ta_pad.h"
#include "tinyadapt/ta_op.h"

enum { IN_INPUT, IN_VALUE };

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, IN_INPUT);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    const ta_tensor_rec_t *value = call->n_inputs > IN_VALUE ? TA_IN(call, IN_VALUE) : NULL;
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
    TA_ENSURE(value == NULL || (value->dtype == TA_DTYPE_INT8 && ta_tensor_elems(value) == 1), TA_ERR_SHAPE);
    const ta_pad_params_t *p = (const ta_pad_params_t *)call->params;
    TA_ENSURE(p->ndim >= 0 && p->ndim <= TA_PAD_MAX_DIMS, TA_ERR_CORRUPT);
    TA_ENSURE(in->ndim == p->ndim && out->ndim == p->ndim, TA_ERR_SHAPE);
    TA_ENSURE(p->pad_value >= -128 && p->pad_value <= 127, TA_ERR_CORRUPT);
    for (int i = 0; i < p->ndim; ++i) {
        TA_ENSURE(p->before[i] >= 0 && p->after[i] >= 0, TA_ERR_CORRUPT);
        TA_ENSURE((int64_t)in->dims[i] + p->before[i] + p->after[i] == out->dims[i], TA_ERR_SHAPE);
    }
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_pad_params_t *p = (const ta_pad_params_t *)call->params;
    const ta_tensor_t *value = call->n_inputs > IN_VALUE ? &call->inputs[IN_VALUE] : NULL;
    /* A run-time pad value (PADV2 fed by another op) is read at every invoke. */
    const int8_t pad_value = (value != NULL && value->data != NULL) ? *(const int8_t *)value->data
                                                                    : (int8_t)p->pad_value;
    return ta_pad_s8(p->ndim, TA_IN(call, IN_INPUT)->dims, p->before, p->after,
                     (const int8_t *)call->inputs[IN_INPUT].data, pad_value, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_pad = {
    .opcode = TA_OP_PAD,
    .name = "PAD",
    .min_inputs = 1,
    .max_inputs = 2,
    .n_outputs = 1,
    .params_size = sizeof(ta_pad_params_t),
    .prepare = prepare,
    .eval = eval,
};
