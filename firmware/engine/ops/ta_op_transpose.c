#include "tinyadapt/ops/ta_transpose.h"
#include "tinyadapt/ta_op.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == TA_DTYPE_INT8 && out->dtype == TA_DTYPE_INT8, TA_ERR_UNSUPPORTED);
    const ta_transpose_params_t *p = (const ta_transpose_params_t *)call->params;
    TA_ENSURE(p->ndim >= 1 && p->ndim <= TA_TRANSPOSE_MAX_DIMS, TA_ERR_CORRUPT);
    TA_ENSURE(in->ndim == p->ndim && out->ndim == p->ndim, TA_ERR_SHAPE);
    int seen = 0;
    for (int i = 0; i < p->ndim; ++i) {
        TA_ENSURE(p->perm[i] >= 0 && p->perm[i] < p->ndim && !(seen & (1 << p->perm[i])), TA_ERR_CORRUPT);
        seen |= 1 << p->perm[i];
        TA_ENSURE(out->dims[i] == in->dims[p->perm[i]], TA_ERR_SHAPE);
    }
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    const ta_transpose_params_t *p = (const ta_transpose_params_t *)call->params;
    return ta_transpose_s8(p->ndim, TA_IN(call, 0)->dims, p->perm, (const int8_t *)call->inputs[0].data,
                           (int8_t *)call->outputs[0].data);
}

/* A patch stage's first op on the model input (NCHW -> NHWC): the output region is gathered
 * straight from the full input, so the transposed full-size copy never exists. */
static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out)
{
    (void)in;
    const ta_transpose_params_t *p = (const ta_transpose_params_t *)call->params;
    return ta_transpose_window_s8(TA_IN(call, 0)->dims, p->perm, (const int8_t *)call->inputs[0].data, out->y0,
                                  out->y1, out->x0, out->x1, (int8_t *)call->outputs[0].data);
}

static ta_status_t prepare_region(const ta_op_call_t *call)
{
    TA_ENSURE(((const ta_transpose_params_t *)call->params)->ndim == 4, TA_ERR_UNSUPPORTED);
    return TA_OK;
}

const ta_op_kernel_t ta_op_transpose = {
    .opcode = TA_OP_TRANSPOSE,
    .name = "TRANSPOSE",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_transpose_params_t),
    .prepare = prepare,
    .eval = eval,
    .eval_region = eval_region,
    .gather = 1,
    .prepare_region = prepare_region,
};
