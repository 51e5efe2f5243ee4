#include "tinyadapt/ops/ta_pad.h"

#include <string.h>

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

/*
 * In a patch stage (a PAD that did not fold into its reader: another pad value, several
 * readers, an average pool): output pixel (y, x) is input pixel (y - before_h, x - before_w)
 * when that lies in the input, else the pad value. `in` is the input region (clipped to the
 * input, so it holds every input pixel this output region needs), `out` the output's; both
 * views are dense [h, w, C] in full-tensor coordinates.
 */
static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out)
{
    const ta_pad_params_t *p = (const ta_pad_params_t *)call->params;
    const ta_tensor_rec_t *full_in = TA_IN(call, IN_INPUT);
    const int32_t in_c = full_in->dims[3], out_c = TA_OUT(call, 0)->dims[3];
    const int32_t in_w = in->x1 - in->x0;
    const int8_t *src = (const int8_t *)call->inputs[IN_INPUT].data;
    int8_t *dst = (int8_t *)call->outputs[0].data;
    for (int32_t y = out->y0; y < out->y1; ++y) {
        const int32_t iy = y - p->before[1];
        const int row_in = iy >= in->y0 && iy < in->y1;
        for (int32_t x = out->x0; x < out->x1; ++x, dst += out_c) {
            const int32_t ix = x - p->before[2];
            if (!row_in || ix < in->x0 || ix >= in->x1) {
                memset(dst, p->pad_value, (size_t)out_c);
                continue;
            }
            memset(dst, p->pad_value, (size_t)p->before[3]);
            memcpy(dst + p->before[3], src + ((size_t)(iy - in->y0) * (size_t)in_w + (size_t)(ix - in->x0)) * (size_t)in_c,
                   (size_t)in_c);
            memset(dst + p->before[3] + in_c, p->pad_value, (size_t)p->after[3]);
        }
    }
    return TA_OK;
}

/* A stage PAD is 4-D, pads no batch and has its value in the params. */
static ta_status_t prepare_region(const ta_op_call_t *call)
{
    const ta_pad_params_t *p = (const ta_pad_params_t *)call->params;
    TA_ENSURE(p->ndim == 4 && p->before[0] == 0 && p->after[0] == 0 && call->n_inputs == 1, TA_ERR_UNSUPPORTED);
    return TA_OK;
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
    .eval_region = eval_region,
    .prepare_region = prepare_region,
};
