#include "tinyadapt/ops/ta_reshape.h"

#include <string.h>

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

const ta_op_kernel_t ta_op_reshape = {
    .opcode = TA_OP_RESHAPE,
    .name = "RESHAPE",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = 0,
    .prepare = prepare,
    .eval = eval,
};
