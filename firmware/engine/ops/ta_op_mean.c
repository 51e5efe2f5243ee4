#include "tinyadapt/ops/ta_mean.h"
#include "tinyadapt/ta_op.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
    const ta_mean_params_t *p = (const ta_mean_params_t *)call->params;
    TA_ENSURE(p->ndim >= 0 && p->ndim <= TA_MEAN_MAX_DIMS && in->ndim == p->ndim, TA_ERR_CORRUPT);
    TA_ENSURE((p->axis_mask & ~((1 << p->ndim) - 1)) == 0, TA_ERR_CORRUPT);
    TA_ENSURE(p->shift >= -31 && p->shift <= 31 && p->multiplier >= 0, TA_ERR_CORRUPT);
    TA_ENSURE(p->input_zp >= -128 && p->input_zp <= 127 && p->output_zp >= -128 && p->output_zp <= 127,
              TA_ERR_CORRUPT);
    int32_t kept = 1;
    for (int i = 0; i < p->ndim; ++i) {
        if (!(p->axis_mask & (1 << i))) {
            kept *= in->dims[i];
        }
    }
    TA_ENSURE(ta_tensor_elems(out) == kept, TA_ERR_SHAPE);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_mean_s8((const ta_mean_params_t *)call->params, TA_IN(call, 0)->dims,
                      (const int8_t *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_mean = {
    .opcode = TA_OP_MEAN,
    .name = "MEAN",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_mean_params_t),
    .prepare = prepare,
    .eval = eval,
};
