#include <stdint.h>

#include "tinyadapt/internal/ta_op_check.h"
#include "tinyadapt/ops/ta_quantize.h"
#include "tinyadapt/ta_op.h"

#include "ta_elementwise_common.h"

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_unary_check_io(call, TA_DTYPE_FLOAT32, TA_DTYPE_INT8));
    /* The FPU faults on a misaligned float load. */
    TA_ENSURE(((uintptr_t)call->inputs[0].data & 3u) == 0, TA_ERR_CORRUPT);
    const ta_quantize_params_t *p = (const ta_quantize_params_t *)call->params;
    const uint32_t bits = (uint32_t)p->scale_bits;
    /* Finite and positive: sign clear, exponent not all ones, not +0. */
    TA_ENSURE((bits & 0x80000000u) == 0 && (bits & 0x7F800000u) != 0x7F800000u && bits != 0, TA_ERR_CORRUPT);
    TA_ENSURE(ta_nn_valid_output_offset(p->zero_point), TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return ta_quantize_f32_s8((const ta_quantize_params_t *)call->params, ta_tensor_elems(TA_IN(call, 0)),
                              (const float *)call->inputs[0].data, (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_quantize = {
    .opcode = TA_OP_QUANTIZE,
    .name = "QUANTIZE",
    .min_inputs = 1,
    .max_inputs = 1,
    .n_outputs = 1,
    .params_size = sizeof(ta_quantize_params_t),
    .prepare = prepare,
    .eval = eval,
    .pointwise = 1,
};
