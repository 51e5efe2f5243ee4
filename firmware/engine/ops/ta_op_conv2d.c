#include "tinyadapt/ops/ta_conv2d.h"
#include "tinyadapt/ta_op.h"

#include <string.h>

#include "ta_conv_common.h"

/* Bytes from the output's start to the input's (the planner put the output over the input: a
 * pointwise conv; in a patch stage a widening one may take the input a few rows into its
 * output region), or -1 if the two do not overlap that way. */
static int64_t in_place_offset(const ta_op_call_t *call)
{
    const int8_t *in = (const int8_t *)call->inputs[TA_CONV_INPUT].data;
    const int8_t *out = (const int8_t *)call->outputs[0].data;
    const ta_tensor_rec_t *out_rec = call->outputs[0].rec;
    if (in == NULL || out == NULL || out_rec == NULL || in < out || in >= out + out_rec->size) {
        return -1;
    }
    return (int64_t)(in - out);
}

static int runs_in_place(const ta_op_call_t *call) { return in_place_offset(call) >= 0; }

/* Only a 1x1, stride-1, unpadded conv maps output pixel k to input pixel k alone; the scratch
 * holds at least one output pixel. (The kernel itself needs no scratch for a 1x1 conv: the
 * GEMM path.) */
static ta_status_t check_in_place(const ta_op_call_t *call)
{
    const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
    const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
    const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
    const ta_conv_params_t *p = (const ta_conv_params_t *)call->params;
    TA_ENSURE(f_d.h == 1 && f_d.w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
                  p->pad_left == 0 && in_d.n == out_d.n && in_d.h == out_d.h && in_d.w == out_d.w &&
                  call->scratch != NULL && call->scratch_size >= (uint32_t)out_d.c,
              TA_ERR_CORRUPT);
    return TA_OK;
}

static ta_status_t prepare(const ta_op_call_t *call)
{
    TA_TRY(ta_conv_prepare(call, TA_CONV_REGULAR));
    return runs_in_place(call) ? check_in_place(call) : TA_OK;
}

/* Pixels [q, q + k) computed into the scratch (a kernel call on a 1 x k image, so the
 * arithmetic and the result are the kernel's), then copied over their output. */
static ta_status_t chunk_in_place(const ta_op_call_t *call, const int8_t *in, int8_t *out, int64_t q, int32_t k,
                                  int32_t in_c, int32_t out_c)
{
    const ta_dims_t f_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_FILTER));
    const ta_dims_t in_k = {1, 1, k, in_c};
    const ta_dims_t out_k = {1, 1, k, out_c};
    int8_t *scratch = (int8_t *)call->scratch;
    TA_TRY(ta_conv2d_s8((const ta_conv_params_t *)call->params, &in_k, in + q * in_c, &f_d,
                        (const int8_t *)call->inputs[TA_CONV_FILTER].data,
                        (const int32_t *)call->inputs[TA_CONV_BIAS].data,
                        (const int32_t *)call->inputs[TA_CONV_MULT].data,
                        (const int32_t *)call->inputs[TA_CONV_SHIFT].data, &out_k, scratch, NULL, 0));
    memcpy(out + q * out_c, scratch, (size_t)k * (size_t)out_c);
    return TA_OK;
}

/*
 * In place, chunk by chunk, the input starting d >= 0 bytes into the output. Writing the
 * output of pixels [q, q + k) touches bytes [q * C_out, (q + k) * C_out); the input of a pixel
 * j not yet read starts at d + j * C_in.
 *  - C_out <= C_in: in pixel order, a chunk's bytes end below d + (q + k) * C_in, the first
 *    unread input.
 *  - C_out > C_in: first pixels [0, p), p = floor(d / (C_out - C_in)), in order: their chunks
 *    end at (q + k) * C_out <= d + (q + k) * C_in. Then the others from the last pixel down:
 *    a chunk [q, q + k) with q > p starts at q * C_out >= d + q * C_in, past every input still
 *    unread (pixels [p, q)); the last one, q = p, has no input left to spare.
 * (d = 0: the whole map from the last pixel down.)
 */
static ta_status_t eval_in_place(const ta_op_call_t *call)
{
    TA_TRY(check_in_place(call));
    const ta_dims_t in_d = ta_tensor_nhwc(TA_IN(call, TA_CONV_INPUT));
    const ta_dims_t out_d = ta_tensor_nhwc(TA_OUT(call, 0));
    const int64_t pixels = (int64_t)in_d.n * in_d.h * in_d.w;
    const int64_t chunk = (int64_t)(call->scratch_size / (uint32_t)out_d.c);
    const int8_t *in = (const int8_t *)call->inputs[TA_CONV_INPUT].data;
    int8_t *out = (int8_t *)call->outputs[0].data;
    int64_t split = pixels; /* pixels [0, split) in order, then the others backwards */
    if (out_d.c > in_d.c) {
        const int64_t p = in_place_offset(call) / (out_d.c - in_d.c);
        split = p < pixels ? p : pixels;
    }
    for (int64_t q = 0; q < split; q += chunk) {
        const int32_t k = (int32_t)(split - q < chunk ? split - q : chunk);
        TA_TRY(chunk_in_place(call, in, out, q, k, in_d.c, out_d.c));
    }
    for (int64_t end = pixels; end > split;) {
        const int64_t q = end - chunk > split ? end - chunk : split;
        TA_TRY(chunk_in_place(call, in, out, q, (int32_t)(end - q), in_d.c, out_d.c));
        end = q;
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
