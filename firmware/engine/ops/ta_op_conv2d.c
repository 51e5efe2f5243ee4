#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ta_op.h"

#include <string.h>

#include "ta_conv_common.h"

/* The planner put the output over the input (a pointwise conv that narrows the channels). */
static int runs_in_place(const ta_op_call_t *call)
{
    return call->inputs[TA_CONV_INPUT].data != NULL && call->inputs[TA_CONV_INPUT].data == call->outputs[0].data;
}

/* Only a 1x1, stride-1, unpadded conv maps output pixel k to input pixel k alone, and only with
 * C_out <= C_in does output pixel k end before input pixel k + 1 starts; the scratch holds at
 * least one output pixel. (The kernel itself needs no scratch for a 1x1 conv: the GEMM path.) */
static ta_status_t check_in_place(const ta_op_call_t *call)
{
    const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
    const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
    const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
    const ta_conv_params_t *p = (const ta_conv_params_t *)call->params;
    TA_ENSURE(f_d.h == 1 && f_d.w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
                  p->pad_left == 0 && in_d.h == out_d.h && in_d.w == out_d.w && out_d.c <= in_d.c &&
                  call->scratch != NULL && call->scratch_size >= (uint32_t)out_d.c,
              TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_conv_prepare(call, TA_CONV_REGULAR));
    return runs_in_place(call) ? check_in_place(call) : TA_OK;
}

/*
 * In place, chunk by chunk: a chunk of pixels is computed into the scratch and then copied
 * over the output. Writing chunk [q, q + k) touches bytes below (q + k) * C_out <= (q + k) *
 * C_in, i.e. only inputs of pixels already read, so every pixel sees its own input. Each
 * chunk is a kernel call on a 1 x k image, so the arithmetic (and the result) is the kernel's.
 */
static ta_status_t eval_in_place(const ta_op_call_t *call)
{
    TA_TRY(check_in_place(call));
    const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
    const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
    const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
    const int64_t pixels = (int64_t)in_d.n * in_d.h * in_d.w;
    const int64_t chunk = (int64_t)(call->scratch_size / (uint32_t)out_d.c);
    int8_t *data = (int8_t *)call->outputs[0].data;
    int8_t *scratch = (int8_t *)call->scratch;
    for (int64_t q = 0; q < pixels; q += chunk) {
        const int32_t k = (int32_t)(pixels - q < chunk ? pixels - q : chunk);
        const ta_dims_t in_k = {1, 1, k, in_d.c};
        const ta_dims_t out_k = {1, 1, k, out_d.c};
        TA_TRY(ta_conv2d_s8((const ta_conv_params_t *)call->params, &in_k, data + q * in_d.c, &f_d,
                            (const int8_t *)call->inputs[TA_CONV_FILTER].data,
                            (const int32_t *)call->inputs[TA_CONV_BIAS].data,
                            (const int32_t *)call->inputs[TA_CONV_MULT].data,
                            (const int32_t *)call->inputs[TA_CONV_SHIFT].data, &out_k, scratch, NULL, 0));
        memcpy(data + q * out_d.c, scratch, (size_t)k * (size_t)out_d.c);
    }
    return TA_OK;
}

static ta_status_t eval(const ta_op_call_t *call)
{
    return runs_in_place(call) ? eval_in_place(call) : ta_conv_eval(call, ta_conv2d_s8);
}

static ta_status_t eval_region(const ta_op_call_t *call, const ta_region_t *in, const ta_region_t *out)
{
    return ta_conv_eval_region(call, in, out, eval);
}

static ta_status_t eval_rows(const ta_op_call_t *call, const ta_op_rows_t *rows)
{
    TA_ENSURE(!runs_in_place(call), TA_ERR_STATE);
    const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
    const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
    const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
    return ta_conv2d_rows_s8((const ta_conv_params_t *)call->params, &in_d,
                             (const int8_t *)call->inputs[TA_CONV_INPUT].data, &f_d, rows->n, rows->channels,
                             rows->rows, (const int32_t *)call->inputs[TA_CONV_BIAS].data,
                             (const int32_t *)call->inputs[TA_CONV_MULT].data,
                             (const int32_t *)call->inputs[TA_CONV_SHIFT].data, &out_d,
                             (int8_t *)call->outputs[0].data);
}

const ta_op_kernel_t ta_op_conv2d = {
    .opcode = TA_OP_CONV_2D,
    .name = "CONV_2D",
    .min_inputs = 5,
    .max_inputs = 5,
    .n_outputs = 1,
    .params_size = sizeof(ta_conv_params_t),
    .prepare = prepare,
    .eval = eval,
    .eval_region = eval_region,
    .eval_rows = eval_rows,
};
