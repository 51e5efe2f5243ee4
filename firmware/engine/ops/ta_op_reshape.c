#include "tinyadapt/ops/ta_reshape.h"

#include <string.h>

#include "tinyadapt/ta_model.h"
#include "tinyadapt/ta_op.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    const ta_tensor_rec_t *in = TA_IN(call, 0);
    const ta_tensor_rec_t *out = TA_OUT(call, 0);
    TA_ENSURE(in != NULL && out != NULL, TA_ERR_CORRUPT);
    TA_ENSURE(in->dtype == out->dtype, TA_ERR_UNSUPPORTED);
    TA_ENSURE(in->size == out->size, TA_ERR_SHAPE);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    void *dst = call->outputs[0].data;
    const void *src = call->inputs[0].data;
    if (dst != src) {
        /* memmove: a hand-made blob may overlap the two without making them equal. */
        memmove(dst, src, TA_IN(call, 0)->size);
    }
    return TA_OK;
}

/* A patch stage's first op on the model input (e.g. [1, H*W*C] -> [1, H, W, C]): the bytes
 * are the same, so the output region is a window of the input read as the output's shape. */
static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *full, const ta_region_t *out)
{
    const ta_tensor_rec_t *view = TA_OUT(call, 0);
    const size_t pixel = (size_t)view->dims[3] * ta_dtype_size(view->dtype);
    const size_t row = (size_t)(out->x1 - out->x0) * pixel;
    const uint8_t *src = (const uint8_t *)call->inputs[0].data;
    uint8_t *dst = (uint8_t *)call->outputs[0].data;
    for (int32_t y = out->y0; y < out->y1; ++y, dst += row) {
        memcpy(dst, src + ((size_t)y * (size_t)full->x1 + (size_t)out->x0) * pixel, row);
    }
    return TA_OK;
}

const ta_op_kernel_t ta_op_reshape = {
    .opcode = TA_OP_RESHAPE,
    .name = "RESHAPE",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = 0,
    .prepare = prepare,
    .eval = eval,
    .eval_region = eval_region,
    .gather = 1,
};
