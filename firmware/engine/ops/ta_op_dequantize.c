#include <stdint.h>

#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_dequantize.h"
#include "tinyadapt/ta_op.h"

#include "ta_elementwise_common.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_unary_check_io(call, TA_DTYPE_INT8, TA_DTYPE_FLOAT32));
    /* The FPU faults on a misaligned float store. */
    TA_ENSURE(((uintptr_t)call->outputs[0].data & 3u) == 0, TA_ERR_CORRUPT);
    const ta_dequantize_params_t *p = (const ta_dequantize_params_t *)call->params;
    TA_ENSURE(((uint32_t)p->scale_bits & 0x7F800000u) != 0x7F800000u, TA_ERR_CORRUPT); /* finite */
    TA_ENSURE(ta_nn_valid_output_offset(p->zero_point), TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_dequantize_s8_f32((const ta_dequantize_params_t *)call->params, ta_tensor_elems(TA_IN(call, 0)),
                                (const int8_t *)call->inputs[0].data, (float *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_dequantize = {
    .opcode = TA_OP_DEQUANTIZE,
    .name = "DEQUANTIZE",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_dequantize_params_t),
    .prepare = prepare,
    .eval = eval,
    .pointwise = 1,
};
